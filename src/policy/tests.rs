//! Evaluation tests: IAM's precedence, wildcards per ARN segment, negations, groups.

use super::*;
use crate::swf::Operation;
use std::collections::BTreeMap;

/// Evaluates with a plain context: no conditions in these tests read it.
fn eval(s: &PolicySet, op: Operation, resource: &str) -> Decision {
    with_ctx(op, |ctx| s.evaluate(resource, ctx))
}

fn with_ctx<R>(op: Operation, f: impl FnOnce(&Context<'_>) -> R) -> R {
    let tags = BTreeMap::new();
    let ctx = Context {
        caller: Caller {
            name: "w",
            arn: "arn:aws:iam::123456789012:user/w",
            tags: &tags,
            session: None,
        },
        action: Action::Operation(op),
        input: None,
        source_ip: None,
        now: std::time::SystemTime::now(),
        secure_transport: false,
        region: "us-east-1",
        overrides: None,
    };
    f(&ctx)
}

const A: &str = "arn:aws:swf:us-east-1:123456789012:/domain/tenant-a";
const B: &str = "arn:aws:swf:us-east-1:123456789012:/domain/tenant-b";

fn policy(name: &str, toml: &str) -> Arc<Policy> {
    let path = PathBuf::from(format!("{name}.toml"));
    let doc = document::parse_toml(&path, toml).unwrap();
    Arc::new(Policy::compile(name, &path, doc).unwrap())
}

fn set(policies: &[Arc<Policy>]) -> PolicySet {
    let mut s = PolicySet::default();
    for p in policies {
        s.add(p.clone());
    }
    s
}

fn statement(effect: &str, action: &str, resource: &str) -> String {
    format!("[[Statement]]\nSid = \"S\"\nEffect = \"{effect}\"\nAction = {action}\nResource = {resource}\n")
}

fn kind(s: &PolicySet, op: Operation, resource: &str) -> DecisionKind {
    eval(s, op, resource).kind
}

#[test]
fn allow_only_what_is_granted() {
    let p = policy(
        "a",
        &statement(
            "Allow",
            r#"["swf:PollForActivityTask", "swf:RecordActivityTaskHeartbeat"]"#,
            &format!("\"{A}\""),
        ),
    );
    let s = set(&[p]);
    assert_eq!(
        kind(&s, Operation::PollForActivityTask, A),
        DecisionKind::Allowed
    );
    assert_eq!(
        kind(&s, Operation::RecordActivityTaskHeartbeat, A),
        DecisionKind::Allowed
    );
    assert_eq!(
        kind(&s, Operation::PollForActivityTask, B),
        DecisionKind::ImplicitDeny
    );
    assert_eq!(
        kind(&s, Operation::TerminateWorkflowExecution, A),
        DecisionKind::ImplicitDeny
    );
}

#[test]
fn explicit_deny_beats_allow_in_any_order() {
    let allow = policy("allow", &statement("Allow", "\"swf:*\"", "\"*\""));
    let deny = policy(
        "deny",
        &statement("Deny", "\"swf:TerminateWorkflowExecution\"", "\"*\""),
    );
    for order in [
        vec![allow.clone(), deny.clone()],
        vec![deny.clone(), allow.clone()],
    ] {
        let s = set(&order);
        let d = eval(&s, Operation::TerminateWorkflowExecution, A);
        assert_eq!(d.kind, DecisionKind::ExplicitDeny);
        assert_eq!(d.statements.len(), 1);
        assert_eq!(&*d.statements[0].policy, "deny");
        assert_eq!(
            kind(&s, Operation::PollForActivityTask, A),
            DecisionKind::Allowed
        );
    }
}

#[test]
fn actions_are_case_insensitive_with_wildcards() {
    let s = set(&[policy(
        "p",
        &statement(
            "Allow",
            r#"["SWF:respondactivitytask*", "swf:Poll?orDecisionTask"]"#,
            "\"*\"",
        ),
    )]);
    for op in [
        Operation::RespondActivityTaskCompleted,
        Operation::RespondActivityTaskFailed,
        Operation::RespondActivityTaskCanceled,
        Operation::PollForDecisionTask,
    ] {
        assert_eq!(kind(&s, op, A), DecisionKind::Allowed, "{op:?}");
    }
    assert_eq!(
        kind(&s, Operation::RespondDecisionTaskCompleted, A),
        DecisionKind::ImplicitDeny
    );
    assert_eq!(
        kind(&s, Operation::PollForActivityTask, A),
        DecisionKind::ImplicitDeny
    );
}

#[test]
fn other_services_and_star() {
    let s = set(&[policy(
        "p",
        &statement("Allow", r#"["s3:*", "ec2:Describe*"]"#, "\"*\""),
    )]);
    assert_eq!(
        kind(&s, Operation::ListDomains, A),
        DecisionKind::ImplicitDeny
    );
    let s = set(&[policy("p", &statement("Allow", "\"*\"", "\"*\""))]);
    assert_eq!(kind(&s, Operation::ListDomains, A), DecisionKind::Allowed);
}

#[test]
fn resources_are_case_sensitive_and_matched_per_segment() {
    let s = set(&[policy(
        "p",
        &statement(
            "Allow",
            "\"swf:*\"",
            "\"arn:aws:swf:*:123456789012:/domain/tenant-*\"",
        ),
    )]);
    assert_eq!(kind(&s, Operation::ListDomains, A), DecisionKind::Allowed);
    assert_eq!(
        kind(
            &s,
            Operation::ListDomains,
            "arn:aws:swf:eu-west-1:123456789012:/domain/tenant-z"
        ),
        DecisionKind::Allowed
    );
    assert_eq!(
        kind(
            &s,
            Operation::ListDomains,
            "arn:aws:swf:us-east-1:123456789012:/domain/Tenant-a"
        ),
        DecisionKind::ImplicitDeny
    );
    // `*` in the region segment must not swallow the account segment.
    assert_eq!(
        kind(
            &s,
            Operation::ListDomains,
            "arn:aws:swf:us-east-1:999999999999:/domain/tenant-a"
        ),
        DecisionKind::ImplicitDeny
    );
    // Five segments only is refused at load; a six-segment pattern whose last is `*` matches.
    let five = statement("Allow", "\"swf:*\"", "\"arn:aws:swf:us-east-1:*\"");
    assert!(document::parse_toml(Path::new("p.toml"), &five).is_err());
    let s2 = set(&[policy(
        "q",
        &statement("Allow", "\"swf:*\"", "\"arn:aws:swf:us-east-1:*:*\""),
    )]);
    assert_eq!(kind(&s2, Operation::ListDomains, A), DecisionKind::Allowed);
}

#[test]
fn star_in_last_segment_crosses_slashes_and_colons() {
    let s = set(&[policy(
        "p",
        &statement(
            "Allow",
            "\"swf:*\"",
            "\"arn:aws:swf:us-east-1:123456789012:/domain/*\"",
        ),
    )]);
    assert_eq!(
        kind(
            &s,
            Operation::ListDomains,
            "arn:aws:swf:us-east-1:123456789012:/domain/a/b:c"
        ),
        DecisionKind::Allowed
    );
    assert_eq!(
        kind(
            &s,
            Operation::ListDomains,
            "arn:aws:swf:us-east-1:123456789012:/other/a"
        ),
        DecisionKind::ImplicitDeny
    );
}

#[test]
fn resource_that_is_not_an_arn_matches_only_star() {
    let s = set(&[policy(
        "p",
        &statement("Allow", "\"swf:*\"", &format!("\"{A}\"")),
    )]);
    assert_eq!(
        kind(&s, Operation::TagResource, "not-an-arn"),
        DecisionKind::ImplicitDeny
    );
    let s = set(&[policy("p", &statement("Allow", "\"swf:*\"", "\"*\""))]);
    assert_eq!(
        kind(&s, Operation::TagResource, "not-an-arn"),
        DecisionKind::Allowed
    );
}

#[test]
fn not_action_and_not_resource() {
    let doc = format!("[[Statement]]\nEffect = \"Allow\"\nNotAction = \"swf:Terminate*\"\nNotResource = \"{B}\"\n");
    let s = set(&[policy("p", &doc)]);
    assert_eq!(
        kind(&s, Operation::PollForActivityTask, A),
        DecisionKind::Allowed
    );
    assert_eq!(
        kind(&s, Operation::TerminateWorkflowExecution, A),
        DecisionKind::ImplicitDeny
    );
    assert_eq!(
        kind(&s, Operation::PollForActivityTask, B),
        DecisionKind::ImplicitDeny
    );
}

#[test]
fn a_policy_shared_by_principal_and_group_counts_once() {
    let p = policy("p", &statement("Allow", "\"swf:*\"", "\"*\""));
    let s = set(&[p.clone(), p]);
    assert_eq!(eval(&s, Operation::ListDomains, A).statements.len(), 1);
    assert_eq!(s.policy_names().count(), 1);
}

#[test]
fn authorize_builds_aws_denial_messages() {
    let s = set(&[policy(
        "deny",
        &statement("Deny", "\"swf:*\"", &format!("\"{B}\"")),
    )]);
    let arn = "arn:aws:iam::123456789012:user/w";
    let (d, msg) = with_ctx(Operation::PollForActivityTask, |ctx| {
        authorize(&s, arn, A, ctx, true)
    })
    .unwrap_err();
    assert_eq!(d.kind, DecisionKind::ImplicitDeny);
    assert_eq!(msg, format!("User: {arn} is not authorized to perform: swf:PollForActivityTask on resource: {A} because no identity-based policy allows the swf:PollForActivityTask action"));
    let (d, msg) = with_ctx(Operation::PollForActivityTask, |ctx| {
        authorize(&s, arn, B, ctx, true)
    })
    .unwrap_err();
    assert_eq!(d.kind, DecisionKind::ExplicitDeny);
    assert!(
        msg.ends_with("with an explicit deny in an identity-based policy"),
        "{msg}"
    );
    let permit = with_ctx(Operation::PollForActivityTask, |ctx| {
        authorize(&s, arn, B, ctx, false)
    })
    .unwrap();
    assert!(permit.shadowed());
    assert_eq!(permit.decision().kind, DecisionKind::ExplicitDeny);
    // An allowed call is never marked shadowed, enforced or not.
    let s = set(&[policy("all", &statement("Allow", "\"swf:*\"", "\"*\""))]);
    for enforce in [true, false] {
        let permit = with_ctx(Operation::PollForActivityTask, |ctx| {
            authorize(&s, arn, A, ctx, enforce)
        })
        .unwrap();
        assert!(!permit.shadowed());
        assert_eq!(permit.decision().kind, DecisionKind::Allowed);
    }
}

/// The names decisions go by in the audit log, `explain` and `test`.
#[test]
fn decision_kinds_have_their_audit_names() {
    assert_eq!(DecisionKind::Allowed.as_str(), "allowed");
    assert_eq!(DecisionKind::ExplicitDeny.as_str(), "explicitDeny");
    assert_eq!(DecisionKind::ImplicitDeny.as_str(), "implicitDeny");
}

/// Only `.toml` and `.json` files are policies; folders and other files are passed over.
#[test]
fn the_policy_folder_holds_only_toml_and_json_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let versioned = format!(
        "Version = \"2012-10-17\"\n{}",
        statement("Allow", "\"swf:*\"", "\"*\"")
    );
    std::fs::write(p.join("a.toml"), &versioned).unwrap();
    std::fs::write(p.join("notes.md"), "not a policy").unwrap();
    std::fs::create_dir(p.join("archive.json")).unwrap();
    std::fs::create_dir(p.join("old.toml")).unwrap();
    let loaded = load_dir(p);
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    assert_eq!(loaded.policies.keys().collect::<Vec<_>>(), ["a"]);
    assert!(loaded.failed.is_empty());
}

/// A file with errors never becomes a policy, even when what could be read of it compiles; its
/// errors are all reported (here one the grammar finds and one the analysis finds).
#[test]
fn a_policy_file_with_errors_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let good = statement("Allow", "\"swf:*\"", "\"*\"");
    std::fs::write(
        p.join("good.toml"),
        format!("Version = \"2012-10-17\"\n{good}"),
    )
    .unwrap();
    // Analysis alone (an unknown action) keeps a file out too.
    let unknown = statement("Allow", "\"swf:Nope\"", "\"*\"");
    std::fs::write(
        p.join("unknown.toml"),
        format!("Version = \"2012-10-17\"\n{unknown}"),
    )
    .unwrap();
    let broken = statement("Alow", "[\"swf:*\", \"swf:PollForActivityTaskz\"]", "\"*\"");
    std::fs::write(
        p.join("broken.toml"),
        format!("Version = \"2012-10-17\"\n{broken}"),
    )
    .unwrap();
    let loaded = load_dir(p);
    assert_eq!(loaded.policies.keys().collect::<Vec<_>>(), ["good"]);
    assert_eq!(
        loaded.failed.iter().collect::<Vec<_>>(),
        ["broken", "unknown"]
    );
    let found: Vec<(&str, usize, bool)> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            let file = d.file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            (file, d.line, d.message.contains("PollForActivityTaskz"))
        })
        .collect();
    assert_eq!(
        found,
        [
            ("broken", 4, false),
            ("broken", 5, true),
            ("unknown", 5, false)
        ],
        "{:#?}",
        loaded.diagnostics
    );
}

#[test]
fn decisions_carry_file_and_line() {
    let p = policy("p", &statement("Allow", "\"swf:*\"", "\"*\""));
    let d = eval(&set(&[p]), Operation::ListDomains, A);
    assert_eq!(d.statements[0].sid.as_deref(), Some("S"));
    assert_eq!(d.statements[0].line, 1);
    assert_eq!(&*d.statements[0].file, Path::new("p.toml"));
}

#[test]
fn the_index_finds_what_a_scan_finds() {
    // Many tenants with literal domain resources, plus shared statements of every other shape.
    let mut toml = String::from("Version = \"2012-10-17\"\n");
    for t in 0..300 {
        toml.push_str(&format!(
            "[[Statement]]\nSid = \"T{t}\"\nEffect = \"Allow\"\nAction = [\"swf:Poll*\", \"swf:RecordActivityTaskHeartbeat\"]\nResource = [\"arn:aws:swf:*:123456789012:/domain/tenant-{t}\", \"arn:aws:swf:*:123456789012:/domain/shared-{t}\"]\n"
        ));
    }
    toml.push_str("[[Statement]]\nSid = \"Wild\"\nEffect = \"Allow\"\nAction = \"swf:Describe*\"\nResource = \"arn:aws:swf:*:123456789012:/domain/tenant-1*\"\n");
    toml.push_str("[[Statement]]\nSid = \"Not\"\nEffect = \"Deny\"\nAction = \"swf:PollForDecisionTask\"\nNotResource = \"arn:aws:swf:*:123456789012:/domain/tenant-7\"\n");
    let s = set(&[policy("big", &toml)]);
    let arn = |d: &str| format!("arn:aws:swf:us-east-1:123456789012:/domain/{d}");
    let sids = |d: Decision| {
        d.statements
            .iter()
            .map(|r| r.sid.as_deref().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sids(eval(&s, Operation::PollForActivityTask, &arn("tenant-42"))),
        ["T42"]
    );
    assert_eq!(
        sids(eval(&s, Operation::PollForActivityTask, &arn("shared-299"))),
        ["T299"]
    );
    assert_eq!(
        eval(&s, Operation::PollForActivityTask, &arn("tenant-300")).kind,
        DecisionKind::ImplicitDeny
    );
    assert_eq!(
        sids(eval(&s, Operation::DescribeDomain, &arn("tenant-123"))),
        ["Wild"]
    );
    assert_eq!(
        sids(eval(&s, Operation::PollForDecisionTask, &arn("tenant-8"))),
        ["Not"]
    );
    assert_eq!(
        sids(eval(&s, Operation::PollForDecisionTask, &arn("tenant-7"))),
        ["T7"]
    );
    assert_eq!(
        eval(&s, Operation::PollForActivityTask, "not-an-arn").kind,
        DecisionKind::ImplicitDeny
    );
}

/// A resource with a policy variable matches per ARN segment once resolved, and only whole
/// six-part ARNs: `${aws:username}` is `w` here.
#[test]
fn resources_with_variables_match_whole_arns_once_resolved() {
    let own = "arn:aws:swf:*:123456789012:/domain/${aws:username}";
    let s = set(&[policy(
        "own",
        &format!(
            "Version = \"2012-10-17\"\n{}",
            statement("Allow", "\"swf:*\"", &format!("\"{own}\""))
        ),
    )]);
    let domain = |name: &str| format!("arn:aws:swf:us-east-1:123456789012:/domain/{name}");
    assert_eq!(
        kind(&s, Operation::DescribeDomain, &domain("w")),
        DecisionKind::Allowed
    );
    for other in [
        domain("x"),
        domain("w2"),
        "arn:aws:swf:us-east-1:210987654321:/domain/w".to_owned(),
        "arn:aws:swf:us-east-1:123456789012".to_owned(),
        "w".to_owned(),
    ] {
        assert_eq!(
            kind(&s, Operation::DescribeDomain, &other),
            DecisionKind::ImplicitDeny,
            "{other}"
        );
    }
}

/// Matched statements are listed in the set's order, whether the index filed them under their
/// domain or checks them for every request.
#[test]
fn matched_statements_keep_the_set_order() {
    let toml = "Version = \"2012-10-17\"\n".to_owned()
        + &statement("Allow", "\"swf:Describe*\"", "\"*\"").replace("\"S\"", "\"Star0\"")
        + &statement("Allow", "\"swf:DescribeDomain\"", &format!("\"{A}\""))
            .replace("\"S\"", "\"Lit1\"")
        + &statement("Allow", "\"swf:*\"", "\"arn:aws:swf:*:*:/domain/*\"")
            .replace("\"S\"", "\"Wild2\"")
        + &statement(
            "Allow",
            "\"swf:DescribeDomain\"",
            &format!("[\"{A}\", \"{B}\"]"),
        )
        .replace("\"S\"", "\"Lit3\"");
    let s = set(&[policy("order", &toml)]);
    let sids: Vec<String> = eval(&s, Operation::DescribeDomain, A)
        .statements
        .iter()
        .map(|r| r.sid.as_deref().unwrap_or("").to_owned())
        .collect();
    assert_eq!(sids, ["Star0", "Lit1", "Wild2", "Lit3"]);
}

/// `explain` walks every statement and says, for each, which of action, resource and
/// conditions matched, and what decided.
#[test]
fn explain_tells_each_statement_and_the_decision() {
    let toml = r#"Version = "2012-10-17"
[[Statement]]
Sid = "Own"
Effect = "Allow"
Action = "swf:Describe*"
Resource = "arn:aws:swf:*:123456789012:/domain/${aws:username}"
Condition = { StringEquals = { "aws:RequestedRegion" = "us-east-1" } }

[[Statement]]
Effect = "Deny"
NotAction = "swf:Describe*"
NotResource = "arn:aws:swf:*:123456789012:/domain/w"

[[Statement]]
Sid = "Nobody"
Effect = "Allow"
Action = "swf:Describe*"
Resource = "*"
Condition = { StringEquals = { "aws:username" = "nobody" } }

[[Statement]]
Sid = "Other"
Effect = "Allow"
Action = "swf:DescribeDomain"
Resource = "arn:aws:swf:*:123456789012:/domain/other"

[[Statement]]
Sid = "Poll"
Effect = "Allow"
Action = "swf:PollForActivityTask"
Resource = "*"
"#;
    let s = set(&[policy("p", toml)]);
    let w = "arn:aws:swf:us-east-1:123456789012:/domain/w";
    let (decision, text) = with_ctx(Operation::DescribeDomain, |ctx| {
        explain::explain(&s, w, ctx)
    });
    assert_eq!(decision.kind, DecisionKind::Allowed);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 7, "{text}");
    let expect = [
        (
            1,
            "p statement `Own` at p.toml:2 (Allow)",
            [
                "Action [\"swf:Describe*\"]: matches",
                "Resource [\"arn:aws:swf:*:123456789012:/domain/${aws:username}\"]: matches",
                "-> applies",
            ],
        ),
        (
            2,
            "p statement (no Sid) at p.toml:9 (Deny)",
            [
                "NotAction [\"swf:Describe*\"]: does not match",
                "NotResource [\"arn:aws:swf:*:123456789012:/domain/w\"]: does not match",
                "-> does not apply",
            ],
        ),
        (
            3,
            "p statement `Nobody` at p.toml:14 (Allow)",
            [
                "Action [\"swf:Describe*\"]: matches",
                "Resource [\"*\"]: matches",
                "-> does not apply",
            ],
        ),
        (
            4,
            "p statement `Other` at p.toml:21 (Allow)",
            [
                "Action [\"swf:DescribeDomain\"]: matches",
                "Resource [\"arn:aws:swf:*:123456789012:/domain/other\"]: does not match",
                "-> does not apply",
            ],
        ),
        (
            5,
            "p statement `Poll` at p.toml:27 (Allow)",
            [
                "Action [\"swf:PollForActivityTask\"]: does not match",
                "Resource [\"*\"]: matches",
                "-> does not apply",
            ],
        ),
    ];
    for (i, head, lines) in expect {
        let block = blocks[i];
        assert!(block.starts_with(head), "{block}");
        for line in lines {
            assert!(
                block.lines().any(|l| l.trim() == line),
                "{line:?} in\n{block}"
            );
        }
    }
    assert!(blocks[1].contains("${aws:username} = `w`"), "{}", blocks[1]);
    assert!(
        blocks[6].starts_with("decision: allowed\n  decided by p Own at p.toml:2"),
        "{text}"
    );

    // An implicit denial says that nothing allows.
    let other = "arn:aws:swf:us-east-1:123456789012:/domain/x";
    let (decision, text) = with_ctx(Operation::DescribeDomain, |ctx| {
        explain::explain(&s, other, ctx)
    });
    assert_eq!(decision.kind, DecisionKind::ImplicitDeny);
    assert!(
        text.ends_with(
            "decision: implicitDeny\n  no statement allows the action on the resource\n"
        ),
        "{text}"
    );
}
