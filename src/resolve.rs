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
            let domain = check_resource_arn(service, arn)?;
            Ok(plain(service.domain_arn(domain), Some(domain.to_owned())))
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
/// each to be authorized as its own pseudo-action. Strict input has already checked each one
/// against the model's `Decision`; here a decision may carry only its own type's attributes,
/// so that SWF can act on nothing the policy did not see, and a call carries at most
/// `max_decisions`.
pub fn decisions(
    request: &SwfRequest,
    max_decisions: usize,
) -> Result<Vec<Decision<'_>>, ProxyError> {
    if request.op != Operation::RespondDecisionTaskCompleted {
        return Ok(Vec::new());
    }
    let Some(Value::Array(list)) = request.input.get("decisions") else {
        return Ok(Vec::new());
    };
    if list.len() > max_decisions {
        return Err(swf::validation(vec![format!(
            "Value '[{} items]' at 'decisions' failed to satisfy constraint: Member must have length less than or equal to {max_decisions}",
            list.len()
        )]));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = |member: &str| format!("decisions.{}.member.{member}", i + 1);
        let kind = item
            .get("decisionType")
            .and_then(Value::as_str)
            .and_then(DecisionKind::from_name)
            .ok_or_else(|| {
                // Unreachable after strict input; refused rather than assumed.
                swf::validation(vec![format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    at("decisionType")
                )])
            })?;
        let own = kind.attributes_member();
        let mut attributes = None;
        for (member, value) in item.as_object().into_iter().flatten() {
            match value {
                Value::Null => {}
                Value::Object(map) if *member == own => attributes = Some(map),
                _ if member == "decisionType" => {}
                _ => {
                    return Err(swf::validation(vec![format!(
                        "Value at '{}' failed to satisfy constraint: Member must be null for decisionType '{}'",
                        at(member),
                        kind.name()
                    )]))
                }
            }
        }
        out.push(Decision { kind, attributes });
    }
    Ok(out)
}

/// Checks `resourceArn` per SPEC: `arn:<partition>:swf:<region>:<account>:/domain/<name>`, this
/// service's partition, region and account, and a domain name SWF accepts. Returns the domain.
fn check_resource_arn<'a>(service: &Service, arn: &'a str) -> Result<&'a str, ProxyError> {
    let invalid = |why: &str| {
        swf::validation(vec![format!(
            "Value '{}' at 'resourceArn' failed to satisfy constraint: Member must be an ARN of a domain of this service ({}): {why}",
            excerpt(&arn.escape_default().to_string()),
            service.domain_arn("<name>")
        )])
    };
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("swf"), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid(
            "not `arn:<partition>:swf:<region>:<account>:/domain/<name>`",
        ));
    };
    if partition != service.partition || region != service.region || account != service.account_id {
        return Err(invalid("another partition, region or account"));
    }
    let domain = resource
        .strip_prefix("/domain/")
        .ok_or_else(|| invalid("not a domain"))?;
    swf::check_domain_name("resourceArn", domain)?;
    Ok(domain)
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
            hosts: Vec::new(),
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
            {"decisionType":"ScheduleActivityTask","scheduleActivityTaskDecisionAttributes":{"activityType":{"name":"n","version":"1"},"activityId":"a","taskList":{"name":"l"}}},
            {"decisionType":"CompleteWorkflowExecution"}]}"#;
        let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
        let d = decisions(&req, 1000).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].kind, DecisionKind::ScheduleActivityTask);
        assert_eq!(d[0].attributes.unwrap()["activityId"], "a");
        assert!(d[1].attributes.is_none());
        let none = swf::parse(
            Operation::RespondDecisionTaskCompleted,
            br#"{"taskToken":"t"}"#,
        )
        .unwrap();
        assert!(decisions(&none, 1000).unwrap().is_empty());
    }

    #[test]
    fn a_decision_carries_only_its_own_attributes() {
        let body = r#"{"taskToken":"t","decisions":[{"decisionType":"StartTimer",
            "startTimerDecisionAttributes":{"timerId":"x","startToFireTimeout":"1"},
            "scheduleActivityTaskDecisionAttributes":{"activityType":{"name":"a","version":"1"},"activityId":"i","taskList":{"name":"private"}}}]}"#;
        let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
        let err = decisions(&req, 1000).unwrap_err();
        assert_eq!(err.wire().short_name(), "ValidationException");
        assert!(
            err.to_string()
                .contains("'decisions.1.member.scheduleActivityTaskDecisionAttributes'"),
            "{err}"
        );
        // Null stands for absent, and is no decoy.
        let body = r#"{"taskToken":"t","decisions":[{"decisionType":"StartTimer",
            "startTimerDecisionAttributes":{"timerId":"x","startToFireTimeout":"1"},
            "scheduleActivityTaskDecisionAttributes":null}]}"#;
        let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
        assert_eq!(decisions(&req, 1000).unwrap().len(), 1);
    }

    #[test]
    fn the_number_of_decisions_is_bounded() {
        let one =
            r#"{"decisionType":"CancelTimer","cancelTimerDecisionAttributes":{"timerId":"t"}}"#;
        let body = format!(
            r#"{{"taskToken":"t","decisions":[{}]}}"#,
            [one; 3].join(",")
        );
        let req = swf::parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap();
        assert_eq!(decisions(&req, 3).unwrap().len(), 3);
        let err = decisions(&req, 2).unwrap_err();
        assert_eq!(err.wire().short_name(), "ValidationException");
        assert!(err.to_string().contains("less than or equal to 2"), "{err}");
    }

    #[test]
    fn resource_arns_must_name_a_domain_of_this_service() {
        let good = "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a";
        let r = resolve_body(
            Operation::ListTagsForResource,
            &format!(r#"{{"resourceArn":"{good}"}}"#),
        )
        .unwrap();
        assert_eq!(r.resource, good);
        for bad in [
            "arn:aws:swf:eu-west-1:123456789012:/domain/tenant-a",
            "arn:aws:swf:*:123456789012:/domain/tenant-a",
            "arn:aws:swf::123456789012:/domain/tenant-a",
            "arn:aws:swf:us-east-1:210987654321:/domain/tenant-a",
            "arn:aws:swf:us-east-1::/domain/tenant-a",
            "arn:aws-cn:swf:us-east-1:123456789012:/domain/tenant-a",
            "arn:aws:sqs:us-east-1:123456789012:/domain/tenant-a",
            "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a:extra",
            "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a/x",
            "arn:aws:swf:us-east-1:123456789012:/domain/",
            "arn:aws:swf:us-east-1:123456789012:/domain/arn",
            "arn:aws:swf:us-east-1:123456789012:domain/tenant-a",
            "arn:aws:swf:us-east-1:123456789012",
            "tenant-a",
            "",
        ] {
            let err = resolve_body(
                Operation::TagResource,
                &format!(r#"{{"resourceArn":"{bad}","tags":[{{"key":"k"}}]}}"#),
            )
            .unwrap_err();
            assert_eq!(err.wire().short_name(), "ValidationException", "{bad}");
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
    }
}
