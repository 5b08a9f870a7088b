//! SWF's request side of the AWS JSON 1.0 protocol: which operation an `X-Amz-Target` names,
//! and the request body, parsed once and checked against the SWF model (`model`, `strict`).

mod service;
pub use service::Service;
pub mod model;
pub mod ops;
pub mod strict;

use serde_json::{Map, Value};

use crate::error::{excerpt, ProxyError};
pub use ops::{Operation, ResourceSource};

/// A parsed SWF call: the operation and its top-level input members.
#[derive(Debug)]
pub struct SwfRequest {
    pub op: Operation,
    pub input: Map<String, Value>,
}

/// Resolves the operation from the `X-Amz-Target` header value.
pub fn operation(target: &[u8]) -> Result<Operation, ProxyError> {
    std::str::from_utf8(target)
        .ok()
        .and_then(Operation::from_target)
        .ok_or_else(|| {
            ProxyError::UnknownOperation(format!(
                "Operation `{}` is not an Amazon SWF operation.",
                excerpt(&String::from_utf8_lossy(target))
            ))
        })
}

/// Parses the body of `op` strictly against the model: an object at the top, every member at
/// every depth modeled and of its modeled type, every constraint met.
pub fn parse(op: Operation, body: &[u8]) -> Result<SwfRequest, ProxyError> {
    let model = model::Model::get();
    // SDKs send `{}` for an empty input; an empty body means the same.
    let body = if body.is_empty() { &b"{}"[..] } else { body };
    let (value, problems) = strict::parse(model, model.input(op), body)
        .map_err(|e| ProxyError::Serialization(serialization_message(&e)))?;
    if problems.count > 0 {
        return Err(validation_counted(problems.details, problems.count));
    }
    let Value::Object(input) = value else {
        // The input shapes are structures: anything else was refused above.
        return Err(ProxyError::Serialization(
            "Expected a JSON object as the request body.".into(),
        ));
    };
    Ok(SwfRequest { op, input })
}

fn serialization_message(e: &serde_json::Error) -> String {
    // The messages name the problem and position; member names are shortened and escaped.
    if e.is_data() {
        format!("The request body does not match the SWF model: {e}")
    } else {
        format!("The request body is not valid JSON: {e}")
    }
}

/// A `ValidationException` in AWS's "N validation error(s) detected: …" wording.
pub fn validation(details: Vec<String>) -> ProxyError {
    let n = details.len();
    validation_counted(details, n)
}

/// A `ValidationException` for `count` problems, of which `details` are the first.
fn validation_counted(details: Vec<String>, count: usize) -> ProxyError {
    let noun = if count == 1 { "error" } else { "errors" };
    let more = count.saturating_sub(details.len());
    let rest = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    ProxyError::Validation(format!(
        "{count} validation {noun} detected: {}{rest}",
        details.join("; ")
    ))
}

impl SwfRequest {
    /// A required string member. Wrong JSON types are `SerializationException`, as in AWS.
    pub fn string(&self, member: &str) -> Result<&str, ProxyError> {
        match self.input.get(member) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(ProxyError::Serialization(format!(
                "Member '{member}' must be a string, not {}.",
                json_type(other)
            ))),
            None => Err(validation(vec![format!(
                "Value null at '{member}' failed to satisfy constraint: Member must not be null"
            )])),
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks a domain name the way SWF does before it may become an ARN: 1 to 256 characters,
/// no `:`, `/`, `|` or control characters, and not the literal `arn`.
pub fn check_domain_name(member: &str, name: &str) -> Result<(), ProxyError> {
    let len = name.chars().count();
    let problem = if len == 0 {
        Some("Member must have length greater than or equal to 1")
    } else if len > 256 {
        Some("Member must have length less than or equal to 256")
    } else if name == "arn" {
        Some("Member must not be the literal 'arn'")
    } else if name
        .chars()
        .any(|c| matches!(c, ':' | '/' | '|') || c.is_control())
    {
        Some("Member must not contain ':', '/', '|' or control characters")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(constraint) => Err(validation(vec![format!(
            "Value '{}' at '{member}' failed to satisfy constraint: {constraint}",
            excerpt(&name.escape_default().to_string())
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: Result<SwfRequest, ProxyError>) -> &'static str {
        r.unwrap_err().wire().short_name()
    }

    /// A member of the wrong type is named with its JSON type (the strict parser refuses such
    /// bodies first; this is the accessor's own guard for requests built in code).
    #[test]
    fn a_string_member_of_another_type_names_that_type() {
        let input = serde_json::json!({"name": 1, "tags": [], "none": null, "ok": "x"});
        let request = SwfRequest {
            op: Operation::DescribeDomain,
            input: input.as_object().unwrap().clone(),
        };
        let message = |member: &str| request.string(member).unwrap_err().to_string();
        assert_eq!(
            message("name"),
            "Member 'name' must be a string, not a number."
        );
        assert_eq!(
            message("tags"),
            "Member 'tags' must be a string, not an array."
        );
        assert_eq!(message("none"), "Member 'none' must be a string, not null.");
        assert!(message("absent").contains("Member must not be null"));
        assert_eq!(request.string("ok").unwrap(), "x");
    }

    #[test]
    fn unknown_and_miscased_targets() {
        assert!(operation(b"SimpleWorkflowService.PollForActivityTask").is_ok());
        for t in [
            &b"SimpleWorkflowService.pollForActivityTask"[..],
            b"Foo.PollForActivityTask",
            b"",
            b"\xff",
        ] {
            assert_eq!(
                operation(t).unwrap_err().wire().short_name(),
                "UnknownOperationException"
            );
        }
    }

    #[test]
    fn required_members_are_checked() {
        let op = Operation::PollForActivityTask;
        let err = parse(op, br#"{"domain":"d"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "1 validation error detected: Value null at 'taskList' failed to satisfy constraint: Member must not be null"
        );
        let err = parse(op, b"{}").unwrap_err();
        assert!(err.to_string().starts_with("2 validation errors detected"));
        assert_eq!(
            kind(parse(op, br#"{"domain":null,"taskList":{}}"#)),
            "ValidationException"
        );
        assert!(parse(op, br#"{"domain":"d","taskList":{"name":"t"}}"#).is_ok());
    }

    #[test]
    fn validation_details_are_capped_but_counted() {
        let body = format!(
            r#"{{"taskToken":"t","decisions":[{}]}}"#,
            vec!["{}"; 5000].join(",")
        );
        let err = parse(Operation::RespondDecisionTaskCompleted, body.as_bytes()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("5000 validation errors detected: "),
            "{}",
            &message[..80]
        );
        assert!(message.ends_with("; and 4990 more"), "{message}");
        assert_eq!(message.matches("Value null at").count(), 10);
    }

    #[test]
    fn body_must_be_a_json_object() {
        let op = Operation::ListDomains;
        assert_eq!(kind(parse(op, b"[]")), "SerializationException");
        assert_eq!(kind(parse(op, b"not json")), "SerializationException");
        assert_eq!(
            kind(parse(
                op,
                br#"{"registrationStatus":"REGISTERED","registrationStatus":"DEPRECATED"}"#
            )),
            "SerializationException"
        );
        assert_eq!(kind(parse(op, b"")), "ValidationException");
    }

    #[test]
    fn wrong_types_and_unmodeled_members_are_serialization_errors() {
        for body in [
            &br#"{"name":5}"#[..],
            br#"{"Name":"d"}"#,
            br#"{"name":"d","x":1}"#,
        ] {
            let err = parse(Operation::DescribeDomain, body).unwrap_err();
            assert_eq!(err.wire().short_name(), "SerializationException");
            assert!(
                err.to_string().contains("does not match the SWF model"),
                "{err}"
            );
        }
        let err = parse(Operation::DescribeDomain, b"{").unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
    }

    #[test]
    fn domain_names_swf_refuses() {
        for bad in [
            "",
            "arn",
            "a:b",
            "a/b",
            "a|b",
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            &"x".repeat(257),
        ] {
            let err = check_domain_name("domain", bad).unwrap_err();
            assert_eq!(err.wire().short_name(), "ValidationException", "{bad:?}");
        }
        for good in [
            "tenant-a",
            "Arn",
            "arn-x",
            "a b",
            &"x".repeat(256),
            "dömäin",
        ] {
            assert!(check_domain_name("domain", good).is_ok(), "{good:?}");
        }
    }
}
