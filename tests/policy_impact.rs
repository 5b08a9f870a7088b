//! Policy change impact on logs the proxy itself recorded: the `context` its audit records
//! carry (and never a token or a secret), and `swf-warden policy replay | diff | suggest` run on
//! them as an operator would, with the binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::decisions::{complete, decision_token, schedule};
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_swf-warden");

const DECIDER: Tenant = Tenant {
    name: "decider",
    key: "AKIADECIDER000000001",
    secret: "secret-decider-never-in-a-record",
};

/// Decides on tenant-a, scheduling only the activity type `cheap`.
const DECIDER_POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Decide", "Effect": "Allow",
   "Action": ["swf:PollForDecisionTask", "swf:RespondDecisionTaskCompleted", "swf:CompleteWorkflowExecution"],
   "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-a"},
  {"Sid": "CheapOnly", "Effect": "Allow", "Action": "swf:ScheduleActivityTask",
   "Resource": "arn:aws:swf:*:123456789012:/domain/tenant-a",
   "Condition": {"StringEquals": {"swf:activityType.name": "cheap"}}}]}"#;

/// A proxy recording allowed calls too, with the decider (tag team=d) beside the tenants;
/// `audit` and `extra` are added to `[audit]` and to the end.
async fn recording(audit: &str, extra: &str) -> Proxy {
    let (audit, extra) = (audit.to_owned(), extra.to_owned());
    Proxy::start_configured(
        move |c| {
            c.replace(
                "path = \"audit.log\"",
                &format!("path = \"audit.log\"\ninclude_allowed = true\n{audit}"),
            ) + &format!(
                "\n[[principal]]\nname = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\npolicies = [\"decider\"]\ntags = {{ team = \"d\" }}\n{extra}",
                DECIDER.name, DECIDER.key, DECIDER.secret
            )
        },
        &[("decider.json", DECIDER_POLICY)],
    )
    .await
}

/// The decider's workflow (a poll, an allowed and a refused completion) and a tenant's
/// heartbeat-shaped traffic with one refusal; returns the sealed token handed out.
async fn traffic(proxy: &Proxy) -> String {
    let d = proxy.client(DECIDER);
    let token = decision_token(&d).await;
    d.respond_decision_task_completed()
        .task_token(&token)
        .decisions(complete())
        .decisions(schedule("cheap"))
        .send()
        .await
        .unwrap();
    let refused = d
        .respond_decision_task_completed()
        .task_token(&token)
        .decisions(schedule("expensive"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&refused), "OperationNotPermittedFault");
    let a = proxy.client(TENANT_A);
    a.describe_domain().name("tenant-a").send().await.unwrap();
    let b = proxy.client(TENANT_B);
    describe_refused(&b, "tenant-a").await;
    token
}

/// Runs the binary; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `policy replay --json` of `log` under `config`: (exit code, report).
fn replay(config: &Path, log: &Path, more: &[&str]) -> (i32, Value) {
    let mut args = vec!["policy", "replay", "--json", "--config", path(config)];
    args.extend(more);
    args.push(path(log));
    let (code, out, err) = run(&args);
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, report)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of the proxy's configuration folder, to edit into a candidate.
fn candidate(proxy: &Proxy) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for entry in std::fs::read_dir(proxy.dir.path().join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("policies").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::copy(proxy.config_path(), dir.path().join("config.toml")).unwrap();
    dir
}

#[tokio::test]
async fn records_carry_the_keys_each_decision_read_and_never_a_token_or_secret() {
    let proxy = recording("", "").await;
    let token = traffic(&proxy).await;
    let records = proxy.audit();
    let decided: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "swf:RespondDecisionTaskCompleted" && r["decision"] == "allowed")
        .collect();
    assert_eq!(decided.len(), 1);
    let context = &decided[0]["context"];
    let keys = &context["keys"];
    assert_eq!(keys["aws:SourceIp"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(keys["aws:PrincipalTag/team"], serde_json::json!(["d"]));
    assert_eq!(keys["aws:username"], serde_json::json!(["decider"]));
    assert_eq!(keys["aws:SecureTransport"], serde_json::json!(["false"]));
    let resource = domain_arn("tenant-a");
    assert_eq!(
        context["decisions"],
        serde_json::json!([
            {"action": "swf:CompleteWorkflowExecution", "resource": resource, "keys": {},
             "statements": [{"policy": "decider", "sid": "Decide"}]},
            {"action": "swf:ScheduleActivityTask", "resource": resource,
             "keys": {"swf:activityType.name": ["cheap"], "swf:activityType.version": ["1"]},
             "statements": [{"policy": "decider", "sid": "CheapOnly"}]},
        ])
    );
    // The refused decision's record carries the call's context too.
    let refused = records
        .iter()
        .find(|r| r["action"] == "swf:ScheduleActivityTask")
        .unwrap();
    assert_eq!(refused["decision"], "implicitDeny");
    assert_eq!(
        refused["context"]["decisions"][0]["keys"]["swf:activityType.name"],
        serde_json::json!(["expensive"])
    );
    let polled = records
        .iter()
        .find(|r| r["action"] == "swf:PollForDecisionTask")
        .unwrap();
    assert_eq!(
        polled["context"]["keys"]["swf:taskList.name"],
        serde_json::json!(["deciders"])
    );
    let text = std::fs::read_to_string(proxy.audit_path()).unwrap();
    for secret in [
        DECIDER.secret,
        TENANT_A.secret,
        TENANT_B.secret,
        &token,
        "UPSTREAM+",
    ] {
        assert!(!text.contains(secret), "`{secret}` is in the audit log");
    }
    assert!(records
        .iter()
        .filter(|r| r["principal"].is_object())
        .all(|r| r["context"].is_object()));
}

#[tokio::test]
async fn a_throttled_call_and_a_shadowed_one_keep_their_context() {
    let proxy = recording(
        "",
        "enforce = false\n[[quota]]\nname = \"once\"\nactions = [\"swf:DescribeDomain\"]\nprincipals = [\"decider\"]\nrate_per_second = 0.001\nburst = 1\n",
    )
    .await;
    let d = proxy.client(DECIDER);
    // Shadow mode lets these through; the second is throttled.
    for _ in 0..2 {
        let _ = d.describe_domain().name("tenant-b").send().await;
    }
    let records = proxy.audit();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["wouldDeny", "wouldDeny", "throttled"]);
    assert!(records
        .iter()
        .all(|r| r["context"]["keys"]["aws:username"] == serde_json::json!(["decider"])));
}

#[tokio::test]
async fn without_record_context_records_carry_none_and_replay_says_so() {
    let proxy = recording("record_context = false", "").await;
    traffic(&proxy).await;
    assert!(proxy.audit().iter().all(|r| r.get("context").is_none()));
    let (code, report) = replay(
        &proxy.config_path(),
        &proxy.audit_path(),
        &["--fail-on", "any"],
    );
    assert_eq!(code, 0, "{report}");
    let calls = report["calls"].as_u64().unwrap();
    assert!(calls >= 5);
    assert_eq!(report["notReplayable"]["total"], calls);
    let reasons = report["notReplayable"]["reasons"].as_object().unwrap();
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons.keys().next().unwrap().starts_with("no context"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn replay_and_diff_find_what_a_candidate_breaks_and_what_it_opens() {
    let proxy = recording("", "").await;
    traffic(&proxy).await;
    let (config, log) = (proxy.config_path(), proxy.audit_path());

    // The configuration that recorded the log: nothing changes.
    let (code, same) = replay(&config, &log, &["--fail-on", "any"]);
    assert_eq!(code, 0, "{same}");
    assert_eq!(same["calls"], 5, "{same}");
    assert_eq!(same["unchanged"], same["calls"], "{same}");
    let (code, _, _) = run(&[
        "policy",
        "diff",
        "--config",
        path(&config),
        "--against",
        path(&config),
        "--fail-on",
        "any",
    ]);
    assert_eq!(code, 0);

    // Without `CheapOnly`: exactly the call it allowed breaks, and it is named.
    let narrower = candidate(&proxy);
    let policy: Value = serde_json::from_str(DECIDER_POLICY).unwrap();
    let mut without = policy.clone();
    without["Statement"].as_array_mut().unwrap().remove(1);
    std::fs::write(
        narrower.path().join("policies/decider.json"),
        without.to_string(),
    )
    .unwrap();
    let (code, report) = replay(
        &narrower.path().join("config.toml"),
        &log,
        &["--fail-on", "narrowing"],
    );
    assert_eq!(code, 1);
    assert_eq!(report["allowedToDenied"]["count"], 1, "{report}");
    assert_eq!(report["deniedToAllowed"]["count"], 0);
    let sample = &report["allowedToDenied"]["samples"][0];
    assert_eq!(sample["action"], "swf:ScheduleActivityTask");
    assert_eq!(
        sample["old"]["statements"],
        serde_json::json!([{"policy": "decider", "sid": "CheapOnly"}])
    );
    assert_eq!(sample["new"]["decision"], "implicitDeny");
    let (code, out, _) = run(&[
        "policy",
        "diff",
        "--config",
        path(&config),
        "--against",
        path(&narrower.path().join("config.toml")),
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "narrowing: principal decider on tenant-a: conditional on swf:activityType.name"
        ),
        "{out}"
    );

    // A wildcard for tenant-b: its refused call would go through; diff fails on it.
    let wider = candidate(&proxy);
    std::fs::write(
        wider.path().join("policies/tenant-b.json"),
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Anything", "Effect": "Allow", "Action": "swf:*", "Resource": "*"}]}"#,
    )
    .unwrap();
    let (code, report) = replay(
        &wider.path().join("config.toml"),
        &log,
        &["--fail-on", "widening"],
    );
    assert_eq!(code, 1);
    assert_eq!(report["deniedToAllowed"]["count"], 1, "{report}");
    let sample = &report["deniedToAllowed"]["samples"][0];
    assert_eq!(sample["principal"], TENANT_B.name);
    assert_eq!(
        sample["new"]["statements"],
        serde_json::json!([{"policy": "tenant-b", "sid": "Anything"}])
    );
    let (code, out, _) = run(&[
        "policy",
        "diff",
        "--json",
        "--config",
        path(&config),
        "--against",
        path(&wider.path().join("config.toml")),
        "--fail-on",
        "widening",
    ]);
    assert_eq!(code, 1);
    let diff: Value = serde_json::from_str(&out).unwrap();
    assert!(diff["widening"].as_u64().unwrap() > 0);
    assert!(diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == TENANT_B.name
            && c["resource"] == "(any other domain)"
            && c["change"] == "widening"));
    assert!(diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] == TENANT_B.name));
}

#[tokio::test]
async fn a_suggested_policy_is_accepted_replays_clean_and_names_only_what_was_used() {
    let proxy = recording("", "").await;
    traffic(&proxy).await;
    let (code, policy, report) = run(&[
        "policy",
        "suggest",
        "--config",
        path(&proxy.config_path()),
        "--principal",
        "decider",
        path(&proxy.audit_path()),
    ]);
    assert_eq!(code, 0, "{report}");
    assert!(
        policy.contains("\"swf:activityType.name\" = [\"cheap\"]"),
        "{policy}"
    );
    assert!(
        !policy.contains("\"*\"") && !policy.contains("tenant-b"),
        "{policy}"
    );
    assert!(
        report.contains("unused statements: none"),
        "every statement allowed something: {report}"
    );

    let under = candidate(&proxy);
    std::fs::remove_file(under.path().join("policies/decider.json")).unwrap();
    std::fs::write(under.path().join("policies/decider.toml"), &policy).unwrap();
    let (code, out, err) = run(&["check", "--config", path(&under.path().join("config.toml"))]);
    assert_eq!(code, 0, "{out}{err}");
    let (_, replayed) = replay(&under.path().join("config.toml"), &proxy.audit_path(), &[]);
    assert_eq!(replayed["allowedToDenied"]["count"], 0, "{replayed}");
    assert_eq!(replayed["deniedToAllowed"]["count"], 0, "{replayed}");

    let (code, json, _) = run(&[
        "policy",
        "suggest",
        "--format",
        "json",
        "--config",
        path(&proxy.config_path()),
        "--principal",
        "decider",
        path(&proxy.audit_path()),
    ]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["Version"], "2012-10-17");
    let resources: Vec<&Value> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Resource"].as_array().unwrap())
        .collect();
    assert!(
        resources
            .iter()
            .all(|r| *r == &Value::String(domain_arn("tenant-a"))),
        "{json}"
    );

    let (code, _, err) = run(&[
        "policy",
        "suggest",
        "--config",
        path(&proxy.config_path()),
        "--principal",
        "nobody-here",
        path(&proxy.audit_path()),
    ]);
    assert_eq!(code, 64, "{err}");
}
