//! `policy suggest`: the least policy that allows what one principal (or role) was recorded
//! doing, and what its current policies grant that no record used.
//!
//! What it was doing: every call of its the log shows going through (allowed, throttled after
//! it was allowed, or let through by shadow mode), with each decision such a call carried.
//! The policy names exactly the resources seen (no wildcard beyond `ListDomains`' own
//! `…:/domain/*`), groups the operations per domain, and gives each decision action that
//! carries names (activity type, workflow type, task list) a condition on the names seen, when
//! there are at most [`MAX_NAMES`] of them: `StringEquals`, or `StringEqualsIfExists` when
//! some calls left the member out, or `Null` when all did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::record::{self, Read};
use super::{Statement, Subject, SubjectKind};
use crate::config::Config;
use crate::policy::context::principal_tag;
use crate::policy::{Action, Reach};
use crate::swf::{Operation, ResourceSource};

/// A decision key gets a condition when at most this many names were seen for it.
pub const MAX_NAMES: usize = 10;

/// Whom to suggest for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: SubjectKind,
    pub name: &'a str,
}

/// The values seen for one condition key.
#[derive(Debug, Default, Clone)]
struct Seen {
    values: BTreeSet<String>,
    /// Some call left the member out.
    absent: bool,
}

/// What the records show one subject doing.
#[derive(Debug, Default)]
pub struct Usage {
    /// Resource → the actions called on it (operations, `sts:AssumeRole`).
    calls: Calls,
    /// (resource, decision action) → condition key → values.
    decisions: Decisions,
    /// Statements that allowed a recorded call.
    used_statements: BTreeSet<Statement>,
    /// Records of the subject that went through, and of them those without `context`.
    pub records: u64,
    pub without_context: u64,
    /// Records of the subject that were allowed (and so name what allowed them).
    pub allowed_records: u64,
    /// A role's session tags whose value was the domain of every call on a domain: its
    /// policy can name `${aws:PrincipalTag/<key>}` rather than each domain (`None` before
    /// the first such call).
    domain_tags: Option<BTreeSet<String>>,
}

/// An action, ordered as `Action::all` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ActionKey(usize);

impl ActionKey {
    fn of(a: Action) -> ActionKey {
        ActionKey(a.index())
    }

    fn action(self) -> Action {
        Action::all()
            .nth(self.0)
            .unwrap_or(Action::Operation(Operation::ListDomains))
    }
}

impl Usage {
    /// Reads one line, keeping it if it is `target`'s and went through.
    pub fn line(&mut self, bytes: &[u8], target: Target<'_>) {
        let Read::Decided(recorded) = record::read(bytes) else {
            return;
        };
        let line = &recorded.line;
        let Some(principal) = &line.principal else {
            return;
        };
        let session = principal.arn.contains(":assumed-role/");
        let kind = if session {
            SubjectKind::Role
        } else {
            SubjectKind::Principal
        };
        let through = recorded.allowed || line.decision.as_deref() == Some("wouldDeny");
        if kind != target.kind || principal.name != target.name || !through {
            return;
        }
        let Some(resource) = line.resource.as_deref() else {
            return;
        };
        self.records += 1;
        if recorded.allowed {
            self.allowed_records += 1;
            self.used_statements
                .extend(line.matched_statements.iter().cloned());
        }
        self.calls
            .entry(resource.to_owned())
            .or_default()
            .insert(ActionKey::of(recorded.call));
        if kind == SubjectKind::Role {
            self.match_tags(resource, line.context.as_ref());
        }
        let Some(context) = &line.context else {
            self.without_context += 1;
            // A decision's record without context: the decision is known, its names are not.
            if let Some(action @ Action::Decision(_)) =
                line.action.as_deref().and_then(record::action)
            {
                self.decisions
                    .entry((resource.to_owned(), ActionKey::of(action)))
                    .or_default();
            }
            return;
        };
        for d in &context.decisions {
            let Some(action) = record::action(&d.action) else {
                continue;
            };
            self.used_statements.extend(d.statements.iter().cloned());
            let keys = self
                .decisions
                .entry((d.resource.clone(), ActionKey::of(action)))
                .or_default();
            for key in name_keys(action) {
                let seen = keys.entry(key).or_default();
                match d.keys.get(&format!("swf:{key}")).and_then(|v| v.first()) {
                    Some(v) => {
                        seen.values.insert(v.clone());
                    }
                    None => seen.absent = true,
                }
            }
        }
    }
}

impl Usage {
    /// Narrows the tags whose value is the domain of every call on a domain.
    fn match_tags(&mut self, resource: &str, context: Option<&crate::audit::RecordContext>) {
        let Some((_, domain)) = resource.rsplit_once(":/domain/") else {
            return;
        };
        if domain == "*" {
            return;
        }
        let matching: BTreeSet<String> = context
            .map(|c| {
                c.keys
                    .iter()
                    .filter(|(_, v)| v.first().is_some_and(|v| v == domain))
                    .filter_map(|(k, _)| principal_tag(k).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        self.domain_tags = Some(match self.domain_tags.take() {
            None => matching,
            Some(before) => before.intersection(&matching).cloned().collect(),
        });
    }

    /// A role's calls with every session's own domain written as `own(<key>)`, when one tag
    /// named the domain of all of them; else as recorded.
    fn generalized(&self, own: impl Fn(&str) -> String) -> (Calls, Decisions) {
        let Some(tag) = self.domain_tags.as_ref().and_then(|t| t.first()) else {
            return (self.calls.clone(), self.decisions.clone());
        };
        let template = |resource: &str| match resource.rsplit_once(":/domain/") {
            Some((prefix, domain)) if domain != "*" => {
                format!("{prefix}:/domain/{}", own(tag))
            }
            _ => resource.to_owned(),
        };
        let mut calls = Calls::new();
        for (resource, actions) in &self.calls {
            calls
                .entry(template(resource))
                .or_default()
                .extend(actions.iter().copied());
        }
        let mut decisions = Decisions::new();
        for ((resource, action), keys) in &self.decisions {
            let merged = decisions.entry((template(resource), *action)).or_default();
            for (key, seen) in keys {
                let into = merged.entry(key).or_default();
                into.values.extend(seen.values.iter().cloned());
                into.absent |= seen.absent;
            }
        }
        (calls, decisions)
    }
}

type Calls = BTreeMap<String, BTreeSet<ActionKey>>;
type Decisions = BTreeMap<(String, ActionKey), BTreeMap<&'static str, Seen>>;

/// The keys of `action` that name things (`activityType.name`, `taskList.name`, …).
fn name_keys(action: Action) -> impl Iterator<Item = &'static str> {
    action
        .swf_keys()
        .iter()
        .copied()
        .filter(|k| k.ends_with("name"))
}

/// The suggestion: a policy, and what the current one grants unused.
pub struct Suggestion {
    pub statements: Vec<Suggested>,
    /// Decision keys left without a condition because too many names were seen.
    pub too_many: Vec<String>,
    /// The subject's statements that allowed no recorded call.
    pub unused_statements: Vec<Statement>,
    /// Resource → actions its current policies grant (or may grant, under conditions) that no
    /// record used.
    pub unused_grants: BTreeMap<String, Vec<&'static str>>,
}

/// One statement of the suggested policy.
pub struct Suggested {
    pub sid: String,
    pub actions: Vec<&'static str>,
    pub resources: Vec<String>,
    /// operator → key → values.
    pub conditions: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
}

/// Builds the suggestion from `usage`, with `subject` as `config` has it now (for the
/// unused grants).
pub fn suggest(config: &Config, subject: Option<&Subject<'_>>, usage: &Usage) -> Suggestion {
    let mut sids = BTreeSet::new();
    let mut statements = Vec::new();
    let mut too_many = Vec::new();
    let (calls, decisions) = usage.generalized(|tag| format!("${{aws:PrincipalTag/{tag}}}"));
    for (resource, actions) in &calls {
        let mut plain: Vec<&'static str> =
            actions.iter().map(|a| a.action().iam_action()).collect();
        let mut conditioned = Vec::new();
        for ((r, action), keys) in decisions.range((resource.clone(), ActionKey(0))..) {
            if r != resource {
                break;
            }
            let mut conditions: BTreeMap<&'static str, BTreeMap<String, Vec<String>>> =
                BTreeMap::new();
            for (key, seen) in keys {
                let name = format!("swf:{key}");
                let operator = match (seen.values.len(), seen.absent) {
                    (0, true) => "Null",
                    (n, _) if n > MAX_NAMES => {
                        too_many.push(format!(
                            "{} on {resource}: {n} values of {name}",
                            action.action().iam_action()
                        ));
                        continue;
                    }
                    (_, false) => "StringEquals",
                    (_, true) => "StringEqualsIfExists",
                };
                let values = if operator == "Null" {
                    vec!["true".to_owned()]
                } else {
                    seen.values.iter().cloned().collect()
                };
                conditions.entry(operator).or_default().insert(name, values);
            }
            if conditions.is_empty() {
                plain.push(action.action().iam_action());
            } else {
                conditioned.push((action.action(), conditions));
            }
        }
        let base = sid_base(resource);
        statements.push(Suggested {
            sid: unique(&mut sids, base.clone()),
            actions: plain,
            resources: vec![resource.clone()],
            conditions: BTreeMap::new(),
        });
        for (action, conditions) in conditioned {
            let name = action.iam_action().trim_start_matches("swf:");
            statements.push(Suggested {
                sid: unique(&mut sids, format!("{base}{name}")),
                actions: vec![action.iam_action()],
                resources: vec![resource.clone()],
                conditions,
            });
        }
    }
    let (unused_statements, unused_grants) = match subject {
        Some(subject) => unused(config, subject, usage),
        None => (Vec::new(), BTreeMap::new()),
    };
    Suggestion {
        statements,
        too_many,
        unused_statements,
        unused_grants,
    }
}

/// A statement id for the statement of `resource`: its domain (or role) in camel case.
fn sid_base(resource: &str) -> String {
    let name = resource
        .rsplit_once(":/domain/")
        .map(|(_, d)| d)
        .or_else(|| resource.rsplit_once(":role/").map(|(_, r)| r))
        .unwrap_or(resource);
    if name == "*" {
        return "AllDomains".to_owned();
    }
    if let Some(tag) = name
        .strip_prefix("${aws:PrincipalTag/")
        .and_then(|t| t.strip_suffix('}'))
    {
        return format!(
            "DomainOfTag{}",
            sid_base(&format!(":/domain/{tag}"))[6..].to_owned()
        );
    }
    let mut out = String::new();
    let mut upper = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    let prefix = if resource.contains(":role/") {
        "Role"
    } else {
        "Domain"
    };
    format!("{prefix}{out}")
}

fn unique(taken: &mut BTreeSet<String>, base: String) -> String {
    let mut sid = base.clone();
    let mut n = 2;
    while !taken.insert(sid.clone()) {
        sid = format!("{base}{n}");
        n += 1;
    }
    sid
}

/// What `subject`'s policies grant that no record used: the statements that allowed no
/// recorded call (known only when allowed calls were recorded), and per resource the actions
/// granted (or conditionally granted) but never called.
fn unused(
    config: &Config,
    subject: &Subject<'_>,
    usage: &Usage,
) -> (Vec<Statement>, BTreeMap<String, Vec<&'static str>>) {
    let mut statements = Vec::new();
    if usage.allowed_records > 0 {
        for policy in subject.policies.policies() {
            for s in &policy.document.statements {
                if s.effect != crate::policy::document::Effect::Allow {
                    continue;
                }
                let statement = Statement {
                    policy: policy.name.to_string(),
                    sid: s.sid.clone(),
                };
                if !usage.used_statements.contains(&statement) {
                    statements.push(statement);
                }
            }
        }
    }
    let mut resources: BTreeSet<String> = super::diff::domain_columns(&[config])
        .into_iter()
        .map(|c| config.service.domain_arn(&c.name))
        .collect();
    // A role's own domain is the `<key>` placeholder here, as `diff` shows it.
    let (calls, decisions) = usage.generalized(|tag| format!("<{tag}>"));
    resources.extend(calls.keys().filter(|r| r.contains(":/domain/")).cloned());
    let used = |resource: &str, action: Action| {
        calls
            .get(resource)
            .is_some_and(|a| a.contains(&ActionKey::of(action)))
            || decisions.contains_key(&(resource.to_owned(), ActionKey::of(action)))
    };
    let mut grants: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let all = config.service.domain_arn("*");
    for action in Action::all() {
        let targets: Vec<&String> = match action {
            Action::AssumeRole => continue,
            Action::Operation(op) if op.resource_source() == ResourceSource::AllDomains => {
                vec![&all]
            }
            _ => resources.iter().collect(),
        };
        for resource in targets {
            let reach = super::diff::cell(config, subject, action, resource).reach;
            let granted = matches!(reach, Reach::Allowed | Reach::Conditional { .. });
            if granted && !used(resource, action) {
                grants
                    .entry(label(resource))
                    .or_default()
                    .push(action.iam_action());
            }
        }
    }
    (statements, grants)
}

/// A resource as the report names it: its domain, or the pseudo-domain of the other ones.
fn label(resource: &str) -> String {
    match resource.rsplit_once(":/domain/") {
        Some((_, d)) if d == super::diff::OTHER_DOMAIN => "(any other domain)".to_owned(),
        Some((_, "*")) => "(all domains)".to_owned(),
        Some((_, d)) => d.to_owned(),
        None => resource.to_owned(),
    }
}

impl Suggestion {
    /// The policy as TOML, in IAM's element names.
    pub fn toml(&self) -> String {
        let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let list = |items: &[String]| {
            let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = String::from(
            "# Suggested by `swf-warden policy suggest` from recorded calls.\nVersion = \"2012-10-17\"\n",
        );
        for s in &self.statements {
            let actions: Vec<String> = s.actions.iter().map(|a| (*a).to_owned()).collect();
            let _ = write!(
                out,
                "\n[[Statement]]\nSid = {}\nEffect = \"Allow\"\nAction = {}\nResource = {}\n",
                q(&s.sid),
                list(&actions),
                list(&s.resources)
            );
            for (operator, keys) in &s.conditions {
                let _ = writeln!(out, "[Statement.Condition.{operator}]");
                for (key, values) in keys {
                    let _ = writeln!(out, "{} = {}", q(key), list(values));
                }
            }
        }
        out
    }

    /// The policy as IAM JSON, elements in IAM's order.
    pub fn json(&self) -> String {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Document<'a> {
            version: &'static str,
            statement: Vec<JsonStatement<'a>>,
        }
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct JsonStatement<'a> {
            sid: &'a str,
            effect: &'static str,
            action: &'a [&'static str],
            resource: &'a [String],
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            condition: &'a BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
        }
        let doc = Document {
            version: "2012-10-17",
            statement: self
                .statements
                .iter()
                .map(|s| JsonStatement {
                    sid: &s.sid,
                    effect: "Allow",
                    action: &s.actions,
                    resource: &s.resources,
                    condition: &s.conditions,
                })
                .collect(),
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    }

    /// What the subject's current policies grant that no record used, and the notes.
    pub fn report(&self, usage: &Usage) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} recorded calls went through ({} without context, {} allowed)",
            usage.records, usage.without_context, usage.allowed_records
        );
        if usage.without_context > 0 {
            let _ = writeln!(
                out,
                "note: calls recorded without context carry no decision names; record with `[audit] record_context = true`"
            );
        }
        for note in &self.too_many {
            let _ = writeln!(
                out,
                "note: no condition on {note} seen (more than {MAX_NAMES})"
            );
        }
        if usage.allowed_records == 0 {
            let _ = writeln!(
                out,
                "unused statements: unknown (no allowed call recorded: record with `[audit] include_allowed = true`)"
            );
        } else if self.unused_statements.is_empty() {
            let _ = writeln!(out, "unused statements: none");
        } else {
            let _ = writeln!(out, "statements that allowed no recorded call:");
            for s in &self.unused_statements {
                let _ = writeln!(out, "  {s}");
            }
        }
        if self.unused_grants.is_empty() {
            let _ = writeln!(out, "granted but never used: nothing");
        } else {
            let _ = writeln!(out, "granted now but never used:");
            for (resource, actions) in &self.unused_grants {
                let _ = writeln!(out, "  {resource}: {}", actions.join(", "));
            }
        }
        out
    }
}
