//! AWS's SigV4 signing test suite (tests/cases/sigv4, Apache-2.0, see its LICENSE) run through
//! the verifier as inbound requests, each with its own credentials, region, service and time.
//!
//! The suite's requests are signed for a generic service, so they are verified with the
//! generic SigV4 profile (`host` and `x-amz-date` required). The request-shape rules are the
//! same as for SWF: only `POST /` without a query string. Every case that verifies must stop
//! verifying once any signed byte changes; every other case must be refused by a named rule.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::request::Parts;
use serde_json::Value;
use swf_warden::secret::Secret;
use swf_warden::sigv4::{Credential, Verifier};

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/sigv4");

#[derive(Debug)]
struct Holder(Credential);
impl AsRef<Credential> for Holder {
    fn as_ref(&self) -> &Credential {
        &self.0
    }
}

struct Case {
    name: String,
    context: Value,
    parts: Parts,
    body: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(SUITE)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

/// The suite's default context, for the cases that ship without one.
fn default_context() -> Value {
    serde_json::json!({
        "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
        "region": "us-east-1",
        "service": "service",
        "timestamp": "2015-08-30T12:36:00Z"
    })
}

fn load(dir: &Path) -> Case {
    let context = std::fs::read_to_string(dir.join("context.json"))
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_else(|_| default_context());
    let raw = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let method = request_line.split(' ').next().unwrap();
    let target = request_line[method.len() + 1..request_line.len() - " HTTP/1.1".len()].to_owned();

    // Header lines; an indented line continues the previous value (obs-fold, joined by a space).
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            headers
                .last_mut()
                .unwrap()
                .1
                .push_str(&format!(" {}", line.trim()));
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.to_owned(), v.to_owned()));
        }
    }
    let mut builder = http::Request::builder().method(method).uri(uri_of(&target));
    for (k, v) in &headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        context,
        parts,
        body: body.as_bytes().to_vec(),
    }
}

/// Percent-encodes what `http::Uri` cannot hold (spaces, non-ASCII), leaving the rest as written.
fn uri_of(target: &str) -> http::Uri {
    let mut out = String::new();
    for b in target.bytes() {
        if b.is_ascii_graphic() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.parse().unwrap()
}

fn timestamp(case: &Case) -> SystemTime {
    let text = case.context["timestamp"].as_str().unwrap();
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.unix_timestamp() as u64)
}

/// Why a request was refused: the AWS error type and the message, which names the rule.
type Refusal = (&'static str, String);

const INVALID: &str = "InvalidSignatureException";
const UNKNOWN_OPERATION: &str = "UnknownOperationException";
/// The signature check's message: no earlier rule refused, the signed bytes differ.
const MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided.";

/// Asserts that `result` is a refusal of type `kind` whose message starts with `prefix`.
#[track_caller]
fn assert_refused(result: Result<(), Refusal>, kind: &str, prefix: &str, what: &str) {
    let Err((refused_as, message)) = result else {
        panic!("{what}: accepted");
    };
    assert_eq!(refused_as, kind, "{what}: {message}");
    assert!(
        message.starts_with(prefix),
        "{what}: refused by another rule: expected {prefix:?}, got {message:?}"
    );
}

/// The generic SigV4 profile, for the case's own scope.
fn generic_verifier(case: &Case) -> Verifier {
    Verifier {
        region: case.context["region"].as_str().unwrap().to_owned(),
        service: case.context["service"].as_str().unwrap().to_owned(),
        max_skew: Duration::from_secs(900),
        required_signed: &["host", "x-amz-date"],
        hosts: Vec::new(),
    }
}

fn verify(case: &Case, parts: &Parts, body: &[u8]) -> Result<(), Refusal> {
    verify_with(&generic_verifier(case), case, parts, body)
}

fn verify_with(
    verifier: &Verifier,
    case: &Case,
    parts: &Parts,
    body: &[u8],
) -> Result<(), Refusal> {
    let creds = &case.context["credentials"];
    let holder = Holder(Credential::new(
        creds["access_key_id"].as_str().unwrap(),
        Secret::new(creds["secret_access_key"].as_str().unwrap()),
    ));
    let key = creds["access_key_id"].as_str().unwrap();
    // The case's credentials are a session's when they hold a token: the lookup accepts
    // exactly that token with them, as the proxy's session lookup does.
    let session = creds["token"].as_str().map(str::as_bytes);
    verifier
        .verify_with(parts, body, timestamp(case), |k, token| {
            if k == key && token == session {
                Ok(&holder)
            } else {
                Err(swf_warden::error::ProxyError::UnrecognizedClient)
            }
        })
        .map(|_| ())
        .map_err(|e| (e.wire().short_name(), e.to_string()))
}

fn clone_parts(parts: &Parts) -> Parts {
    let mut builder = http::Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone());
    for (k, v) in &parts.headers {
        builder = builder.header(k, v);
    }
    builder.body(()).unwrap().into_parts().0
}

/// Why a case is refused by the request-shape rules, if it is.
fn shape_refusal(case: &Case) -> Option<&'static str> {
    if case.parts.uri.query().is_some() {
        Some("query string")
    } else if case.parts.method != http::Method::POST {
        Some("method other than POST")
    } else if case.parts.uri.path() != "/" {
        Some("path other than /")
    } else {
        None
    }
}

/// The error type and message start with which the request-shape rule `rule` refuses.
fn shape_error(rule: &str) -> (&'static str, &'static str) {
    if rule == "query string" {
        (INVALID, "Requests must not carry a query string.")
    } else {
        (UNKNOWN_OPERATION, "Only POST / is served; got ")
    }
}

#[test]
fn aws_signing_suite() {
    let cases = cases();
    assert_eq!(cases.len(), 40, "the whole suite is present");
    let mut verified = Vec::new();
    let mut refused_by_shape = Vec::new();
    let mut refused_unsigned_token = Vec::new();

    for case in &cases {
        let result = verify(case, &case.parts, &case.body);
        match shape_refusal(case) {
            Some(rule) => {
                let (kind, message) = shape_error(rule);
                let what = format!("{}: refused for its {rule}", case.name);
                assert_refused(result, kind, message, &what);
                refused_by_shape.push(rule);
            }
            None if case.context["omit_session_token"] == true => {
                // The token was added after signing: an unsigned session token.
                assert_refused(
                    result,
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.",
                    &case.name,
                );
                refused_unsigned_token.push(case.name.clone());
            }
            None => {
                assert_eq!(result, Ok(()), "{} verifies", case.name);
                verified.push(case.name.clone());
                tampering_is_refused(case);
            }
        }
    }
    println!(
        "sigv4 suite: {} verify, {} refused by request shape, {} refused for an unsigned session token",
        verified.len(),
        refused_by_shape.len(),
        refused_unsigned_token.len()
    );
    assert_eq!(verified.len(), 7, "{verified:?}");
    assert_eq!(refused_by_shape.len(), 32, "{refused_by_shape:?}");
    let count = |rule: &str| refused_by_shape.iter().filter(|r| **r == rule).count();
    assert_eq!(count("query string"), 7);
    assert_eq!(count("method other than POST"), 23);
    assert_eq!(count("path other than /"), 2);
    assert_eq!(refused_unsigned_token, ["post-sts-header-after"]);
}

/// Changing any signed byte (each signed header, the body, the date, the signature) makes a
/// verifying case fail the signature check itself; changing the path or adding an unsigned
/// target is refused by the rule for each.
fn tampering_is_refused(case: &Case) {
    let auth = case.parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_owned();
    let signed: Vec<String> = auth
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .split(';')
        .map(str::to_owned)
        .collect();
    let what = |change: &str| format!("{}: {change}", case.name);
    // A declared payload hash is held to the body before the signature is checked.
    const DECLARED_HASH: &str =
        "The provided 'x-amz-content-sha256' header does not match what was computed.";
    let body_rule = if case.parts.headers.contains_key("x-amz-content-sha256") {
        DECLARED_HASH
    } else {
        MISMATCH
    };
    for name in &signed {
        let mut parts = clone_parts(&case.parts);
        let old = parts.headers[name.as_str()].to_str().unwrap().to_owned();
        let new = if name == "x-amz-date" {
            old.replace("123600Z", "123601Z")
        } else {
            format!("{old}x")
        };
        assert_ne!(new, old, "{}", what(name));
        parts.headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            new.parse().unwrap(),
        );
        let (kind, rule) = match name.as_str() {
            "x-amz-content-sha256" => (INVALID, DECLARED_HASH),
            // Another token is another session, which nobody issued.
            "x-amz-security-token" => (
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ),
            _ => (INVALID, MISMATCH),
        };
        assert_refused(
            verify(case, &parts, &case.body),
            kind,
            rule,
            &what(&format!("changed {name}")),
        );
    }
    let mut body = case.body.clone();
    body.push(b'!');
    assert_refused(
        verify(case, &case.parts, &body),
        INVALID,
        body_rule,
        &what("changed body"),
    );
    if !case.body.is_empty() {
        let mut flipped = case.body.clone();
        flipped[0] ^= 1;
        assert_refused(
            verify(case, &case.parts, &flipped),
            INVALID,
            body_rule,
            &what("flipped a body bit"),
        );
    }
    if body_rule == DECLARED_HASH {
        // The declared hash brought in line with the changed body: the signature refuses.
        let mut parts = clone_parts(&case.parts);
        let hash = swf_warden::sigv4::canonical::sha256_hex(&body);
        parts
            .headers
            .insert("x-amz-content-sha256", hash.parse().unwrap());
        assert_refused(
            verify(case, &parts, &body),
            INVALID,
            MISMATCH,
            &what("changed body and its declared hash"),
        );
    }
    let mut parts = clone_parts(&case.parts);
    parts.uri = "/x".parse().unwrap();
    assert_refused(
        verify(case, &parts, &case.body),
        UNKNOWN_OPERATION,
        "Only POST / is served; got POST /x.",
        &what("changed path"),
    );
    let mut parts = clone_parts(&case.parts);
    parts.headers.insert(
        "x-amz-target",
        "SimpleWorkflowService.TerminateWorkflowExecution"
            .parse()
            .unwrap(),
    );
    assert_refused(
        verify(case, &parts, &case.body),
        INVALID,
        "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization.",
        &what("added a target"),
    );
    let mut parts = clone_parts(&case.parts);
    let tampered_sig = {
        let last = auth.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        format!("{}{flipped}", &auth[..auth.len() - 1])
    };
    parts
        .headers
        .insert("authorization", tampered_sig.parse().unwrap());
    assert_refused(
        verify(case, &parts, &case.body),
        INVALID,
        MISMATCH,
        &what("changed signature"),
    );
}

#[test]
fn suite_requests_are_refused_by_the_swf_profile() {
    // The SWF verifier refuses every one of the suite's requests: those of another shape by
    // the shape rules, the rest because they are scoped to the service `service`, not `swf`.
    // With that scope allowed, none of them carries the SWF headers either: each lacks
    // `content-type`, or (the form-encoded posts, which sign one) `x-amz-target`.
    let mut by_scope = 0;
    for case in cases() {
        let swf = Verifier::swf("us-east-1", Duration::from_secs(900));
        let swf_headers_only = Verifier {
            required_signed: swf.required_signed,
            ..generic_verifier(&case)
        };
        let results = [
            verify_with(&swf, &case, &case.parts, &case.body),
            verify_with(&swf_headers_only, &case, &case.parts, &case.body),
        ];
        match shape_refusal(&case) {
            Some(rule) => {
                let (kind, message) = shape_error(rule);
                for result in results {
                    assert_refused(result, kind, message, &case.name);
                }
            }
            None => {
                let [scoped, headers] = results;
                assert_refused(
                    scoped,
                    INVALID,
                    "Credential should be scoped to correct service: 'swf'.",
                    &case.name,
                );
                let expected = if case.parts.headers.contains_key("content-type") {
                    "The request has no 'x-amz-target' header."
                } else {
                    "The request has no 'content-type' header."
                };
                assert_refused(headers, INVALID, expected, &case.name);
                by_scope += 1;
            }
        }
    }
    assert_eq!(
        by_scope, 8,
        "the 7 verifying cases and post-sts-header-after"
    );
}
