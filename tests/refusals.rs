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

    let mut no_auth = describe("tenant-a").build(proxy.addr);
    no_auth.headers_mut().remove("authorization");
    refused(
        &proxy,
        no_auth,
        400,
        "MissingAuthenticationTokenException",
        "authFailed",
    )
    .await;

    let garbage = with_header(
        describe("tenant-a").build(proxy.addr),
        "authorization",
        "AWS4-HMAC-SHA256 garbage",
    );
    refused(
        &proxy,
        garbage,
        400,
        "IncompleteSignatureException",
        "authFailed",
    )
    .await;

    let partial = with_header(
        describe("tenant-a").build(proxy.addr),
        "authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={}/20260101/us-east-1/swf/aws4_request",
            TENANT_A.key
        ),
    );
    refused(
        &proxy,
        partial,
        400,
        "IncompleteSignatureException",
        "authFailed",
    )
    .await;

    let mut no_date = describe("tenant-a").build(proxy.addr);
    no_date.headers_mut().remove("x-amz-date");
    refused(
        &proxy,
        no_date,
        400,
        "IncompleteSignatureException",
        "authFailed",
    )
    .await;

    let mut wrong = describe("tenant-a");
    wrong.secret = "wrong";
    refused(
        &proxy,
        wrong.build(proxy.addr),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    let mut expired = describe("tenant-a");
    expired.time = SystemTime::now() - Duration::from_secs(16 * 60);
    let record = refused(
        &proxy,
        expired.build(proxy.addr),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;
    assert!(record["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature expired"));

    let mut future = describe("tenant-a");
    future.time = SystemTime::now() + Duration::from_secs(16 * 60);
    let record = refused(
        &proxy,
        future.build(proxy.addr),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;
    assert!(record["message"]
        .as_str()
        .unwrap()
        .starts_with("Signature not yet current"));

    let mut region = describe("tenant-a");
    region.region = "eu-west-1";
    refused(
        &proxy,
        region.build(proxy.addr),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    let mut service = describe("tenant-a");
    service.service = "sqs";
    refused(
        &proxy,
        service.build(proxy.addr),
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    let mut unknown = describe("tenant-a");
    unknown.key = "AKIAUNKNOWN000000001";
    let record = refused(
        &proxy,
        unknown.build(proxy.addr),
        400,
        "UnrecognizedClientException",
        "authFailed",
    )
    .await;
    assert!(record["principal"].is_null());

    let unsigned_amz = with_header(
        describe("tenant-a").build(proxy.addr),
        "x-amz-meta-extra",
        "1",
    );
    refused(
        &proxy,
        unsigned_amz,
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    let unsigned_token = with_header(
        describe("tenant-a").build(proxy.addr),
        "x-amz-security-token",
        "t",
    );
    refused(
        &proxy,
        unsigned_token,
        400,
        "UnrecognizedClientException",
        "authFailed",
    )
    .await;

    let retargeted = with_header(
        describe("tenant-a").build(proxy.addr),
        "x-amz-target",
        "SimpleWorkflowService.DeprecateDomain",
    );
    refused(
        &proxy,
        retargeted,
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    let (parts, _) = describe("tenant-a").build(proxy.addr).into_parts();
    let swapped_body = Request::from_parts(
        parts,
        Full::new(Bytes::from_static(br#"{"name":"tenant-b"}"#)),
    );
    refused(
        &proxy,
        swapped_body,
        400,
        "InvalidSignatureException",
        "authFailed",
    )
    .await;

    // The proxy still serves a good request afterwards.
    let answer = proxy.send(describe("tenant-a").build(proxy.addr)).await;
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
