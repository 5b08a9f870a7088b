//! Every error the proxy itself answers with, and the one place that turns an error into its
//! AWS JSON 1.0 wire form (status, `__type`, `x-amzn-ErrorType`, message).
//!
//! A new variant does not compile until `wire` gives it a status and a type, so every refusal
//! has a deliberate wire form.

use crate::audit::Outcome;

/// A refusal or failure produced by the proxy (never an upstream error, which passes through).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    #[error("Request is missing Authentication Token")]
    MissingAuthentication,
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// A role session past its expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// STS: a web identity token past its `exp`.
    #[error("Token expired: current date/time must be before the expiration date/time.")]
    ExpiredIdentityToken,
    /// STS: the web identity token does not verify.
    #[error("{0}")]
    InvalidIdentityToken(String),
    /// STS: the identity provider's keys could not be fetched.
    #[error("{0}")]
    IdpCommunication(String),
    /// STS: a claim the role needs is missing or unusable.
    #[error("{0}")]
    IdpRejectedClaim(String),
    /// STS: the role does not trust this identity.
    #[error("{0}")]
    AccessDenied(String),
    /// STS: an action the proxy's STS does not serve.
    #[error("Could not find operation {0} for version 2011-06-15")]
    InvalidAction(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    Validation(String),
    #[error("Request entity of more than {limit} bytes is too large")]
    TooLarge { limit: usize },
    /// A policy denial or a refused task token; the message is AWS's access-denied sentence.
    #[error("{message}")]
    NotPermitted { message: String, outcome: Outcome },
    #[error("{0}")]
    Unavailable(String),
    /// An allowed call not forwarded: the proxy holds no valid upstream credentials. Always
    /// on record, whatever `include_allowed` says.
    #[error("{0}")]
    NoUpstreamCredentials(String),
    /// The request body did not arrive within `body_read_timeout_seconds`.
    #[error(
        "Your request body was not received within {seconds} seconds; the request was dropped."
    )]
    RequestTimeout { seconds: u64 },
    /// A call beyond `max_connections` or `max_connections_per_ip` (an HTTP/2 connection's
    /// further concurrent calls take a slot each).
    #[error("Service Unavailable: the proxy is handling as many calls as it may{0}; retry later.")]
    AtCapacity(&'static str),
    /// Over a quota's rate, or over its cap on calls in flight where the operation's model
    /// does not list `LimitExceededFault`.
    #[error("Rate exceeded")]
    Throttled { quota: std::sync::Arc<str> },
    /// Over a quota's cap on calls in flight, on an operation whose model lists
    /// `LimitExceededFault`.
    #[error("Too many calls in flight: quota `{quota}` allows {max} at once.")]
    LimitExceeded {
        quota: std::sync::Arc<str>,
        max: u32,
    },
}

/// The wire form of an error: HTTP status and the fully-qualified `__type`.
pub struct Wire {
    pub status: u16,
    pub type_name: &'static str,
}

impl Wire {
    /// The short name (`x-amzn-ErrorType` and the audit `errorCode`).
    pub fn short_name(&self) -> &'static str {
        self.type_name.rsplit('#').next().unwrap_or(self.type_name)
    }
}

impl ProxyError {
    /// The one mapping from error to status and AWS error type (SPEC, "Wire format").
    pub fn wire(&self) -> Wire {
        let (status, type_name) = match self {
            ProxyError::MissingAuthentication => (
                400,
                "com.amazon.coral.service#MissingAuthenticationTokenException",
            ),
            ProxyError::IncompleteSignature(_) => {
                (400, "com.amazon.coral.service#IncompleteSignatureException")
            }
            ProxyError::InvalidSignature(_) => {
                (400, "com.amazon.coral.service#InvalidSignatureException")
            }
            ProxyError::UnrecognizedClient => {
                (400, "com.amazon.coral.service#UnrecognizedClientException")
            }
            ProxyError::ExpiredToken | ProxyError::ExpiredIdentityToken => {
                (400, "com.amazon.coral.service#ExpiredTokenException")
            }
            ProxyError::InvalidIdentityToken(_) => {
                (400, "com.amazonaws.sts#InvalidIdentityTokenException")
            }
            ProxyError::IdpRejectedClaim(_) => (403, "com.amazonaws.sts#IDPRejectedClaimException"),
            ProxyError::IdpCommunication(_) => {
                (400, "com.amazonaws.sts#IDPCommunicationErrorException")
            }
            ProxyError::AccessDenied(_) => (403, "com.amazon.coral.service#AccessDeniedException"),
            ProxyError::InvalidAction(_) => (400, "com.amazon.coral.service#InvalidAction"),
            ProxyError::UnknownOperation(_) => {
                (400, "com.amazon.coral.service#UnknownOperationException")
            }
            ProxyError::Serialization(_) => {
                (400, "com.amazon.coral.service#SerializationException")
            }
            ProxyError::Validation(_) => (400, "com.amazon.coral.validate#ValidationException"),
            ProxyError::TooLarge { .. } => (
                413,
                "com.amazon.coral.service#RequestEntityTooLargeException",
            ),
            ProxyError::NotPermitted { .. } => (
                400,
                "com.amazonaws.swf.base.model#OperationNotPermittedFault",
            ),
            ProxyError::Unavailable(_)
            | ProxyError::NoUpstreamCredentials(_)
            | ProxyError::AtCapacity(_) => (
                503,
                "com.amazon.coral.availability#ServiceUnavailableException",
            ),
            ProxyError::RequestTimeout { .. } => {
                (408, "com.amazon.coral.service#RequestTimeoutException")
            }
            ProxyError::Throttled { .. } => {
                (400, "com.amazon.coral.availability#ThrottlingException")
            }
            ProxyError::LimitExceeded { .. } => {
                (400, "com.amazonaws.swf.base.model#LimitExceededFault")
            }
        };
        Wire { status, type_name }
    }

    /// How the audit log classifies this refusal.
    pub fn outcome(&self) -> Outcome {
        match self {
            ProxyError::MissingAuthentication
            | ProxyError::IncompleteSignature(_)
            | ProxyError::InvalidSignature(_)
            | ProxyError::UnrecognizedClient
            | ProxyError::ExpiredToken
            | ProxyError::ExpiredIdentityToken
            | ProxyError::InvalidIdentityToken(_)
            | ProxyError::IdpRejectedClaim(_)
            | ProxyError::IdpCommunication(_)
            | ProxyError::AccessDenied(_) => Outcome::AuthFailed,
            ProxyError::UnknownOperation(_)
            | ProxyError::InvalidAction(_)
            | ProxyError::Serialization(_)
            | ProxyError::Validation(_)
            | ProxyError::TooLarge { .. }
            | ProxyError::RequestTimeout { .. }
            | ProxyError::AtCapacity(_) => Outcome::InvalidRequest,
            ProxyError::NotPermitted { outcome, .. } => *outcome,
            ProxyError::Throttled { .. } | ProxyError::LimitExceeded { .. } => Outcome::Throttled,
            ProxyError::Unavailable(_) | ProxyError::NoUpstreamCredentials(_) => Outcome::Allowed,
        }
    }

    /// Whether the call is on record even when it was allowed and `include_allowed` is off.
    pub fn always_recorded(&self) -> bool {
        matches!(self, ProxyError::NoUpstreamCredentials(_))
    }

    /// `cause` in the audit record: SWF's `OPERATION_NOT_PERMITTED` for policy and token denials.
    pub fn cause(&self) -> Option<&'static str> {
        matches!(self, ProxyError::NotPermitted { .. }).then_some("OPERATION_NOT_PERMITTED")
    }

    /// The quota that refused the call, for its audit record.
    pub fn quota(&self) -> Option<&str> {
        match self {
            ProxyError::Throttled { quota } | ProxyError::LimitExceeded { quota, .. } => {
                Some(quota)
            }
            _ => None,
        }
    }

    /// The STS Query API's form of this error (STS's XML answers): status and `Code`.
    /// Signature failures take STS's names for them; SWF's own refusals do not arise there.
    pub fn sts_wire(&self) -> (u16, &'static str) {
        match self {
            ProxyError::MissingAuthentication => (403, "MissingAuthenticationToken"),
            ProxyError::IncompleteSignature(_) => (400, "IncompleteSignature"),
            ProxyError::InvalidSignature(_) => (403, "SignatureDoesNotMatch"),
            ProxyError::UnrecognizedClient => (403, "InvalidClientTokenId"),
            // A session past its expiry, as STS answers a signed call with one.
            ProxyError::ExpiredToken => (403, "ExpiredToken"),
            ProxyError::ExpiredIdentityToken => (400, "ExpiredTokenException"),
            ProxyError::InvalidIdentityToken(_) => (400, "InvalidIdentityToken"),
            ProxyError::IdpRejectedClaim(_) => (403, "IDPRejectedClaim"),
            ProxyError::IdpCommunication(_) => (400, "IDPCommunicationError"),
            ProxyError::AccessDenied(_) | ProxyError::NotPermitted { .. } => (403, "AccessDenied"),
            ProxyError::InvalidAction(_) | ProxyError::UnknownOperation(_) => {
                (400, "InvalidAction")
            }
            ProxyError::Serialization(_) | ProxyError::Validation(_) => (400, "ValidationError"),
            ProxyError::TooLarge { .. } => (413, "RequestEntityTooLarge"),
            ProxyError::RequestTimeout { .. } => (408, "RequestTimeout"),
            ProxyError::Throttled { .. } | ProxyError::LimitExceeded { .. } => (400, "Throttling"),
            ProxyError::Unavailable(_)
            | ProxyError::NoUpstreamCredentials(_)
            | ProxyError::AtCapacity(_) => (503, "ServiceUnavailable"),
        }
    }

    /// STS's XML error document.
    pub fn sts_body(&self, request_id: &str) -> Vec<u8> {
        let (status, code) = self.sts_wire();
        let kind = if status >= 500 { "Receiver" } else { "Sender" };
        format!(
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            xml_escape(&self.to_string()),
            xml_escape(request_id)
        )
        .into_bytes()
    }

    /// The JSON body: `{"__type": …, "message": …}`.
    pub fn body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "__type": self.wire().type_name,
            "message": self.to_string(),
        });
        body.to_string().into_bytes()
    }
}

/// `text` safe inside an XML element or attribute.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Shortens client-controlled text before it is echoed in a message or the audit log.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_carries_type_and_message() {
        let err = ProxyError::Validation("bad `x`".into());
        let body: serde_json::Value = serde_json::from_slice(&err.body()).unwrap();
        assert_eq!(
            body["__type"],
            "com.amazon.coral.validate#ValidationException"
        );
        assert_eq!(body["message"], "bad `x`");
        assert_eq!(err.wire().short_name(), "ValidationException");
        assert_eq!(err.wire().status, 400);
    }

    #[test]
    fn too_large_is_413_and_unavailable_503() {
        assert_eq!(ProxyError::TooLarge { limit: 1 }.wire().status, 413);
        assert_eq!(ProxyError::Unavailable("x".into()).wire().status, 503);
    }

    #[test]
    fn connection_limits_have_their_wire_forms() {
        let late = ProxyError::RequestTimeout { seconds: 10 };
        assert_eq!(late.wire().status, 408);
        assert_eq!(late.wire().short_name(), "RequestTimeoutException");
        assert_eq!(late.outcome(), Outcome::InvalidRequest);
        let full = ProxyError::AtCapacity(" from this address");
        assert_eq!(full.wire().status, 503);
        assert_eq!(full.wire().short_name(), "ServiceUnavailableException");
        assert!(full.to_string().contains("from this address"), "{full}");
    }

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(
            xml_escape("<a href=\"x\">&'\u{1}\t"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;\u{FFFD}\t"
        );
        let body =
            String::from_utf8(ProxyError::InvalidAction("\u{1}".into()).sts_body("id")).unwrap();
        assert!(!body.contains('\u{1}'), "{body}");
    }

    #[test]
    fn an_expired_session_and_an_expired_identity_token_are_told_apart_in_sts() {
        assert_eq!(ProxyError::ExpiredToken.sts_wire(), (403, "ExpiredToken"));
        assert_eq!(
            ProxyError::ExpiredIdentityToken.sts_wire(),
            (400, "ExpiredTokenException")
        );
        assert_eq!(
            ProxyError::ExpiredToken.wire().short_name(),
            "ExpiredTokenException"
        );
    }

    #[test]
    fn excerpt_truncates_long_input() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "x".repeat(100);
        assert_eq!(excerpt(&long).chars().count(), 65);
    }
}
