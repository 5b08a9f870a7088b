//! Connections (SPEC, "Connections"): no client, signed or not, can hold what others need.
//! Connections that are late with their head or body, idle ones, answers nobody reads,
//! HTTP/2 streams and many connections from one address, each against short configured
//! limits. Every wait is bounded: a deadline only guards against a hung test, and what is
//! asserted is what the proxy did (closed the socket, answered, forwarded nothing), never how
//! long it took.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::raw_upstream::{Mode, RawUpstream};
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Guards every wait against a hung test; the limits under test are 1 second.
const DEADLINE: Duration = Duration::from_secs(10);

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// The standard test configuration with `limits` added to `[limits]` and `listen` to
/// `[listen]`, against `upstream` if given.
fn configure(
    limits: &str,
    listen: &str,
    upstream: Option<SocketAddr>,
) -> impl FnOnce(String) -> String {
    let (limits, listen) = (limits.to_owned(), listen.to_owned());
    move |config| {
        let config = config
            .replace(
                "max_body_bytes = 65536",
                &format!("max_body_bytes = 65536\n{limits}"),
            )
            .replacen("[listen]\n", &format!("[listen]\n{listen}\n"), 1);
        match upstream {
            Some(addr) => replace_endpoint(&config, &format!("endpoint = \"http://{addr}\"")),
            None => config,
        }
    }
}

async fn start(limits: &str, listen: &str) -> Proxy {
    Proxy::start_configured(configure(limits, listen, None), &[]).await
}

/// Reads until the proxy closes the connection (end of stream or reset); the bytes read.
async fn closed_by_proxy(stream: &mut (impl AsyncRead + Unpin), what: &str) -> usize {
    let read = async {
        let mut total = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .unwrap_or_else(|_| panic!("{what}: the proxy kept the connection open"))
}

/// Waits until `metric` (a line of `/metrics`, without its value) reaches `at_least`.
async fn metric_reaches(proxy: &Proxy, metric: &str, at_least: u64) {
    let value = |text: String| {
        text.lines()
            .find_map(|l| l.strip_prefix(metric)?.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let wait = async {
        while value(proxy.runtime.metrics.render()) < at_least {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("{metric} did not reach {at_least}"));
}

fn closures(reason: &str) -> String {
    format!("swf_warden_connections_closed_total{{reason=\"{reason}\"}}")
}

/// A signed request in `TENANT_A`'s name, serialized as HTTP/1.1: head and body apart.
fn h1_request(addr: SocketAddr, operation: &str, input: &serde_json::Value) -> (Vec<u8>, Vec<u8>) {
    let request = Raw::new(TENANT_A, operation, input).build(addr);
    let mut head = b"POST / HTTP/1.1\r\n".to_vec();
    for (name, value) in request.headers() {
        head.extend_from_slice(format!("{name}: ").as_bytes());
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    let body = input.to_string().into_bytes();
    head.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    (head, body)
}

fn describe() -> serde_json::Value {
    json!({"name": "tenant-a"})
}

fn poll() -> serde_json::Value {
    json!({"domain": "tenant-a", "taskList": {"name": "work"}})
}

/// Reads one HTTP/1.1 answer off `stream`: status, headers and body.
async fn h1_answer(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let read = async {
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            assert!(n > 0, "closed before a whole answer");
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = response.parse(&buf) {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let length = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                if buf.len() >= head + length {
                    let body = serde_json::from_slice(&buf[head..head + length])
                        .unwrap_or(serde_json::Value::Null);
                    return (response.code.unwrap(), headers, body);
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("an answer")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// An HTTP/2 connection with prior knowledge over `io`.
async fn h2_over<B, I>(io: I) -> Option<(SendRequest<B>, tokio::task::JoinHandle<bool>)>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .ok()?;
    // `true` when the connection ended without an error.
    Some((
        sender,
        tokio::spawn(async move { connection.await.is_ok() }),
    ))
}

async fn h2<B>(addr: SocketAddr) -> Option<(SendRequest<B>, tokio::task::JoinHandle<bool>)>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    h2_over(TcpStream::connect(addr).await.unwrap()).await
}

/// A signed request for HTTP/2, where the host travels as the `:authority`.
fn h2_request(
    addr: SocketAddr,
    operation: &str,
    input: &serde_json::Value,
) -> Request<Full<Bytes>> {
    let mut request = Raw::new(TENANT_A, operation, input).build(addr);
    request.headers_mut().remove("host");
    request
}

/// Sends `request` on `sender`: status, error type and body.
async fn h2_call(
    mut sender: SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, String, serde_json::Value), hyper::Error> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let error = response
        .headers()
        .get("x-amzn-errortype")
        .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await?.to_bytes();
    Ok((
        status,
        error,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// A request body that never ends.
struct Endless;

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// Writes `head` then one byte a tenth of a second, as a slowloris client does, until the
/// proxy cuts it or 200 bytes have gone.
fn trickle(stream: TcpStream, head: &'static [u8]) -> tokio::net::tcp::OwnedReadHalf {
    let (read, mut write) = stream.into_split();
    tokio::spawn(async move {
        if write.write_all(head).await.is_err() {
            return;
        }
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    read
}

#[tokio::test]
async fn connections_without_a_whole_head_are_closed_and_free_their_slot() {
    // Four slots, and four connections that never complete a head, each its own way.
    let proxy = start(
        "header_read_timeout_seconds = 1\nmax_connections = 4",
        "h2c = true",
    )
    .await;
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let mut partial = TcpStream::connect(proxy.addr).await.unwrap();
    partial
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut preface = TcpStream::connect(proxy.addr).await.unwrap();
    preface.write_all(PREFACE).await.unwrap();
    preface.write_all(SETTINGS).await.unwrap();
    let mut slow = trickle(
        TcpStream::connect(proxy.addr).await.unwrap(),
        b"POST / HTTP/1.1\r\nx-slow: ",
    );

    // A fifth client is served only once the proxy has closed one of them.
    let served = tokio::time::timeout(
        DEADLINE,
        proxy
            .client(TENANT_A)
            .describe_domain()
            .name("tenant-a")
            .send(),
    )
    .await
    .expect("served once the late connections are closed");
    served.unwrap();

    closed_by_proxy(&mut silent, "a connection that sends nothing").await;
    closed_by_proxy(&mut partial, "half an HTTP/1.1 head").await;
    closed_by_proxy(&mut preface, "an HTTP/2 preface and SETTINGS only").await;
    closed_by_proxy(&mut slow, "a head trickled a byte at a time").await;
    metric_reaches(&proxy, &closures("header_timeout"), 4).await;
    assert_eq!(proxy.upstream.count(), 1, "only the fifth client's call");
}

#[tokio::test]
async fn each_head_on_a_kept_alive_connection_must_come_in_time() {
    // One slot: the second call on the connection needs none of its own. The idle timeout is
    // long: only the header read timeout can cut the trickled third head.
    let proxy = start(
        "header_read_timeout_seconds = 1\nidle_timeout_seconds = 600\nmax_connections = 1",
        "",
    )
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    for _ in 0..2 {
        let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
        stream.write_all(&head).await.unwrap();
        stream.write_all(&body).await.unwrap();
        let (status, _, _) = h1_answer(&mut stream).await;
        assert_eq!(status, 200);
    }
    let mut slow = trickle(stream, b"POST / HTTP/1.1\r\nx-slow: ");
    closed_by_proxy(&mut slow, "a later head trickled a byte at a time").await;
    assert_eq!(proxy.upstream.count(), 2);
}

#[tokio::test]
async fn bodies_must_arrive_within_the_body_read_timeout() {
    let proxy = start("body_read_timeout_seconds = 1", "h2c = true").await;

    // HTTP/1.1: the head, then half the body.
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    let (status, headers, answer) = h1_answer(&mut stream).await;
    assert_eq!(status, 408, "{answer}");
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        "RequestTimeoutException"
    );
    assert_eq!(
        answer["__type"],
        "com.amazon.coral.service#RequestTimeoutException"
    );
    let record = proxy.audit_for(header(&headers, "x-amzn-requestid"));
    assert_eq!(record["errorCode"], "RequestTimeoutException");
    assert_eq!(record["decision"], "invalidRequest");

    // HTTP/2: HEADERS without END_STREAM, then nothing.
    let (mut sender, _connection) = h2::<Endless>(proxy.addr).await.unwrap();
    let request = h2_request(proxy.addr, "DescribeDomain", &describe()).map(|_| Endless);
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(response.status(), 408);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "RequestTimeoutException"
    );
    assert_eq!(proxy.upstream.count(), 0, "nothing reached the upstream");
}

#[tokio::test]
async fn idle_connections_are_closed_http2_included() {
    // The header read timeout is long: only the idle timeout can close these.
    let proxy = start(
        "idle_timeout_seconds = 1\nheader_read_timeout_seconds = 600",
        "h2c = true",
    )
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body).await.unwrap();
    assert_eq!(h1_answer(&mut stream).await.0, 200);
    closed_by_proxy(&mut stream, "an idle HTTP/1.1 connection").await;

    let (sender, connection) = h2(proxy.addr).await.unwrap();
    // The client keeps `sender`: it would close the connection itself without one.
    let (status, _, _) = h2_call(
        sender.clone(),
        h2_request(proxy.addr, "DescribeDomain", &describe()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let ended = tokio::time::timeout(DEADLINE, connection)
        .await
        .expect("the proxy closes an idle HTTP/2 connection")
        .unwrap();
    assert!(ended, "closed gracefully (GOAWAY), not cut");
    assert!(sender.is_closed());
    metric_reaches(&proxy, &closures("idle_timeout"), 2).await;
}

/// An upstream whose poll answers are `size` bytes, and whose other answers never end; it
/// reports on `cut` each connection the proxy closed while it was still writing.
struct BigUpstream {
    addr: SocketAddr,
    cut: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Reads one request head and its body off `stream` into `buf`, leaving what follows it;
/// whether it is a poll, or `None` once the connection ends.
async fn upstream_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<bool> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = request.parse(buf) {
            let value = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    .unwrap_or_default()
            };
            let length: usize = value("content-length").parse().unwrap_or(0);
            if buf.len() >= head + length {
                let poll = value("x-amz-target").ends_with("PollForActivityTask");
                buf.drain(..head + length);
                return Some(poll);
            }
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

impl BigUpstream {
    async fn start(size: usize) -> BigUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, cut) = tokio::sync::mpsc::unbounded_channel();
        let answer = json!({
            "taskToken": "UPSTREAM-TOKEN",
            "activityId": "a",
            "startedEventId": 1,
            "workflowExecution": {"workflowId": "w", "runId": "r"},
            "activityType": {"name": "t", "version": "1"},
            "input": "x".repeat(size),
        })
        .to_string();
        let answer = Arc::new(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .into_bytes(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (report, answer) = (report.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    // Kept alive: the proxy pools its upstream connections.
                    while let Some(poll) = upstream_request(&mut stream, &mut buf).await {
                        if poll {
                            if stream.write_all(&answer).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: 1073741824\r\n\r\n";
                        if stream.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = vec![b'x'; 64 * 1024];
                        // At most 1 GiB: far more than every buffer on the way holds.
                        for _ in 0..16 * 1024 {
                            if stream.write_all(&chunk).await.is_err() {
                                let _ = report.send(());
                                return;
                            }
                        }
                        return;
                    }
                });
            }
        });
        BigUpstream { addr, cut }
    }
}

/// A client socket with a small receive buffer, so that an unread answer fills it quickly.
async fn reluctant_reader(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn answers_the_client_does_not_read_are_dropped_with_their_connection() {
    const SIZE: usize = 24 * 1024 * 1024;
    let mut upstream = BigUpstream::start(SIZE).await;
    let proxy = Proxy::start_configured(
        configure("write_timeout_seconds = 1", "", Some(upstream.addr)),
        &[],
    )
    .await;

    // A poll whose large answer the proxy holds in full (to seal its token); the client
    // never reads it.
    let mut client = reluctant_reader(proxy.addr).await;
    let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    client.write_all(&head).await.unwrap();
    client.write_all(&body).await.unwrap();
    metric_reaches(&proxy, &closures("write_timeout"), 1).await;
    let read = closed_by_proxy(&mut client, "an unread poll answer").await;
    assert!(
        read < SIZE,
        "the answer was dropped, not delivered: {read} bytes"
    );

    // A streamed answer: dropping it closes its upstream connection, never pooled.
    let mut client = reluctant_reader(proxy.addr).await;
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    client.write_all(&head).await.unwrap();
    client.write_all(&body).await.unwrap();
    tokio::time::timeout(DEADLINE, upstream.cut.recv())
        .await
        .expect("the upstream sees its connection closed")
        .unwrap();
    closed_by_proxy(&mut client, "an unread streamed answer").await;
    metric_reaches(&proxy, &closures("write_timeout"), 2).await;
}

#[tokio::test]
async fn cleartext_http2_only_when_enabled() {
    let proxy = start("", "").await;
    let refused = async {
        let (sender, _connection) = h2(proxy.addr).await?;
        h2_call(
            sender,
            h2_request(proxy.addr, "DescribeDomain", &describe()),
        )
        .await
        .ok()
    };
    let answer = tokio::time::timeout(DEADLINE, refused)
        .await
        .expect("refused");
    assert!(
        answer.is_none(),
        "prior-knowledge HTTP/2 served: {answer:?}"
    );
    // What answers the preface is HTTP/1.1 (an error status, or a close), never HTTP/2's
    // SETTINGS frame.
    let mut raw = TcpStream::connect(proxy.addr).await.unwrap();
    raw.write_all(PREFACE).await.unwrap();
    let mut reply = [0u8; 64];
    let n = tokio::time::timeout(DEADLINE, raw.read(&mut reply))
        .await
        .expect("the proxy answers or closes")
        .unwrap_or(0);
    assert!(
        n == 0 || reply[..n].starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&reply[..n])
    );
    assert_eq!(proxy.upstream.count(), 0);

    let proxy = start("", "h2c = true").await;
    let (sender, _connection) = h2(proxy.addr).await.unwrap();
    let (status, _, body) = h2_call(
        sender,
        h2_request(proxy.addr, "DescribeDomain", &describe()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn max_concurrent_streams_is_announced() {
    let proxy = start("max_concurrent_streams = 7", "h2c = true").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(PREFACE).await.unwrap();
    stream.write_all(SETTINGS).await.unwrap();
    let read = async {
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before SETTINGS");
            buf.extend_from_slice(&chunk[..n]);
            // The server's first frame is its SETTINGS.
            if buf.len() >= 9 {
                let length =
                    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                assert_eq!(buf[3], 4, "a SETTINGS frame first");
                if buf.len() >= 9 + length {
                    return buf[9..9 + length]
                        .chunks(6)
                        .map(|s| {
                            (
                                u16::from_be_bytes([s[0], s[1]]),
                                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                            )
                        })
                        .collect::<Vec<_>>();
                }
            }
        }
    };
    let settings = tokio::time::timeout(DEADLINE, read)
        .await
        .expect("SETTINGS");
    assert!(settings.contains(&(3, 7)), "{settings:?}");
}

/// The proxy in front of a `Hold` upstream, with `limits` and cleartext HTTP/2.
async fn holding(limits: &str) -> (Proxy, RawUpstream) {
    let upstream = RawUpstream::start(Mode::Hold).await;
    let proxy =
        Proxy::start_configured(configure(limits, "h2c = true", Some(upstream.addr)), &[]).await;
    (proxy, upstream)
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let wait = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("{what}"));
}

/// Sends `n` polls at once on `sender`, a connection to `addr`.
fn polls(
    addr: SocketAddr,
    sender: &SendRequest<Full<Bytes>>,
    n: usize,
) -> tokio::task::JoinSet<(u16, String, serde_json::Value)> {
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (sender, request) = (
            sender.clone(),
            h2_request(addr, "PollForActivityTask", &poll()),
        );
        calls.spawn(async move { h2_call(sender, request).await.unwrap() });
    }
    calls
}

async fn next(
    calls: &mut tokio::task::JoinSet<(u16, String, serde_json::Value)>,
) -> (u16, String, serde_json::Value) {
    tokio::time::timeout(DEADLINE, calls.join_next())
        .await
        .expect("an answer")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn every_call_on_an_http2_connection_counts_against_max_connections() {
    let (proxy, upstream) = holding("max_connections = 4").await;
    let (sender, _connection) = h2(proxy.addr).await.unwrap();
    let mut calls = polls(proxy.addr, &sender, 8);
    // The connection's slot covers one poll; three more take the other slots; the last four
    // are refused at once.
    for _ in 0..4 {
        let (status, error, body) = next(&mut calls).await;
        assert_eq!(
            (status, error.as_str()),
            (503, "ServiceUnavailableException"),
            "{body}"
        );
    }
    until("four polls held", || upstream.requests() == 4).await;
    assert_eq!(
        upstream.requests(),
        4,
        "the refused polls never reached the upstream"
    );
    metric_reaches(&proxy, "swf_warden_capacity_refusals_total", 4).await;

    upstream.release(4);
    for _ in 0..4 {
        assert_eq!(next(&mut calls).await.0, 200);
    }
    // Their slots came back.
    upstream.release(4);
    let mut again = polls(proxy.addr, &sender, 4);
    for _ in 0..4 {
        assert_eq!(next(&mut again).await.0, 200);
    }
}

#[tokio::test]
async fn calls_on_an_http2_connection_end_with_it_and_close_their_upstream_connections() {
    let (proxy, upstream) = holding("").await;
    let (sender, connection) = h2(proxy.addr).await.unwrap();
    let calls = polls(proxy.addr, &sender, 2);
    until("two polls held", || upstream.requests() == 2).await;
    // The client goes away with both calls in flight.
    connection.abort();
    drop((sender, calls));
    until("no call left in flight", || {
        proxy.runtime.metrics.in_flight() == 0
    })
    .await;
    // The held answers then find their connections closed, not pooled.
    upstream.release(2);
    until("both upstream connections closed", || {
        upstream.closed() == 2
    })
    .await;
}

#[tokio::test]
async fn max_connections_per_ip_caps_connections_and_calls() {
    let (proxy, upstream) =
        holding("max_connections_per_ip = 2\nheader_read_timeout_seconds = 600").await;
    let first = TcpStream::connect(proxy.addr).await.unwrap();
    let second = TcpStream::connect(proxy.addr).await.unwrap();
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    assert_eq!(closed_by_proxy(&mut third, "a third connection").await, 0);
    metric_reaches(&proxy, &closures("per_ip_limit"), 1).await;
    drop((first, second));
    until("the two connections closed", || {
        proxy
            .runtime
            .metrics
            .render()
            .contains("swf_warden_open_connections 0")
    })
    .await;

    // One HTTP/2 connection from the same address: its slot and one more.
    let (sender, _connection) = h2(proxy.addr).await.unwrap();
    let mut calls = polls(proxy.addr, &sender, 3);
    let (status, error, body) = next(&mut calls).await;
    assert_eq!(
        (status, error.as_str()),
        (503, "ServiceUnavailableException"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("from this address"),
        "{body}"
    );
    until("two polls held", || upstream.requests() == 2).await;
    upstream.release(2);
    for _ in 0..2 {
        assert_eq!(next(&mut calls).await.0, 200);
    }
}

#[tokio::test]
async fn the_per_address_cap_is_shared_by_every_worker() {
    // `run_workers`, as the binary serves: two connections, dealt one to each worker, and
    // three places for their address.
    let (proxy, upstream) = holding("max_connections_per_ip = 3").await;
    let config = swf_warden::config::load(&proxy.config_path()).unwrap();
    let options =
        swf_warden::server::Options::proxy(None, config.listen.h2c, config.limits.clone());
    let runtime = Arc::new(swf_warden::runtime::Runtime::start(config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(swf_warden::server::run_workers(
        listener,
        2,
        runtime.clone(),
        options,
        async {
            let _ = stopped.await;
        },
    ));
    let (a, _a) = h2(addr).await.unwrap();
    let (b, _b) = h2(addr).await.unwrap();
    // Two polls on the first worker's connection take its slot and the third place...
    let mut first = polls(addr, &a, 2);
    until("two polls held", || upstream.requests() == 2).await;
    // ... so the other worker's connection has its own slot for one poll, and no more.
    let mut second = polls(addr, &b, 2);
    let (status, error, body) = next(&mut second).await;
    assert_eq!(
        (status, error.as_str()),
        (503, "ServiceUnavailableException"),
        "{body}"
    );
    until("three polls held", || upstream.requests() == 3).await;
    upstream.release(3);
    assert_eq!(next(&mut first).await.0, 200);
    assert_eq!(next(&mut first).await.0, 200);
    assert_eq!(next(&mut second).await.0, 200);
    drop((a, b));
    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the workers drain")
        .unwrap()
        .unwrap();
}

struct Tls {
    _dir: tempfile::TempDir,
    acceptor: tokio_rustls::TlsAcceptor,
    connector: Arc<rustls::ClientConfig>,
}

fn tls() -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let connector = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Tls {
        acceptor: swf_warden::tls::acceptor(&cert, &key).unwrap(),
        connector: Arc::new(connector),
        _dir: dir,
    }
}

async fn tls_connect(
    addr: SocketAddr,
    tls: &Tls,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = (*tls.connector).clone();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(addr).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), stream)
        .await
        .unwrap()
}

#[tokio::test]
async fn tls_counts_inside_the_header_read_timeout_and_alpn_picks_the_protocol() {
    let material = tls();
    let proxy = Proxy::start_tls_configured(
        configure("header_read_timeout_seconds = 1", "", None),
        material.acceptor.clone(),
    )
    .await;
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    closed_by_proxy(&mut silent, "no TLS handshake").await;
    // A ClientHello record that announces 512 bytes and sends 2.
    let mut partial = TcpStream::connect(proxy.addr).await.unwrap();
    partial.write_all(&[22, 3, 1, 2, 0, 1, 0]).await.unwrap();
    closed_by_proxy(&mut partial, "half a ClientHello").await;
    let mut handshaken = tls_connect(proxy.addr, &material, &[b"http/1.1"]).await;
    assert_eq!(
        closed_by_proxy(&mut handshaken, "a handshake and no head").await,
        0
    );
    metric_reaches(&proxy, &closures("header_timeout"), 3).await;

    // HTTP/2 only where ALPN chose it.
    let stream = tls_connect(proxy.addr, &material, &[b"http/1.1"]).await;
    let refused = async {
        let (sender, _connection) = h2_over(stream).await?;
        h2_call(
            sender,
            h2_request(proxy.addr, "DescribeDomain", &describe()),
        )
        .await
        .ok()
    };
    let answer = tokio::time::timeout(DEADLINE, refused)
        .await
        .expect("refused");
    assert!(answer.is_none(), "HTTP/2 served after ALPN chose http/1.1");
    let stream = tls_connect(proxy.addr, &material, &[b"h2"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, _connection) = h2_over(stream).await.unwrap();
    let (status, _, body) = h2_call(
        sender,
        h2_request(proxy.addr, "DescribeDomain", &describe()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(proxy.upstream.count(), 1);
}

/// Opens a connection, has one call of `operation` answered on it with `status`, and keeps
/// it open (idle).
async fn answered_and_idle(
    addr: SocketAddr,
    operation: &str,
    input: &serde_json::Value,
    status: u16,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (head, body) = h1_request(addr, operation, input);
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let (got, headers, body) = h1_answer(&mut stream).await;
    assert_eq!(got, status, "{body}");
    assert_ne!(header(&headers, "connection"), "close", "kept alive");
    stream
}

/// Finding 1 of the second review: with every slot held by a connection that has had its
/// answer and idles, a new caller waited for the idle timeout. Under pressure the longest
/// idle connections make way; the idle timeout here is far beyond the test.
#[tokio::test]
async fn idle_connections_make_way_when_slots_run_short() {
    let proxy = start("max_connections = 10\nidle_timeout_seconds = 3600", "").await;
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(answered_and_idle(proxy.addr, "DescribeDomain", &describe(), 200).await);
    }
    // Every slot is taken; the eleventh caller is served all the same.
    let mut late = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    late.write_all(&head).await.unwrap();
    late.write_all(&body).await.unwrap();
    assert_eq!(h1_answer(&mut late).await.0, 200, "a new caller got a slot");
    closed_by_proxy(&mut idle[0], "the longest idle connection").await;
    metric_reaches(&proxy, &closures("pressure"), 1).await;
    // Only the longest idle made way: the most recent one still serves.
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    let newest = idle.last_mut().unwrap();
    newest.write_all(&head).await.unwrap();
    newest.write_all(&body).await.unwrap();
    assert_eq!(h1_answer(newest).await.0, 200);
}

/// The tenant variant: polls refused by a `max_in_flight` quota leave connections open
/// behind them; they make way for another tenant's call.
#[tokio::test]
async fn connections_left_by_refused_polls_make_way_for_another_tenant() {
    let upstream = RawUpstream::start(Mode::Hold).await;
    let quota = "\n[[quota]]\nname = \"polls\"\nactions = [\"swf:PollFor*\"]\nprincipals = [\"tenant-a-worker\"]\nper = \"principal\"\nmax_in_flight = 1\n";
    let proxy = Proxy::start_configured(
        |config| {
            configure(
                "max_connections = 8\nidle_timeout_seconds = 3600",
                "",
                Some(upstream.addr),
            )(config)
                + quota
        },
        &[],
    )
    .await;
    // One poll held at the upstream, the others refused at once.
    let mut held = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    held.write_all(&head).await.unwrap();
    held.write_all(&body).await.unwrap();
    until("the first poll held", || upstream.requests() == 1).await;
    let mut refused = Vec::new();
    for _ in 0..7 {
        refused.push(answered_and_idle(proxy.addr, "PollForActivityTask", &poll(), 400).await);
    }
    // Tenant B, on a new connection, is served.
    let mut other = TcpStream::connect(proxy.addr).await.unwrap();
    let request = Raw::new(TENANT_B, "DescribeDomain", &json!({"name": "tenant-b"}));
    let request = request.build(proxy.addr);
    let mut head = b"POST / HTTP/1.1\r\n".to_vec();
    for (name, value) in request.headers() {
        head.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap()).as_bytes());
    }
    let body = json!({"name": "tenant-b"}).to_string();
    head.extend_from_slice(format!("content-length: {}\r\n\r\n{body}", body.len()).as_bytes());
    other.write_all(&head).await.unwrap();
    until("tenant B's call forwarded", || upstream.requests() == 2).await;
    // The upstream answers both: the held poll first.
    upstream.release(2);
    assert_eq!(h1_answer(&mut other).await.0, 200, "tenant B was served");
    assert_eq!(
        h1_answer(&mut held).await.0,
        200,
        "the held poll was never cut"
    );
    closed_by_proxy(
        &mut refused[0],
        "the longest idle refused poll's connection",
    )
    .await;
}

/// A request refused before its caller was authenticated is answered with
/// `Connection: close`, and the connection closes; an authenticated refusal keeps it.
#[tokio::test]
async fn unauthenticated_refusals_close_their_connection() {
    let proxy = start("", "").await;
    for request in [
        // No signature at all.
        &b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.0\r\nx-amz-target: SimpleWorkflowService.DescribeDomain\r\ncontent-length: 2\r\n\r\n{}"[..],
        // A signature by a key nobody holds.
        &b"POST / HTTP/1.1\r\nhost: x\r\nx-amz-date: 20250101T000000Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN000000000/20250101/us-east-1/swf/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\ncontent-length: 2\r\n\r\n{}"[..],
    ] {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let (status, headers, body) = h1_answer(&mut stream).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(header(&headers, "connection"), "close", "{headers:?}");
        closed_by_proxy(&mut stream, "an unauthenticated caller's connection").await;
    }
    // A tenant refused by policy keeps its connection for the next call.
    let mut stream = answered_and_idle(
        proxy.addr,
        "DescribeDomain",
        &json!({"name": "tenant-b"}),
        400,
    )
    .await;
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body).await.unwrap();
    assert_eq!(h1_answer(&mut stream).await.0, 200);
    assert_eq!(
        proxy.upstream.count(),
        1,
        "only the allowed call was forwarded"
    );
}

/// Finding 8 of the second review: the quota's admission was given back once the upstream's
/// answer was read, so a tenant could leave any number of large answers unread in the
/// proxy's memory. It is now held until the answer has been written: `max_in_flight` bounds
/// the unread answers too.
#[tokio::test]
async fn answers_left_unread_count_against_max_in_flight() {
    const SIZE: usize = 4 * 1024 * 1024;
    let upstream = BigUpstream::start(SIZE).await;
    let quota = "\n[[quota]]\nname = \"polls\"\nactions = [\"swf:PollFor*\"]\nprincipals = [\"tenant-a-worker\"]\nper = \"principal\"\nmax_in_flight = 2\n";
    let proxy = Proxy::start_configured(
        |config| configure("write_timeout_seconds = 600", "", Some(upstream.addr))(config) + quota,
        &[],
    )
    .await;
    let mut unread = Vec::new();
    for _ in 0..2 {
        let mut client = reluctant_reader(proxy.addr).await;
        let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
        client.write_all(&head).await.unwrap();
        client.write_all(&body).await.unwrap();
        // The answer has begun to arrive: the upstream's part of the call is over.
        let mut first = [0u8; 1];
        tokio::time::timeout(DEADLINE, client.read_exact(&mut first))
            .await
            .expect("the answer begins")
            .unwrap();
        unread.push(client);
    }
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    third.write_all(&head).await.unwrap();
    third.write_all(&body).await.unwrap();
    let (status, headers, body) = h1_answer(&mut third).await;
    assert_eq!(
        (status, header(&headers, "x-amzn-errortype")),
        (400, "LimitExceededFault"),
        "{body}"
    );
    // The unread answers go with their clients, and give their places back.
    drop(unread);
    until("the unread answers dropped", || {
        proxy.runtime.metrics.in_flight() == 0
    })
    .await;
    let mut fourth = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    fourth.write_all(&head).await.unwrap();
    fourth.write_all(&body).await.unwrap();
    let (status, _, _) = h1_answer_raw(&mut fourth).await;
    assert_eq!(status, 200);
}

/// Reads one HTTP/1.1 answer's head off `stream`, and its body whatever it holds.
async fn h1_answer_raw(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, usize) {
    let read = async {
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            assert!(n > 0, "closed before a whole answer");
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = response.parse(&buf) {
                let headers: Vec<(String, String)> = response
                    .headers
                    .iter()
                    .map(|h| {
                        let value = String::from_utf8_lossy(h.value).into_owned();
                        (h.name.to_ascii_lowercase(), value)
                    })
                    .collect();
                let length = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                if buf.len() >= head + length {
                    return (response.code.unwrap(), headers, length);
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("an answer")
}

/// The proxy serving HTTP/1.1 alone (its own server, as by default), in front of `mode`.
async fn h1_proxy(mode: Mode) -> (Proxy, RawUpstream) {
    let upstream = RawUpstream::start(mode).await;
    let proxy = Proxy::start_configured(configure("", "", Some(upstream.addr)), &[]).await;
    (proxy, upstream)
}

#[tokio::test]
async fn an_http1_client_leaving_mid_poll_ends_the_call_and_its_upstream_connection() {
    let (proxy, upstream) = h1_proxy(Mode::Hold).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    stream.write_all(&[head, body].concat()).await.unwrap();
    until("the poll held", || upstream.requests() == 1).await;
    assert_eq!(proxy.runtime.metrics.in_flight(), 1);
    // The client goes away: its call ends (its slot and quota admission with it).
    drop(stream);
    until("no call left in flight", || {
        proxy.runtime.metrics.in_flight() == 0
    })
    .await;
    // The held answer then finds its upstream connection closed, not pooled.
    upstream.release(1);
    until("the upstream connection closed", || upstream.closed() == 1).await;
}

#[tokio::test]
async fn pipelined_http1_requests_are_answered_in_order_behind_a_held_poll() {
    let (proxy, upstream) = h1_proxy(Mode::Hold).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (poll_head, poll_body) = h1_request(proxy.addr, "PollForActivityTask", &poll());
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    stream
        .write_all(&[poll_head, poll_body, head, body].concat())
        .await
        .unwrap();
    until("the poll held", || upstream.requests() == 1).await;
    // The second request waits for the first's answer, and is not taken as the client
    // leaving.
    assert_eq!(proxy.runtime.metrics.in_flight(), 1);
    upstream.release(1);
    let (status, headers, _) = h1_answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-amzn-requestid"), "raw-1");
    until("the second request forwarded", || upstream.requests() == 2).await;
    upstream.release(1);
    let (status, headers, body) = h1_answer(&mut stream).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-amzn-requestid"), "raw-2");
    assert_eq!(body["domainInfo"]["name"], "tenant-a");
}

#[tokio::test]
async fn an_http1_body_behind_expect_100_continue_is_asked_for_then_read() {
    let (proxy, upstream) = h1_proxy(Mode::KeepAlive).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    let head = [&head[..head.len() - 2], b"expect: 100-continue\r\n\r\n"].concat();
    stream.write_all(&head).await.unwrap();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0u8; interim.len()];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut got))
        .await
        .expect("an interim answer")
        .unwrap();
    assert_eq!(got, interim);
    assert_eq!(upstream.requests(), 0, "nothing forwarded before the body");
    stream.write_all(&body).await.unwrap();
    let (status, _, answer) = h1_answer(&mut stream).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(upstream.requests(), 1);
}

#[tokio::test]
async fn an_http10_client_gets_an_answer_it_can_read_then_the_close() {
    // The upstream answers chunked: HTTP/1.0 has no chunked coding, so the answer is
    // delimited by the connection's close.
    let (proxy, _upstream) = h1_proxy(Mode::Chunked).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    let head = [
        b"POST / HTTP/1.0".as_slice(),
        &head[b"POST / HTTP/1.1".len()..],
    ]
    .concat();
    stream.write_all(&[head, body].concat()).await.unwrap();
    let mut wire = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut wire))
        .await
        .expect("the proxy closes the connection")
        .unwrap();
    let wire = String::from_utf8(wire).unwrap();
    let (head, body) = wire.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body whole");
    assert_eq!(body["domainInfo"]["name"], "tenant-a");
}

#[tokio::test]
async fn a_request_behind_an_http1_body_refused_unread_is_never_read() {
    let (proxy, upstream) = h1_proxy(Mode::KeepAlive).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // Declared over `max_body_bytes` (65536): refused without reading it. What follows is a
    // whole signed request: were the connection kept, it would be read as the next one.
    let (head, body) = h1_request(proxy.addr, "DescribeDomain", &describe());
    let declared = format!("content-length: {}\r\n\r\n", body.len());
    let oversized = String::from_utf8(head.clone())
        .unwrap()
        .replace(&declared, "content-length: 70000\r\n\r\n");
    assert_ne!(oversized.as_bytes(), &head[..]);
    stream
        .write_all(&[oversized.as_bytes(), &head, &body].concat())
        .await
        .unwrap();
    let (status, _, answer) = h1_answer(&mut stream).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        closed_by_proxy(&mut stream, "after a refused body").await,
        0
    );
    assert_eq!(upstream.requests(), 0, "nothing forwarded");
}

/// A request body in pieces, of no declared length.
struct Pieces(std::collections::VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|p| Ok(hyper::body::Frame::data(p))))
    }
}

#[tokio::test]
async fn an_http2_body_over_the_limit_without_a_length_is_refused_413() {
    let proxy = start("", "h2c = true").await;
    let (mut sender, _connection) = h2::<Pieces>(proxy.addr).await.unwrap();
    // 80 KiB against `max_body_bytes = 65536`, found too large while it streams in.
    let pieces = (0..5).map(|_| Bytes::from(vec![b' '; 16 * 1024])).collect();
    let mut request = h2_request(proxy.addr, "DescribeDomain", &describe()).map(|_| Pieces(pieces));
    request.headers_mut().remove("content-length");
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("an answer")
        .unwrap();
    assert_eq!(response.status(), 413);
    let id = response.headers()["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "RequestEntityTooLargeException"
    );
    let record = proxy.audit_for(id);
    assert_eq!(record["errorCode"], "RequestEntityTooLargeException");
    assert_eq!(proxy.upstream.count(), 0, "nothing reached the upstream");
}
