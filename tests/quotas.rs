//! Fair share through the whole proxy (SPEC, "Fair share"): a tenant over its rate or its
//! cap on calls in flight is refused as AWS would (`ThrottlingException`,
//! `LimitExceededFault`), on record and counted, with nothing forwarded, while the other
//! tenants go on; buckets survive reloads; `ListDomains` shows each tenant only its domains.

mod common;

use std::time::Duration;

use common::*;

/// The standard test configuration with `quotas` appended.
async fn start(quotas: &'static str) -> Proxy {
    Proxy::start_configured(move |c| format!("{c}\n{quotas}"), &[]).await
}

/// Barely refills within a test: a bucket of `burst` calls.
const HEARTBEATS: &str = r#"
[[quota]]
name = "heartbeats"
actions = ["swf:RecordActivityTask*"]
principals = ["tenant-*"]
per = "principal"
rate_per_second = 0.001
burst = 3
"#;

fn heartbeats(proxy: &Proxy) -> usize {
    proxy
        .upstream
        .operations()
        .iter()
        .filter(|o| *o == "RecordActivityTaskHeartbeat")
        .count()
}

fn metric(proxy: &Proxy, line: &str) -> u64 {
    let text = proxy.runtime.metrics.render();
    text.lines()
        .find_map(|l| l.strip_prefix(line).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no `{line}` in\n{text}"))
}

#[tokio::test]
async fn a_tenant_over_its_rate_is_throttled_on_record_and_the_other_is_not() {
    let proxy = start(HEARTBEATS).await;
    let (a, b) = (proxy.client(TENANT_A), proxy.client(TENANT_B));
    let token_a = poll_token(&a, "tenant-a", "tl").await;
    let token_b = poll_token(&b, "tenant-b", "tl").await;
    for _ in 0..3 {
        a.record_activity_task_heartbeat()
            .task_token(&token_a)
            .send()
            .await
            .expect("within the burst");
    }
    let err = a
        .record_activity_task_heartbeat()
        .task_token(&token_a)
        .send()
        .await
        .expect_err("over the rate");
    assert_eq!(sdk_code(&err), "ThrottlingException");
    assert_eq!(heartbeats(&proxy), 3, "the throttled call was forwarded");
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 400);
    let body: serde_json::Value =
        serde_json::from_slice(raw.body().bytes().expect("a buffered body")).unwrap();
    assert_eq!(
        body["__type"],
        "com.amazon.coral.availability#ThrottlingException"
    );
    assert_eq!(body["message"], "Rate exceeded");

    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "throttled");
    assert_eq!(record["quota"], "heartbeats");
    assert_eq!(record["errorCode"], "ThrottlingException");
    assert_eq!(record["principal"]["name"], TENANT_A.name);
    assert_eq!(record["action"], "swf:RecordActivityTaskHeartbeat");
    assert_eq!(record["resource"], domain_arn("tenant-a"));
    assert_eq!(
        metric(
            &proxy,
            "swf_warden_throttled_total{principal=\"tenant-a-worker\",quota=\"heartbeats\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &proxy,
            "swf_warden_principal_requests_total{principal=\"tenant-a-worker\",decision=\"throttled\"}"
        ),
        1
    );

    // Tenant B has its own bucket, untouched by A's flood.
    for _ in 0..3 {
        b.record_activity_task_heartbeat()
            .task_token(&token_b)
            .send()
            .await
            .expect("B within its own burst");
    }
    assert_eq!(heartbeats(&proxy), 6);
}

#[tokio::test]
async fn a_denied_call_spends_nothing_and_unmatched_calls_are_not_counted() {
    let proxy = start(
        r#"
[[quota]]
name = "describe"
actions = ["swf:DescribeDomain"]
groups = ["tenants"]
rate_per_second = 0.001
burst = 1
"#,
    )
    .await;
    let a = proxy.client(TENANT_A);
    for _ in 0..3 {
        let err = describe_refused(&a, "tenant-b").await;
        assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    }
    a.describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("the denials spent no token");
    // Another operation is not the quota's.
    for _ in 0..3 {
        a.count_pending_activity_tasks()
            .domain("tenant-a")
            .task_list(
                aws_sdk_swf::types::TaskList::builder()
                    .name("tl")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("not under the quota");
    }
    let err = a
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "ThrottlingException");
    // NOBODY is in no group: the quota is not theirs (and policy refuses them anyway).
    assert_eq!(
        proxy
            .upstream
            .operations()
            .iter()
            .filter(|o| *o == "DescribeDomain")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_tenant_at_its_cap_of_polls_gets_limit_exceeded_and_the_other_polls_on() {
    let proxy = start(
        r#"
[[quota]]
name = "polls"
actions = ["swf:PollFor*"]
groups = ["tenants"]
max_in_flight = 2
"#,
    )
    .await;
    let (a, b) = (proxy.client(TENANT_A), proxy.client(TENANT_B));
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(activity_poll(&a, "tenant-a", "held").send()))
        .collect();
    wait_until("both polls reach the upstream", || {
        proxy.upstream.count() == 2
    })
    .await;
    let err = activity_poll(&a, "tenant-a", "tl")
        .send()
        .await
        .expect_err("a third poll in flight");
    assert_eq!(sdk_code(&err), "LimitExceededFault");
    assert_eq!(proxy.upstream.count(), 2, "the refused poll was forwarded");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "throttled");
    assert_eq!(record["quota"], "polls");
    assert_eq!(record["errorCode"], "LimitExceededFault");
    assert!(
        record["message"]
            .as_str()
            .unwrap()
            .contains("allows 2 at once"),
        "{record}"
    );
    // An operation whose model has no LimitExceededFault is throttled instead.
    let proxy_b = poll_token(&b, "tenant-b", "tl").await;
    assert!(!proxy_b.is_empty(), "B polls while A is at its cap");

    proxy.upstream.release(2);
    for poll in held {
        poll.await.unwrap().expect("the held polls are answered");
    }
    poll_token(&a, "tenant-a", "tl").await;
}

#[tokio::test]
async fn the_in_flight_cap_answers_throttling_where_the_model_has_no_limit_fault() {
    let proxy = start(
        r#"
[[quota]]
name = "counting"
actions = ["swf:CountPendingActivityTasks", "swf:PollForActivityTask"]
principals = ["tenant-a-worker"]
per = "all"
max_in_flight = 1
"#,
    )
    .await;
    let a = proxy.client(TENANT_A);
    let held = tokio::spawn(activity_poll(&a, "tenant-a", "held").send());
    wait_until("the poll reaches the upstream", || {
        proxy.upstream.count() == 1
    })
    .await;
    let err = a
        .count_pending_activity_tasks()
        .domain("tenant-a")
        .task_list(
            aws_sdk_swf::types::TaskList::builder()
                .name("tl")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect_err("one call in flight already");
    assert_eq!(sdk_code(&err), "ThrottlingException");
    assert_eq!(proxy.audit_for(&sdk_request_id(&err))["quota"], "counting");
    proxy.upstream.release(1);
    held.await.unwrap().unwrap();
}

#[tokio::test]
async fn per_domain_keys_give_each_domain_its_own_bucket() {
    let proxy = start(
        r#"
[[quota]]
name = "per-domain"
actions = ["swf:DescribeDomain"]
principals = ["operator"]
per = "domain"
rate_per_second = 0.001
burst = 1
"#,
    )
    .await;
    let op = proxy.client(OPERATOR);
    for domain in ["tenant-a", "tenant-b", "other"] {
        op.describe_domain()
            .name(domain)
            .send()
            .await
            .expect("first call per domain");
    }
    let err = op
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "ThrottlingException");
}

#[tokio::test]
async fn buckets_survive_a_reload_which_applies_new_limits() {
    let proxy = start(HEARTBEATS).await;
    let a = proxy.client(TENANT_A);
    let token = poll_token(&a, "tenant-a", "tl").await;
    let heartbeat = || a.record_activity_task_heartbeat().task_token(&token).send();
    for _ in 0..3 {
        heartbeat().await.unwrap();
    }
    proxy.runtime.reload().expect("same configuration");
    assert_eq!(
        sdk_code(&heartbeat().await.unwrap_err()),
        "ThrottlingException"
    );

    // A larger burst takes effect at once, on the same bucket: two more calls, not five.
    let path = proxy.config_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("burst = 3", "burst = 5");
    std::fs::write(&path, text).unwrap();
    proxy.runtime.reload().expect("a valid change");
    heartbeat().await.expect("the fourth");
    heartbeat().await.expect("the fifth");
    assert_eq!(
        sdk_code(&heartbeat().await.unwrap_err()),
        "ThrottlingException"
    );
    assert_eq!(heartbeats(&proxy), 5);
}

#[tokio::test]
async fn the_rust_sdk_retries_a_throttled_call_with_backoff_but_not_limit_exceeded() {
    let proxy = start(HEARTBEATS).await;
    let retrying = aws_sdk_swf::Client::from_conf(
        proxy
            .client(TENANT_A)
            .config()
            .to_builder()
            .retry_config(
                aws_sdk_swf::config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build(),
    );
    let token = poll_token(&retrying, "tenant-a", "tl").await;
    for _ in 0..3 {
        retrying
            .record_activity_task_heartbeat()
            .task_token(&token)
            .send()
            .await
            .unwrap();
    }
    let err = retrying
        .record_activity_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "ThrottlingException");
    let throttled = proxy
        .audit()
        .into_iter()
        .filter(|r| r["decision"] == "throttled")
        .count();
    assert_eq!(throttled, 3, "the SDK tries a throttled call three times");
}

/// Tenants may list domains (on `*`, as IAM scopes ListDomains): what they see is filtered.
const LISTER: (&str, &str) = (
    "lister.toml",
    "Version = \"2012-10-17\"\n[[Statement]]\nEffect = \"Allow\"\nAction = \"swf:ListDomains\"\nResource = \"*\"\n",
);

fn may_list(config: String) -> String {
    config.replace(
        "policies = [\"guardrails\"]",
        "policies = [\"guardrails\", \"lister\"]",
    )
}

#[tokio::test]
async fn list_domains_shows_each_tenant_only_its_domains_and_pages_on() {
    let proxy = Proxy::start_configured(may_list, &[LISTER]).await;
    let list = |tenant: Tenant, token: Option<String>| {
        let client = proxy.client(tenant);
        async move {
            let page = client
                .list_domains()
                .registration_status("REGISTERED".into())
                .set_next_page_token(token)
                .send()
                .await
                .unwrap();
            let names: Vec<String> = page
                .domain_infos()
                .iter()
                .map(|d| d.name().to_owned())
                .collect();
            (names, page.next_page_token().map(str::to_owned))
        }
    };
    let (first, next) = list(TENANT_A, None).await;
    assert_eq!(first, ["tenant-a"]);
    assert_eq!(
        next.as_deref(),
        Some("page-2"),
        "the page token passes through"
    );
    let (second, next) = list(TENANT_A, next).await;
    assert!(second.is_empty(), "{second:?}");
    assert_eq!(next, None);

    let (first, next) = list(TENANT_B, None).await;
    assert!(
        first.is_empty(),
        "a short (empty) page that still pages on: {first:?}"
    );
    let (second, _) = list(TENANT_B, next).await;
    assert_eq!(second, ["tenant-b"]);

    let (first, next) = list(OPERATOR, None).await;
    assert_eq!(first, ["other-1", "tenant-a", "other-2"]);
    let (second, _) = list(OPERATOR, next).await;
    assert_eq!(second, ["tenant-b", "other-3"]);
}

#[tokio::test]
async fn list_domains_unfiltered_when_the_operator_turns_filtering_off() {
    let proxy = Proxy::start_configured(
        |c| may_list(c).replace("[policies]\n", "[policies]\nfilter_list_domains = false\n"),
        &[LISTER],
    )
    .await;
    let page = proxy
        .client(TENANT_A)
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap();
    assert_eq!(page.domain_infos().len(), 3);
}

/// Shadow mode refuses nothing, so it hides nothing either: a principal not enforced sees
/// every domain, and the denial it would have had is on record.
#[tokio::test]
async fn list_domains_unfiltered_for_a_principal_in_shadow_mode() {
    let proxy = Proxy::start_configured(
        |c| {
            c + "\n[[principal]]\nname = \"shadow\"\naccess_key_id = \"AKIASHADOW0000000001\"\nsecret_access_key = \"secret-shadow\"\npolicies = []\nenforce = false\n"
        },
        &[],
    )
    .await;
    let page = proxy
        .client_with("AKIASHADOW0000000001", "secret-shadow")
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap();
    assert_eq!(page.domain_infos().len(), 3);
    let records = proxy.audit();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["decision"], "wouldDeny");
    assert_eq!(records[0]["action"], "swf:ListDomains");
}
