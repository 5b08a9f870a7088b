//! Hostile input over a raw TCP socket, bytes an SDK would never send: repeated headers,
//! other methods, ambiguous framing, bodies over the limit, required headers left unsigned.
//! Each asserts the exact wire answer and that the upstream received nothing; at the end the
//! proxy still serves a good request.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};
use swf_warden::sigv4::canonical;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error_type(&self) -> &str {
        let header = self.header("x-amzn-errortype").unwrap_or("");
        let body = self.body["__type"]
            .as_str()
            .unwrap_or("")
            .rsplit('#')
            .next()
            .unwrap_or("");
        assert_eq!(header, body, "x-amzn-ErrorType and __type agree");
        header
    }
}

/// Writes `bytes`, reads one response. The deadline only guards against a hung test.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = response.parse(&buf) {
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= head + length {
                    let status = response.code.unwrap();
                    let headers = response
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect();
                    let body =
                        serde_json::from_slice(&buf[head..head + length]).unwrap_or(Value::Null);
                    return Answer {
                        status,
                        headers,
                        body,
                    };
                }
            }
            assert!(
                n > 0,
                "connection closed before a full answer: {:?}",
                String::from_utf8_lossy(&buf)
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer")
}

/// Serializes a request as HTTP/1.1, headers in order, with `extra` raw header lines added.
fn to_wire(request: &Request<Full<Bytes>>, body: &[u8], extra: &[&str]) -> Vec<u8> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = format!("{} {path} HTTP/1.1\r\n", request.method()).into_bytes();
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for line in extra {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn body() -> Vec<u8> {
    json!({"name": "tenant-a"}).to_string().into_bytes()
}

fn signed(proxy: &Proxy) -> Request<Full<Bytes>> {
    Raw::new(TENANT_A, "DescribeDomain", &json!({"name": "tenant-a"})).build(proxy.addr)
}

/// `b` as one chunk, then the last chunk.
fn chunked(b: &[u8]) -> String {
    format!(
        "{:x}\r\n{}\r\n0\r\n\r\n",
        b.len(),
        String::from_utf8_lossy(b)
    )
}

fn content_length(b: &[u8]) -> String {
    format!("content-length: {}", b.len())
}

async fn refused(proxy: &Proxy, bytes: &[u8], status: u16, error: &str) -> Answer {
    let answer = exchange(proxy.addr, bytes).await;
    assert_eq!(answer.status, status, "{error}: {answer:?}");
    assert_eq!(answer.error_type(), error);
    let id = answer
        .header("x-amzn-requestid")
        .expect("a request id")
        .to_owned();
    assert_eq!(proxy.audit_for(&id)["errorCode"], error);
    assert_eq!(
        proxy.upstream.count(),
        0,
        "{error}: nothing may reach the upstream"
    );
    answer
}

async fn good_request_still_served(proxy: &Proxy) {
    let b = body();
    let answer = exchange(
        proxy.addr,
        &to_wire(&signed(proxy), &b, &[&content_length(&b)]),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn repeated_headers_are_refused() {
    let proxy = Proxy::start().await;
    let b = body();
    for (name, expected) in [
        ("authorization", "IncompleteSignatureException"),
        ("x-amz-date", "IncompleteSignatureException"),
        ("x-amz-target", "InvalidSignatureException"),
        ("host", "InvalidSignatureException"),
        ("content-type", "InvalidSignatureException"),
    ] {
        let request = signed(&proxy);
        let copy = format!("{name}: {}", request.headers()[name].to_str().unwrap());
        refused(
            &proxy,
            &to_wire(&request, &b, &[&copy, &content_length(&b)]),
            400,
            expected,
        )
        .await;
    }
    // A second, different target would be worse still: refused the same way.
    let request = signed(&proxy);
    let other = "x-amz-target: SimpleWorkflowService.DeprecateDomain";
    refused(
        &proxy,
        &to_wire(&request, &b, &[other, &content_length(&b)]),
        400,
        "InvalidSignatureException",
    )
    .await;
    good_request_still_served(&proxy).await;
}

#[tokio::test]
async fn methods_other_than_post_are_refused() {
    let proxy = Proxy::start().await;
    let b = body();
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let (mut parts, full) = signed(&proxy).into_parts();
        parts.method = method.parse().unwrap();
        let request = Request::from_parts(parts, full);
        refused(
            &proxy,
            &to_wire(&request, &b, &[&content_length(&b)]),
            400,
            "UnknownOperationException",
        )
        .await;
    }
    good_request_still_served(&proxy).await;
}

#[tokio::test]
async fn ambiguous_framing_is_refused() {
    let proxy = Proxy::start().await;
    let b = body();
    let chunked = chunked(&b);

    // Content-Length and Transfer-Encoding together: the HTTP layer resolves it as RFC 9112
    // says (chunked wins, Content-Length is dropped, the connection closes after the answer),
    // so a request smuggled behind the body is never read, let alone forwarded.
    let root = Raw::new(ROOT, "DeprecateDomain", &json!({"name": "tenant-b"})).build(proxy.addr);
    let rb = json!({"name": "tenant-b"}).to_string().into_bytes();
    let smuggled = to_wire(&root, &rb, &[&content_length(&rb)]);
    let mut both = to_wire(
        &signed(&proxy),
        chunked.as_bytes(),
        &["content-length: 4", "transfer-encoding: chunked"],
    );
    both.extend_from_slice(&smuggled);
    let answer = exchange(proxy.addr, &both).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    let calls = proxy.upstream.calls();
    assert_eq!(calls.len(), 1, "the smuggled request was not processed");
    assert_eq!(calls[0].operation, "DescribeDomain");
    assert_eq!(calls[0].body, json!({"name": "tenant-a"}));
    let forwarded = proxy.upstream.count();

    // A coding other than plain chunked.
    let gzip = to_wire(
        &signed(&proxy),
        chunked.as_bytes(),
        &["transfer-encoding: gzip, chunked"],
    );
    let answer = exchange(proxy.addr, &gzip).await;
    assert_eq!(
        (answer.status, answer.error_type()),
        (400, "SerializationException")
    );

    assert_eq!(
        proxy.upstream.count(),
        forwarded,
        "none of these reached the upstream"
    );

    // Plain chunked framing of a good request is fine.
    let answer = exchange(
        proxy.addr,
        &to_wire(
            &signed(&proxy),
            chunked.as_bytes(),
            &["transfer-encoding: chunked"],
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// The `n`th audit record whose message starts with `prefix`, once written (it is written
/// when the connection ends, after the answer).
async fn audit_record_starting(proxy: &Proxy, prefix: &str, n: usize) -> Value {
    let matching = || -> Vec<Value> {
        proxy
            .audit()
            .into_iter()
            .filter(|r| r["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .collect()
    };
    wait_until("the refusal is on record", || matching().len() >= n).await;
    matching().swap_remove(n - 1)
}

/// The one documented exception to "every refusal is AWS JSON": framing the HTTP layer cannot
/// read as one request is answered by it with a bare status and no body (there is no request
/// to answer as SWF would), and the connection closes. Each is still on record.
#[tokio::test]
async fn framing_the_http_layer_refuses_is_answered_bare_and_on_record() {
    let proxy = Proxy::start().await;
    let b = body();
    let chunked = chunked(&b);
    let long = format!("x-long: {}", "a".repeat(64 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "two different Content-Length values",
            to_wire(
                &signed(&proxy),
                &b,
                &[&content_length(&b), "content-length: 3"],
            ),
            400,
        ),
        (
            "a Transfer-Encoding not ending in chunked",
            to_wire(
                &signed(&proxy),
                chunked.as_bytes(),
                &["transfer-encoding: chunked, gzip"],
            ),
            400,
        ),
        (
            "a head over max_header_bytes",
            to_wire(&signed(&proxy), &b, &[&content_length(&b), &long]),
            431,
        ),
    ];
    for (n, (what, bytes, status)) in cases.into_iter().enumerate() {
        let answer = exchange(proxy.addr, &bytes).await;
        assert_eq!(answer.status, status, "{what}: {answer:?}");
        assert_eq!(answer.body, Value::Null, "{what}: a bare answer");
        assert!(answer.header("x-amzn-requestid").is_none(), "{what}");
        let record =
            audit_record_starting(&proxy, "The HTTP layer refused the request", n + 1).await;
        assert_eq!(record["decision"], "invalidRequest", "{what}: {record}");
        assert_eq!(record["errorCode"], "SerializationException", "{what}");
        assert_eq!(record["sourceIp"], "127.0.0.1", "{what}");
        assert!(record["principal"].is_null(), "{what}");
    }
    assert_eq!(
        proxy.upstream.count(),
        0,
        "none of these reached the upstream"
    );
    good_request_still_served(&proxy).await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_reading_them() {
    let proxy = Proxy::start().await;
    // Declares 100 MB and sends 2 bytes: the answer comes without the rest.
    let head = to_wire(&signed(&proxy), b"{}", &["content-length: 100000000"]);
    let answer = refused(&proxy, &head, 413, "RequestEntityTooLargeException").await;
    assert!(answer.body["message"].as_str().unwrap().contains("65536"));

    // Chunked, no length declared: refused once the limit is crossed.
    let chunk = "x".repeat(16 * 1024);
    let mut chunked = String::new();
    for _ in 0..5 {
        chunked.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    chunked.push_str("0\r\n\r\n");
    let request = to_wire(
        &signed(&proxy),
        chunked.as_bytes(),
        &["transfer-encoding: chunked"],
    );
    refused(&proxy, &request, 413, "RequestEntityTooLargeException").await;
    good_request_still_served(&proxy).await;
}

/// Signs `body` for the proxy over exactly `names`, in `TENANT_A`'s name.
fn signed_over(proxy: &Proxy, names: &[&str], body: &[u8]) -> Request<Full<Bytes>> {
    let base = signed(proxy);
    let date = base.headers()["x-amz-date"].to_str().unwrap().to_owned();
    let day = &date[..8];
    let scope = format!("{day}/us-east-1/swf/aws4_request");
    let headers: Vec<canonical::CanonicalHeader<'_>> = names
        .iter()
        .map(|n| canonical::CanonicalHeader {
            name: n,
            values: vec![base.headers()[*n].as_bytes()],
        })
        .collect();
    let list = names.join(";");
    let creq = canonical::canonical_request_hash(
        "POST",
        "/",
        "",
        &headers,
        &list,
        &canonical::sha256_hex(body),
    );
    let key = canonical::signing_key(TENANT_A.secret, day, "us-east-1", "swf");
    let signature = canonical::signature(&key, &canonical::string_to_sign(&date, &scope, &creq));
    let value = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={list}, Signature={signature}",
        TENANT_A.key
    );
    let mut request = signed(proxy);
    request
        .headers_mut()
        .insert("authorization", value.parse().unwrap());
    request
}

#[tokio::test]
async fn required_headers_left_unsigned_are_refused() {
    let proxy = Proxy::start().await;
    let b = body();
    let all = ["content-type", "host", "x-amz-date", "x-amz-target"];
    // The helper itself produces an accepted request when it signs all four.
    let answer = exchange(
        proxy.addr,
        &to_wire(&signed_over(&proxy, &all, &b), &b, &[&content_length(&b)]),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let forwarded = proxy.upstream.count();
    for omitted in all {
        let names: Vec<&str> = all.iter().copied().filter(|n| *n != omitted).collect();
        let request = signed_over(&proxy, &names, &b);
        let answer = exchange(proxy.addr, &to_wire(&request, &b, &[&content_length(&b)])).await;
        assert_eq!(answer.status, 400);
        assert_eq!(
            answer.error_type(),
            "InvalidSignatureException",
            "{omitted}"
        );
        assert!(
            answer.body["message"].as_str().unwrap().contains(omitted),
            "{answer:?}"
        );
    }
    assert_eq!(
        proxy.upstream.count(),
        forwarded,
        "none of them reached the upstream"
    );
}

#[tokio::test]
async fn query_string_authentication_is_refused() {
    let proxy = Proxy::start().await;
    let b = body();
    let (mut parts, full) = signed(&proxy).into_parts();
    parts.headers.remove("authorization");
    parts.uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIATENANTA000000001%2F20260101%2Fus-east-1%2Fswf%2Faws4_request&X-Amz-Signature=00"
        .parse()
        .unwrap();
    let request = Request::from_parts(parts, full);
    refused(
        &proxy,
        &to_wire(&request, &b, &[&content_length(&b)]),
        400,
        "InvalidSignatureException",
    )
    .await;
}

/// `max_body_bytes` is the largest body read, not the first refused: a body of exactly the
/// limit is served, whether its length is declared or chunked; one byte more is refused.
#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read() {
    let proxy = Proxy::start().await;
    let padded = |len: usize| {
        let mut b = body();
        b.resize(len, b' ');
        b
    };
    let exact = padded(65536);
    let request = Raw {
        body: exact.clone(),
        ..Raw::new(TENANT_A, "DescribeDomain", &json!({}))
    }
    .build(proxy.addr);
    let answer = exchange(
        proxy.addr,
        &to_wire(&request, &exact, &[&content_length(&exact)]),
    )
    .await;
    assert_eq!(answer.status, 200, "declared: {answer:?}");
    let answer = exchange(
        proxy.addr,
        &to_wire(
            &request,
            chunked(&exact).as_bytes(),
            &["transfer-encoding: chunked"],
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "chunked: {answer:?}");
    assert_eq!(proxy.upstream.count(), 2);

    let over = padded(65537);
    let request = Raw {
        body: over.clone(),
        ..Raw::new(TENANT_A, "DescribeDomain", &json!({}))
    }
    .build(proxy.addr);
    let answer = exchange(
        proxy.addr,
        &to_wire(&request, &over, &[&content_length(&over)]),
    )
    .await;
    assert_eq!(
        (answer.status, answer.error_type()),
        (413, "RequestEntityTooLargeException")
    );
    assert_eq!(proxy.upstream.count(), 2, "nothing more forwarded");
}

/// A body whose framing breaks off is unreadable, not too large.
#[tokio::test]
async fn a_body_with_broken_chunks_is_refused_as_unreadable() {
    let proxy = Proxy::start().await;
    let b = body();
    let broken = format!(
        "{:x}\r\n{}\r\nzz\r\n\r\n",
        b.len(),
        String::from_utf8_lossy(&b)
    );
    let answer = refused(
        &proxy,
        &to_wire(
            &signed(&proxy),
            broken.as_bytes(),
            &["transfer-encoding: chunked"],
        ),
        400,
        "SerializationException",
    )
    .await;
    assert_eq!(
        answer.body["message"], "The request body could not be read.",
        "{answer:?}"
    );
    good_request_still_served(&proxy).await;
}
