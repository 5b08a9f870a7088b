//! What a caller may see of the other tenants (SPEC, "Fair share", last paragraph):
//! `ListDomains` answers list only the domains on which the caller may `swf:DescribeDomain`
//! (`[policies] filter_list_domains`, on by default), so a tenant does not learn the others'
//! domain names. The upstream's `nextPageToken` passes through untouched, so paging still
//! walks the whole list; a page may come back shorter, or empty with a token to go on.
//!
//! Each domain is authorized exactly as a `DescribeDomain` call naming it would be (its
//! resource ARN and its `name` member), so a policy that lets a tenant describe a domain is
//! the policy that lets it see the name. An answer that cannot be read is refused, never
//! passed on unfiltered. Principals in shadow mode are not filtered: shadow mode refuses
//! nothing.

use serde_json::{Map, Value};

use crate::config::Service;
use crate::policy::{Action, Context, DecisionKind, PolicySet};
use crate::swf::Operation;

/// Why an answer could not be filtered.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

/// The `ListDomains` answer `body` with only the domains `policies` let the caller (in
/// `ctx`) describe.
pub fn filter_domains(
    body: &[u8],
    policies: &PolicySet,
    service: &Service,
    ctx: &Context<'_>,
) -> Result<Vec<u8>, Unreadable> {
    let mut answer: Map<String, Value> = serde_json::from_slice(body).map_err(|_| Unreadable)?;
    match answer.get_mut("domainInfos") {
        None => {}
        Some(Value::Array(domains)) => {
            let mut visible = Vec::with_capacity(domains.len());
            for info in std::mem::take(domains) {
                let name = info.get("name").and_then(Value::as_str).ok_or(Unreadable)?;
                if may_describe(name, policies, service, ctx) {
                    visible.push(info);
                }
            }
            *domains = visible;
        }
        Some(_) => return Err(Unreadable),
    }
    serde_json::to_vec(&answer).map_err(|_| Unreadable)
}

/// Whether a `DescribeDomain` of `name` by the caller would be allowed.
fn may_describe(name: &str, policies: &PolicySet, service: &Service, ctx: &Context<'_>) -> bool {
    let mut input = Map::new();
    input.insert("name".into(), Value::String(name.to_owned()));
    let ctx = Context {
        action: Action::Operation(Operation::DescribeDomain),
        input: Some(&input),
        ..*ctx
    };
    policies.evaluate(&service.domain_arn(name), &ctx).kind == DecisionKind::Allowed
}
