//! SWF's request side of the AWS JSON 1.0 protocol: which operation an `X-Amz-Target` names,
//! and the request body, parsed once, strictly, with the model's required members checked.

pub mod json;
pub mod ops;

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

/// Parses the body of `op`: strict JSON, an object at the top, every required member present.
pub fn parse(op: Operation, body: &[u8]) -> Result<SwfRequest, ProxyError> {
    // SDKs send `{}` for an empty input; an empty body means the same.
    let value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        json::parse(body).map_err(|e| ProxyError::Serialization(serialization_message(&e)))?
    };
    let Value::Object(input) = value else {
        return Err(ProxyError::Serialization(
            "Expected a JSON object as the request body.".into(),
        ));
    };
    let missing: Vec<&str> = op
        .required_members()
        .iter()
        .copied()
        .filter(|m| input.get(*m).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        let details: Vec<String> = missing
            .iter()
            .map(|m| {
                format!("Value null at '{m}' failed to satisfy constraint: Member must not be null")
            })
            .collect();
        return Err(validation(details));
    }
    Ok(SwfRequest { op, input })
}

fn serialization_message(e: &serde_json::Error) -> String {
    // serde_json's messages name the problem and position without echoing the input.
    format!("The request body is not valid JSON: {e}")
}

/// A `ValidationException` in AWS's "N validation error(s) detected: …" wording.
pub fn validation(details: Vec<String>) -> ProxyError {
    let n = details.len();
    let noun = if n == 1 { "error" } else { "errors" };
    ProxyError::Validation(format!(
        "{n} validation {noun} detected: {}",
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
    fn wrong_types_are_serialization_errors() {
        let req = parse(Operation::DescribeDomain, br#"{"name":5}"#).unwrap();
        assert_eq!(
            req.string("name").unwrap_err().wire().short_name(),
            "SerializationException"
        );
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
