//! Every error of SPEC's wire table, end to end over a real socket: the exact status and type,
//! an `x-amzn-RequestId`, an audit record, and nothing sent upstream.

mod common;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};

fn heartbeat_body() -> Value {
    json!({"taskToken": "sw1.not-a-real-token", "details": "x"})
}

fn describe(domain: &str) -> Raw<'static> {
    Raw::new(TENANT_A, "DescribeDomain", &json!({"name": domain}))
}

/// Sends `request`, checks the refusal's wire form, audit record and the silent upstream.
async fn refused(
    proxy: &Proxy,
    request: Request<Full<Bytes>>,
    status: u16,
    error: &str,
    decision: &str,
) -> Value {
    let answer = proxy.send(request).await;
    assert_eq!(answer.status, status, "{error}: {:?}", answer.body);
    assert_eq!(answer.error_type(), error);
    assert_eq!(answer.headers["content-type"], "application/x-amz-json-1.0");
    assert!(answer.body["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let record = proxy.audit_for(&answer.request_id());
    assert_eq!(record["decision"], decision, "{record}");
    assert_eq!(record["errorCode"], error);
    assert_eq!(record["message"], answer.body["message"]);
    assert_eq!(
        proxy.upstream.count(),
        0,
        "{error}: nothing may reach the upstream"
    );
    record
}

fn with_header(
    mut request: Request<Full<Bytes>>,
    name: &'static str,
    value: &str,
) -> Request<Full<Bytes>> {
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

#[tokio::test]
async fn authentication_errors() {
    let proxy = Proxy::start().await;
    let build = |raw: Raw<'static>| raw.build(proxy.addr);
    let signed = || build(describe("tenant-a"));
    let altered = |edit: fn(&mut Raw<'static>)| {
        let mut raw = describe("tenant-a");
        edit(&mut raw);
        build(raw)
    };
    let without = |name: &str| {
        let mut request = signed();
        request.headers_mut().remove(name);
        request
    };
    let partial = format!(
        "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/swf/aws4_request",
        TENANT_A.key
    );
    let (parts, _) = signed().into_parts();
    let swapped_body = Request::from_parts(
        parts,
        Full::new(Bytes::from_static(br#"{"name":"tenant-b"}"#)),
    );
    // The messages name the rule that refused; the two unrecognized-client rows share AWS's
    // one sentence (an unknown key, an unsigned session token).
    const MISMATCH: &str =
        "The request signature we calculated does not match the signature you provided.";
    const UNRECOGNIZED: &str = "The security token included in the request is invalid.";
    // (what is wrong, the request, the error, how its message starts)
    let cases: Vec<(&str, Request<Full<Bytes>>, &str, &str)> = vec![
        (
            "no Authorization",
            without("authorization"),
            "MissingAuthenticationTokenException",
            "Request is missing Authentication Token",
        ),
        (
            "garbage Authorization",
            with_header(signed(), "authorization", "AWS4-HMAC-SHA256 garbage"),
            "IncompleteSignatureException",
            "Authorization header is malformed.",
        ),
        (
            "Authorization without a signature",
            with_header(signed(), "authorization", &partial),
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "no X-Amz-Date",
            without("x-amz-date"),
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ),
        (
            "wrong secret",
            altered(|r| r.secret = "wrong"),
            "InvalidSignatureException",
            MISMATCH,
        ),
        (
            "signed 16 minutes ago",
            altered(|r| r.time = SystemTime::now() - Duration::from_secs(16 * 60)),
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            "signed 16 minutes ahead",
            altered(|r| r.time = SystemTime::now() + Duration::from_secs(16 * 60)),
            "InvalidSignatureException",
            "Signature not yet current",
        ),
        (
            "another region",
            altered(|r| r.region = "eu-west-1"),
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-west-1'.",
        ),
        (
            "another service",
            altered(|r| r.service = "sqs"),
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'swf'.",
        ),
        (
            "unknown access key",
            altered(|r| r.key = "AKIAUNKNOWN000000001"),
            "UnrecognizedClientException",
            UNRECOGNIZED,
        ),
        (
            "unsigned x-amz-* header",
            with_header(signed(), "x-amz-meta-extra", "1"),
            "InvalidSignatureException",
            "'x-amz-meta-extra' must be a 'SignedHeader' in the AWS Authorization.",
        ),
        (
            "unsigned session token",
            with_header(signed(), "x-amz-security-token", "t"),
            "UnrecognizedClientException",
            UNRECOGNIZED,
        ),
        (
            "target changed after signing",
            with_header(
                signed(),
                "x-amz-target",
                "SimpleWorkflowService.DeprecateDomain",
            ),
            "InvalidSignatureException",
            MISMATCH,
        ),
        (
            "body changed after signing",
            swapped_body,
            "InvalidSignatureException",
            MISMATCH,
        ),
    ];
    for (what, request, error, message) in cases {
        let record = refused(&proxy, request, 400, error, "authFailed").await;
        let text = record["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && text.starts_with(message),
            "{what}: refused by another rule: expected {message:?}, got {text:?}"
        );
        if error == "UnrecognizedClientException" {
            assert!(record["principal"].is_null(), "{what}: {record}");
        }
    }

    // The proxy still serves a good request afterwards.
    let answer = proxy.send(signed()).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn request_shape_errors() {
    let proxy = Proxy::start().await;
    let (mut parts, body) = describe("tenant-a").build(proxy.addr).into_parts();
    parts.method = http::Method::GET;
    refused(
        &proxy,
        Request::from_parts(parts, body),
        400,
        "UnknownOperationException",
        "invalidRequest",
    )
    .await;

    let (mut parts, body) = describe("tenant-a").build(proxy.addr).into_parts();
    parts.uri = format!("http://{}/?X-Amz-Signature=00", proxy.addr)
        .parse()
        .unwrap();
    refused(
        &proxy,
        Request::from_parts(parts, body),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;
}

#[tokio::test]
async fn request_body_errors() {
    let proxy = Proxy::start().await;

    let mut unknown = describe("tenant-a");
    unknown.target = "SimpleWorkflowService.DeleteEverything";
    let record = refused(
        &proxy,
        unknown.build(proxy.addr),
        400,
        "UnknownOperationException",
        "invalidRequest",
    )
    .await;
    assert_eq!(
        record["principal"]["name"], TENANT_A.name,
        "authenticated before the operation is read"
    );

    // Each a request the proxy authenticates and then refuses for its target or its body.
    let with_target = |target: &'static str| {
        let mut raw = describe("tenant-a");
        raw.target = target;
        raw
    };
    let with_body = |op: &str, body: Vec<u8>| {
        let mut raw = Raw::new(TENANT_A, op, &json!({}));
        raw.body = body;
        raw
    };
    let deep = format!(
        "{{\"name\":\"tenant-a\",\"x\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let cases = [
        (
            "mis-cased target",
            with_target("SimpleWorkflowService.describeDomain"),
            "UnknownOperationException",
        ),
        (
            "not JSON",
            with_body("DescribeDomain", b"{not json".to_vec()),
            "SerializationException",
        ),
        (
            "duplicate key",
            with_body(
                "DescribeDomain",
                br#"{"name":"tenant-a","name":"tenant-b"}"#.to_vec(),
            ),
            "SerializationException",
        ),
        (
            "nested duplicate key",
            with_body(
                "PollForActivityTask",
                br#"{"domain":"tenant-a","taskList":{"name":"a","name":"b"}}"#.to_vec(),
            ),
            "SerializationException",
        ),
        (
            "invalid UTF-8",
            with_body("DescribeDomain", b"{\"name\":\"tenant-\xff\"}".to_vec()),
            "SerializationException",
        ),
        (
            "deep nesting",
            with_body("DescribeDomain", deep.into_bytes()),
            "SerializationException",
        ),
        (
            "wrong JSON type",
            with_body("DescribeDomain", br#"{"name":42}"#.to_vec()),
            "SerializationException",
        ),
        (
            "missing required member",
            with_body(
                "RecordActivityTaskHeartbeat",
                br#"{"details":"x"}"#.to_vec(),
            ),
            "ValidationException",
        ),
    ];
    for (label, raw, error) in cases {
        let record = refused(&proxy, raw.build(proxy.addr), 400, error, "invalidRequest").await;
        assert_eq!(record["principal"]["name"], TENANT_A.name, "{label}");
    }

    for bad in ["", "arn", "a:b", "a/b", "a|b", "a\u{1}b"] {
        let record = refused(
            &proxy,
            describe(bad).build(proxy.addr),
            400,
            "ValidationException",
            "invalidRequest",
        )
        .await;
        assert!(
            record.get("resource").is_none(),
            "an invalid domain never becomes an ARN"
        );
    }

    let forged = Raw::new(TENANT_A, "RecordActivityTaskHeartbeat", &heartbeat_body());
    let record = refused(
        &proxy,
        forged.build(proxy.addr),
        400,
        "OperationNotPermittedFault",
        "invalidRequest",
    )
    .await;
    assert_eq!(record["cause"], "OPERATION_NOT_PERMITTED");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let proxy = Proxy::start().await;
    let mut large = describe("tenant-a");
    large.body = format!(
        "{{\"name\":\"tenant-a\",\"pad\":\"{}\"}}",
        "x".repeat(70_000)
    )
    .into_bytes();
    let record = refused(
        &proxy,
        large.build(proxy.addr),
        413,
        "RequestEntityTooLargeException",
        "invalidRequest",
    )
    .await;
    assert!(
        record["principal"].is_null(),
        "refused before authentication"
    );
}
