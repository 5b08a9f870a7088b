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

/// One caller's whole listing, page by page (at most `size` domains each): the pages' names
/// and their tokens.
async fn list_all(
    client: &aws_sdk_swf::Client,
    size: Option<i32>,
) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut pages, mut tokens) = (Vec::new(), Vec::new());
    let mut token = None;
    for _ in 0..20 {
        let page = client
            .list_domains()
            .registration_status("REGISTERED".into())
            .set_maximum_page_size(size)
            .set_next_page_token(token)
            .send()
            .await
            .unwrap();
        pages.push(
            page.domain_infos()
                .iter()
                .map(|d| d.name().to_owned())
                .collect(),
        );
        token = page.next_page_token().map(str::to_owned);
        match &token {
            Some(t) => tokens.push(t.clone()),
            None => return (pages, tokens),
        }
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn list_domains_shows_each_tenant_only_its_domains() {
    let proxy = Proxy::start_configured(may_list, &[LISTER]).await;
    // The upstream holds five domains on two pages; each tenant sees its own, on one page.
    let (pages, _) = list_all(&proxy.client(TENANT_A), None).await;
    assert_eq!(pages, [["tenant-a"]]);
    let (pages, _) = list_all(&proxy.client(TENANT_B), None).await;
    assert_eq!(pages, [["tenant-b"]], "no empty page before its own");
    let (pages, _) = list_all(&proxy.client(OPERATOR), None).await;
    assert_eq!(
        pages,
        [["other-1", "tenant-a", "other-2", "tenant-b", "other-3"]]
    );
    assert_eq!(
        proxy.upstream.operations(),
        ["ListDomains"; 6],
        "the proxy read both upstream pages for each"
    );
}

/// Finding 7 of the second review: with `maximumPageSize = 1` the number of pages told a
/// tenant how many domains there are and its rank among them, and the upstream's own
/// `nextPageToken` was handed out. The proxy pages through its own filtered list with its own
/// sealed token.
#[tokio::test]
async fn list_domains_pages_reveal_nothing_of_the_domains_a_caller_may_not_see() {
    let proxy = Proxy::start_configured(may_list, &[LISTER]).await;
    for tenant in [TENANT_A, TENANT_B] {
        let (pages, tokens) = list_all(&proxy.client(tenant), Some(1)).await;
        assert_eq!(
            pages.len(),
            1,
            "{}: one page for one visible domain",
            tenant.name
        );
        assert!(tokens.is_empty());
    }
    let operator = proxy.client(OPERATOR);
    let (pages, tokens) = list_all(&operator, Some(2)).await;
    assert_eq!(
        pages,
        [
            vec!["other-1", "tenant-a"],
            vec!["other-2", "tenant-b"],
            vec!["other-3"]
        ]
    );
    assert!(
        tokens
            .iter()
            .all(|t| t.starts_with("swfp1.") && t != "page-2"),
        "the proxy's own tokens: {tokens:?}"
    );
    // A token is its caller's alone, and the upstream's own is no token here.
    for (client, token) in [
        (proxy.client(TENANT_A), tokens[0].clone()),
        (operator.clone(), "page-2".to_owned()),
        (operator.clone(), format!("{}A", tokens[0])),
    ] {
        let err = client
            .list_domains()
            .registration_status("REGISTERED".into())
            .next_page_token(token)
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_code(&err), "ValidationException");
    }
    // Nor does it carry over to another listing.
    let err = operator
        .list_domains()
        .registration_status("DEPRECATED".into())
        .next_page_token(tokens[0].clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "ValidationException");
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

/// Finding 3 of the second review: in docs/sts.md's Kubernetes setup (one role for every
/// namespace) every session shared the role's buckets, so one namespace spent the rate and
/// held the in-flight cap of all. With `[[role]] tenant_tag`, each value of that session tag
/// is a tenant of its own for quotas and per-principal metrics.
#[tokio::test]
async fn namespaces_sharing_one_role_never_share_a_bucket() {
    use common::oidc::*;
    let quotas = "\n[[quota]]\nname = \"describes\"\nactions = [\"swf:DescribeDomain\"]\nprincipals = [\"swf-worker\"]\nper = \"principal\"\nrate_per_second = 0.001\nburst = 2\n\n[[quota]]\nname = \"polls\"\nactions = [\"swf:PollFor*\"]\nprincipals = [\"swf-worker\"]\nper = \"principal\"\nmax_in_flight = 1\n";
    for tenant_tag in [false, true] {
        let sts = if tenant_tag {
            sts_config().replace(
                "accept_tags_claim = true\n",
                "accept_tags_claim = true\ntenant_tag = \"namespace\"\n",
            )
        } else {
            sts_config()
        };
        let proxy = Proxy::start_configured(|c| c + &sts + quotas, &[NAMESPACE_POLICY]).await;
        let session = |namespace: &str| {
            let proxy = &proxy;
            let token = token(namespace);
            async move {
                let (status, xml) = send_xml(assume_request(
                    proxy.addr,
                    &[
                        ("RoleArn", ROLE_ARN),
                        ("RoleSessionName", "pod-1"),
                        ("WebIdentityToken", &token),
                    ],
                ))
                .await;
                assert_eq!(status, 200, "{xml}");
                let (key, secret, session) = credentials(&xml);
                proxy.client_with_session(&key, &secret, &session)
            }
        };
        let (a, b) = (session("tenant-a").await, session("tenant-b").await);
        // Namespace A spends its rate and holds its one poll.
        for _ in 0..2 {
            a.describe_domain().name("tenant-a").send().await.unwrap();
        }
        let err = a
            .describe_domain()
            .name("tenant-a")
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_code(&err), "ThrottlingException");
        let held = tokio::spawn(activity_poll(&a, "tenant-a", "held").send());
        wait_until("A's poll held", || proxy.upstream.count() == 3).await;
        let err = activity_poll(&a, "tenant-a", "work")
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_code(&err), "LimitExceededFault");

        // Namespace B, having sent nothing, is served only if it has buckets of its own.
        let described = b.describe_domain().name("tenant-b").send().await;
        let polled = activity_poll(&b, "tenant-b", "work").send().await;
        assert_eq!(
            (described.is_ok(), polled.is_ok()),
            (tenant_tag, tenant_tag),
            "tenant_tag = {tenant_tag}: {described:?} {polled:?}"
        );
        if tenant_tag {
            assert_eq!(
                metric(
                    &proxy,
                    "swf_warden_throttled_total{principal=\"swf-worker/tenant-a\",quota=\"describes\"}"
                ),
                1
            );
            assert!(
                metric(
                    &proxy,
                    "swf_warden_principal_requests_total{principal=\"swf-worker/tenant-b\",decision=\"allowed\"}"
                ) >= 2
            );
        }
        proxy.upstream.release(1);
        held.await.unwrap().unwrap();
    }
}
