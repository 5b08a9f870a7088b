//! Static checks of a policy, in the spirit of IAM Access Analyzer's policy validation.
//! Errors stop a load (`serve` and `check` alike); warnings are reported and loading goes on.
//!
//! Errors: a missing or unknown `Version`, repeated `Sid`s, an unknown `swf:` action, a
//! resource ARN of another service, a condition key swf-warden cannot supply or that none of
//! the statement's actions carries, an unknown policy variable. Warnings: a wildcard in a
//! non-`Like` operator, `ForAllValues` with `Allow`, `Allow` with `NotAction`/`NotResource`, a
//! statement that can never match, policy variables under Version 2008-10-17.

use std::collections::BTreeSet;

use super::actions::Action;
use super::compile;
use super::condition::{Operator, SetQualifier};
use super::context::{action_carries, is_known_key};
use super::document::{Effect, Pos, Statement};
use super::variables::Template;
use super::{wildcard, Policy};
use crate::diag::Diagnostic;

/// Every error and warning for `policy`.
pub fn analyze(policy: &Policy) -> Vec<Diagnostic> {
    let path = policy.path.as_path();
    let doc = &policy.document;
    let mut out = Vec::new();
    if doc.version.is_none() {
        out.push(Diagnostic::line_col(
            path,
            1,
            1,
            "`Version` is missing: write `Version = \"2012-10-17\"` (IAM would assume 2008-10-17, without policy variables)",
        ));
    }
    let mut sids = BTreeSet::new();
    for s in &doc.statements {
        let at =
            |pos: Pos, message: String| Diagnostic::line_col(path, pos.line, pos.column, message);
        if let Some(sid) = &s.sid {
            if !sids.insert(sid.as_str()) {
                out.push(at(
                    s.sid_at,
                    format!("`Sid` `{sid}` is used by another statement of this policy"),
                ));
            }
        }
        statement(s, doc.variables_enabled(), &mut |pos,
                                                    d: Result<
            String,
            String,
        >| {
            out.push(match d {
                Err(e) => at(pos, e),
                Ok(w) => at(pos, w).warning(),
            })
        });
    }
    out
}

/// What `statement` reports: where, and `Err(message)` for an error or `Ok(message)` for a
/// warning.
type Report<'a> = &'a mut dyn FnMut(Pos, Result<String, String>);

/// Reports each finding at the pattern, condition or statement it concerns.
fn statement(s: &Statement, variables: bool, report: Report<'_>) {
    let sid = s
        .sid
        .as_deref()
        .map_or(String::new(), |s| format!(" `{s}`"));
    let whole = s.at();
    let mut unknown_action = false;
    for (action, &pos) in s.action.patterns.iter().zip(&s.action.at) {
        let mut report = |d| report(pos, d);
        if action.len() > 4 && action[..4].eq_ignore_ascii_case("sts:") {
            if !wildcard::matches(&action.to_ascii_lowercase(), "sts:assumerole") {
                report(Ok(format!(
                    "statement{sid}: `{action}` is not an STS action swf-warden serves (sts:AssumeRole) and never matches here"
                )));
            }
            continue;
        }
        let Some(name) = action
            .strip_prefix("swf:")
            .or_else(|| action.strip_prefix("SWF:"))
        else {
            if action != "*" {
                report(Ok(format!(
                    "statement{sid}: `{action}` is not an SWF action and never matches here"
                )));
            }
            continue;
        };
        let lower = format!("swf:{}", name.to_ascii_lowercase());
        let known =
            Action::all().any(|a| wildcard::matches(&lower, &a.iam_action().to_ascii_lowercase()));
        if !known {
            unknown_action = true;
            report(Err(format!("statement{sid}: unknown action `{action}`: no SWF operation or decision has that name")));
        }
    }
    for (resource, &pos) in s.resource.patterns.iter().zip(&s.resource.at) {
        let mut report = |d| report(pos, d);
        if resource == "*" {
            continue;
        }
        let service = resource.split(':').nth(2).unwrap_or("");
        // `iam`: roles, for `sts:AssumeRole`.
        if service != "swf" && service != "iam" && !service.contains(['*', '?']) {
            report(Err(format!(
                "statement{sid}: resource `{resource}` is for the service `{service}`, not `swf` (or `iam`, a role)"
            )));
        }
        check_variables(resource, variables, &sid, &mut report);
    }

    let bits = compile::action_bits(&s.action);
    let actions: Vec<Action> = Action::all()
        .filter(|a| bits & (1 << a.index()) != 0)
        .collect();
    // After an unknown action, "never matches" would only repeat that error.
    if actions.is_empty() && !unknown_action {
        report(
            whole,
            Ok(format!(
                "statement{sid} can never match: its actions name no action swf-warden authorizes"
            )),
        );
    }
    if s.effect == Effect::Allow && s.action.negated {
        report(whole, Ok(format!("statement{sid}: `Allow` with `NotAction` allows every action not listed, including future ones")));
    }
    if s.effect == Effect::Allow && s.resource.negated {
        report(
            whole,
            Ok(format!(
                "statement{sid}: `Allow` with `NotResource` allows every resource not listed"
            )),
        );
    }
    for c in &s.conditions {
        let mut report = |d| report(c.at, d);
        let Some(operator) = Operator::parse(&c.operator) else {
            report(Err(format!(
                "statement{sid}: unknown condition operator `{}`",
                c.operator
            )));
            continue;
        };
        if !is_known_key(&c.key) {
            report(Err(format!(
                "statement{sid}: condition key `{}` is not one swf-warden supplies",
                c.key
            )));
        } else if !actions.is_empty() && !actions.iter().any(|a| action_carries(*a, &c.key)) {
            report(Err(format!(
                "statement{sid}: condition key `{}` is never carried by the statement's actions",
                c.key
            )));
        }
        let wildcard_value = c.values.iter().any(|v| v.contains(['*', '?']));
        if wildcard_value
            && matches!(
                operator.kind,
                super::condition::Kind::StringEquals
                    | super::condition::Kind::StringEqualsIgnoreCase
            )
        {
            report(Ok(format!("statement{sid}: `{}` compares `*` and `?` literally; use `StringLike` for wildcards", c.operator)));
        }
        if operator.set == Some(SetQualifier::AllValues) && s.effect == Effect::Allow {
            report(Ok(format!(
                "statement{sid}: `{}` with `Allow` is also true when the key is absent",
                c.operator
            )));
        }
        for value in &c.values {
            check_variables(value, variables, &sid, &mut report);
        }
    }
}

fn check_variables(
    text: &str,
    variables: bool,
    sid: &str,
    report: &mut dyn FnMut(Result<String, String>),
) {
    if !variables {
        if text.contains("${") {
            report(Ok(format!("statement{sid}: `{text}` holds `${{…}}`, which is literal text without Version 2012-10-17")));
        }
        return;
    }
    if let Ok(t) = Template::parse(text, true, true) {
        for key in t.variable_keys() {
            if !is_known_key(key) {
                report(Err(format!(
                    "statement{sid}: policy variable `${{{key}}}` is not a key swf-warden supplies"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::document;
    use std::path::Path;

    fn compiled(toml: &str) -> Policy {
        let doc = document::parse_toml(Path::new("p.toml"), toml).unwrap();
        Policy::compile("p", Path::new("p.toml"), doc).unwrap()
    }

    fn messages(toml: &str) -> Vec<(bool, String)> {
        analyze(&compiled(toml))
            .into_iter()
            .map(|d| (d.is_error(), d.message))
            .collect()
    }

    /// Each finding is reported where it is written: a statement-wide one at the statement,
    /// an action's at the action, a condition's at its key, a repeated `Sid` at its value.
    #[test]
    fn findings_point_at_what_they_concern() {
        let toml = r#"Version = "2012-10-17"
[[Statement]]
Sid = "A"
Effect = "Allow"
NotAction = "swf:Terminate*"
Resource = "*"

[[Statement]]
Sid = "A"
Effect = "Allow"
Action = ["swf:DescribeDomain",
          "swf:Nope"]
Resource = "*"
Condition = { StringEquals = { "aws:nothing" = "x" } }
"#;
        let policy = compiled(toml);
        let found: Vec<(usize, usize, bool)> = analyze(&policy)
            .into_iter()
            .map(|d| (d.line, d.column, d.is_error()))
            .collect();
        assert_eq!(
            found,
            [(2, 1, false), (9, 7, true), (12, 11, true), (14, 32, true)],
            "{:#?}",
            analyze(&policy)
        );
    }

    fn has(found: &[(bool, String)], error: bool, needle: &str) -> bool {
        found.iter().any(|(e, m)| *e == error && m.contains(needle))
    }

    #[test]
    fn errors() {
        let found = messages(
            r#"
[[Statement]]
Sid = "A"
Effect = "Allow"
Action = ["swf:PollForActivityTask", "swf:PollForActivityTasks"]
Resource = "arn:aws:s3:::bucket"
Condition = { StringEquals = { "swf:activityType.name" = "x", "aws:MultiFactorAuthPresent" = "true" } }

[[Statement]]
Sid = "A"
Effect = "Deny"
Action = "swf:*"
Resource = "arn:aws:swf:*:*:/domain/${aws:nothing}"
"#,
        );
        assert!(has(&found, true, "`Version` is missing"), "{found:?}");
        assert!(has(
            &found,
            true,
            "unknown action `swf:PollForActivityTasks`"
        ));
        assert!(has(&found, true, "for the service `s3`"));
        assert!(has(
            &found,
            true,
            "`swf:activityType.name` is never carried"
        ));
        assert!(has(
            &found,
            true,
            "`aws:MultiFactorAuthPresent` is not one swf-warden supplies"
        ));
        assert!(has(&found, true, "`Sid` `A` is used by another statement"));
        // Version 2008 (missing): variables are literal, a warning rather than an error.
        assert!(has(
            &found,
            false,
            "literal text without Version 2012-10-17"
        ));
    }

    #[test]
    fn warnings() {
        let found = messages(
            r#"Version = "2012-10-17"
[[Statement]]
Effect = "Allow"
NotAction = "swf:Terminate*"
NotResource = "arn:aws:swf:*:*:/domain/x"
Condition = { StringEquals = { "aws:username" = "a*" }, "ForAllValues:StringEquals" = { "aws:username" = "a" } }

[[Statement]]
Effect = "Allow"
Action = "s3:GetObject"
Resource = "*"
"#,
        );
        assert!(found.iter().all(|(e, _)| !e), "{found:?}");
        for needle in [
            "with `NotAction`",
            "with `NotResource`",
            "compares `*` and `?` literally",
            "true when the key is absent",
            "can never match",
            "is not an SWF action",
        ] {
            assert!(has(&found, false, needle), "{needle}: {found:?}");
        }
    }

    #[test]
    fn a_clean_policy_has_nothing_to_say() {
        let found = messages(
            r#"Version = "2012-10-17"
[[Statement]]
Sid = "Own"
Effect = "Allow"
Action = ["swf:PollForActivityTask", "swf:ScheduleActivityTask"]
Resource = "arn:aws:swf:*:123456789012:/domain/${aws:PrincipalTag/team}"
Condition = { StringLike = { "swf:taskList.name" = "${aws:username}-*" }, StringEquals = { "swf:activityType.name" = "resize" } }
"#,
        );
        assert!(found.is_empty(), "{found:?}");
    }
}
