//! The operation table against AWS's SWF model, and every one of the 39 operations through the
//! proxy to the upstream.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::{json, Value};
use swf_warden::swf::{Operation, ResourceSource};

fn model() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/model/swf-2012-01-25.service-2.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn table_matches_the_model() {
    let model = model();
    assert_eq!(model["metadata"]["targetPrefix"], "SimpleWorkflowService");
    let operations = model["operations"].as_object().unwrap();
    let names: BTreeSet<&str> = operations.keys().map(String::as_str).collect();
    let ours: BTreeSet<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(
        names, ours,
        "every model operation, and no other, is in the table"
    );
    assert_eq!(ours.len(), 39);

    for op in Operation::ALL {
        let spec = &operations[op.name()];
        let shape = &model["shapes"][spec["input"]["shape"].as_str().unwrap()];
        let members = shape["members"].as_object().unwrap();
        // The resource source per SPEC's table, derived from the model's members.
        let expected = if members.contains_key("domain") {
            ResourceSource::Domain
        } else if members.contains_key("taskToken") {
            ResourceSource::TaskToken
        } else if members.contains_key("resourceArn") {
            ResourceSource::ResourceArn
        } else if op.name() == "ListDomains" {
            ResourceSource::AllDomains
        } else {
            assert!(
                members.contains_key("name") && op.name().ends_with("Domain"),
                "{}",
                op.name()
            );
            ResourceSource::DomainName
        };
        assert_eq!(op.resource_source(), expected, "{}", op.name());

        // Only the two polls hand out task tokens.
        let output = spec["output"]["shape"]
            .as_str()
            .map(|s| &model["shapes"][s]["members"]);
        let has_token = output.is_some_and(|m| m.get("taskToken").is_some());
        assert_eq!(op.issues_task_token(), has_token, "{}", op.name());

        // The refusal of a call over `max_in_flight` is the model's LimitExceededFault
        // where the model lists it.
        let limit_fault = spec["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["shape"] == "LimitExceededFault");
        assert_eq!(op.may_exceed_limits(), limit_fault, "{}", op.name());
    }
}

#[test]
fn decision_pseudo_actions_match_the_model() {
    let model = model();
    let kinds: BTreeSet<&str> = model["shapes"]["DecisionType"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: BTreeSet<&str> = swf_warden::policy::actions::DecisionKind::ALL
        .iter()
        .map(|d| d.name())
        .collect();
    assert_eq!(kinds, ours);
    let decision = model["shapes"]["Decision"]["members"].as_object().unwrap();
    for kind in swf_warden::policy::actions::DecisionKind::ALL {
        assert!(
            decision.contains_key(&kind.attributes_member()),
            "{}",
            kind.attributes_member()
        );
    }
}

/// The top-level members the model marks as required for `op`.
fn required_members(op: Operation) -> Vec<String> {
    let model = model();
    let shape = model["operations"][op.name()]["input"]["shape"]
        .as_str()
        .unwrap()
        .to_owned();
    model["shapes"][&shape]["required"]
        .as_array()
        .map_or(vec![], |r| {
            r.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
        })
}

/// A minimal valid input for `op`: every required member, with a sealed token where needed.
fn input(op: Operation, token: &str) -> Value {
    let mut body = serde_json::Map::new();
    for member in required_members(op) {
        let value = match member.as_str() {
            "domain" | "name" => json!("tenant-a"),
            "taskToken" => json!(token),
            "resourceArn" => json!(domain_arn("tenant-a")),
            "taskList" => json!({"name": "work"}),
            "activityType" | "workflowType" => json!({"name": "t", "version": "1"}),
            "execution" => json!({"workflowId": "w", "runId": "r"}),
            "startTimeFilter" => json!({"oldestDate": 0}),
            "tags" => json!([{"key": "k", "value": "v"}]),
            "tagKeys" => json!(["k"]),
            "registrationStatus" => json!("REGISTERED"),
            "workflowExecutionRetentionPeriodInDays" => json!("1"),
            _ => json!("x"),
        };
        body.insert(member, value);
    }
    Value::Object(body)
}

#[tokio::test]
async fn every_operation_goes_through_the_proxy() {
    let proxy = Proxy::start().await;
    let poll = Raw::new(
        ROOT,
        "PollForActivityTask",
        &input(Operation::PollForActivityTask, ""),
    );
    let answer = proxy.send(poll.build(proxy.addr)).await;
    assert_eq!(answer.status, 200);
    let token = answer.body["taskToken"].as_str().unwrap().to_owned();

    for op in Operation::ALL {
        let before = proxy.upstream.count();
        let body = input(*op, &token);
        let answer = proxy
            .send(Raw::new(ROOT, op.name(), &body).build(proxy.addr))
            .await;
        assert_eq!(answer.status, 200, "{}: {:?}", op.name(), answer.body);
        let calls = proxy.upstream.calls();
        // A filtered listing reads every upstream page (the fake upstream holds two).
        let forwarded = if *op == Operation::ListDomains { 2 } else { 1 };
        assert_eq!(
            calls.len(),
            before + forwarded,
            "{} reached the upstream as often as it must",
            op.name()
        );
        let call = calls.last().unwrap();
        assert_eq!(call.operation, op.name());
        if op.resource_source() == ResourceSource::TaskToken {
            assert!(
                call.body["taskToken"]
                    .as_str()
                    .unwrap()
                    .starts_with("UPSTREAM+"),
                "{}",
                op.name()
            );
        } else if *op == Operation::ListDomains {
            // The listing asked for, paged by the proxy itself (`visibility`).
            assert_eq!(call.body["registrationStatus"], body["registrationStatus"]);
            assert_eq!(call.body["nextPageToken"], "page-2");
        } else {
            assert_eq!(call.body, body, "{} body forwarded as sent", op.name());
        }
    }
}

#[tokio::test]
async fn every_operation_is_refused_for_a_principal_without_policies() {
    let proxy = Proxy::start().await;
    let sealer = swf_warden::tokens::TokenSealer::new(vec![swf_warden::tokens::TokenKey::new(
        "k1",
        &swf_warden::secret::Secret::new(TOKEN_KEY),
    )]);
    let token = sealer.seal("tenant-a", "UPSTREAM+tenant-a/work/1==");
    for op in Operation::ALL {
        let answer = proxy
            .send(Raw::new(NOBODY, op.name(), &input(*op, &token)).build(proxy.addr))
            .await;
        assert_eq!(answer.status, 400, "{}", op.name());
        assert_eq!(
            answer.error_type(),
            "OperationNotPermittedFault",
            "{}",
            op.name()
        );
        let record = proxy.audit_for(&answer.request_id());
        assert_eq!(record["action"], op.iam_action());
        let expected = match op.resource_source() {
            ResourceSource::AllDomains => domain_arn("*"),
            _ => domain_arn("tenant-a"),
        };
        assert_eq!(record["resource"], expected, "{}", op.name());
    }
    assert_eq!(proxy.upstream.count(), 0);
}
