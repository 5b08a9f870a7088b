//! Policy loading (TOML and IAM JSON), compilation, analysis and evaluation (conditions and
//! variables included) on arbitrary documents, for every action against fixed resources and
//! the document's own resource patterns (so that statements filed in the resource index are
//! reached). Never panics, and for a document that compiles:
//! - evaluation is deterministic, and a second compilation of the same document decides alike;
//! - the set's decision is IAM's combination of its statements' decisions, each statement
//!   compiled and evaluated alone: a matching `Deny` wins, else a matching `Allow` allows, else
//!   implicit deny, naming exactly the statements of the winning effect, in document order
//!   (this catches a broken precedence and an index that skips or reorders statements);
//! - the statement index changes nothing: the same document, with every statement also given a
//!   resource pattern that keeps it out of the index and matches none of the resources tried,
//!   decides exactly alike;
//! - adding a policy that denies everything makes every decision an explicit deny naming it;
//!   adding one that allows everything makes every decision an allow, except the explicit
//!   denies, which stay.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use swf_warden::policy::document::{self, Document};
use swf_warden::policy::{
    analysis, Action, Caller, Context, Decision, DecisionKind, Policy, PolicySet,
};

/// Statements evaluated one by one: beyond this, the document is only checked as a whole.
const MAX_SPLIT: usize = 8;
/// Resource patterns of the document also used as resources.
const MAX_OWN_RESOURCES: usize = 4;
/// A pattern with a wildcard in the resource part, so its statement is checked for every
/// request rather than filed under a literal; no resource tried contains `UNINDEXED_MARK`.
const UNINDEXED: &str = "arn:aws:swf:*:*:/unindexed/*";
const UNINDEXED_MARK: &str = "/unindexed/";

fn fixed(name: &str, effect: &str) -> Arc<Policy> {
    let text = format!("Version = \"2012-10-17\"\n[[Statement]]\nSid = \"{name}\"\nEffect = \"{effect}\"\nAction = \"*\"\nResource = \"*\"\n");
    let doc = document::parse_toml(Path::new(name), &text).unwrap();
    Arc::new(Policy::compile(name, Path::new(name), doc).unwrap())
}

fn deny_all() -> &'static Arc<Policy> {
    static P: OnceLock<Arc<Policy>> = OnceLock::new();
    P.get_or_init(|| fixed("deny-all", "Deny"))
}

fn allow_all() -> &'static Arc<Policy> {
    static P: OnceLock<Arc<Policy>> = OnceLock::new();
    P.get_or_init(|| fixed("allow-all", "Allow"))
}

fn set(policies: &[&Arc<Policy>]) -> PolicySet {
    let mut set = PolicySet::default();
    for p in policies {
        set.add(Arc::clone(p));
    }
    set
}

fn compile(doc: Document) -> Option<Arc<Policy>> {
    Policy::compile("p", Path::new("p"), doc).ok().map(Arc::new)
}

/// IAM's combination of the statements' own decisions.
fn combine(parts: &[Decision]) -> Decision {
    for kind in [DecisionKind::ExplicitDeny, DecisionKind::Allowed] {
        let statements: Vec<_> = parts
            .iter()
            .filter(|d| d.kind == kind)
            .flat_map(|d| d.statements.iter().cloned())
            .collect();
        if !statements.is_empty() {
            return Decision { kind, statements };
        }
    }
    Decision {
        kind: DecisionKind::ImplicitDeny,
        statements: Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tags = BTreeMap::from([("team".to_owned(), "a".to_owned())]);
    let input =
        serde_json::json!({"taskList": {"name": "work"}, "tagList": ["a", "b"], "name": "n"});
    for doc in [
        document::parse_toml(Path::new("p.toml"), text),
        document::parse_json(Path::new("p.json"), text),
    ] {
        let doc = match doc {
            Ok(doc) => doc,
            Err(errors) => {
                // Every error points inside the text, in order.
                assert!(!errors.is_empty(), "a refusal names at least one error");
                let lines = text.split('\n').count();
                for e in &errors {
                    assert!(e.line <= lines, "{e} points past the last line ({lines})");
                }
                assert!(errors.windows(2).all(|w| w[0].line <= w[1].line));
                continue;
            }
        };
        let Some(policy) = compile(doc.clone()) else {
            continue;
        };
        let _ = analysis::analyze(&policy);
        let again = compile(doc.clone()).expect("a document that compiled compiles again");
        let split: Option<Vec<PolicySet>> = (doc.statements.len() <= MAX_SPLIT).then(|| {
            doc.statements
                .iter()
                .map(|s| {
                    let alone = Document {
                        version: doc.version.clone(),
                        statements: vec![s.clone()],
                    };
                    set(&[
                        &compile(alone).expect("a statement of a compiling policy compiles alone")
                    ])
                })
                .collect()
        });
        let mut linear = doc.clone();
        for statement in linear.statements.iter_mut().filter(|s| !s.resource.negated) {
            statement.resource.patterns.push(UNINDEXED.to_owned());
        }
        let linear = set(&[&compile(linear).expect("one more resource pattern compiles")]);
        let whole = set(&[&policy]);
        let again = set(&[&again]);
        let denied = set(&[&policy, deny_all()]);
        let allowed = set(&[allow_all(), &policy]);

        let mut resources = vec![
            "arn:aws:swf:us-east-1:123456789012:/domain/d",
            "*",
            "not-an-arn",
            "",
        ];
        resources.extend(
            doc.statements
                .iter()
                .filter(|s| !s.resource.negated)
                .flat_map(|s| s.resource.patterns.iter().map(String::as_str))
                .filter(|r| !r.contains(UNINDEXED_MARK))
                .take(MAX_OWN_RESOURCES),
        );
        resources.retain(|r| !r.contains(UNINDEXED_MARK));
        for action in Action::all() {
            let ctx = Context {
                caller: Caller {
                    name: "alice",
                    arn: "arn:aws:iam::123456789012:user/alice",
                    tags: &tags,
                    session: None,
                },
                action,
                input: input.as_object(),
                source_ip: Some("10.0.0.1".parse().unwrap()),
                now: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                secure_transport: true,
                region: "us-east-1",
                overrides: None,
            };
            for resource in &resources {
                let decision = whole.evaluate(resource, &ctx);
                let why = || format!("{} on {resource:?}", action.iam_action());
                assert_eq!(
                    whole.evaluate(resource, &ctx),
                    decision,
                    "not deterministic: {}",
                    why()
                );
                assert_eq!(
                    again.evaluate(resource, &ctx),
                    decision,
                    "recompiled differs: {}",
                    why()
                );
                assert_eq!(
                    linear.evaluate(resource, &ctx),
                    decision,
                    "the index changed the decision: {}",
                    why()
                );
                if let Some(split) = &split {
                    let parts: Vec<Decision> =
                        split.iter().map(|s| s.evaluate(resource, &ctx)).collect();
                    assert_eq!(
                        decision,
                        combine(&parts),
                        "not the combination of its statements: {}",
                        why()
                    );
                }
                let with_deny = denied.evaluate(resource, &ctx);
                assert_eq!(
                    with_deny.kind,
                    DecisionKind::ExplicitDeny,
                    "deny-all did not deny: {}",
                    why()
                );
                assert!(
                    with_deny
                        .statements
                        .iter()
                        .any(|s| &*s.policy == "deny-all"),
                    "{}",
                    why()
                );
                let with_allow = allowed.evaluate(resource, &ctx).kind;
                let expected = match decision.kind {
                    DecisionKind::ExplicitDeny => DecisionKind::ExplicitDeny,
                    _ => DecisionKind::Allowed,
                };
                assert_eq!(with_allow, expected, "allow-all: {}", why());
            }
        }
    }
});
