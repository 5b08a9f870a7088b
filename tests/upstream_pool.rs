//! The upstream connections: kept alive and reused across calls, and every way an upstream
//! ends a connection (closing it idle, `Connection: close`, dropping a request it was sent)
//! stays invisible to the client or becomes a clean 503, never a hang or a lost answer.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw upstream treats its connections.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Keep-alive, `Content-Length` answers.
    KeepAlive,
    /// Keep-alive, chunked answers.
    Chunked,
    /// Answers, then closes the connection without saying so.
    CloseSilently,
    /// Answers with `Connection: close` (as moto does), then closes.
    ConnectionClose,
    /// Answers the first request of each connection; reads the second and closes unanswered.
    DropSecond,
}

/// A hand-written HTTP/1.1 upstream on loopback that counts connections and requests.
struct RawUpstream {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// Tells idle connections to close.
    close_idle: Arc<tokio::sync::Notify>,
    closed: Arc<AtomicUsize>,
}

impl RawUpstream {
    async fn start(mode: Mode) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let close_idle = Arc::new(tokio::sync::Notify::new());
        let closed = Arc::new(AtomicUsize::new(0));
        let (c, r, n, d) = (
            connections.clone(),
            requests.clone(),
            close_idle.clone(),
            closed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let (r, n, d) = (r.clone(), n.clone(), d.clone());
                tokio::spawn(async move {
                    serve(stream, mode, r, n).await;
                    d.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        RawUpstream {
            addr,
            connections,
            requests,
            close_idle,
            closed,
        }
    }

    /// Closes every idle connection, as an upstream's keep-alive timeout would, and returns
    /// once they are closed.
    async fn close_idle(&self) {
        self.close_idle.notify_waiters();
        while self.closed.load(Ordering::SeqCst) < self.connections() {
            tokio::task::yield_now().await;
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut stream: TcpStream,
    mode: Mode,
    requests: Arc<AtomicUsize>,
    close_idle: Arc<tokio::sync::Notify>,
) {
    let mut buf = Vec::new();
    for nth in 1.. {
        let closing = close_idle.notified();
        tokio::select! {
            read = read_request(&mut stream, &mut buf) => if !read { return },
            () = closing => return,
        }
        requests.fetch_add(1, Ordering::SeqCst);
        if mode == Mode::DropSecond && nth == 2 {
            return;
        }
        let body = r#"{"domainInfo":{"name":"tenant-a","status":"REGISTERED"},"configuration":{"workflowExecutionRetentionPeriodInDays":"1"}}"#;
        let answer = match mode {
            Mode::Chunked => {
                let (a, b) = body.split_at(10);
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: raw-{nth}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
            _ => {
                let close = if mode == Mode::ConnectionClose {
                    "connection: close\r\n"
                } else {
                    ""
                };
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: raw-{nth}\r\n{close}content-length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if matches!(mode, Mode::CloseSilently | Mode::ConnectionClose) {
            return;
        }
    }
}

/// Reads one request (head and `Content-Length` body) into `buf`, leaving any bytes after it.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = request.parse(buf) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + length {
                buf.drain(..head + length);
                return true;
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A proxy whose upstream is `upstream`.
async fn proxy_before(upstream: &RawUpstream) -> Proxy {
    let endpoint = format!("endpoint = \"http://{}\"", upstream.addr);
    Proxy::start_configured(
        |text| {
            text.lines()
                .map(|line| {
                    if line.starts_with("endpoint = ") {
                        endpoint.clone()
                    } else {
                        line.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        &[],
    )
    .await
}

async fn describe(proxy: &Proxy) -> RawResponse {
    let request = Raw::new(TENANT_A, "DescribeDomain", &json!({"name": "tenant-a"}));
    proxy.send(request.build(proxy.addr)).await
}

#[tokio::test]
async fn calls_reuse_one_kept_alive_connection() {
    for mode in [Mode::KeepAlive, Mode::Chunked] {
        let upstream = RawUpstream::start(mode).await;
        let proxy = proxy_before(&upstream).await;
        for n in 1..=5 {
            let answer = describe(&proxy).await;
            assert_eq!(answer.status, 200, "call {n}: {:?}", answer.body);
            assert_eq!(answer.body["domainInfo"]["name"], "tenant-a");
            assert_eq!(answer.request_id(), format!("raw-{n}"));
        }
        assert_eq!(upstream.requests(), 5);
        assert_eq!(
            upstream.connections(),
            1,
            "one connection carries every call"
        );
    }
}

#[tokio::test]
async fn connections_the_upstream_ends_are_not_reused() {
    for mode in [Mode::CloseSilently, Mode::ConnectionClose] {
        let upstream = RawUpstream::start(mode).await;
        let proxy = proxy_before(&upstream).await;
        for n in 1..=5 {
            let answer = describe(&proxy).await;
            assert_eq!(answer.status, 200, "call {n}: {:?}", answer.body);
            assert_eq!(answer.body["domainInfo"]["name"], "tenant-a");
        }
        assert_eq!(
            upstream.requests(),
            5,
            "each call reached the upstream once"
        );
        assert_eq!(upstream.connections(), 5, "a new connection for each call");
    }
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_not_used() {
    let upstream = RawUpstream::start(Mode::KeepAlive).await;
    let proxy = proxy_before(&upstream).await;
    assert_eq!(describe(&proxy).await.status, 200);
    upstream.close_idle().await;
    for n in 2..=3 {
        let answer = describe(&proxy).await;
        assert_eq!(answer.status, 200, "call {n}: {:?}", answer.body);
    }
    assert_eq!(
        upstream.requests(),
        3,
        "each call reached the upstream once"
    );
    assert_eq!(
        upstream.connections(),
        2,
        "one new connection after the close"
    );
}

#[tokio::test]
async fn a_request_the_upstream_drops_is_a_503_and_never_sent_twice() {
    let upstream = RawUpstream::start(Mode::DropSecond).await;
    let proxy = proxy_before(&upstream).await;
    assert_eq!(describe(&proxy).await.status, 200);

    // The second request goes on the kept-alive connection and is read, then dropped: it may
    // have taken effect, so it is not sent again.
    let dropped = describe(&proxy).await;
    assert_eq!(dropped.status, 503, "{:?}", dropped.body);
    assert_eq!(dropped.error_type(), "ServiceUnavailableException");
    assert_eq!(
        upstream.requests(),
        2,
        "the dropped request was not retried"
    );

    // The broken connection is gone; the next call opens a fresh one.
    assert_eq!(describe(&proxy).await.status, 200);
    assert_eq!(upstream.connections(), 2);
}

#[tokio::test]
async fn a_reload_to_another_upstream_never_reuses_the_old_connections() {
    let first = RawUpstream::start(Mode::KeepAlive).await;
    let second = RawUpstream::start(Mode::KeepAlive).await;
    let proxy = proxy_before(&first).await;
    assert_eq!(describe(&proxy).await.status, 200);

    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    let config = config.replace(&first.addr.to_string(), &second.addr.to_string());
    std::fs::write(proxy.config_path(), config).unwrap();
    proxy.runtime.reload().unwrap();

    for _ in 0..3 {
        assert_eq!(describe(&proxy).await.status, 200);
    }
    assert_eq!(
        first.requests(),
        1,
        "the old upstream's kept-alive connection was not used"
    );
    assert_eq!(second.requests(), 3);
    assert_eq!(second.connections(), 1);
}
