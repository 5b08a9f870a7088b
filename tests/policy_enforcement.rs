//! The policy language end to end through the proxy with the AWS SDK: conditions read from the
//! request and the connection, each decision of `RespondDecisionTaskCompleted` authorized as
//! its own pseudo-action, and shadow mode.

mod common;

use common::decisions::{complete, decision_token, schedule};
use common::*;

const DECIDER: Tenant = Tenant {
    name: "decider",
    key: "AKIADECIDER000000001",
    secret: "secret-decider",
};
const SHADOW: Tenant = Tenant {
    name: "shadow",
    key: "AKIASHADOW0000000001",
    secret: "secret-shadow",
};

const DECIDER_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Decide", "Effect": "Allow",
   "Action": ["swf:PollForDecisionTask", "swf:RespondDecisionTaskCompleted", "swf:CompleteWorkflowExecution"],
   "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-a"},
  {"Sid": "CheapOnly", "Effect": "Allow", "Action": "swf:ScheduleActivityTask",
   "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-a",
   "Condition": {"StringEquals": {"swf:activityType.name": "cheap"}}},
  {"Sid": "OwnLists", "Effect": "Allow", "Action": "swf:PollForActivityTask",
   "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-a",
   "Condition": {"StringLike": {"swf:taskList.name": "${aws:username}-*"}, "IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}},
  {"Sid": "NeverFromElsewhere", "Effect": "Allow", "Action": "swf:DescribeDomain", "Resource": "*",
   "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}},
  {"Sid": "OnlyOverTls", "Effect": "Allow", "Action": "swf:ListDomains", "Resource": "*",
   "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}"#;

fn principal(t: Tenant, policies: &str, extra: &str) -> String {
    format!(
        "\n[[principal]]\nname = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\npolicies = {policies}\n{extra}\n",
        t.name, t.key, t.secret
    )
}

async fn proxy() -> Proxy {
    Proxy::start_configured(
        |c| {
            c + &principal(DECIDER, "[\"decider\"]", "")
                + &principal(SHADOW, "[]", "enforce = false")
        },
        &[("decider.json", DECIDER_POLICY)],
    )
    .await
}

#[tokio::test]
async fn each_decision_is_authorized_on_its_own() {
    let proxy = proxy().await;
    let d = proxy.client(DECIDER);
    let token = decision_token(&d).await;
    d.respond_decision_task_completed()
        .task_token(&token)
        .decisions(schedule("cheap"))
        .decisions(complete())
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.upstream.count(), 2, "allowed decisions are forwarded");
    assert_eq!(
        proxy.upstream.calls()[1].body["decisions"][0]["scheduleActivityTaskDecisionAttributes"]
            ["activityType"]["name"],
        "cheap"
    );

    let err = d
        .respond_decision_task_completed()
        .task_token(&token)
        .decisions(complete())
        .decisions(schedule("expensive"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let record = proxy.audit_for(&sdk_request_id(&err));
    assert_eq!(record["action"], "swf:ScheduleActivityTask");
    assert_eq!(record["decision"], "implicitDeny");
    let message = record["message"].as_str().unwrap();
    assert!(
        message.contains("not authorized to perform: swf:ScheduleActivityTask on resource:"),
        "{message}"
    );
    assert!(
        message.ends_with("(decision 2 of 2 in RespondDecisionTaskCompleted)"),
        "{message}"
    );
    assert_eq!(
        proxy.upstream.count(),
        2,
        "a refused decision stops the whole call"
    );
}

#[tokio::test]
async fn unknown_decision_types_are_invalid() {
    let proxy = proxy().await;
    let d = proxy.client(DECIDER);
    let token = decision_token(&d).await;
    let body =
        serde_json::json!({"taskToken": token, "decisions": [{"decisionType": "LaunchRockets"}]});
    let answer = proxy
        .send(Raw::new(DECIDER, "RespondDecisionTaskCompleted", &body).build(proxy.addr))
        .await;
    assert_eq!(answer.error_type(), "ValidationException");
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn conditions_read_the_request_and_the_connection() {
    let proxy = proxy().await;
    let d = proxy.client(DECIDER);
    let poll = |list: &str| activity_poll(&d, "tenant-a", list).send();
    poll("decider-work")
        .await
        .expect("own task list, from loopback");
    let err = poll("other-work").await.unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");

    // Loopback is not 192.0.2.0/24, and this connection is not TLS.
    let err = describe_refused(&d, "tenant-a").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    let err = d
        .list_domains()
        .registration_status("REGISTERED".into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
    assert_eq!(proxy.upstream.count(), 1);
}

#[tokio::test]
async fn shadow_mode_for_one_principal_audits_and_forwards() {
    let proxy = proxy().await;
    let out = proxy
        .client(SHADOW)
        .describe_domain()
        .name("tenant-b")
        .send()
        .await
        .expect("shadow mode forwards");
    let request_id = aws_sdk_swf::operation::RequestId::request_id(&out)
        .unwrap()
        .to_owned();
    assert_eq!(proxy.upstream.count(), 1);
    let records = proxy.audit();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["decision"], "wouldDeny");
    assert_eq!(record["principal"]["name"], "shadow");
    assert_eq!(record["action"], "swf:DescribeDomain");
    assert_eq!(record["resource"], domain_arn("tenant-b"));
    assert!(record.get("errorCode").is_none());
    assert_eq!(
        record["requestId"], request_id,
        "the id the client received: the upstream's"
    );

    // Other principals are still enforced.
    let err = describe_refused(&proxy.client(TENANT_B), "tenant-a").await;
    assert_eq!(sdk_code(&err), "OperationNotPermittedFault");
}

#[tokio::test]
async fn shadow_mode_for_everyone() {
    let proxy = Proxy::start_configured(
        |c| c.replace("dir = \"policies\"", "dir = \"policies\"\nenforce = false"),
        &[],
    )
    .await;
    proxy
        .client(TENANT_B)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("forwarded in shadow mode");
    proxy
        .client(TENANT_A)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .expect("allowed anyway");
    assert_eq!(proxy.upstream.count(), 2);
    let records = proxy.audit();
    assert_eq!(records.len(), 1, "only the would-be denial is audited");
    assert_eq!(records[0]["decision"], "wouldDeny");
    assert_eq!(records[0]["principal"]["name"], TENANT_B.name);
}

#[tokio::test]
async fn include_allowed_records_allowed_calls_under_the_client_request_id() {
    let proxy = Proxy::start_configured(
        |c| {
            c.replace(
                "path = \"audit.log\"",
                "path = \"audit.log\"\ninclude_allowed = true",
            )
        },
        &[],
    )
    .await;
    let out = proxy
        .client(TENANT_A)
        .describe_domain()
        .name("tenant-a")
        .send()
        .await
        .unwrap();
    let request_id = aws_sdk_swf::operation::RequestId::request_id(&out)
        .unwrap()
        .to_owned();
    let record = proxy.audit_for(&request_id);
    assert_eq!(record["decision"], "allowed");
    assert!(record.get("errorCode").is_none() && record.get("message").is_none());
    assert_eq!(
        record["matchedStatements"],
        serde_json::json!([{"policy": "tenant-a", "sid": "OwnDomain"}])
    );
}

#[tokio::test]
async fn a_shadowed_decision_is_recorded_as_itself_and_the_call_as_the_operation() {
    let proxy = Proxy::start_configured(
        |c| {
            c.replace(
                "path = \"audit.log\"",
                "path = \"audit.log\"\ninclude_allowed = true",
            ) + &principal(DECIDER, "[\"decider\"]", "enforce = false")
        },
        &[("decider.json", DECIDER_POLICY)],
    )
    .await;
    let d = proxy.client(DECIDER);
    let token = decision_token(&d).await;
    let out = d
        .respond_decision_task_completed()
        .task_token(&token)
        .decisions(complete())
        .decisions(schedule("expensive"))
        .send()
        .await
        .expect("forwarded in shadow mode");
    let id = aws_sdk_swf::operation::RequestId::request_id(&out)
        .unwrap()
        .to_owned();
    let records: Vec<_> = proxy
        .audit()
        .into_iter()
        .filter(|r| r["requestId"] == id.as_str())
        .collect();
    let actions: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["decision"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("wouldDeny", "swf:ScheduleActivityTask"),
            ("allowed", "swf:RespondDecisionTaskCompleted"),
        ]
    );
}
