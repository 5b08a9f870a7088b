//! Impact analysis on configurations and records written here; `tests/policy_impact.rs` and
//! the e2e suite run it on logs the proxy recorded.

use serde_json::{json, Value};

use super::diff::{self, ChangeKind};
use super::record::{self, Read};
use super::replay::{FailOn, Replay, WINDOW};
use super::suggest::{self, Target, Usage};
use super::SubjectKind;
use crate::config::Config;

const ACCOUNT: &str = "123456789012";

fn arn(domain: &str) -> String {
    format!("arn:aws:swf:us-east-1:{ACCOUNT}:/domain/{domain}")
}

/// A configuration with `policies` (file name → text), principals `alice` (tags team=a,
/// policies `a`) and `bob` (policies `b`), and the role `worker` (policies `w`).
fn config(dir: &tempfile::TempDir, policies: &[(&str, &str)]) -> Config {
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    for name in ["a", "b", "w"] {
        let path = dir.path().join("policies").join(format!("{name}.toml"));
        std::fs::write(&path, "Version = \"2012-10-17\"\nStatement = []\n").unwrap();
    }
    for (name, text) in policies {
        std::fs::write(dir.path().join("policies").join(name), text).unwrap();
    }
    let text = format!(
        r#"
[listen]
address = "127.0.0.1:0"
[service]
region = "us-east-1"
account_id = "{ACCOUNT}"
[upstream]
endpoint = "http://127.0.0.1:1"
access_key_id = "AKIDUPSTREAM"
secret_access_key_env = "NOT_READ_BY_THE_POLICY_TOOLS"
[task_tokens]
keys = [{{ id = "k1", secret_env = "NOT_READ_EITHER" }}]
[audit]
path = "audit.log"
[policies]
dir = "policies"
[[principal]]
name = "alice"
access_key_id = "AKIAALICE0000000001"
secret_access_key_env = "ALICE_SECRET_UNSET"
policies = ["a"]
tags = {{ team = "a" }}
[[principal]]
name = "bob"
access_key_id = "AKIABOB00000000001"
secret_access_key_env = "BOB_SECRET_UNSET"
policies = ["b"]
[sts]
session_keys = [{{ id = "s1", secret_env = "SESSION_KEY_UNSET" }}]
[[role]]
name = "worker"
policies = ["w"]
"#
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    crate::config::load_policies(&path).unwrap_or_else(|d| panic!("{d}"))
}

const OWN_DOMAIN_A: &str = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnDomain\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n";

/// A record of `principal` as the proxy writes one, with `context`.
fn record(
    seq: u64,
    principal: &str,
    decision: &str,
    action: &str,
    domain: &str,
    context: Value,
) -> Value {
    let session = principal.strip_prefix("worker/");
    let (name, arn_) = match session {
        Some(s) => (
            "worker".to_owned(),
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/worker/{s}"),
        ),
        None => (
            principal.to_owned(),
            format!("arn:aws:iam::{ACCOUNT}:user/{principal}"),
        ),
    };
    json!({
        "seq": seq, "prev": "0", "eventTime": "2026-12-06T12:00:00.000Z", "requestId": format!("req-{seq}"),
        "decision": decision, "principal": {"name": name, "arn": arn_, "accessKeyId": "AKIA"},
        "action": action, "resource": arn(domain), "matchedStatements": [], "sourceIp": "127.0.0.1",
        "context": context,
    })
}

fn keys(extra: Value) -> Value {
    let mut keys = json!({
        "aws:CurrentTime": ["2026-12-06T12:00:00.000Z"], "aws:EpochTime": ["1796558400"],
        "aws:SecureTransport": ["false"], "aws:SourceIp": ["127.0.0.1"], "aws:RequestedRegion": ["us-east-1"],
        "aws:username": ["someone-else"], "aws:PrincipalType": ["User"],
    });
    for (k, v) in extra.as_object().unwrap() {
        keys[k] = v.clone();
    }
    json!({ "keys": keys })
}

fn replay(config: &Config, records: &[Value]) -> super::replay::Report {
    let mut replay = Replay::new(config, 10);
    for r in records {
        replay.line(r.to_string().as_bytes());
    }
    replay.finish()
}

#[test]
fn lines_are_sorted_into_decisions_and_the_rest() {
    let decided = |decision: &str| {
        let line = record(
            1,
            "alice",
            decision,
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({})),
        )
        .to_string();
        match record::read(line.as_bytes()) {
            Read::Decided(r) => Some(r.allowed),
            _ => None,
        }
    };
    assert_eq!(decided("allowed"), Some(true));
    assert_eq!(
        decided("throttled"),
        Some(true),
        "a throttled call was allowed by policy first"
    );
    for denial in ["explicitDeny", "implicitDeny", "wouldDeny"] {
        assert_eq!(decided(denial), Some(false), "{denial}");
    }
    for other in ["authFailed", "invalidRequest", "issued"] {
        assert_eq!(decided(other), None, "{other}");
    }
    let mut unauthenticated = record(
        1,
        "alice",
        "throttled",
        "swf:PollForActivityTask",
        "tenant-a",
        json!(null),
    );
    unauthenticated["principal"] = Value::Null;
    assert!(matches!(
        record::read(unauthenticated.to_string().as_bytes()),
        Read::NotDecision(_)
    ));
    let who_am_i = record(
        1,
        "alice",
        "allowed",
        "sts:GetCallerIdentity",
        "tenant-a",
        json!(null),
    );
    assert!(matches!(
        record::read(who_am_i.to_string().as_bytes()),
        Read::NotDecision(_)
    ));
    assert!(matches!(
        record::read(br#"{"seq":9,"prev":"x","checkpoint":{}}"#),
        Read::NotRecord { torn: false }
    ));
    assert!(matches!(
        record::read(b"{\"seq\":1,\"ev"),
        Read::NotRecord { torn: true }
    ));
    // A decision's record is a call of RespondDecisionTaskCompleted.
    let line = record(
        1,
        "alice",
        "implicitDeny",
        "swf:ScheduleActivityTask",
        "tenant-a",
        keys(json!({})),
    )
    .to_string();
    let Read::Decided(r) = record::read(line.as_bytes()) else {
        panic!()
    };
    assert_eq!(r.call.iam_action(), "swf:RespondDecisionTaskCompleted");
}

#[test]
fn the_same_configuration_changes_nothing_and_a_removed_statement_breaks_what_it_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let old = config(&dir, &[("a.toml", OWN_DOMAIN_A)]);
    let records = [
        record(
            1,
            "alice",
            "allowed",
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({})),
        ),
        record(
            2,
            "alice",
            "allowed",
            "swf:RecordActivityTaskHeartbeat",
            "tenant-a",
            keys(json!({})),
        ),
        record(
            3,
            "bob",
            "implicitDeny",
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({})),
        ),
    ];
    let same = replay(&old, &records);
    assert_eq!((same.calls, same.unchanged), (3, 3));
    assert!(!same.fails(FailOn::Any));

    let dir = tempfile::tempdir().unwrap();
    let new = config(&dir, &[]);
    let report = replay(&new, &records);
    assert_eq!(report.allowed_to_denied.count, 2);
    assert_eq!(report.unchanged, 1);
    assert!(report.fails(FailOn::Narrowing) && !report.fails(FailOn::Widening));
    let sample = &report.allowed_to_denied.samples[0];
    assert_eq!(
        (sample.seq, sample.new.decision.as_str()),
        (Some(1), "implicitDeny")
    );
    assert_eq!(report.allowed_to_denied.by_subject["alice"], 2);
    assert!(
        report.text().contains("allowed → denied: 2"),
        "{}",
        report.text()
    );
}

#[test]
fn the_callers_own_keys_come_from_the_configuration_the_rest_from_the_record() {
    let dir = tempfile::tempdir().unwrap();
    // Allowed only for the user alice with team a, on the task list `mine`, before 2027.
    let policy = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"Mine\"\nEffect = \"Allow\"\nAction = \"swf:PollForActivityTask\"\nResource = \"*\"\n[Statement.Condition.StringEquals]\n\"aws:username\" = \"alice\"\n\"aws:PrincipalTag/team\" = \"a\"\n\"swf:taskList.name\" = \"mine\"\n[Statement.Condition.DateLessThan]\n\"aws:CurrentTime\" = \"2027-01-01T00:00:00Z\"\n";
    let config = config(&dir, &[("a.toml", policy)]);
    let poll = |seq, list: &str, tag: &str| {
        // The record's own caller keys (a forged user name, another team) are not used.
        record(
            seq,
            "alice",
            "implicitDeny",
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({"swf:taskList.name": [list], "aws:PrincipalTag/team": [tag]})),
        )
    };
    let report = replay(&config, &[poll(1, "mine", "z"), poll(2, "theirs", "a")]);
    assert_eq!(report.denied_to_allowed.count, 1, "{}", report.text());
    assert_eq!(report.denied_to_allowed.samples[0].seq, Some(1));
    assert_eq!(report.unchanged, 1);
    // The call's recorded time decides time conditions.
    let mut late = poll(3, "mine", "a");
    late["eventTime"] = json!("2027-06-01T00:00:00.000Z");
    late["context"]["keys"]["aws:CurrentTime"] = json!(["2027-06-01T00:00:00.000Z"]);
    let report = replay(&config, &[late]);
    assert_eq!(report.unchanged, 1, "{}", report.text());
}

#[test]
fn decisions_are_decided_with_their_own_keys_and_the_first_denial_decides() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"Complete\"\nEffect = \"Allow\"\nAction = [\"swf:RespondDecisionTaskCompleted\", \"swf:StartTimer\"]\nResource = \"*\"\n[[Statement]]\nSid = \"Work\"\nEffect = \"Allow\"\nAction = \"swf:ScheduleActivityTask\"\nResource = \"*\"\n[Statement.Condition.StringEquals]\n\"swf:activityType.name\" = \"work\"\n";
    let config = config(&dir, &[("a.toml", policy)]);
    let call = |seq, activity: &str| {
        let mut context = keys(json!({}));
        context["decisions"] = json!([
            {"action": "swf:StartTimer", "resource": arn("tenant-a"), "keys": {}},
            {"action": "swf:ScheduleActivityTask", "resource": arn("tenant-a"),
             "keys": {"swf:activityType.name": [activity]}},
        ]);
        record(
            seq,
            "alice",
            "allowed",
            "swf:RespondDecisionTaskCompleted",
            "tenant-a",
            context,
        )
    };
    let report = replay(&config, &[call(1, "work"), call(2, "mine-bitcoin")]);
    assert_eq!(report.unchanged, 1);
    assert_eq!(report.allowed_to_denied.count, 1);
    let sample = &report.allowed_to_denied.samples[0];
    assert_eq!(
        sample.action, "swf:ScheduleActivityTask",
        "the decision that now denies is named"
    );
}

#[test]
fn a_shadow_mode_call_is_one_call_however_many_records_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[("a.toml", OWN_DOMAIN_A)]);
    let mut context = keys(json!({}));
    context["decisions"] =
        json!([{"action": "swf:StartTimer", "resource": arn("tenant-b"), "keys": {}}]);
    // A wouldDeny for the decision, then the call's allowed record, under one request id;
    // other calls' records in between.
    let mut would = record(
        1,
        "alice",
        "wouldDeny",
        "swf:StartTimer",
        "tenant-b",
        context.clone(),
    );
    let mut other = record(
        2,
        "bob",
        "implicitDeny",
        "swf:PollForActivityTask",
        "tenant-a",
        keys(json!({})),
    );
    let mut allowed = record(
        3,
        "alice",
        "allowed",
        "swf:RespondDecisionTaskCompleted",
        "tenant-b",
        context,
    );
    would["requestId"] = json!("upstream-1");
    allowed["requestId"] = json!("upstream-1");
    other["requestId"] = json!("other");
    let report = replay(&config, &[would, other, allowed]);
    assert_eq!(
        (report.records, report.calls, report.unchanged),
        (3, 2, 2),
        "{}",
        report.text()
    );

    // Past the window, every call is still counted once.
    let many: Vec<Value> = (0..(WINDOW as u64 * 3))
        .map(|i| {
            record(
                i,
                "alice",
                "allowed",
                "swf:PollForActivityTask",
                "tenant-a",
                keys(json!({})),
            )
        })
        .collect();
    let report = replay(&config, &many);
    assert_eq!(
        (report.calls, report.unchanged),
        (WINDOW as u64 * 3, WINDOW as u64 * 3)
    );
}

#[test]
fn calls_that_cannot_be_decided_again_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[("a.toml", OWN_DOMAIN_A)]);
    let mut old = record(
        1,
        "alice",
        "allowed",
        "swf:PollForActivityTask",
        "tenant-a",
        json!(null),
    );
    old.as_object_mut().unwrap().remove("context");
    let gone = record(
        2,
        "carol",
        "allowed",
        "swf:PollForActivityTask",
        "tenant-a",
        keys(json!({})),
    );
    let session = record(
        3,
        "worker/s1",
        "allowed",
        "swf:PollForActivityTask",
        "tenant-a",
        keys(json!({})),
    );
    let report = replay(&config, &[old, gone, session]);
    assert_eq!(report.not_replayable.total, 2, "{}", report.text());
    let reasons: Vec<&String> = report.not_replayable.reasons.keys().collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("no context")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("`carol`")), "{reasons:?}");
    // The role session replayed (denied now: its policy is empty).
    assert_eq!(report.allowed_to_denied.count, 1);
}

#[test]
fn a_role_session_is_replayed_with_its_recorded_tags() {
    let dir = tempfile::tempdir().unwrap();
    let own = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnNamespace\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/${aws:PrincipalTag/namespace}\"\n";
    let config = config(&dir, &[("w.toml", own)]);
    let call = |seq, namespace: &str| {
        record(
            seq,
            "worker/pod-1",
            "implicitDeny",
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({"aws:PrincipalTag/namespace": [namespace]})),
        )
    };
    let report = replay(&config, &[call(1, "tenant-a"), call(2, "tenant-b")]);
    assert_eq!(report.denied_to_allowed.count, 1, "{}", report.text());
    assert_eq!(report.denied_to_allowed.samples[0].seq, Some(1));
    assert_eq!(
        report.denied_to_allowed.samples[0].subject,
        SubjectKind::Role
    );
}

#[test]
fn reach_decides_what_the_subject_is_and_leaves_the_request_open() {
    use crate::policy::{Action, Reach};
    use crate::swf::Operation;
    let dir = tempfile::tempdir().unwrap();
    let policy = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"Team\"\nEffect = \"Allow\"\nAction = \"swf:PollForActivityTask\"\nResource = \"*\"\n[Statement.Condition.StringEquals]\n\"aws:PrincipalTag/team\" = \"a\"\n[[Statement]]\nSid = \"List\"\nEffect = \"Allow\"\nAction = \"swf:PollForDecisionTask\"\nResource = \"*\"\n[Statement.Condition.StringEquals]\n\"swf:taskList.name\" = \"mine\"\n[[Statement]]\nSid = \"All\"\nEffect = \"Allow\"\nAction = \"swf:CountPendingActivityTasks\"\nResource = \"*\"\n[[Statement]]\nSid = \"NotFromThere\"\nEffect = \"Deny\"\nAction = \"swf:CountPendingActivityTasks\"\nResource = \"*\"\n[Statement.Condition.IpAddress]\n\"aws:SourceIp\" = \"192.0.2.0/24\"\n[[Statement]]\nSid = \"OnlyDenied\"\nEffect = \"Deny\"\nAction = \"swf:DescribeDomain\"\nResource = \"*\"\n[Statement.Condition.Bool]\n\"aws:SecureTransport\" = \"false\"\n";
    let config = config(&dir, &[("a.toml", policy), ("w.toml", policy)]);
    let reach = |subject: &super::Subject<'_>, op: Operation| {
        diff::cell(&config, subject, Action::Operation(op), &arn("d")).reach
    };
    let alice = super::principal(&config, "alice").unwrap();
    // A principal's tag is known: decided now.
    assert_eq!(
        reach(&alice, Operation::PollForActivityTask),
        Reach::Allowed
    );
    let open = |r: Reach| match r {
        Reach::Conditional { keys, .. } => keys.into_iter().collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        open(reach(&alice, Operation::PollForDecisionTask)),
        ["swf:taskList.name"]
    );
    // An allow with a conditional deny over it: conditional on the deny's keys.
    assert_eq!(
        open(reach(&alice, Operation::CountPendingActivityTasks)),
        ["aws:SourceIp"]
    );
    // A conditional deny alone allows nothing.
    assert_eq!(
        reach(&alice, Operation::DescribeDomain),
        Reach::ImplicitDeny
    );
    // A session's tags come with the session: open.
    let session = diff::subject(&config, SubjectKind::Role, "worker").unwrap();
    assert_eq!(
        open(reach(&session, Operation::PollForActivityTask)),
        ["aws:PrincipalTag/team"]
    );
    let bob = super::principal(&config, "bob").unwrap();
    assert_eq!(
        reach(&bob, Operation::PollForActivityTask),
        Reach::ImplicitDeny
    );
}

#[test]
fn diff_finds_widening_narrowing_and_changed_conditions() {
    let before = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"OwnDomain\"\nEffect = \"Allow\"\nAction = \"swf:*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-a\"\n[[Statement]]\nSid = \"Lists\"\nEffect = \"Allow\"\nAction = \"swf:PollForActivityTask\"\nResource = \"arn:aws:swf:*:123456789012:/domain/shared\"\n[Statement.Condition.StringEquals]\n\"swf:taskList.name\" = \"a-only\"\n";
    let dir_old = tempfile::tempdir().unwrap();
    let old = config(&dir_old, &[("a.toml", before)]);
    let same = diff::diff(&old, &old);
    assert_eq!(
        (same.widening, same.narrowing, same.conditions_changed),
        (0, 0, 0)
    );
    assert!(same.changes.is_empty() && same.cells > 0 && !same.fails(FailOn::Any));

    // Heartbeats no longer allowed; bob gets everything everywhere; the shared list's
    // condition names another list.
    let after = before.replace("\"a-only\"", "\"anyone\"")
        + "[[Statement]]\nSid = \"NoHeartbeats\"\nEffect = \"Deny\"\nAction = \"swf:RecordActivityTaskHeartbeat\"\nResource = \"*\"\n";
    let everything = "Version = \"2012-10-17\"\n[[Statement]]\nSid = \"Everything\"\nEffect = \"Allow\"\nAction = \"*\"\nResource = \"*\"\n";
    let dir_new = tempfile::tempdir().unwrap();
    let new = config(&dir_new, &[("a.toml", &after), ("b.toml", everything)]);
    let report = diff::diff(&old, &new);
    let find = |name: &str, action: &str, resource: &str| {
        report
            .changes
            .iter()
            .find(|c| c.name == name && c.action == action && c.resource == resource)
            .unwrap_or_else(|| panic!("{name} {action} {resource}: {}", report.text()))
    };
    let heartbeat = find("alice", "swf:RecordActivityTaskHeartbeat", "tenant-a");
    assert_eq!(heartbeat.change, ChangeKind::Narrowing);
    assert_eq!(heartbeat.new.decision, "explicitDeny");
    let wide = find(
        "bob",
        "swf:TerminateWorkflowExecution",
        "(any other domain)",
    );
    assert_eq!(wide.change, ChangeKind::Widening);
    assert_eq!(wide.new.statements[0].sid.as_deref(), Some("Everything"));
    let shared = find("alice", "swf:PollForActivityTask", "shared");
    assert_eq!(shared.change, ChangeKind::ConditionsChanged);
    assert_eq!(shared.old.keys, ["swf:taskList.name"]);
    assert!(report.fails(FailOn::Widening) && report.fails(FailOn::Narrowing));
    // Listing every domain is a column of its own; assuming roles is a principal's action.
    find("bob", "swf:ListDomains", "(all domains)");
    find("bob", "sts:AssumeRole", "role/worker");
    assert!(!report
        .changes
        .iter()
        .any(|c| c.name == "worker" && c.action == "sts:AssumeRole"));
    let text = report.text();
    assert!(
        text.contains("widening: principal bob on tenant-a: implicitDeny → allowed"),
        "{text}"
    );
}

#[test]
fn a_subject_only_one_side_has_is_absent_on_the_other() {
    let dir_old = tempfile::tempdir().unwrap();
    let old = config(&dir_old, &[("a.toml", OWN_DOMAIN_A)]);
    let dir_new = tempfile::tempdir().unwrap();
    let new = config(&dir_new, &[("a.toml", OWN_DOMAIN_A)]);
    let text = std::fs::read_to_string(dir_new.path().join("config.toml")).unwrap()
        + "[[principal]]\nname = \"carol\"\naccess_key_id = \"AKIACAROL000000001\"\nsecret_access_key_env = \"X\"\npolicies = [\"a\"]\n";
    std::fs::write(dir_new.path().join("config.toml"), text).unwrap();
    let with_carol = crate::config::load_policies(&dir_new.path().join("config.toml")).unwrap();
    drop(new);
    let report = diff::diff(&old, &with_carol);
    assert!(report.widening > 0);
    assert!(report.changes.iter().all(|c| c.name == "carol"
        && c.old.decision == "absent"
        && c.change == ChangeKind::Widening));
    let back = diff::diff(&with_carol, &old);
    assert_eq!((back.widening, back.narrowing), (0, report.widening));
}

/// Records of alice's workflow on tenant-a: polls, a heartbeat, decisions with names.
fn workflow() -> Vec<Value> {
    let mut out = vec![
        record(
            1,
            "alice",
            "allowed",
            "swf:PollForActivityTask",
            "tenant-a",
            keys(json!({"swf:taskList.name": ["work"]})),
        ),
        record(
            2,
            "alice",
            "allowed",
            "swf:RecordActivityTaskHeartbeat",
            "tenant-a",
            keys(json!({})),
        ),
        record(
            3,
            "alice",
            "implicitDeny",
            "swf:PollForActivityTask",
            "tenant-b",
            keys(json!({})),
        ),
    ];
    for (seq, activity, list) in [
        (4, json!("resize"), json!(["images"])),
        (5, json!("upload"), Value::Null),
    ] {
        let mut keys_ =
            json!({"swf:activityType.name": [activity], "swf:activityType.version": ["1"]});
        if list.is_array() {
            keys_["swf:taskList.name"] = list;
        }
        let mut context = keys(json!({}));
        context["decisions"] = json!([
            {"action": "swf:ScheduleActivityTask", "resource": arn("tenant-a"), "keys": keys_},
            {"action": "swf:CompleteWorkflowExecution", "resource": arn("tenant-a"), "keys": {}},
        ]);
        out.push(record(
            seq,
            "alice",
            "allowed",
            "swf:RespondDecisionTaskCompleted",
            "tenant-a",
            context,
        ));
    }
    for r in &mut out {
        r["matchedStatements"] = json!([{"policy": "a", "sid": "OwnDomain"}]);
    }
    out
}

#[test]
fn suggest_allows_what_was_done_and_nothing_wider() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[("a.toml", OWN_DOMAIN_A)]);
    let mut usage = Usage::default();
    let target = Target {
        kind: SubjectKind::Principal,
        name: "alice",
    };
    for r in workflow() {
        usage.line(r.to_string().as_bytes(), target);
    }
    assert_eq!(
        usage.records, 4,
        "the denied call is not something alice did"
    );
    let subject = super::principal(&config, "alice");
    let suggestion = suggest::suggest(&config, subject.as_ref(), &usage);
    let toml = suggestion.toml();
    assert!(
        !toml.contains("tenant-b") && !toml.contains("\"*\""),
        "{toml}"
    );
    assert!(
        toml.contains("\"swf:activityType.name\" = [\"resize\", \"upload\"]"),
        "{toml}"
    );
    // One call left the task list out: allowed where it is absent or one of those seen.
    assert!(
        toml.contains(
            "[Statement.Condition.StringEqualsIfExists]\n\"swf:taskList.name\" = [\"images\"]"
        ),
        "{toml}"
    );
    // Both formats read as policies with no error and no warning.
    for (name, text) in [("s.toml", toml.clone()), ("s.json", suggestion.json())] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let (document, diagnostics) = if name.ends_with("json") {
            crate::policy::document::read_json(&path, &text)
        } else {
            crate::policy::document::read_toml(&path, &text)
        };
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let policy = crate::policy::Policy::compile("s", &path, document.unwrap()).unwrap();
        assert!(
            crate::policy::analysis::analyze(&policy).is_empty(),
            "{text}"
        );
    }
    // Replayed under the suggestion, no allowed call changes.
    std::fs::write(dir.path().join("policies").join("a.toml"), &toml).unwrap();
    let under = crate::config::load_policies(&dir.path().join("config.toml")).unwrap();
    let report = replay(&under, &workflow());
    assert_eq!(report.allowed_to_denied.count, 0, "{}", report.text());
    // The report names what the old policy grants unused, and no used action.
    let unused = &suggestion.unused_grants["tenant-a"];
    assert!(unused.contains(&"swf:TerminateWorkflowExecution"));
    assert!(
        !unused.contains(&"swf:RecordActivityTaskHeartbeat")
            && !unused.contains(&"swf:ScheduleActivityTask")
    );
    assert!(
        suggestion.unused_statements.is_empty(),
        "OwnDomain allowed the calls"
    );
}

#[test]
fn suggest_leaves_out_a_condition_on_too_many_names_and_requires_absence_when_never_given() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[("a.toml", OWN_DOMAIN_A)]);
    let mut usage = Usage::default();
    let target = Target {
        kind: SubjectKind::Principal,
        name: "alice",
    };
    for i in 0..=suggest::MAX_NAMES {
        let mut context = keys(json!({}));
        context["decisions"] = json!([{"action": "swf:ScheduleActivityTask", "resource": arn("tenant-a"),
                                        "keys": {"swf:activityType.name": [format!("a{i}")]}}]);
        let r = record(
            i as u64,
            "alice",
            "allowed",
            "swf:RespondDecisionTaskCompleted",
            "tenant-a",
            context,
        );
        usage.line(r.to_string().as_bytes(), target);
    }
    let suggestion = suggest::suggest(&config, None, &usage);
    let toml = suggestion.toml();
    assert!(!toml.contains("swf:activityType.name"), "{toml}");
    assert!(
        toml.contains("[Statement.Condition.Null]\n\"swf:taskList.name\" = [\"true\"]"),
        "{toml}"
    );
    assert_eq!(suggestion.too_many.len(), 1);
}

#[test]
fn suggest_for_a_role_names_each_sessions_own_domain_by_its_tag() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[]);
    let mut usage = Usage::default();
    let target = Target {
        kind: SubjectKind::Role,
        name: "worker",
    };
    for (seq, ns) in [(1, "tenant-a"), (2, "tenant-b")] {
        let r = record(
            seq,
            &format!("worker/pod-{seq}"),
            "allowed",
            "swf:PollForActivityTask",
            ns,
            keys(json!({"aws:PrincipalTag/namespace": [ns], "aws:PrincipalTag/team": ["x"]})),
        );
        usage.line(r.to_string().as_bytes(), target);
    }
    let toml = suggest::suggest(&config, None, &usage).toml();
    assert!(
        toml.contains("/domain/${aws:PrincipalTag/namespace}\"]"),
        "{toml}"
    );
    assert!(!toml.contains("tenant-a"), "{toml}");

    // A session that worked outside its namespace: each domain is named as recorded.
    let r = record(
        3,
        "worker/pod-3",
        "allowed",
        "swf:DescribeDomain",
        "shared",
        keys(json!({"aws:PrincipalTag/namespace": ["tenant-c"]})),
    );
    usage.line(r.to_string().as_bytes(), target);
    let toml = suggest::suggest(&config, None, &usage).toml();
    assert!(
        toml.contains("/domain/tenant-a\"]") && toml.contains("/domain/shared\"]"),
        "{toml}"
    );
    assert!(!toml.contains("PrincipalTag"), "{toml}");
}

#[test]
fn policy_tools_do_not_read_secrets() {
    // Every secret of `config` is given by an environment variable that is not set.
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir, &[]);
    assert_eq!(config.principals.len(), 2);
    assert!(
        crate::config::load(&dir.path().join("config.toml")).is_err(),
        "serving reads them"
    );
}
