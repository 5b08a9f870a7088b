//! End to end with the AWS SDK for Rust: tenants poll and heartbeat in their own domains,
//! are refused everywhere else, and every refusal is audited.

mod common;

use aws_sdk_swf::types::TaskList;
use common::*;

use common::poll_token as poll;

#[tokio::test]
async fn tenant_polls_and_heartbeats_in_its_own_domain() {
    let proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);

    let token = poll(&a, "tenant-a", "work").await;
    assert!(
        token.starts_with("sw1."),
        "the client gets a sealed token: {token}"
    );
    assert!(
        !token.contains("UPSTREAM"),
        "the upstream token is not visible"
    );

    let beat = a
        .record_activity_task_heartbeat()
        .task_token(&token)
        .details("50%")
        .send()
        .await
        .expect("heartbeat allowed");
    assert!(!beat.cancel_requested());

    let cancel_token = poll(&a, "tenant-a", "cancel").await;
    let beat = a
        .record_activity_task_heartbeat()
        .task_token(&cancel_token)
        .send()
        .await
        .unwrap();
    assert!(
        beat.cancel_requested(),
        "cancelRequested=true comes through"
    );

    let calls = proxy.upstream.calls();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[0].operation, "PollForActivityTask");
    assert_eq!(calls[0].body["domain"], "tenant-a");
    assert_eq!(calls[1].operation, "RecordActivityTaskHeartbeat");
    assert_eq!(
        calls[1].body["taskToken"], "UPSTREAM+tenant-a/work/1==",
        "the upstream sees its own token"
    );
    assert_eq!(calls[1].body["details"], "50%");
    assert_eq!(calls[3].body["taskToken"], "UPSTREAM+tenant-a/cancel/3==");
    for call in &calls {
        // Re-signed by the proxy (the fake upstream verified it), never the tenant's headers.
        let auth = call.headers["authorization"].to_str().unwrap();
        assert!(auth.contains("Credential=AKIDUPSTREAM/"), "{auth}");
        assert!(!call.headers.contains_key("x-amz-user-agent"));
    }
    assert!(
        proxy.audit().is_empty(),
        "allowed calls are not audited by default"
    );
}

#[tokio::test]
async fn every_token_operation_unseals() {
    let proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    let t = poll(&a, "tenant-a", "work").await;
    a.respond_activity_task_completed()
        .task_token(&t)
        .result("done")
        .send()
        .await
        .unwrap();
    a.respond_activity_task_failed()
        .task_token(&t)
        .reason("r")
        .send()
        .await
        .unwrap();
    a.respond_activity_task_canceled()
        .task_token(&t)
        .send()
        .await
        .unwrap();
    let decision = a
        .poll_for_decision_task()
        .domain("tenant-a")
        .task_list(TaskList::builder().name("deciders").build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(decision.task_token().starts_with("sw1."));
    assert_eq!(
        decision.events().len(),
        1,
        "the rest of the poll answer passes through"
    );
    a.respond_decision_task_completed()
        .task_token(decision.task_token())
        .send()
        .await
        .unwrap();
    let calls = proxy.upstream.calls();
    let ops: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "PollForActivityTask",
            "RespondActivityTaskCompleted",
            "RespondActivityTaskFailed",
            "RespondActivityTaskCanceled",
            "PollForDecisionTask",
            "RespondDecisionTaskCompleted"
        ]
    );
    for c in &calls[1..4] {
        assert_eq!(c.body["taskToken"], "UPSTREAM+tenant-a/work/1==");
    }
    assert_eq!(calls[5].body["taskToken"], "UPSTREAM+tenant-a/deciders/5==");
}

#[tokio::test]
async fn empty_poll_passes_through() {
    let proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    let token = poll(&a, "tenant-a", "empty").await;
    assert_eq!(token, "", "no task, nothing to seal");
}

#[tokio::test]
async fn tenant_b_is_refused_on_tenant_a_domain_and_audited() {
    let proxy = Proxy::start().await;
    let b = proxy.client(TENANT_B);
    let err = activity_poll(&b, "tenant-a", "work")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let message =
        aws_sdk_swf::error::ProvideErrorMetadata::message(err.as_service_error().unwrap())
            .unwrap()
            .to_owned();
    assert_eq!(
        message,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/tenant-b-worker is not authorized to perform: swf:PollForActivityTask on resource: {} because no identity-based policy allows the swf:PollForActivityTask action",
            domain_arn("tenant-a")
        )
    );
    assert_eq!(proxy.upstream.count(), 0, "nothing reached the upstream");

    let request_id = sdk_request_id(&err);
    let record = proxy.audit_for(&request_id);
    assert_eq!(record["decision"], "implicitDeny");
    assert_eq!(record["errorCode"], "OperationNotPermittedFault");
    assert_eq!(record["cause"], "OPERATION_NOT_PERMITTED");
    assert_eq!(record["principal"]["name"], "tenant-b-worker");
    assert_eq!(
        record["principal"]["arn"],
        format!("arn:aws:iam::{ACCOUNT}:user/tenant-b-worker")
    );
    assert_eq!(record["principal"]["accessKeyId"], TENANT_B.key);
    assert_eq!(record["action"], "swf:PollForActivityTask");
    assert_eq!(record["resource"], domain_arn("tenant-a"));
    assert_eq!(record["matchedStatements"], serde_json::json!([]));
    assert_eq!(record["sourceIp"], "127.0.0.1");
    assert!(
        record["userAgent"]
            .as_str()
            .unwrap()
            .contains("aws-sdk-rust"),
        "{record}"
    );
    assert_eq!(record["message"], message);
    let time = record["eventTime"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    let line = std::fs::read_to_string(proxy.audit_path()).unwrap();
    assert!(
        !line.contains(TENANT_B.secret) && !line.contains("Signature="),
        "no secrets in the audit log"
    );
}

#[tokio::test]
async fn tenant_b_cannot_use_tenant_a_token() {
    let proxy = Proxy::start().await;
    let token = poll(&proxy.client(TENANT_A), "tenant-a", "work").await;
    let err = proxy
        .client(TENANT_B)
        .record_activity_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(
        proxy.upstream.count(),
        1,
        "only A's poll reached the upstream"
    );
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "implicitDeny");
    assert_eq!(record["resource"], domain_arn("tenant-a"));
    assert_eq!(record["action"], "swf:RecordActivityTaskHeartbeat");
    let fingerprint = record["taskTokenFingerprint"].as_str().unwrap();
    assert_eq!(fingerprint.len(), 12);
    assert!(
        !std::fs::read_to_string(proxy.audit_path())
            .unwrap()
            .contains(&token[4..]),
        "no whole token"
    );
}

#[tokio::test]
async fn tampered_truncated_and_unsealed_tokens_are_refused() {
    let proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    let token = poll(&a, "tenant-a", "work").await;
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let truncated = token[..token.len() - 3].to_owned();
    for bad in [
        tampered,
        truncated,
        "UPSTREAM+tenant-a/work/1==".to_owned(),
        "sw1.".to_owned(),
    ] {
        let err = a
            .record_activity_task_heartbeat()
            .task_token(&bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(sdk_code(&err), "OperationNotPermittedFault", "{bad}");
        let record = proxy.audit_for(&sdk_request_id(&err));
        assert_eq!(record["decision"], "invalidRequest");
        assert_eq!(record["cause"], "OPERATION_NOT_PERMITTED");
        assert_eq!(record["principal"]["name"], TENANT_A.name);
        assert!(record.get("resource").is_none());
    }
    assert_eq!(
        proxy.upstream.count(),
        1,
        "no refused token reached the upstream"
    );
}

#[tokio::test]
async fn token_sealed_by_another_key_set_is_refused() {
    // A second proxy with different keys cannot open the first one's tokens.
    let first = Proxy::start().await;
    let token = poll(&first.client(TENANT_A), "tenant-a", "work").await;
    let foreign = swf_warden::tokens::TokenSealer::new(vec![swf_warden::tokens::TokenKey::new(
        "k1",
        &swf_warden::secret::Secret::new("a-different-key-0123456789abcdefghij"),
    )]);
    let forged = foreign.seal("tenant-a", "UPSTREAM+tenant-a/work/1==");
    let a = first.client(TENANT_A);
    let err = a
        .record_activity_task_heartbeat()
        .task_token(&forged)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(first.upstream.count(), 1, "only the poll was forwarded");
    let request_id = err
        .raw_response()
        .unwrap()
        .headers()
        .get("x-amzn-requestid")
        .unwrap();
    let record = first.audit_for(request_id);
    assert_eq!(record["decision"], "invalidRequest", "{record}");
    assert_eq!(record["principal"]["name"], TENANT_A.name);
    assert_eq!(record["action"], "swf:RecordActivityTaskHeartbeat");
    assert!(
        record["message"]
            .as_str()
            .is_some_and(|m| m.contains("task token")),
        "{record}"
    );
    // The genuine token still works.
    a.record_activity_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(first.upstream.count(), 2);
}

#[tokio::test]
async fn explicit_deny_in_a_group_policy_beats_allow() {
    let proxy = Proxy::start().await;
    let err = proxy
        .client(TENANT_A)
        .terminate_workflow_execution()
        .domain("tenant-a")
        .workflow_id("wf-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "explicitDeny");
    assert_eq!(
        record["matchedStatements"],
        serde_json::json!([{"policy": "guardrails", "sid": "NeverTerminate"}])
    );
    assert!(record["message"]
        .as_str()
        .unwrap()
        .ends_with("with an explicit deny in an identity-based policy"));
    // The same call is allowed for a principal outside the group.
    proxy
        .client(ROOT)
        .terminate_workflow_execution()
        .domain("tenant-a")
        .workflow_id("wf-1")
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn a_principal_without_policies_is_denied_everything() {
    let proxy = Proxy::start().await;
    let err = proxy
        .client(NOBODY)
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["resource"], domain_arn("*"));
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn sdk_sees_authentication_errors() {
    let proxy = Proxy::start().await;
    let wrong_secret = proxy.client_with(TENANT_A.key, "not-the-secret");
    let err = wrong_secret
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "InvalidSignatureException");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "authFailed");
    assert!(
        record["principal"].is_null(),
        "an unauthenticated caller is no principal"
    );

    let unknown = proxy.client_with("AKIAUNKNOWN000000001", "x");
    let err = unknown
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "UnrecognizedClientException");

    let err = describe_refused(&proxy.client(TENANT_A), "tenant:a").await;
    assert_eq!(sdk_code(&err), "ValidationException");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["decision"], "invalidRequest");
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn upstream_errors_and_ids_pass_through() {
    let proxy = Proxy::start().await;
    let out = proxy
        .client(TENANT_A)
        .count_pending_activity_tasks()
        .domain("tenant-a")
        .task_list(TaskList::builder().name("work").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        aws_sdk_swf::operation::RequestId::request_id(&out),
        Some("upstream-1")
    );
}

#[tokio::test]
async fn unreachable_upstream_is_service_unavailable() {
    // Bind and drop a listener to find a loopback port with nothing behind it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut upstream = FakeSwf::start().await;
    upstream.addr = closed;
    let proxy = Proxy::start_against(upstream, "connect_timeout_seconds = 2").await;
    let err = describe_refused(&proxy.client(TENANT_A), "tenant-a").await;
    assert_eq!(sdk_code(&err), "ServiceUnavailableException");
}

#[tokio::test]
async fn upstream_slower_than_the_timeout_is_service_unavailable_but_polls_are_not_cut() {
    // The fake upstream answers "slow" task lists after 3 s; calls time out after 1 s, polls
    // after the poll timeout (70 s), so the poll is answered.
    let proxy = Proxy::start_with("timeout_seconds = 1").await;
    let a = proxy.client(TENANT_A);
    let err = a
        .count_pending_activity_tasks()
        .domain("tenant-a")
        .task_list(TaskList::builder().name("slow").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "ServiceUnavailableException");
    let task = activity_poll(&a, "tenant-a", "slow")
        .send()
        .await
        .expect("a long poll outlives the ordinary timeout");
    assert!(task.task_token().starts_with("sw1."));
}

#[tokio::test]
async fn a_poll_answer_that_is_not_json_is_never_passed_on() {
    // It might hold an upstream token the proxy cannot seal: fail closed.
    let proxy = Proxy::start().await;
    let answer = proxy
        .send(
            Raw::new(
                TENANT_A,
                "PollForActivityTask",
                &serde_json::json!({"domain": "tenant-a", "taskList": {"name": "garbage"}}),
            )
            .build(proxy.addr),
        )
        .await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error_type(), "ServiceUnavailableException");
    assert!(!answer.body.to_string().contains("UPSTREAM"));
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn a_poll_answer_of_megabytes_is_sealed_and_passed_on_whole() {
    let proxy = Proxy::start().await;
    let task = activity_poll(&proxy.client(TENANT_A), "tenant-a", "large")
        .send()
        .await
        .expect("a large poll answer passes");
    assert!(task.task_token().starts_with("sw1."));
    assert_eq!(
        task.input().map(str::len),
        Some(LARGE_INPUT_BYTES),
        "the answer arrives whole"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_of_the_upstream_stay_on_its_connection() {
    let proxy = Proxy::start().await;
    let answer = proxy
        .send(
            Raw::new(
                TENANT_A,
                "PollForActivityTask",
                &serde_json::json!({"domain": "tenant-a", "taskList": {"name": "hop"}}),
            )
            .build(proxy.addr),
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body["taskToken"]
        .as_str()
        .unwrap()
        .starts_with("sw1."));
    for (name, _) in HOP_BY_HOP {
        assert!(
            !answer.headers.contains_key(*name),
            "{name} is not passed on: {:?}",
            answer.headers
        );
    }
    assert_eq!(answer.request_id(), "upstream-1", "end-to-end headers are");
}

/// What the benchmarks and the `request` fuzz target measure as the handler short of the
/// network is what the handler forwards.
#[tokio::test]
async fn prepare_only_yields_the_body_the_upstream_receives() {
    let proxy = Proxy::start().await;
    let a = proxy.client(TENANT_A);
    let token = poll(&a, "tenant-a", "work").await;
    let raw = Raw::new(
        TENANT_A,
        "RecordActivityTaskHeartbeat",
        &serde_json::json!({"taskToken": token, "details": "half"}),
    );
    let (parts, _) = raw.build(proxy.addr).into_parts();
    let peer = swf_warden::handler::Peer {
        addr: "127.0.0.1:50000".parse().unwrap(),
        secure: false,
    };
    let prepared = swf_warden::handler::prepare_only(
        &proxy.runtime.app(),
        &parts,
        raw.body.clone().into(),
        peer,
        std::time::SystemTime::now(),
    )
    .expect("allowed");
    proxy.send(raw.build(proxy.addr)).await;
    let calls = proxy.upstream.calls();
    assert_eq!(calls[1].operation, "RecordActivityTaskHeartbeat");
    let prepared: serde_json::Value = serde_json::from_slice(&prepared).unwrap();
    assert_eq!(prepared, calls[1].body);
    assert_eq!(prepared["taskToken"], "UPSTREAM+tenant-a/work/1==");
}

/// Only poll answers are read and rewritten (their task token sealed); every other answer,
/// of a call naming a domain or not, passes through byte for byte.
#[tokio::test]
async fn answers_other_than_polls_pass_through_byte_for_byte() {
    use http_body_util::BodyExt;
    let proxy = Proxy::start().await;
    let request = Raw::new(
        TENANT_A,
        "CountPendingActivityTasks",
        &serde_json::json!({"domain": "tenant-a", "taskList": {"name": "verbatim"}}),
    )
    .build(proxy.addr);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], VERBATIM);
}
