//! `explain`: evaluate like `PolicySet::evaluate`, but keep every step: for each statement,
//! whether its action, resource and each condition matched, and how variables resolved.

use std::fmt::Write;

use super::compile::ResourcePattern;
use super::context::Context;
use super::document::Effect;
use super::{Decision, DecisionKind, PolicySet};

/// The decision and a readable account of how it was reached.
pub fn explain(set: &PolicySet, resource: &str, ctx: &Context<'_>) -> (Decision, String) {
    let decision = set.evaluate(resource, ctx);
    let mut out = String::new();
    let bit = 1u64 << ctx.action.index();
    let _ = writeln!(out, "action:   {}", ctx.action.iam_action());
    let _ = writeln!(out, "resource: {resource}");
    let _ = writeln!(out, "principal: {} ({})", ctx.caller.name, ctx.caller.arn);
    for policy in &set.policies {
        for (s, doc) in policy.compiled.iter().zip(&policy.document.statements) {
            let sid = s
                .origin
                .sid
                .as_deref()
                .map_or("(no Sid)".to_owned(), |s| format!("`{s}`"));
            let effect = if s.effect == Effect::Allow {
                "Allow"
            } else {
                "Deny"
            };
            let _ = writeln!(
                out,
                "\n{} statement {sid} at {}:{} ({effect})",
                policy.name,
                s.origin.file.display(),
                s.origin.line
            );
            let action = s.actions & bit != 0;
            let element = if doc.action.negated {
                "NotAction"
            } else {
                "Action"
            };
            let _ = writeln!(
                out,
                "  {element} {:?}: {}",
                doc.action.patterns,
                if action { "matches" } else { "does not match" }
            );
            let resource_ok = s.resources.applies(resource, ctx);
            let element = if doc.resource.negated {
                "NotResource"
            } else {
                "Resource"
            };
            let _ = writeln!(
                out,
                "  {element} {:?}: {}",
                doc.resource.patterns,
                if resource_ok {
                    "matches"
                } else {
                    "does not match"
                }
            );
            for p in &s.resources.patterns {
                if let ResourcePattern::Template(t) = p {
                    for d in t.describe_variables(ctx) {
                        let _ = writeln!(out, "    {d}");
                    }
                }
            }
            let mut conditions_ok = true;
            for c in &s.conditions {
                conditions_ok &= c.evaluate(ctx);
                let _ = writeln!(out, "  Condition {}", c.describe(ctx));
            }
            let applies = action && resource_ok && conditions_ok;
            let _ = writeln!(
                out,
                "  -> {}",
                if applies { "applies" } else { "does not apply" }
            );
        }
    }
    let _ = writeln!(out, "\ndecision: {}", decision.kind.as_str());
    match decision.kind {
        DecisionKind::ImplicitDeny => {
            let _ = writeln!(out, "  no statement allows the action on the resource");
        }
        _ => {
            for s in &decision.statements {
                let sid = s.sid.as_deref().unwrap_or("(no Sid)");
                let _ = writeln!(
                    out,
                    "  decided by {} {sid} at {}:{}",
                    s.policy,
                    s.file.display(),
                    s.line
                );
            }
        }
    }
    (decision, out)
}
