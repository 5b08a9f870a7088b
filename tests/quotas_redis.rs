//! Rate buckets shared through a real Redis (SPEC, "Fair share", `[quota_store]`): two
//! replicas admit one tenant's burst once, not twice; Redis stopping, or hanging, degrades as
//! `on_error` says and never holds a call past the store's deadline; Redis coming back is used
//! again.

mod common;

use std::time::Duration;

use common::redis_server::{silent_listener, RedisServer};
use common::*;

/// A bucket of 4 that barely refills within a test: one token leased per Redis call.
fn config(url: &str, on_error: &str) -> impl FnOnce(String) -> String {
    let extra = format!(
        r#"
[[quota]]
name = "heartbeats"
actions = ["swf:RecordActivityTaskHeartbeat"]
groups = ["tenants"]
per = "principal"
rate_per_second = 0.001
burst = 4

[quota_store]
backend = "redis"
url = "{url}"
on_error = "{on_error}"
timeout_ms = 200
"#
    );
    move |c| format!("{c}\n{extra}")
}

type HeartbeatResult = Result<(), String>;

/// One heartbeat by tenant A through `proxy`, failing the test if it takes more than 10 s.
async fn heartbeat(proxy: &Proxy, token: &str) -> HeartbeatResult {
    let call = proxy
        .client(TENANT_A)
        .record_activity_task_heartbeat()
        .task_token(token)
        .send();
    match tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("a quota check must never hang")
    {
        Ok(_) => Ok(()),
        Err(e) => Err(sdk_code(&e)),
    }
}

fn throttled(outcome: &HeartbeatResult) -> bool {
    matches!(outcome, Err(code) if code == "ThrottlingException")
}

fn forwarded(proxy: &Proxy) -> usize {
    proxy
        .upstream
        .operations()
        .iter()
        .filter(|o| *o == "RecordActivityTaskHeartbeat")
        .count()
}

#[tokio::test]
async fn two_replicas_admit_a_tenants_burst_once_not_twice() {
    let redis = RedisServer::start();
    let one = Proxy::start_configured(config(&redis.url(), "deny"), &[]).await;
    let two = Proxy::start_configured(config(&redis.url(), "deny"), &[]).await;
    // A token sealed by one replica opens on the other: they share the task-token keys.
    let token = poll_token(&one.client(TENANT_A), "tenant-a", "tl").await;
    let mut outcomes = Vec::new();
    for i in 0..8 {
        let replica = if i % 2 == 0 { &one } else { &two };
        outcomes.push(heartbeat(replica, &token).await);
    }
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(admitted, 4, "{outcomes:?}");
    assert!(outcomes[4..].iter().all(throttled), "{outcomes:?}");
    assert_eq!(forwarded(&one) + forwarded(&two), 4);
    assert_eq!(
        redis.keys("*"),
        ["swf-warden:quota:heartbeats:tenant-a-worker"],
        "one bucket, under the proxy's prefix"
    );
    // Tenant B's bucket is its own.
    let b = two.client(TENANT_B);
    let token_b = poll_token(&b, "tenant-b", "tl").await;
    b.record_activity_task_heartbeat()
        .task_token(&token_b)
        .send()
        .await
        .expect("B's first heartbeat");
}

/// Spends one token through Redis, stops Redis, and returns what the next calls got.
async fn after_redis_stops(on_error: &str, calls: usize) -> (Proxy, Vec<HeartbeatResult>) {
    let redis = RedisServer::start();
    let proxy = Proxy::start_configured(config(&redis.url(), on_error), &[]).await;
    let token = poll_token(&proxy.client(TENANT_A), "tenant-a", "tl").await;
    heartbeat(&proxy, &token).await.expect("through Redis");
    redis.stop();
    let mut outcomes = Vec::new();
    for _ in 0..calls {
        outcomes.push(heartbeat(&proxy, &token).await);
    }
    (proxy, outcomes)
}

#[tokio::test]
async fn redis_gone_with_on_error_deny_throttles_every_call_on_record() {
    let (proxy, outcomes) = after_redis_stops("deny", 3).await;
    assert!(outcomes.iter().all(throttled), "{outcomes:?}");
    assert_eq!(forwarded(&proxy), 1);
    let metrics = proxy.runtime.metrics.render();
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let requests = counter("swf_warden_quota_store_requests_total ");
    assert!(requests >= 2, "{metrics}");
    assert_eq!(
        counter("swf_warden_quota_store_failures_total "),
        requests - 1,
        "every request after Redis stopped failed"
    );
    let throttled: Vec<_> = proxy
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == "throttled")
        .collect();
    assert_eq!(throttled.len(), 3);
    assert!(throttled.iter().all(|r| r["quota"] == "heartbeats"));
}

#[tokio::test]
async fn redis_gone_with_on_error_allow_admits_past_the_burst() {
    let (proxy, outcomes) = after_redis_stops("allow", 6).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(forwarded(&proxy), 7);
}

#[tokio::test]
async fn redis_gone_with_on_error_local_counts_on_the_replicas_own_bucket() {
    let (proxy, outcomes) = after_redis_stops("local", 6).await;
    // The local bucket is whole (Redis held the spending so far): the burst of 4, then no.
    let admitted = outcomes.iter().take_while(|o| o.is_ok()).count();
    assert_eq!(admitted, 4, "{outcomes:?}");
    assert!(outcomes[4..].iter().all(throttled), "{outcomes:?}");
    assert_eq!(forwarded(&proxy), 5);
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_a_deadline_not_a_hang() {
    let (port, _silent) = silent_listener().await;
    let url = format!("redis://127.0.0.1:{port}/0");
    let proxy = Proxy::start_configured(config(&url, "allow"), &[]).await;
    let token = poll_token(&proxy.client(TENANT_A), "tenant-a", "tl").await;
    for _ in 0..3 {
        heartbeat(&proxy, &token)
            .await
            .expect("on_error = allow once the deadline passes");
    }
    assert_eq!(forwarded(&proxy), 3);
}

#[tokio::test]
async fn redis_coming_back_is_used_again() {
    let redis = RedisServer::start();
    let proxy = Proxy::start_configured(config(&redis.url(), "deny"), &[]).await;
    let token = poll_token(&proxy.client(TENANT_A), "tenant-a", "tl").await;
    heartbeat(&proxy, &token).await.expect("through Redis");
    let port = redis.stop();
    assert_eq!(
        heartbeat(&proxy, &token).await,
        Err("ThrottlingException".into()),
        "Redis is down and on_error = deny"
    );
    let redis = RedisServer::start_on(port);
    // The store retries after a pause; calls are refused until then (bounded: 10 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match heartbeat(&proxy, &token).await {
            Ok(()) => break,
            Err(code) => assert_eq!(code, "ThrottlingException"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis was not used again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        redis.keys("swf-warden:quota:*"),
        ["swf-warden:quota:heartbeats:tenant-a-worker"],
        "the admitted call spent a token of the new server's bucket"
    );
}
