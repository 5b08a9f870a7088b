//! What a caller may see of the other tenants (SPEC, "Fair share", last paragraphs):
//! `ListDomains` answers list only the domains on which the caller may `swf:DescribeDomain`
//! (`[policies] filter_list_domains`, on by default), so a tenant learns neither the others'
//! domain names, nor their number, nor its own rank among them.
//!
//! The proxy reads the upstream's pages itself ([`Lister`], at most [`MAX_UPSTREAM_PAGES`]),
//! keeps the domains the caller may see, and pages the caller through that filtered list
//! with its own `nextPageToken`: sealed under the proxy's keys, bound to the caller and the
//! listing asked for, naming the last domain handed out. A page size of 1 then shows one
//! visible domain a page, and the number of pages reveals nothing about the rest.
//!
//! Each domain is authorized exactly as a `DescribeDomain` call naming it would be (its
//! resource ARN and its `name` member), so a policy that lets a tenant describe a domain is
//! the policy that lets it see the name. An answer that cannot be read is refused, never
//! passed on unfiltered. Principals in shadow mode are not filtered: shadow mode refuses
//! nothing.

use bytes::Bytes;
use http::HeaderValue;
use hyper::Response;
use serde_json::{json, Map, Value};

use crate::config::Service;
use crate::error::ProxyError;
use crate::forward::{Forwarder, Outbound, UpstreamBody};
use crate::policy::{Action, Context, DecisionKind, Permit, PolicySet};
use crate::swf::Operation;
use crate::tokens::Keyring;

/// The most upstream pages read for one caller's page (a thousand domains each).
pub const MAX_UPSTREAM_PAGES: usize = 100;
/// The largest upstream page read.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// SWF's page size when none (or 0) is asked for, and its largest.
const PAGE_SIZE: usize = 1000;
/// The proxy's page tokens: their prefix, and the purpose their keys are derived for (from
/// the task token keys; a page token opens nothing else, nor anything else a page token).
pub const PAGE_PREFIX: &str = "swfp1.";
pub const PAGE_PURPOSE: &str = "list-domains-page";

/// Why an answer could not be filtered.
#[derive(Debug, PartialEq, Eq)]
pub struct Unreadable;

/// What a filtered listing hands back.
pub enum Listing {
    /// The caller's page, written by the proxy, with the last upstream answer's request id.
    Page {
        body: Vec<u8>,
        request_id: Option<HeaderValue>,
    },
    /// An upstream answer that was no page (an error): passed on as it came.
    Upstream(Response<UpstreamBody>),
}

/// One caller's `ListDomains`, filtered and paged by the proxy.
pub struct Lister<'a> {
    pub forwarder: &'a Forwarder,
    pub permit: &'a Permit,
    /// Seals and opens the proxy's page tokens.
    pub pages: &'a Keyring,
    pub service: &'a Service,
    pub policies: &'a PolicySet,
    /// The caller's policy context (`ListDomains`, without input).
    pub ctx: Context<'a>,
    /// The call's request id and trace context, carried by each page's upstream call.
    pub outbound: Outbound<'a>,
}

/// Where a caller's listing goes on: sealed into the proxy's `nextPageToken`.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq, Debug)]
struct Cursor {
    /// The caller's ARN, the listing's `registrationStatus` and `reverseOrder`.
    caller: String,
    status: String,
    reverse: bool,
    /// The last domain handed out.
    after: String,
}

fn bad_page_token() -> ProxyError {
    ProxyError::Validation(
        "The nextPageToken is not one this proxy issued to this caller for this listing.".into(),
    )
}

fn unreadable(request_id: &str) -> ProxyError {
    tracing::warn!(
        request_id,
        "upstream ListDomains answer is not what the model says"
    );
    ProxyError::Unavailable(
        "Service Unavailable: the SWF endpoint behind this proxy sent an unreadable answer.".into(),
    )
}

impl Lister<'_> {
    /// The page of the filtered list that `input` (the caller's strictly parsed request) asks
    /// for, reading every upstream page.
    pub async fn list(&self, input: &Map<String, Value>) -> Result<Listing, ProxyError> {
        let status = input
            .get("registrationStatus")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let reverse = input
            .get("reverseOrder")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let size = match input.get("maximumPageSize").and_then(Value::as_u64) {
            Some(n) if n > 0 => (n as usize).min(PAGE_SIZE),
            _ => PAGE_SIZE,
        };
        let caller = self.ctx.caller.arn;
        let after = match input.get("nextPageToken").and_then(Value::as_str) {
            None => None,
            Some(token) => Some(open_cursor(self.pages, token, caller, &status, reverse)?),
        };
        let mut visible = Vec::new();
        let mut upstream_token: Option<String> = None;
        for _ in 0..MAX_UPSTREAM_PAGES {
            let mut body = json!({
                "registrationStatus": status,
                "reverseOrder": reverse,
                "maximumPageSize": PAGE_SIZE,
            });
            if let Some(token) = upstream_token.take() {
                body["nextPageToken"] = Value::String(token);
            }
            let response = self
                .forwarder
                .forward(
                    self.permit,
                    Operation::ListDomains,
                    Bytes::from(body.to_string()),
                    &self.outbound,
                )
                .await?;
            if !response.status().is_success() {
                return Ok(Listing::Upstream(response));
            }
            let request_id = response.headers().get("x-amzn-requestid").cloned();
            let bytes = response
                .into_body()
                .read_all(MAX_PAGE_BYTES)
                .await
                .map_err(|_| unreadable(self.outbound.request_id))?;
            let (domains, next) =
                read_page(&bytes).map_err(|_| unreadable(self.outbound.request_id))?;
            for info in domains {
                let name = info
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unreadable(self.outbound.request_id))?;
                if may_describe(name, self.policies, self.service, &self.ctx) {
                    visible.push(info);
                }
            }
            match next {
                Some(token) => upstream_token = Some(token),
                None => {
                    let listing = (caller, status.as_str(), reverse);
                    let body = page(self.pages, listing, visible, after.as_deref(), size);
                    return Ok(Listing::Page { body, request_id });
                }
            }
        }
        Err(ProxyError::Unavailable(format!(
            "Service Unavailable: the account holds more than {MAX_UPSTREAM_PAGES} pages of domains, more than this proxy filters."
        )))
    }
}

/// The last domain handed out, from a page `token` the proxy sealed for this `caller` and
/// this listing (`status`, `reverse`); anything else is refused.
fn open_cursor(
    pages: &Keyring,
    token: &str,
    caller: &str,
    status: &str,
    reverse: bool,
) -> Result<String, ProxyError> {
    let (_, payload) = pages.open(token).map_err(|_| bad_page_token())?;
    let cursor: Cursor = serde_json::from_slice(&payload).map_err(|_| bad_page_token())?;
    if cursor.caller != caller || cursor.status != status || cursor.reverse != reverse {
        return Err(bad_page_token());
    }
    Ok(cursor.after)
}

/// The caller's page of `visible` (in the upstream's order) for `listing` (caller, status,
/// reverse): up to `size` domains after the one named `after`, and a token to go on if any
/// are left.
fn page(
    pages: &Keyring,
    (caller, status, reverse): (&str, &str, bool),
    visible: Vec<Value>,
    after: Option<&str>,
    size: usize,
) -> Vec<u8> {
    let name = |info: &Value| info.get("name").and_then(Value::as_str).map(str::to_owned);
    let start = match after {
        None => 0,
        // Where the last domain handed out is, or, were it gone since, where it would be.
        Some(after) => match visible
            .iter()
            .position(|d| name(d).as_deref() == Some(after))
        {
            Some(i) => i + 1,
            None => visible
                .iter()
                .position(|d| {
                    name(d).is_some_and(|n| if reverse { *n < *after } else { *n > *after })
                })
                .unwrap_or(visible.len()),
        },
    };
    let rest = visible.len().saturating_sub(start);
    let page: Vec<Value> = visible.into_iter().skip(start).take(size).collect();
    let mut answer = Map::new();
    if rest > size {
        let cursor = Cursor {
            caller: caller.to_owned(),
            status: status.to_owned(),
            reverse,
            after: page.last().and_then(name).unwrap_or_default(),
        };
        let payload = serde_json::to_vec(&cursor).unwrap_or_default();
        answer.insert("nextPageToken".into(), Value::String(pages.seal(&payload)));
    }
    answer.insert("domainInfos".into(), Value::Array(page));
    serde_json::to_vec(&answer).unwrap_or_default()
}

/// An upstream page's domains and its `nextPageToken`.
fn read_page(body: &[u8]) -> Result<(Vec<Value>, Option<String>), Unreadable> {
    let mut answer: Map<String, Value> = serde_json::from_slice(body).map_err(|_| Unreadable)?;
    let domains = match answer.remove("domainInfos") {
        None => Vec::new(),
        Some(Value::Array(domains)) => domains,
        Some(_) => return Err(Unreadable),
    };
    let next = match answer.remove("nextPageToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if !token.is_empty() => Some(token),
        Some(Value::String(_)) => None,
        Some(_) => return Err(Unreadable),
    };
    Ok((domains, next))
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

    fn ctx<'a>(tags: &'a std::collections::BTreeMap<String, String>) -> Context<'a> {
        Context {
            caller: Caller {
                name: "t",
                arn: "arn:aws:iam::123456789012:user/t",
                tags,
                session: None,
            },
            action: Action::Operation(Operation::ListDomains),
            input: None,
            source_ip: None,
            now: SystemTime::now(),
            secure_transport: false,
            region: "us-east-1",
            overrides: None,
        }
    }

    fn keyring() -> Keyring {
        let secret = crate::secret::Secret::new("k".repeat(32));
        Keyring::new(
            PAGE_PREFIX,
            vec![crate::tokens::TokenKey::derive("k1", &secret, PAGE_PURPOSE)],
        )
    }

    fn names(page: &[u8]) -> (Vec<String>, Option<String>) {
        let v: Value = serde_json::from_slice(page).unwrap();
        let names = v["domainInfos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        (names, v["nextPageToken"].as_str().map(str::to_owned))
    }

    #[test]
    fn only_describable_domains_are_visible() {
        let tags = Default::default();
        let ctx = ctx(&tags);
        let (domains, next) = read_page(
            br#"{"domainInfos":[{"name":"other"},{"name":"mine"}],"nextPageToken":"p2"}"#,
        )
        .unwrap();
        assert_eq!(next.as_deref(), Some("p2"));
        let visible: Vec<&Value> = domains
            .iter()
            .filter(|d| may_describe(d["name"].as_str().unwrap(), &policies(), &service(), &ctx))
            .collect();
        assert_eq!(visible, [&serde_json::json!({"name": "mine"})]);
    }

    #[test]
    fn pages_hold_visible_domains_only_and_go_on_with_a_sealed_token() {
        let pages = keyring();
        let caller = "arn:aws:iam::123456789012:user/t";
        let listing = (caller, "REGISTERED", false);
        let visible: Vec<Value> = ["a", "c", "e"]
            .iter()
            .map(|n| serde_json::json!({"name": n}))
            .collect();
        let (first, token) = names(&page(&pages, listing, visible.clone(), None, 2));
        assert_eq!(first, ["a", "c"]);
        let token = token.unwrap();
        assert!(token.starts_with(PAGE_PREFIX), "{token}");
        let after = open_cursor(&pages, &token, caller, "REGISTERED", false).unwrap();
        assert_eq!(after, "c");
        let (second, token) = names(&page(&pages, listing, visible.clone(), Some(&after), 2));
        assert_eq!((second, token), (vec!["e".to_owned()], None));
        // The last domain handed out is gone since: the next page starts where it would be.
        let (gone, _) = names(&page(&pages, listing, visible.clone(), Some("b"), 2));
        assert_eq!(gone, ["c", "e"]);
        // A page of exactly what is left has no token.
        let (all, token) = names(&page(&pages, listing, visible, None, 3));
        assert_eq!((all.len(), token), (3, None));
    }

    #[test]
    fn a_page_token_opens_only_for_its_caller_and_listing() {
        let pages = keyring();
        let caller = "arn:aws:iam::123456789012:user/t";
        let visible = vec![
            serde_json::json!({"name": "a"}),
            serde_json::json!({"name": "b"}),
        ];
        let (_, token) = names(&page(
            &pages,
            (caller, "REGISTERED", false),
            visible,
            None,
            1,
        ));
        let token = token.unwrap();
        assert!(open_cursor(&pages, &token, caller, "REGISTERED", false).is_ok());
        for (who, status, reverse) in [
            ("arn:aws:iam::123456789012:user/other", "REGISTERED", false),
            (caller, "DEPRECATED", false),
            (caller, "REGISTERED", true),
        ] {
            assert!(matches!(
                open_cursor(&pages, &token, who, status, reverse),
                Err(ProxyError::Validation(_))
            ));
        }
        let mut forged = token.clone();
        forged.push('A');
        assert!(open_cursor(&pages, &forged, caller, "REGISTERED", false).is_err());
        assert!(open_cursor(&pages, "page-2", caller, "REGISTERED", false).is_err());
    }

    #[test]
    fn an_answer_that_cannot_be_read_is_never_passed_on() {
        for body in [
            "not json",
            r#"["mine"]"#,
            r#"{"domainInfos":{"name":"other"}}"#,
            r#"{"domainInfos":[],"nextPageToken":7}"#,
        ] {
            assert_eq!(read_page(body.as_bytes()), Err(Unreadable), "{body}");
        }
    }
}
