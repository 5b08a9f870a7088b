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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::policy::{document, Caller, Policy};

    fn service() -> Service {
        Service {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            partition: "aws".into(),
            max_clock_skew: Duration::from_secs(900),
            hosts: Vec::new(),
        }
    }

    /// May describe `mine` only.
    fn policies() -> PolicySet {
        let text = "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:DescribeDomain\"\nResource = \"arn:aws:swf:*:123456789012:/domain/mine\"\n";
        let doc = document::parse_toml(Path::new("p.toml"), text).unwrap();
        let mut set = PolicySet::default();
        set.add(Arc::new(
            Policy::compile("p", Path::new("p.toml"), doc).unwrap(),
        ));
        set
    }

    fn filter(body: &str) -> Result<Value, Unreadable> {
        let tags = Default::default();
        let ctx = Context {
            caller: Caller {
                name: "t",
                arn: "arn:aws:iam::123456789012:user/t",
                tags: &tags,
                session: None,
            },
            action: Action::Operation(Operation::ListDomains),
            input: None,
            source_ip: None,
            now: SystemTime::now(),
            secure_transport: false,
            region: "us-east-1",
            overrides: None,
        };
        filter_domains(body.as_bytes(), &policies(), &service(), &ctx)
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn only_describable_domains_are_listed_and_the_page_token_passes() {
        let seen = filter(r#"{"domainInfos":[{"name":"other","status":"REGISTERED"},{"name":"mine","status":"REGISTERED"}],"nextPageToken":"p2"}"#).unwrap();
        assert_eq!(
            seen,
            serde_json::json!({"domainInfos":[{"name":"mine","status":"REGISTERED"}],"nextPageToken":"p2"})
        );
    }

    #[test]
    fn an_answer_that_cannot_be_read_is_never_passed_on() {
        for body in [
            "not json",
            r#"["mine"]"#,
            r#"{"domainInfos":{"name":"other"}}"#,
            r#"{"domainInfos":[{"status":"REGISTERED"}]}"#,
            r#"{"domainInfos":[{"name":7}]}"#,
        ] {
            assert_eq!(filter(body), Err(Unreadable), "{body}");
        }
    }
}
