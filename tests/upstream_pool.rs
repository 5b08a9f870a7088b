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
