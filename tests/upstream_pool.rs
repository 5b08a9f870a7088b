//! The upstream connections: kept alive and reused across calls, and every way an upstream
//! ends a connection (closing it idle, `Connection: close`, dropping a request it was sent)
//! stays invisible to the client or becomes a clean 503, never a hang or a lost answer.

mod common;

use common::raw_upstream::{Mode, RawUpstream};
use common::*;
use serde_json::json;

/// A proxy whose upstream is `upstream`.
async fn proxy_before(upstream: &RawUpstream) -> Proxy {
    let endpoint = format!("endpoint = \"http://{}\"", upstream.addr);
    Proxy::start_configured(|text| replace_endpoint(&text, &endpoint), &[]).await
}

async fn describe(proxy: &Proxy) -> RawResponse {
    let request = Raw::new(TENANT_A, "DescribeDomain", &json!({"name": "tenant-a"}));
    proxy.send(request.build(proxy.addr)).await
}

#[tokio::test]
async fn kept_alive_connections_are_reused_and_ended_ones_are_not() {
    // (how the upstream answers, how many connections five calls take)
    let cases = [
        (Mode::KeepAlive, 1),
        (Mode::Chunked, 1),
        (Mode::CloseSilently, 5),
        (Mode::ConnectionClose, 5),
    ];
    for (mode, connections) in cases {
        let upstream = RawUpstream::start(mode).await;
        let proxy = proxy_before(&upstream).await;
        for n in 1..=5 {
            let answer = describe(&proxy).await;
            assert_eq!(answer.status, 200, "call {n}: {:?}", answer.body);
            assert_eq!(answer.body["domainInfo"]["name"], "tenant-a");
            // The raw upstream numbers the requests of each connection.
            let nth = if connections == 1 { n } else { 1 };
            assert_eq!(answer.request_id(), format!("raw-{nth}"));
        }
        assert_eq!(
            upstream.requests(),
            5,
            "each call reached the upstream once"
        );
        assert_eq!(upstream.connections(), connections);
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
async fn a_reload_keeps_the_upstream_connections_only_for_the_same_upstream() {
    let first = RawUpstream::start(Mode::KeepAlive).await;
    let second = RawUpstream::start(Mode::KeepAlive).await;
    let proxy = proxy_before(&first).await;
    assert_eq!(describe(&proxy).await.status, 200);

    // A reload that keeps the upstream (here, another upstream timeout) keeps its connections.
    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    let edited = config.replacen("[upstream]\n", "[upstream]\ntimeout_seconds = 29\n", 1);
    assert_ne!(edited, config);
    std::fs::write(proxy.config_path(), edited).unwrap();
    proxy.runtime.reload().unwrap();
    assert_eq!(describe(&proxy).await.status, 200);
    assert_eq!(
        first.connections(),
        1,
        "the kept-alive connection was reused"
    );
    assert_eq!(first.requests(), 2);

    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    let config = config.replace(&first.addr.to_string(), &second.addr.to_string());
    std::fs::write(proxy.config_path(), config).unwrap();
    proxy.runtime.reload().unwrap();

    for _ in 0..3 {
        assert_eq!(describe(&proxy).await.status, 200);
    }
    assert_eq!(
        first.requests(),
        2,
        "the old upstream's kept-alive connection was not used"
    );
    assert_eq!(second.requests(), 3);
    assert_eq!(second.connections(), 1);
}

/// An upstream whose `i`-th connection answers its `j`-th request with `script[i][j]`, written
/// as it stands (misbehaving on purpose); it counts its connections.
struct Scripted {
    addr: std::net::SocketAddr,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    async fn start(script: Vec<Vec<String>>) -> Scripted {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let answers = script.get(n).cloned().unwrap_or_default();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    for answer in answers {
                        // One request: its head and its declared body.
                        loop {
                            let mut headers = [httparse::EMPTY_HEADER; 32];
                            let mut request = httparse::Request::new(&mut headers);
                            if let Ok(httparse::Status::Complete(head)) = request.parse(&buf) {
                                let length: usize = request
                                    .headers
                                    .iter()
                                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                                    .unwrap_or(0);
                                if buf.len() >= head + length {
                                    buf.drain(..head + length);
                                    break;
                                }
                            }
                            let mut chunk = [0u8; 4096];
                            match stream.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    // Kept open until the proxy closes it.
                    let mut rest = [0u8; 64];
                    while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
                });
            }
        });
        Scripted { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn answer(body: &serde_json::Value) -> String {
    let body = body.to_string();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn activity_task(tenant: &str) -> serde_json::Value {
    json!({
        "taskToken": format!("UPSTREAM-{tenant}"),
        "activityId": format!("{tenant}-task"),
        "startedEventId": 1,
        "workflowExecution": {"workflowId": "w", "runId": "r"},
        "activityType": {"name": "t", "version": "1"},
    })
}

/// Finding 6 of the second review: an upstream (or a middlebox) answered a call with a `204`
/// that declared `Content-Length: 5` and later sent a second answer on the same connection;
/// pooled, the connection gave that stray answer (tenant A's activity task) to the next call,
/// tenant B's poll, sealed for B's domain. An answer whose framing contradicts its status, or
/// was repaired, is never followed by another call on its connection.
#[tokio::test]
async fn a_stray_answer_after_a_suspect_one_never_reaches_the_next_caller() {
    let stray = answer(&activity_task("tenant-a"));
    for first in [
        "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\n{}".to_owned(),
        "HTTP/1.1 200 OK\r\ncontent-length: 2, 2\r\n\r\n{}".to_owned(),
        "HTTP/1.1 100 Continue\r\ncontent-length: 3\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_owned(),
    ] {
        let upstream = Scripted::start(vec![
            // Were B's poll sent on the first connection, the stray answer would come first.
            vec![first.clone(), stray.clone() + &answer(&activity_task("tenant-b"))],
            vec![answer(&activity_task("tenant-b"))],
        ])
        .await;
        let endpoint = format!("endpoint = \"http://{}\"", upstream.addr);
        let proxy = Proxy::start_configured(|text| replace_endpoint(&text, &endpoint), &[]).await;
        let a = proxy.client(TENANT_A);
        let _ = a.describe_domain().name("tenant-a").send().await;
        let task = activity_poll(&proxy.client(TENANT_B), "tenant-b", "work")
            .send()
            .await
            .expect("tenant B's poll");
        assert_eq!(
            task.activity_id(),
            "tenant-b-task",
            "{first:?}: tenant B got its own task"
        );
        assert_eq!(upstream.connections(), 2, "{first:?}: not reused");
    }
}
