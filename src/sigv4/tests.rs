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

fn check(req: &Signed) -> Result<(), String> {
    let holder = Holder(credential());
    verifier()
        .verify(&req.parts, &req.body, now(), |akid| {
            (akid == AKID).then_some(&holder)
        })
        .map(|_| ())
        .map_err(|e| e.wire().short_name().to_string())
}

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
fn wrong_secret_is_refused() {
    let req = signed_with("not-the-secret", "us-east-1", "swf", now(), &[], BODY);
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
}

#[test]
fn changed_body_is_refused() {
    let mut req = signed();
    req.body = br#"{"taskToken":"t","details":"99%"}"#.to_vec();
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
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
        assert_eq!(
            check(&req).unwrap_err(),
            "InvalidSignatureException",
            "{name}"
        );
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
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
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
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
    let truncated = auth[..auth.len() - 2].to_string();
    set(&mut req, "authorization", &truncated);
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
}

#[test]
fn missing_and_duplicated_authorization() {
    let mut req = signed();
    let auth = req.parts.headers.remove("authorization").unwrap();
    assert_eq!(
        check(&req).unwrap_err(),
        "MissingAuthenticationTokenException"
    );
    req.parts.headers.append("authorization", auth.clone());
    req.parts.headers.append("authorization", auth);
    assert_eq!(check(&req).unwrap_err(), "IncompleteSignatureException");
}

#[test]
fn garbage_authorization_is_incomplete() {
    let mut req = signed();
    set(&mut req, "authorization", "Bearer abc");
    assert_eq!(check(&req).unwrap_err(), "IncompleteSignatureException");
}

#[test]
fn missing_or_bad_date_is_incomplete() {
    let mut req = signed();
    req.parts.headers.remove("x-amz-date");
    assert_eq!(check(&req).unwrap_err(), "IncompleteSignatureException");
    let mut req = signed();
    set(&mut req, "x-amz-date", "2023-11-14T22:13:20Z");
    assert_eq!(check(&req).unwrap_err(), "IncompleteSignatureException");
    let mut req = signed();
    let date = req.parts.headers["x-amz-date"].clone();
    req.parts.headers.append("x-amz-date", date);
    assert_eq!(check(&req).unwrap_err(), "IncompleteSignatureException");
}

#[test]
fn unknown_access_key_is_unrecognized() {
    let req = signed();
    let holder = Holder(credential());
    let err = verifier()
        .verify(&req.parts, &req.body, now(), |_| None::<&Holder>)
        .unwrap_err();
    assert_eq!(err.wire().short_name(), "UnrecognizedClientException");
    drop(holder);
}

#[test]
fn foreign_scope_is_refused() {
    let req = signed_with(SECRET, "eu-west-1", "swf", now(), &[], BODY);
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
    let req = signed_with(SECRET, "us-east-1", "s3", now(), &[], BODY);
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
}

#[test]
fn expired_and_future_dates_are_refused() {
    let old = now() - Duration::from_secs(901);
    let err = check(&signed_with(SECRET, "us-east-1", "swf", old, &[], BODY)).unwrap_err();
    assert_eq!(err, "InvalidSignatureException");
    let future = now() + Duration::from_secs(901);
    let err = check(&signed_with(SECRET, "us-east-1", "swf", future, &[], BODY)).unwrap_err();
    assert_eq!(err, "InvalidSignatureException");
    // Inside the window both ways.
    let edge = now() - Duration::from_secs(899);
    assert_eq!(
        check(&signed_with(SECRET, "us-east-1", "swf", edge, &[], BODY)),
        Ok(())
    );
    let edge = now() + Duration::from_secs(899);
    assert_eq!(
        check(&signed_with(SECRET, "us-east-1", "swf", edge, &[], BODY)),
        Ok(())
    );
}

#[test]
fn expired_message_follows_aws_wording() {
    let old = now() - Duration::from_secs(3600);
    let req = signed_with(SECRET, "us-east-1", "swf", old, &[], BODY);
    let holder = Holder(credential());
    let err = verifier()
        .verify(&req.parts, &req.body, now(), |_| Some(&holder))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("Signature expired: 20231114T211320Z is now earlier than 20231114T215820Z (20231114T221320Z - 15 min.)"), "{msg}");
}

#[test]
fn scope_date_must_match_amz_date() {
    let mut req = signed();
    let auth = req.parts.headers["authorization"]
        .to_str()
        .unwrap()
        .replace("/20231114/", "/20231115/");
    set(&mut req, "authorization", &auth);
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
}

#[test]
fn unsigned_amz_headers_are_refused() {
    let mut req = signed();
    set(&mut req, "x-amz-user-agent", "evil");
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
    let mut req = signed();
    set(&mut req, "x-amz-security-token", "token");
    assert_eq!(check(&req).unwrap_err(), "UnrecognizedClientException");
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
    // Re-sign by hand with a SignedHeaders list that omits one required header each time.
    for &omitted in SWF_REQUIRED_SIGNED {
        let req = signed();
        let auth = authorization::parse(req.parts.headers["authorization"].as_bytes()).unwrap();
        let names: Vec<&str> = auth
            .signed_header_names()
            .filter(|n| *n != omitted)
            .collect();
        let list = names.join(";");
        let headers: Vec<CanonicalHeader<'_>> = names
            .iter()
            .map(|n| CanonicalHeader {
                name: n,
                values: vec![req.parts.headers[*n].as_bytes()],
            })
            .collect();
        let date = req.parts.headers["x-amz-date"].to_str().unwrap();
        let creq = canonical::canonical_request_hash(
            "POST",
            "/",
            "",
            &headers,
            &list,
            &canonical::sha256_hex(BODY),
        );
        let sts = canonical::string_to_sign(date, auth.scope_text, &creq);
        let key = canonical::signing_key(SECRET, auth.scope.date, "us-east-1", "swf");
        let sig = canonical::signature(&key, &sts);
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{}, SignedHeaders={list}, Signature={sig}",
            auth.scope_text
        );
        let mut req2 = signed();
        set(&mut req2, "authorization", &value);
        assert_eq!(
            check(&req2).unwrap_err(),
            "InvalidSignatureException",
            "{omitted}"
        );
    }
}

#[test]
fn duplicated_required_headers_are_refused() {
    for name in ["x-amz-target", "host", "content-type"] {
        let mut req = signed();
        let value = req.parts.headers[name].clone();
        req.parts.headers.append(name, value);
        assert_eq!(
            check(&req).unwrap_err(),
            "InvalidSignatureException",
            "{name}"
        );
    }
}

#[test]
fn request_shape_is_enforced() {
    let mut req = signed();
    req.parts.method = http::Method::GET;
    assert_eq!(check(&req).unwrap_err(), "UnknownOperationException");
    let mut req = signed();
    req.parts.uri = "/other".parse().unwrap();
    assert_eq!(check(&req).unwrap_err(), "UnknownOperationException");
    let mut req = signed();
    req.parts.uri = "/?Action=x".parse().unwrap();
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
    let mut req = signed();
    req.parts.headers.remove("authorization");
    req.parts.uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
        .parse()
        .unwrap();
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
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
    let wrong = canonical::sha256_hex(b"other");
    let req = signed_with(
        SECRET,
        "us-east-1",
        "swf",
        now(),
        &[("x-amz-content-sha256", &wrong)],
        BODY,
    );
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
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
    assert_eq!(check(&req).unwrap_err(), "InvalidSignatureException");
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
    assert_eq!(
        check(&req).unwrap_err(),
        "InvalidSignatureException",
        "another authority"
    );
    req.parts.uri = "/".parse().unwrap();
    assert_eq!(
        check(&req).unwrap_err(),
        "InvalidSignatureException",
        "no host at all"
    );
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
    let holder = Holder(credential());
    let err = verifier()
        .verify(&req.parts, &req.body, now(), |_| Some(&holder))
        .unwrap_err();
    assert_eq!(err.wire().short_name(), "InvalidSignatureException");
    assert!(
        err.to_string().contains("'x-amz-meta' is not present"),
        "{err}"
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
    assert!(
        verify(&["127.0.0.1"], &req).is_err(),
        "the port is part of the host"
    );
    // The HTTP/2 authority is held to the same list.
    let mut h2 = signed();
    h2.parts.headers.remove("host");
    h2.parts.uri = "http://127.0.0.1:8080/".parse().unwrap();
    assert_eq!(verify(&["127.0.0.1:8080"], &h2), Ok(()));
    assert!(verify(&["swf.example.internal"], &h2).is_err());
}
