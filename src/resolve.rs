//! Step 2 of the request path: the IAM resource a call touches (SPEC, "Resources per
//! operation"), and for the token operations, the upstream token inside the sealed one.

use serde_json::{Map, Value};

use crate::config::Service;
use crate::error::{excerpt, ProxyError};
use crate::policy::actions::DecisionKind;
use crate::swf::Operation;
use crate::swf::{self, ResourceSource, SwfRequest};
use crate::tokens::{self, TokenSealer};

/// What a call touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The resource ARN the policy is evaluated against.
    pub resource: String,
    /// The domain, where the call names one (directly or through its token).
    pub domain: Option<String>,
    /// For token operations: the upstream's own token, to forward instead of the sealed one.
    pub upstream_token: Option<String>,
}

/// Resolves the resource of `request`. `principal_arn` is only used in refusal messages.
pub fn resolve(
    service: &Service,
    sealer: &TokenSealer,
    request: &SwfRequest,
    principal_arn: &str,
) -> Result<Resolved, ProxyError> {
    let plain = |resource: String, domain: Option<String>| Resolved {
        resource,
        domain,
        upstream_token: None,
    };
    match request.op.resource_source() {
        ResourceSource::Domain | ResourceSource::DomainName => {
            let member = if request.op.resource_source() == ResourceSource::Domain {
                "domain"
            } else {
                "name"
            };
            let domain = request.string(member)?;
            swf::check_domain_name(member, domain)?;
            Ok(plain(service.domain_arn(domain), Some(domain.to_owned())))
        }
        ResourceSource::AllDomains => Ok(plain(service.domain_arn("*"), None)),
        ResourceSource::ResourceArn => {
            let arn = request.string("resourceArn")?;
            let len = arn.chars().count();
            if !(1..=1600).contains(&len) {
                return Err(swf::validation(vec![format!(
                    "Value '{}' at 'resourceArn' failed to satisfy constraint: Member must have length between 1 and 1600",
                    excerpt(arn)
                )]));
            }
            Ok(plain(arn.to_owned(), None))
        }
        ResourceSource::TaskToken => {
            let token = request.string("taskToken")?;
            let opened = sealer.unseal(token).map_err(|e| ProxyError::NotPermitted {
                message: format!(
                    "User: {principal_arn} is not authorized to perform: {} because {e} (token {})",
                    request.op.iam_action(),
                    tokens::fingerprint(token)
                ),
                outcome: crate::audit::Outcome::InvalidRequest,
            })?;
            Ok(Resolved {
                resource: service.domain_arn(&opened.domain),
                domain: Some(opened.domain),
                upstream_token: Some(opened.upstream_token),
            })
        }
    }
}

/// One decision inside `RespondDecisionTaskCompleted`: its type and attributes.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub kind: DecisionKind,
    pub attributes: Option<&'a Map<String, Value>>,
}

/// The decisions of a `RespondDecisionTaskCompleted` call (none for any other operation),
/// each to be authorized as its own pseudo-action.
pub fn decisions(request: &SwfRequest) -> Result<Vec<Decision<'_>>, ProxyError> {
    if request.op != Operation::RespondDecisionTaskCompleted {
        return Ok(Vec::new());
    }
    let list = match request.input.get("decisions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ProxyError::Serialization(
                "Member 'decisions' must be a list.".into(),
            ))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("decisions.{}.member.decisionType", i + 1);
        let Value::Object(decision) = item else {
            return Err(ProxyError::Serialization(format!(
                "Member 'decisions.{}' must be an object.",
                i + 1
            )));
        };
        let kind = match decision.get("decisionType") {
            None | Some(Value::Null) => {
                return Err(swf::validation(vec![format!(
                    "Value null at '{at}' failed to satisfy constraint: Member must not be null"
                )]))
            }
            Some(Value::String(name)) => DecisionKind::from_name(name).ok_or_else(|| {
                let allowed: Vec<&str> = DecisionKind::ALL.iter().map(|k| k.name()).collect();
                swf::validation(vec![format!(
                    "Value '{}' at '{at}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    excerpt(name),
                    allowed.join(", ")
                )])
            })?,
            Some(_) => return Err(ProxyError::Serialization(format!("Member '{at}' must be a string."))),
        };
        let attributes = match decision.get(&kind.attributes_member()) {
            None | Some(Value::Null) => None,
            Some(Value::Object(attributes)) => Some(attributes),
            Some(_) => {
                return Err(ProxyError::Serialization(format!(
                    "Member 'decisions.{}.member.{}' must be an object.",
                    i + 1,
                    kind.attributes_member()
                )))
            }
        };
        out.push(Decision { kind, attributes });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::tokens::TokenKey;
    use std::time::Duration;

    fn service() -> Service {
        Service {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            partition: "aws".into(),
            max_clock_skew: Duration::from_secs(900),
        }
    }

    fn sealer() -> TokenSealer {
        TokenSealer::new(vec![TokenKey::new("k1", &Secret::new("s".repeat(32)))])
    }

    fn resolve_body(op: Operation, body: &str) -> Result<Resolved, ProxyError> {
        let req = swf::parse(op, body.as_bytes())?;
        resolve(
            &service(),
            &sealer(),
            &req,
            "arn:aws:iam::123456789012:user/u",
        )
    }

    #[test]
    fn every_source_resolves() {
        let arn = "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a";
        let r = resolve_body(
            Operation::PollForActivityTask,
            r#"{"domain":"tenant-a","taskList":{"name":"t"}}"#,
        )
        .unwrap();
        assert_eq!(r.resource, arn);
        assert_eq!(r.domain.as_deref(), Some("tenant-a"));
        let r = resolve_body(
            Operation::RegisterDomain,
            r#"{"name":"tenant-a","workflowExecutionRetentionPeriodInDays":"1"}"#,
        )
        .unwrap();
        assert_eq!(r.resource, arn);
        let r = resolve_body(
            Operation::ListDomains,
            r#"{"registrationStatus":"REGISTERED"}"#,
        )
        .unwrap();
        assert_eq!(r.resource, "arn:aws:swf:us-east-1:123456789012:/domain/*");
        let r = resolve_body(
            Operation::ListTagsForResource,
            &format!(r#"{{"resourceArn":"{arn}"}}"#),
        )
        .unwrap();
        assert_eq!(r.resource, arn);
    }

    #[test]
    fn tokens_resolve_to_their_sealed_domain() {
        let sealed = sealer().seal("tenant-a", "upstream-token");
        let r = resolve_body(
            Operation::RecordActivityTaskHeartbeat,
            &format!(r#"{{"taskToken":"{sealed}"}}"#),
        )
        .unwrap();
        assert_eq!(
            r.resource,
            "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a"
        );
        assert_eq!(r.upstream_token.as_deref(), Some("upstream-token"));
    }

    #[test]
    fn bad_tokens_are_not_permitted_and_never_echoed() {
        let err = resolve_body(
            Operation::RespondActivityTaskCompleted,
            r#"{"taskToken":"raw-upstream-token"}"#,
        )
        .unwrap_err();
        assert_eq!(err.wire().short_name(), "OperationNotPermittedFault");
        assert!(!err.to_string().contains("raw-upstream-token"), "{err}");
        assert_eq!(err.outcome(), crate::audit::Outcome::InvalidRequest);
    }

    #[test]
    fn decisions_are_listed_with_their_attributes() {
        let body = r#"{"taskToken":"t","decisions":[
            {"decisionType":"ScheduleActivityTask","scheduleActivityTaskDecisionAttributes":{"activityId":"a","taskList":{"name":"l"}}},
            {"decisionType":"CompleteWorkflowExecution"}]}"#;
        let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
        let d = decisions(&req).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].kind, DecisionKind::ScheduleActivityTask);
        assert_eq!(d[0].attributes.unwrap()["activityId"], "a");
        assert!(d[1].attributes.is_none());
        let none = swf::parse(
            Operation::RespondDecisionTaskCompleted,
            br#"{"taskToken":"t"}"#,
        )
        .unwrap();
        assert!(decisions(&none).unwrap().is_empty());
    }

    #[test]
    fn malformed_decisions_are_refused() {
        for (body, kind) in [
            (
                r#"{"taskToken":"t","decisions":{}}"#,
                "SerializationException",
            ),
            (
                r#"{"taskToken":"t","decisions":[1]}"#,
                "SerializationException",
            ),
            (
                r#"{"taskToken":"t","decisions":[{}]}"#,
                "ValidationException",
            ),
            (
                r#"{"taskToken":"t","decisions":[{"decisionType":"LaunchMissiles"}]}"#,
                "ValidationException",
            ),
            (
                r#"{"taskToken":"t","decisions":[{"decisionType":"StartTimer","startTimerDecisionAttributes":[]}]}"#,
                "SerializationException",
            ),
        ] {
            let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
            assert_eq!(
                decisions(&req).unwrap_err().wire().short_name(),
                kind,
                "{body}"
            );
        }
    }

    #[test]
    fn invalid_domains_and_types() {
        let err = resolve_body(
            Operation::PollForActivityTask,
            r#"{"domain":"a:b","taskList":{}}"#,
        )
        .unwrap_err();
        assert_eq!(err.wire().short_name(), "ValidationException");
        let err = resolve_body(
            Operation::PollForActivityTask,
            r#"{"domain":["a"],"taskList":{}}"#,
        )
        .unwrap_err();
        assert_eq!(err.wire().short_name(), "SerializationException");
        let err =
            resolve_body(Operation::TagResource, r#"{"resourceArn":"","tags":[]}"#).unwrap_err();
        assert_eq!(err.wire().short_name(), "ValidationException");
    }
}
