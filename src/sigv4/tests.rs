//! Verifier tests. Requests are signed with `aws-sigv4` (AWS's own signer), so a bug shared by
//! our signer and verifier cannot hide here; each attack is refused with its exact error.

use super::*;
use canonical::CanonicalHeader;

#[path = "../../tests/common/sdk_sign.rs"]
mod sdk_sign;
use std::time::UNIX_EPOCH;

const AKID: &str = "AKIDTENANTA";
const SECRET: &str = "tenant-a-secret";
const BODY: &[u8] = br#"{"taskToken":"t","details":"50%"}"#;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn verifier() -> Verifier {
    Verifier::swf("us-east-1", Duration::from_secs(900))
}

struct Signed {
    parts: Parts,
    body: Vec<u8>,
}

/// Builds a heartbeat request signed by aws-sigv4 with the given inputs.
fn signed_with(
    secret: &str,
    region: &str,
    service: &str,
    at: SystemTime,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Signed {
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key: AKID,
        secret,
        region,
        service,
        time: at,
        host: "127.0.0.1:8080",
        target: "SimpleWorkflowService.RecordActivityTaskHeartbeat",
        extra,
        body,
    });
    let mut builder = http::Request::builder().method("POST").uri("/");
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let (parts, ()) = builder.body(()).unwrap().into_parts();
    Signed {
        parts,
        body: body.to_vec(),
    }
}

fn signed() -> Signed {
    signed_with(SECRET, "us-east-1", "swf", now(), &[], BODY)
}

fn credential() -> Credential {
    Credential::new(AKID, Secret::new(SECRET))
}

#[derive(Debug)]
struct Holder(Credential);
impl AsRef<Credential> for Holder {
    fn as_ref(&self) -> &Credential {
        &self.0
    }
}

/// Why a request was refused: the AWS error type and the message, which names the rule.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    kind: &'static str,
    message: String,
}

fn check(req: &Signed) -> Result<(), Refusal> {
    let holder = Holder(credential());
    verifier()
        .verify(&req.parts, &req.body, now(), |akid| {
            (akid == AKID).then_some(&holder)
        })
        .map(|_| ())
        .map_err(|e| Refusal {
            kind: e.wire().short_name(),
            message: e.to_string(),
        })
}

/// Asserts that `req` is refused as `kind` by the rule whose message starts with `prefix`.
#[track_caller]
fn assert_refused(req: &Signed, kind: &str, prefix: &str) {
    let refusal = check(req).expect_err("the request must be refused");
    assert_eq!(refusal.kind, kind, "{}", refusal.message);
    assert!(
        refusal.message.starts_with(prefix),
        "refused by another rule: expected {prefix:?}, got {:?}",
        refusal.message
    );
}

/// The signature check's message: every signed byte is covered, but no earlier rule refused.
const MISMATCH: &str =
    "The request signature we calculated does not match the signature you provided.";
const INVALID: &str = "InvalidSignatureException";
const INCOMPLETE: &str = "IncompleteSignatureException";

/// Replaces the request's Authorization with one computed by hand (SigV4's pure functions in
/// `canonical`, not the verifier's path) over the headers `names`, for `scope`
/// (`DATE/REGION/SERVICE/TERMINATOR`), with the signing key derived from the scope's own date,
/// region and service. The signature is valid for whatever the scope says, so a refusal can
/// only come from the rule under test.
fn resign(req: &mut Signed, names: &[&str], scope: &str) {
    let list = names.join(";");
    let headers: Vec<CanonicalHeader<'_>> = names
        .iter()
        .map(|n| CanonicalHeader {
            name: n,
            values: req
                .parts
                .headers
                .get_all(*n)
                .iter()
                .map(|v| v.as_bytes())
                .collect(),
        })
        .collect();
    let amz_date = req.parts.headers["x-amz-date"].to_str().unwrap();
    let creq = canonical::canonical_request_hash(
        "POST",
        "/",
        "",
        &headers,
        &list,
        &canonical::sha256_hex(&req.body),
    );
    let sts = canonical::string_to_sign(amz_date, scope, &creq);
    let [date, region, service, _terminator] = scope.split('/').collect::<Vec<_>>()[..] else {
        panic!("a scope has four parts: {scope}");
    };
    let key = canonical::signing_key(SECRET, date, region, service);
    let value = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders={list}, Signature={}",
        canonical::signature(&key, &sts)
    );
    set(req, "authorization", &value);
}

const SIGNED: &[&str] = &["content-type", "host", "x-amz-date", "x-amz-target"];
const SCOPE: &str = "20231114/us-east-1/swf/aws4_request";

fn set(req: &mut Signed, name: &'static str, value: &str) {
    req.parts.headers.insert(name, value.parse().unwrap());
}

fn append(req: &mut Signed, name: &'static str, value: &str) {
    req.parts.headers.append(name, value.parse().unwrap());
}

#[test]
fn accepts_a_request_signed_by_aws_sigv4() {
    assert_eq!(check(&signed()), Ok(()));
    // Twice: the second verification uses the cached signing key.
    assert_eq!(check(&signed()), Ok(()));
}

#[test]
fn resigning_by_hand_agrees_with_aws_sigv4() {
    // The control for every test that uses `resign`: over the same headers and scope it
    // reproduces aws-sigv4's Authorization byte for byte.
    let original = signed();
    let mut req = signed();
    resign(&mut req, SIGNED, SCOPE);
    assert_eq!(
        req.parts.headers["authorization"],
        original.parts.headers["authorization"]
    );
    assert_eq!(check(&req), Ok(()));
}

#[test]
fn wrong_secret_is_refused() {
    let req = signed_with("not-the-secret", "us-east-1", "swf", now(), &[], BODY);
    assert_refused(&req, INVALID, MISMATCH);
}

#[test]
fn changed_body_is_refused() {
    let mut req = signed();
    req.body = br#"{"taskToken":"t","details":"99%"}"#.to_vec();
    assert_refused(&req, INVALID, MISMATCH);
}

#[test]
fn changed_signed_headers_are_refused() {
    for (name, value) in [
        (
            "x-amz-target",
            "SimpleWorkflowService.TerminateWorkflowExecution",
        ),
        ("host", "127.0.0.1:9999"),
        ("content-type", "application/json"),
        ("x-amz-date", "20231114T221321Z"),
    ] {
        let mut req = signed();
        set(&mut req, name, value);
        let refusal = check(&req).unwrap_err();
        assert_eq!(refusal.kind, INVALID, "{name}");
        assert!(refusal.message.starts_with(MISMATCH), "{name}: {refusal:?}");
    }
}

#[test]
fn uppercase_hex_signature_is_refused() {
    // Same bytes, other spelling: AWS signatures are lowercase hex, and so must be ours.
    let mut req = signed();
    let auth = req.parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let (head, sig) = auth.split_at(auth.len() - 64);
    set(
        &mut req,
        "authorization",
        &format!("{head}{}", sig.to_ascii_uppercase()),
    );
    assert_refused(&req, INVALID, MISMATCH);
}

#[test]
fn tampered_signature_is_refused() {
    let mut req = signed();
    let auth = req.parts.headers["authorization"]
        .to_str()
        .unwrap()
        .to_string();
    let flipped = if auth.ends_with('0') { "1" } else { "0" };
    let tampered = format!("{}{}", &auth[..auth.len() - 1], flipped);
    set(&mut req, "authorization", &tampered);
    assert_refused(&req, INVALID, MISMATCH);
    let truncated = auth[..auth.len() - 2].to_string();
    set(&mut req, "authorization", &truncated);
    assert_refused(&req, INVALID, MISMATCH);
}

#[test]
fn missing_and_duplicated_authorization() {
    let mut req = signed();
    let auth = req.parts.headers.remove("authorization").unwrap();
    assert_refused(
        &req,
        "MissingAuthenticationTokenException",
        "Request is missing Authentication Token",
    );
    req.parts.headers.append("authorization", auth.clone());
    req.parts.headers.append("authorization", auth);
    assert_refused(
        &req,
        INCOMPLETE,
        "Only one Authorization header is allowed.",
    );
}

#[test]
fn garbage_authorization_is_incomplete() {
    let mut req = signed();
    set(&mut req, "authorization", "Bearer abc");
    assert_refused(&req, INCOMPLETE, "Unsupported AWS 'algorithm': 'Bearer'.");
}

#[test]
fn missing_or_bad_date_is_incomplete() {
    let mut req = signed();
    req.parts.headers.remove("x-amz-date");
    assert_refused(
        &req,
        INCOMPLETE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    let mut req = signed();
    set(&mut req, "x-amz-date", "2023-11-14T22:13:20Z");
    assert_refused(
        &req,
        INCOMPLETE,
        "X-Amz-Date must be in ISO-8601 basic format",
    );
    let mut req = signed();
    let date = req.parts.headers["x-amz-date"].clone();
    req.parts.headers.append("x-amz-date", date);
    assert_refused(&req, INCOMPLETE, "Only one X-Amz-Date header is allowed.");
}

#[test]
fn unknown_access_key_is_unrecognized() {
    let req = signed();
    let err = verifier()
        .verify(&req.parts, &req.body, now(), |_| None::<&Holder>)
        .unwrap_err();
    assert_eq!(err.wire().short_name(), "UnrecognizedClientException");
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn foreign_scope_is_refused() {
    // Each signature is valid for the scope it names (aws-sigv4 derived the key for it), so
    // only the scope rule can refuse it.
    let req = signed_with(SECRET, "eu-west-1", "swf", now(), &[], BODY);
    assert_refused(
        &req,
        INVALID,
        "Credential should be scoped to a valid region, not 'eu-west-1'.",
    );
    let req = signed_with(SECRET, "us-east-1", "s3", now(), &[], BODY);
    assert_refused(
        &req,
        INVALID,
        "Credential should be scoped to correct service: 'swf'.",
    );
}

#[test]
fn scope_terminator_must_be_aws4_request() {
    // The derived key always ends in "aws4_request", but the scope text is what is signed:
    // a valid signature over another terminator is refused by the scope rule alone.
    let mut req = signed();
    resign(&mut req, SIGNED, "20231114/us-east-1/swf/aws5_request");
    assert_refused(
        &req,
        INVALID,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
    );
}

#[test]
fn clock_skew_window_is_inclusive_at_900_seconds() {
    let at = |t: SystemTime| signed_with(SECRET, "us-east-1", "swf", t, &[], BODY);
    let skew = Duration::from_secs(900);
    let second = Duration::from_secs(1);
    // Exactly at the edge, both ways: accepted (the window is `now ± 15 min`, inclusive).
    assert_eq!(check(&at(now() - skew)), Ok(()));
    assert_eq!(check(&at(now() + skew)), Ok(()));
    // One second beyond it: refused, each by its own rule.
    assert_refused(
        &at(now() - skew - second),
        INVALID,
        "Signature expired: 20231114T215819Z is now earlier than 20231114T215820Z",
    );
    assert_refused(
        &at(now() + skew + second),
        INVALID,
        "Signature not yet current: 20231114T222821Z is still later than 20231114T222820Z",
    );
}

#[test]
fn expired_message_follows_aws_wording() {
    let old = now() - Duration::from_secs(3600);
    let req = signed_with(SECRET, "us-east-1", "swf", old, &[], BODY);
    assert_refused(&req, INVALID, "Signature expired: 20231114T211320Z is now earlier than 20231114T215820Z (20231114T221320Z - 15 min.)");
}

#[test]
fn scope_date_must_match_amz_date() {
    // The attack: a signing key leaked for one day (20231115) reused with an X-Amz-Date of
    // another day. The signature is valid for the scope it names, and X-Amz-Date is within
    // the clock window, so only the scope-date rule can refuse it.
    let mut req = signed();
    resign(&mut req, SIGNED, "20231115/us-east-1/swf/aws4_request");
    assert_eq!(req.parts.headers["x-amz-date"], "20231114T221320Z");
    assert_refused(
        &req,
        INVALID,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20231115' != '20231114', from '20231114T221320Z'.",
    );
}

#[test]
fn unsigned_amz_headers_are_refused() {
    let mut req = signed();
    set(&mut req, "x-amz-user-agent", "evil");
    assert_refused(
        &req,
        INVALID,
        "'x-amz-user-agent' must be a 'SignedHeader' in the AWS Authorization.",
    );
    let mut req = signed();
    set(&mut req, "x-amz-security-token", "token");
    assert_refused(
        &req,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );
}

#[test]
fn signed_amz_headers_are_accepted() {
    let req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-user-agent", "sdk")],
        BODY,
    );
    assert_eq!(check(&req), Ok(()));
}

#[test]
fn required_headers_must_be_signed() {
    // Re-signed by hand with a SignedHeaders list that omits one required header each time:
    // a valid signature over the rest, refused only because the list lacks that header.
    for &omitted in SWF_REQUIRED_SIGNED {
        let names: Vec<&str> = SIGNED.iter().copied().filter(|n| *n != omitted).collect();
        let mut req = signed();
        resign(&mut req, &names, SCOPE);
        assert_refused(
            &req,
            INVALID,
            &format!("'{omitted}' must be a 'SignedHeader' in the AWS Authorization."),
        );
    }
}

#[test]
fn required_headers_signed_twice_are_refused() {
    // aws-sigv4 signs both values (joined by a comma, as SigV4 says), so the signature
    // matches: only the once-only rule refuses. A second `x-amz-target` could otherwise
    // smuggle another operation past whatever reads the first. Each header is checked and
    // reported on its own.
    let cases = [
        (
            "x-amz-target",
            "SimpleWorkflowService.TerminateWorkflowExecution",
        ),
        ("content-type", "text/plain"),
    ];
    let results: Vec<_> = cases
        .iter()
        .map(|&(name, second)| {
            let req = signed_with(SECRET, "us-east-1", "swf", now(), &[(name, second)], BODY);
            assert_eq!(req.parts.headers.get_all(name).iter().count(), 2, "{name}");
            (name, check(&req))
        })
        .collect();
    let expected: Vec<_> = cases
        .iter()
        .map(|&(name, _)| {
            let refusal = Refusal {
                kind: INVALID,
                message: format!("Only one '{name}' header is allowed."),
            };
            (name, Err(refusal))
        })
        .collect();
    assert_eq!(results, expected);
}

#[test]
fn duplicated_required_headers_are_refused() {
    // A repeat appended after signing; the once-only rules refuse it before the signature.
    for (name, message) in [
        ("x-amz-target", "Only one 'x-amz-target' header is allowed."),
        ("host", "Only one Host header is allowed."),
        ("content-type", "Only one 'content-type' header is allowed."),
    ] {
        let mut req = signed();
        let value = req.parts.headers[name].clone();
        req.parts.headers.append(name, value);
        assert_refused(&req, INVALID, message);
    }
}

#[test]
fn request_shape_is_enforced() {
    let mut req = signed();
    req.parts.method = http::Method::GET;
    assert_refused(
        &req,
        "UnknownOperationException",
        "Only POST / is served; got GET /.",
    );
    let mut req = signed();
    req.parts.uri = "/other".parse().unwrap();
    assert_refused(
        &req,
        "UnknownOperationException",
        "Only POST / is served; got POST /other.",
    );
    let mut req = signed();
    req.parts.uri = "/?Action=x".parse().unwrap();
    assert_refused(&req, INVALID, "Requests must not carry a query string.");
    let mut req = signed();
    req.parts.headers.remove("authorization");
    req.parts.uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
        .parse()
        .unwrap();
    assert_refused(
        &req,
        INVALID,
        "Query-string (presigned) authentication is not accepted",
    );
}

#[test]
fn content_sha256_header_must_match_body() {
    let hash = canonical::sha256_hex(BODY);
    let req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-content-sha256", &hash)],
        BODY,
    );
    assert_eq!(check(&req), Ok(()));
    // aws-sigv4 signs the declared value as a header and the real body's hash as the payload,
    // so the signature matches: only the declared-hash rule refuses.
    let wrong = canonical::sha256_hex(b"other");
    let req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-content-sha256", &wrong)],
        BODY,
    );
    assert_refused(
        &req,
        INVALID,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
}

#[test]
fn repeated_signed_header_values_are_joined() {
    let mut req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-meta", "a")],
        BODY,
    );
    append(&mut req, "x-amz-meta", "b");
    // aws-sigv4 signed only "a"; the extra value changes the canonical form.
    assert_refused(&req, INVALID, MISMATCH);
    // Signed with both values, it verifies: the canonical form joins them.
    let req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-meta", "a"), ("x-amz-meta", "b")],
        BODY,
    );
    assert_eq!(check(&req), Ok(()));
}

#[test]
fn amz_date_round_trips() {
    assert_eq!(amz_date(now()), "20231114T221320Z");
}

#[test]
fn amz_date_agrees_with_the_time_crate_formatter() {
    // Epoch, a leap day, the last second of a year, and a spread of instants in between.
    let fixed = [0, 951_782_400, 1_709_164_799, 1_735_689_599, 4_102_444_799];
    let spread = (0..2000u64).map(|i| i * 2_147_483 + 59);
    for secs in fixed.into_iter().chain(spread) {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(
            amz_date(t),
            super::format_amz_date(time::OffsetDateTime::from(t)),
            "{secs}"
        );
    }
}

#[test]
fn http2_authority_stands_for_host() {
    // HTTP/2 carries the host as `:authority` (in the URI), not as a Host header.
    let mut req = signed();
    req.parts.headers.remove("host");
    req.parts.uri = "http://127.0.0.1:8080/".parse().unwrap();
    assert_eq!(check(&req), Ok(()));
    req.parts.uri = "http://127.0.0.1:9999/".parse().unwrap();
    assert_refused(&req, INVALID, MISMATCH);
    req.parts.uri = "/".parse().unwrap();
    assert_refused(&req, INVALID, "The request has no Host header.");
}

#[test]
fn a_signed_header_missing_from_the_request_is_refused() {
    let mut req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-meta", "a")],
        BODY,
    );
    req.parts.headers.remove("x-amz-meta");
    assert_refused(
        &req,
        INVALID,
        "Signed header 'x-amz-meta' is not present in the request.",
    );
}

#[test]
fn the_signed_host_is_pinned_to_the_configured_hosts() {
    // A valid signature for a host this deployment does not answer for (a request captured
    // at another deployment that shares the keys) is refused; without `hosts`, any host.
    let holder = Holder(credential());
    let verify = |hosts: &[&str], req: &Signed| {
        verifier()
            .with_hosts(hosts.iter().map(|h| h.to_string()).collect())
            .verify(&req.parts, &req.body, now(), |_| Some(&holder))
            .map(|_| ())
            .map_err(|e| (e.wire().short_name(), e.to_string()))
    };
    let req = signed();
    assert_eq!(verify(&[], &req), Ok(()));
    assert_eq!(
        verify(&["swf.example.internal", "127.0.0.1:8080"], &req),
        Ok(())
    );
    let (kind, message) = verify(&["swf.example.internal"], &req).unwrap_err();
    assert_eq!(kind, "InvalidSignatureException");
    assert!(
        message.contains("'127.0.0.1:8080' is not a host of this service"),
        "{message}"
    );
    let (kind, message) = verify(&["127.0.0.1"], &req).unwrap_err();
    assert_eq!(kind, INVALID, "the port is part of the host");
    assert!(
        message.contains("'127.0.0.1:8080' is not a host of this service"),
        "{message}"
    );
    // The HTTP/2 authority is held to the same list.
    let mut h2 = signed();
    h2.parts.headers.remove("host");
    h2.parts.uri = "http://127.0.0.1:8080/".parse().unwrap();
    assert_eq!(verify(&["127.0.0.1:8080"], &h2), Ok(()));
    let (kind, message) = verify(&["swf.example.internal"], &h2).unwrap_err();
    assert_eq!(kind, INVALID);
    assert!(
        message.contains("'127.0.0.1:8080' is not a host of this service"),
        "{message}"
    );
}

/// The signing key is cached per credential for one scope at a time: a request for another
/// day (or region) gets that day's key, and the first day's requests still verify after it.
#[test]
fn the_signing_key_cache_follows_the_scope() {
    let holder = Holder(credential());
    let day = Duration::from_secs(24 * 3600);
    for at in [now(), now() + day, now(), now() + day + day] {
        let req = signed_with(SECRET, "us-east-1", "swf", at, &[], BODY);
        let verified = verifier().verify(&req.parts, &req.body, at, |_| Some(&holder));
        assert!(verified.is_ok(), "{at:?}: {:?}", verified.err());
    }
}
