//! The security review's findings on what reaches the upstream (issue 10), end to end over a
//! real socket: decoy members, foreign resource ARNs, unpinned hosts, audit floods and the
//! request-size defaults. Each attack is refused with its AWS error and audit record, and
//! nothing reaches the upstream; each has a control that the same path still works.
//! The connection findings are in `tests/connections.rs`.

mod common;

use std::time::SystemTime;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};

const TENANT_C: Tenant = Tenant {
    name: "tenant-c-worker",
    key: "AKIATENANTC000000001",
    secret: "secret-c",
};

/// Tenant C may poll and schedule only on task lists named `public-*`.
const TENANT_C_POLICY: &str = r#"
Version = "2012-10-17"

[[Statement]]
Sid = "PublicTaskListsOnly"
Effect = "Allow"
Action = ["swf:PollForDecisionTask", "swf:PollForActivityTask", "swf:ScheduleActivityTask"]
Resource = "arn:aws:swf:*:123456789012:/domain/tenant-c"
Condition = { StringLike = { "swf:taskList.name" = "public-*" } }

[[Statement]]
Sid = "Work"
Effect = "Allow"
Action = ["swf:RespondDecisionTaskCompleted", "swf:StartTimer", "swf:StartWorkflowExecution", "swf:TagResource"]
Resource = "arn:aws:swf:*:123456789012:/domain/tenant-c"
"#;

async fn start(edit: impl FnOnce(String) -> String) -> Proxy {
    Proxy::start_configured(
        |config| {
            edit(config)
                + &format!(
                    "\n[[principal]]\nname = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\npolicies = [\"tenant-c\"]\n",
                    TENANT_C.name, TENANT_C.key, TENANT_C.secret
                )
        },
        &[("tenant-c.toml", TENANT_C_POLICY)],
    )
    .await
}

/// A call signed by `tenant` with `body` sent byte for byte (no SDK would send a decoy).
fn raw(proxy: &Proxy, tenant: Tenant, operation: &str, body: &str) -> Request<Full<Bytes>> {
    let mut call = Raw::new(tenant, operation, &Value::Null);
    call.body = body.as_bytes().to_vec();
    call.build(proxy.addr)
}

/// Sends `request` and checks the refusal: status, type, its audit record, and that the
/// upstream saw nothing more than `forwarded` calls.
async fn refused(
    proxy: &Proxy,
    request: Request<Full<Bytes>>,
    error: &str,
    forwarded: usize,
) -> Value {
    let answer = proxy.send(request).await;
    assert_eq!(answer.status, 400, "{error}: {:?}", answer.body);
    assert_eq!(answer.error_type(), error, "{:?}", answer.body);
    let record = proxy.audit_for(&answer.request_id());
    assert_eq!(record["errorCode"], error);
    assert_eq!(record["message"], answer.body["message"]);
    assert_eq!(
        proxy.upstream.count(),
        forwarded,
        "nothing more may reach the upstream"
    );
    record
}

#[tokio::test]
async fn decoy_members_are_refused_before_authorization() {
    let proxy = start(|c| c).await;
    // The review's bodies: each carries a reading the policy allows and one it does not.
    let decoys = [
        (
            "PollForDecisionTask",
            r#"{"domain":"tenant-c","taskList":{"name":"private-tl"},"TaskList":{"name":"public-tl"}}"#,
        ),
        (
            "PollForDecisionTask",
            r#"{"TaskList":{"name":"private-tl"},"taskList":{"name":"public-tl"},"domain":"tenant-c"}"#,
        ),
        (
            "PollForActivityTask",
            r#"{"domain":"tenant-c","taskList":{"name":"public-tl","Name":"private-tl"}}"#,
        ),
        (
            "PollForActivityTask",
            r#"{"doma\u0131n":"tenant-a","domain":"tenant-c","taskList":{"name":"public-tl"}}"#,
        ),
        (
            "PollForActivityTask",
            r#"{"domain":"tenant-c","ta\u017fkList":{"name":"private-tl"},"taskList":{"name":"public-tl"}}"#,
        ),
        (
            "PollForActivityTask",
            r#"{"Domain":"tenant-a","domain":"tenant-c","taskList":{"name":"public-tl"}}"#,
        ),
        (
            "StartWorkflowExecution",
            r#"{"domain":"tenant-c","workflowId":"w","workflowType":{"name":"f","version":"1","Name":"g"}}"#,
        ),
        (
            "StartWorkflowExecution",
            r#"{"domain":"tenant-c","workflowId":"w","workflowType":{"name":"f","version":"1"},"tagList":["public"],"TagList":["private"]}"#,
        ),
    ];
    for (operation, body) in decoys {
        let record = refused(
            &proxy,
            raw(&proxy, TENANT_C, operation, body),
            "SerializationException",
            0,
        )
        .await;
        assert_eq!(record["decision"], "invalidRequest", "{body}");
        assert_eq!(record["principal"]["name"], TENANT_C.name);
    }

    // The condition itself is live: the honest bodies are decided by it.
    let private = r#"{"domain":"tenant-c","taskList":{"name":"private-tl"}}"#;
    let record = refused(
        &proxy,
        raw(&proxy, TENANT_C, "PollForDecisionTask", private),
        "OperationNotPermittedFault",
        0,
    )
    .await;
    assert_eq!(record["decision"], "implicitDeny");
    let public = r#"{"domain":"tenant-c","taskList":{"name":"public-tl"}}"#;
    let answer = proxy
        .send(raw(&proxy, TENANT_C, "PollForDecisionTask", public))
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let calls = proxy.upstream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].body,
        serde_json::from_str::<Value>(public).unwrap()
    );
}

#[tokio::test]
async fn decoys_inside_decisions_are_refused() {
    let proxy = start(|c| c).await;
    let client = proxy.client(TENANT_C);
    let token = poll_token(&client, "tenant-c", "public-tl").await;
    let respond = |decisions: Value| {
        raw(
            &proxy,
            TENANT_C,
            "RespondDecisionTaskCompleted",
            &json!({"taskToken": token, "decisions": decisions}).to_string(),
        )
    };
    let schedule = |task_list: Value| {
        json!({"decisionType": "ScheduleActivityTask",
               "scheduleActivityTaskDecisionAttributes": {
                   "activityType": {"name": "a", "version": "1"},
                   "activityId": "x", "taskList": task_list}})
    };
    // A `TaskList` decoy beside the forbidden `taskList`.
    let mut decoy = schedule(json!({"name": "private-tl"}));
    decoy["scheduleActivityTaskDecisionAttributes"]["TaskList"] = json!({"name": "public-tl"});
    refused(&proxy, respond(json!([decoy])), "SerializationException", 1).await;
    // An allowed decision type carrying another type's attributes.
    let smuggled = json!({"decisionType": "StartTimer",
        "startTimerDecisionAttributes": {"timerId": "t", "startToFireTimeout": "5"},
        "scheduleActivityTaskDecisionAttributes": schedule(json!({"name": "private-tl"}))["scheduleActivityTaskDecisionAttributes"]});
    refused(&proxy, respond(json!([smuggled])), "ValidationException", 1).await;
    // Controls: the forbidden task list is denied by the policy, the public one forwarded.
    let record = refused(
        &proxy,
        respond(json!([schedule(json!({"name": "private-tl"}))])),
        "OperationNotPermittedFault",
        1,
    )
    .await;
    assert_eq!(record["action"], "swf:ScheduleActivityTask");
    let answer = proxy
        .send(respond(json!([schedule(json!({"name": "public-tl"}))])))
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(proxy.upstream.count(), 2);
}

#[tokio::test]
async fn resource_arns_must_name_a_domain_of_this_service() {
    let proxy = start(|c| c).await;
    let tag = |arn: &str| {
        raw(
            &proxy,
            TENANT_C,
            "TagResource",
            &json!({"resourceArn": arn, "tags": [{"key": "k", "value": "v"}]}).to_string(),
        )
    };
    // Each would match the policy's `arn:aws:swf:*:123456789012:/domain/tenant-c`.
    for arn in [
        "arn:aws:swf:eu-west-1:123456789012:/domain/tenant-c",
        "arn:aws:swf:*:123456789012:/domain/tenant-c",
        "arn:aws:swf::123456789012:/domain/tenant-c",
        "arn:aws:swf:us-east-1:123456789012:/domain/tenant-c:extra",
        "arn:aws:swf:us-east-1:123456789012:/domain/tenant-c/extra",
        "arn:aws-cn:swf:us-east-1:123456789012:/domain/tenant-c",
    ] {
        let record = refused(&proxy, tag(arn), "ValidationException", 0).await;
        assert_eq!(record["decision"], "invalidRequest", "{arn}");
    }
    let arn = domain_arn("tenant-c");
    let answer = proxy.send(tag(&arn)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(proxy.upstream.calls()[0].body["resourceArn"], arn);
}

#[tokio::test]
async fn the_signed_host_is_pinned() {
    let proxy = start(|c| {
        c.replace(
            "account_id = \"123456789012\"",
            "account_id = \"123456789012\"\nhosts = [\"swf.example.internal:8443\"]",
        )
    })
    .await;
    let body = json!({"name": "tenant-c"}).to_string();
    // Signed for the address it was sent to, which is not a configured host: a replay of a
    // request captured at another deployment looks exactly like this.
    let record = refused(
        &proxy,
        raw(&proxy, TENANT_A, "DescribeDomain", &body),
        "InvalidSignatureException",
        0,
    )
    .await;
    assert_eq!(record["decision"], "authFailed");
    // Signed for the configured host and sent with it: accepted.
    let headers = sdk_sign::signed_headers(&sdk_sign::Call {
        key: OPERATOR.key,
        secret: OPERATOR.secret,
        region: "us-east-1",
        service: "swf",
        time: SystemTime::now(),
        host: "swf.example.internal:8443",
        target: "SimpleWorkflowService.DescribeDomain",
        extra: &[],
        body: body.as_bytes(),
    });
    let mut request = Request::builder()
        .method("POST")
        .uri(format!("http://{}/", proxy.addr));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = proxy
        .send(request.body(Full::new(Bytes::from(body))).unwrap())
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn unauthenticated_refusals_cannot_flood_the_audit_log() {
    let proxy =
        start(|c| c.replace("[audit]\n", "[audit]\nunauthenticated_per_second = 5\n")).await;
    let started = SystemTime::now();
    const GARBAGE: usize = 200;
    for _ in 0..GARBAGE {
        let request = Request::builder()
            .method("POST")
            .uri(format!("http://{}/", proxy.addr))
            .body(Full::new(Bytes::from_static(b"garbage")))
            .unwrap();
        let answer = proxy.send(request).await;
        assert_eq!(answer.error_type(), "MissingAuthenticationTokenException");
    }
    // Authenticated refusals are never thinned out.
    for _ in 0..20 {
        describe_refused(&proxy.client(TENANT_A), "tenant-b").await;
    }
    let seconds = started.elapsed().unwrap().as_secs() + 2;
    proxy.runtime.audit.flush_summaries(true).unwrap();
    let records = proxy.audit();
    let unauthenticated: Vec<&Value> = records
        .iter()
        .filter(|r| r["principal"].is_null())
        .collect();
    let (summaries, single): (Vec<&Value>, Vec<&Value>) = unauthenticated
        .iter()
        .partition(|r| r.get("suppressed").is_some());
    let suppressed: u64 = summaries
        .iter()
        .map(|r| r["suppressed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        single.len() as u64 + suppressed,
        GARBAGE as u64,
        "every refusal is counted"
    );
    assert!(
        single.len() as u64 <= 5 * seconds,
        "{} records in at most {seconds} s",
        single.len()
    );
    for summary in &summaries {
        assert_eq!(summary["decision"], "authFailed");
        assert_eq!(summary["sourceIp"], "127.0.0.1");
    }
    let denied = records
        .iter()
        .filter(|r| r["decision"] == "implicitDeny")
        .count();
    assert_eq!(denied, 20);
    assert_eq!(proxy.upstream.count(), 0);
}

#[tokio::test]
async fn requests_are_held_to_swf_sizes_by_default() {
    // Without `max_body_bytes`: SWF's documented 1 MB request limit.
    let proxy = start(|c| c.replace("max_body_bytes = 65536\n", "")).await;
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024));
    let answer = proxy
        .send(raw(&proxy, OPERATOR, "DescribeDomain", &big))
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.error_type(), "RequestEntityTooLargeException");
    // Just under the limit, the body is read and judged by the model instead.
    let under = format!(r#"{{"name":"{}"}}"#, "x".repeat(1024 * 1024 - 20));
    refused(
        &proxy,
        raw(&proxy, OPERATOR, "DescribeDomain", &under),
        "ValidationException",
        0,
    )
    .await;

    // At most 1,000 decisions in one call by default.
    let token = poll_token(&proxy.client(TENANT_C), "tenant-c", "public-tl").await;
    let timer = json!({"decisionType": "StartTimer",
        "startTimerDecisionAttributes": {"timerId": "t", "startToFireTimeout": "5"}});
    let respond = |n: usize| {
        raw(
            &proxy,
            TENANT_C,
            "RespondDecisionTaskCompleted",
            &json!({"taskToken": token, "decisions": vec![timer.clone(); n]}).to_string(),
        )
    };
    refused(&proxy, respond(1001), "ValidationException", 1).await;
    let answer = proxy.send(respond(1000)).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}
