//! Running it in production: hot reload under load, graceful drain, limits, the admin
//! endpoints, audit durability and failure, and two replicas sharing token keys.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_reloads_under_load_lose_no_request() {
    let proxy = Proxy::start().await;
    let client = proxy.client(TENANT_A);
    let token = poll_token(&client, "tenant-a", "work").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, token, done, ok) = (client.clone(), token.clone(), done.clone(), ok.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !done.load(Ordering::Relaxed) {
                match client
                    .record_activity_task_heartbeat()
                    .task_token(&token)
                    .send()
                    .await
                {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.push(format!("{e:?}")),
                }
            }
            failures
        }));
    }
    let runtime = proxy.runtime.clone();
    for i in 0..100 {
        // Alternate between two valid policy texts so every reload really changes something.
        let text = if i % 2 == 0 {
            "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnDomain\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n"
        } else {
            "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnDomain2\"\nEffect = \"Allow\"\nAction = [\"swf:*\"]\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n"
        };
        std::fs::write(proxy.dir.path().join("policies/tenant-a.toml"), text).unwrap();
        let r = runtime.clone();
        tokio::task::spawn_blocking(move || r.reload())
            .await
            .unwrap()
            .unwrap();
        tokio::task::yield_now().await;
    }
    done.store(true, Ordering::Relaxed);
    for w in workers {
        let failures = w.await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
    }
    assert!(ok.load(Ordering::Relaxed) > 0);
    let metrics = proxy.runtime.metrics.render();
    assert!(
        metrics.contains("swf_warden_reloads_total{outcome=\"success\"} 100"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_broken_reload_is_refused_and_the_last_good_set_keeps_serving() {
    let proxy = Proxy::start().await;
    std::fs::write(
        proxy.dir.path().join("policies/tenant-a.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Perhaps\"\n",
    )
    .unwrap();
    let err = proxy.runtime.reload().unwrap_err();
    assert!(
        err.contains("tenant-a.toml") && err.contains("`Effect` must be"),
        "{err}"
    );
    let (_, readiness) = proxy.runtime.readiness();
    assert!(
        readiness.contains("the last reload failed at ")
            && readiness.contains("generation 1 keeps serving")
            && readiness.contains("`Effect` must be"),
        "{readiness}"
    );
    assert!(
        !readiness.contains("warning"),
        "a failed reload shows its errors only: {readiness}"
    );
    assert!(proxy
        .runtime
        .metrics
        .render()
        .contains("swf_warden_last_reload_success 0"));
    proxy
        .client(TENANT_A)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("still served by the previous set");

    // A good set again: taken, and the status clears.
    std::fs::write(
        proxy.dir.path().join("policies/tenant-a.toml"),
        "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Deny\"\nAction = \"swf:DescribeDomain\"\nResource = \"*\"\n",
    )
    .unwrap();
    proxy.runtime.reload().unwrap();
    let (_, readiness) = proxy.runtime.readiness();
    assert!(
        readiness.starts_with("ready\ngeneration 2, loaded ") && !readiness.contains("failed"),
        "{readiness}"
    );
    assert_eq!(proxy.runtime.generation().number, 2);
    let err = describe_refused(&proxy.client(TENANT_A), "tenant-a").await;
    assert_eq!(
        sdk_code(&err),
        "OperationNotPermittedFault",
        "the new policy applies"
    );
}

#[tokio::test]
async fn reload_rotates_token_keys_and_adds_principals() {
    let mut proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    let poll = || activity_poll(&a, "tenant-a", "work").send();
    let old_token = poll().await.unwrap().task_token().to_owned();
    let config = std::fs::read_to_string(proxy.config_path()).unwrap();
    let rotated = config.replace(
        "keys = [{ id = \"k1\"",
        "keys = [{ id = \"k2\", secret = \"the-next-token-key-0123456789abcdef\" }, { id = \"k1\"",
    ) + "\n[[principal]]\nname = \"newcomer\"\naccess_key_id = \"AKIANEWCOMER00000001\"\nsecret_access_key = \"secret-new\"\npolicies = [\"tenant-a\"]\n";
    std::fs::write(proxy.config_path(), rotated).unwrap();
    proxy.runtime.reload().unwrap();
    a.record_activity_task_heartbeat()
        .task_token(&old_token)
        .send()
        .await
        .expect("the old key still opens");
    let new_token = poll().await.unwrap().task_token().to_owned();
    assert_ne!(
        new_token[..8],
        old_token[..8],
        "sealed under the new key id"
    );
    let newcomer = proxy.client_with("AKIANEWCOMER00000001", "secret-new");
    newcomer
        .record_activity_task_heartbeat()
        .task_token(&new_token)
        .send()
        .await
        .expect("a principal added by reload");
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_a_long_poll_in_flight() {
    let mut proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    // The fake upstream holds "slow" polls for 3 s.
    let poll = tokio::spawn(async move { activity_poll(&a, "tenant-a", "slow").send().await });
    // Wait until the poll is in the proxy, then shut down.
    wait_until("the poll is in flight", || {
        proxy.runtime.metrics.in_flight() > 0
    })
    .await;
    let addr = proxy.addr;
    proxy.shutdown().await;
    let task = poll.await.unwrap().expect("the poll in flight is answered");
    assert!(task.task_token().starts_with("sw1."));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_denials_each_leave_exactly_one_record() {
    let proxy = Proxy::start().await;
    let b = proxy.client(TENANT_B);
    let n = 200;
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { describe_refused(&b, "tenant-a").await })
        })
        .collect();
    let mut ids = Vec::new();
    for c in calls {
        ids.push(sdk_request_id(&c.await.unwrap()));
    }
    let records = proxy.audit();
    assert_eq!(records.len(), n);
    for id in ids {
        assert_eq!(
            records
                .iter()
                .filter(|r| r["requestId"] == id.as_str())
                .count(),
            1
        );
    }
    assert!(proxy
        .runtime
        .metrics
        .render()
        .contains(&format!("swf_warden_audit_records_total {n}")));
}

#[tokio::test]
async fn calls_that_must_be_audited_are_refused_when_the_audit_log_fails() {
    let proxy = Proxy::start_configured(
        |c| {
            c.replace(
                "path = \"audit.log\"",
                "path = \"/dev/full\"\ninclude_allowed = true",
            )
        },
        &[],
    )
    .await;
    let err = describe_refused(&proxy.client(TENANT_B), "tenant-a").await;
    assert_eq!(
        sdk_code(&err),
        "ServiceUnavailableException",
        "a denial is not answered unrecorded"
    );
    let err = describe_refused(&proxy.client(TENANT_A), "tenant-a").await;
    assert_eq!(
        sdk_code(&err),
        "ServiceUnavailableException",
        "nor is an allowed call with include_allowed"
    );
    assert_eq!(
        proxy.upstream.count(),
        0,
        "an allowed call is not forwarded while the log is broken"
    );
    assert!(proxy
        .runtime
        .metrics
        .render()
        .contains("swf_warden_audit_write_failures_total 2"));
}

/// `/dev/full` opens, so the log starts healthy: the first write to fail is the one after an
/// allowed (or shadowed) call was forwarded. Its answer is withheld, never given unrecorded.
#[tokio::test]
async fn an_audit_write_that_fails_after_forwarding_withholds_the_answer() {
    let shadow = "\n[[principal]]\nname = \"shadow\"\naccess_key_id = \"AKIASHADOW0000000001\"\nsecret_access_key = \"secret-shadow\"\npolicies = []\nenforce = false\n";
    for (what, include_allowed, key, secret) in [
        (
            "an allowed call with include_allowed",
            true,
            TENANT_A.key,
            TENANT_A.secret,
        ),
        (
            "a shadowed denial",
            false,
            "AKIASHADOW0000000001",
            "secret-shadow",
        ),
    ] {
        let proxy = Proxy::start_configured(
            |c| {
                c.replace(
                    "path = \"audit.log\"",
                    &format!("path = \"/dev/full\"\ninclude_allowed = {include_allowed}"),
                ) + shadow
            },
            &[],
        )
        .await;
        assert!(proxy.runtime.app().audit.healthy(), "{what}");
        let err = describe_refused(&proxy.client_with(key, secret), "tenant-a").await;
        assert_eq!(sdk_code(&err), "ServiceUnavailableException", "{what}");
        assert_eq!(
            proxy.upstream.count(),
            1,
            "{what}: forwarded once, its answer withheld"
        );
        assert!(
            !proxy.runtime.app().audit.healthy(),
            "{what}: the write failed"
        );
    }
}

#[tokio::test]
async fn a_slowloris_client_is_cut_without_disturbing_others() {
    let proxy = Proxy::start_configured(
        |c| {
            c.replace(
                "max_body_bytes = 65536",
                "max_body_bytes = 65536\nheader_read_timeout_seconds = 1",
            )
        },
        &[],
    )
    .await;
    let mut slow = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile a normal client is served.
    proxy
        .client(TENANT_A)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap();
    // The slow client never finishes its headers: the proxy closes the connection.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was closed by the proxy");
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let proxy = Proxy::start().await;
    let mut request =
        Raw::new(TENANT_A, "DescribeDomain", &json!({"name": "tenant-a"})).build(proxy.addr);
    request
        .headers_mut()
        .insert("x-padding", "p".repeat(64 * 1024).parse().unwrap());
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client.request(request).await.expect("the proxy answers");
    assert_eq!(
        response.status().as_u16(),
        431,
        "Request Header Fields Too Large"
    );
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn admin_endpoints() {
    let proxy = Proxy::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = listener.local_addr().unwrap();
    tokio::spawn(swf_warden::server::run(
        listener,
        proxy.runtime.clone(),
        swf_warden::server::Options::admin(&Default::default(), 64),
        std::future::pending(),
    ));
    let _ = proxy
        .client(TENANT_B)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await;
    proxy
        .client(TENANT_A)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap();
    let _ = proxy
        .client_with(TENANT_A.key, "wrong")
        .describe_domain()
        .name("tenant-a")
        .send()
        .await;
    let get = |path: &'static str| async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let response = client
            .get(format!("http://{admin}{path}").parse().unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".to_owned()));
    let (status, readiness) = get("/readyz").await;
    assert_eq!(status, 200);
    let g = proxy.runtime.generation();
    assert_eq!(
        readiness,
        format!(
            "ready\ngeneration 1, loaded {}: {} principals, {} policies, {} statements\nupstream credentials: the static key AKIDUPSTREAM, no expiry\n",
            g.loaded_at, g.principals, g.policies, g.statements
        )
    );
    assert!(g.principals > 0 && g.policies > 0 && g.statements >= g.policies);
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "swf_warden_requests_total{operation=\"DescribeDomain\",decision=\"implicitDeny\"} 1",
        "swf_warden_requests_total{operation=\"DescribeDomain\",decision=\"allowed\"} 1",
        "swf_warden_auth_failures_total{error=\"InvalidSignatureException\"} 1",
        "swf_warden_upstream_duration_seconds_count 1",
        "swf_warden_proxy_duration_seconds_count 3",
        "swf_warden_audit_records_total 2",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
    assert_eq!(get("/nope").await.0, 404);
    // GET only: a POST (a probe misconfigured, or a request smuggled through) is 405.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let request = http::Request::post(format!("http://{admin}{path}"))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"x")))
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status().as_u16(), 405, "{path}");
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }
}

#[tokio::test]
async fn two_replicas_with_the_same_keys_serve_one_tenant() {
    let first = Proxy::start().await;
    let second = Proxy::start_against(first.upstream.clone(), "").await;
    let token = poll_token(&first.client(TENANT_A), "tenant-a", "work").await;
    second
        .client(TENANT_A)
        .record_activity_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .expect("the other replica opens it");
    second
        .client(TENANT_A)
        .respond_activity_task_completed()
        .task_token(&token)
        .send()
        .await
        .unwrap();
    let err = second
        .client(TENANT_B)
        .record_activity_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let ops = first.upstream.operations();
    assert_eq!(
        ops,
        [
            "PollForActivityTask",
            "RecordActivityTaskHeartbeat",
            "RespondActivityTaskCompleted"
        ]
    );
}

#[tokio::test]
async fn beyond_max_connections_new_connections_wait_their_turn() {
    // One connection slot: while a slow poll holds it, a second client's call is not served;
    // it is answered after the poll completes. Asserted by order of completion, not by time.
    let proxy = Proxy::start_configured(
        |c| {
            c.replace(
                "max_body_bytes = 65536",
                "max_body_bytes = 65536\nmax_connections = 1",
            )
        },
        &[],
    )
    .await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let slow = {
        let (client, order) = (proxy.client(TENANT_A), order.clone());
        tokio::spawn(async move {
            activity_poll(&client, "tenant-a", "slow")
                .send()
                .await
                .unwrap();
            order.lock().unwrap().push("poll");
        })
    };
    wait_until("the poll is in flight", || {
        proxy.runtime.metrics.in_flight() > 0
    })
    .await;
    let other = proxy.client(TENANT_A);
    other
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap();
    order.lock().unwrap().push("describe");
    slow.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["poll", "describe"]);
}
