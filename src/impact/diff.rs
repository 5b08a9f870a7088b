//! `policy diff`: two configurations compared over every subject (each principal, and each
//! role as a session whose tags are placeholders such as `<team>`), every action (the 39
//! operations, the 13 decision actions, `sts:AssumeRole`) and every resource either names,
//! plus one that neither names and stands for all others; the cells whose decision differs.
//!
//! A cell is decided with the request unknown (`PolicySet::reach`): what the subject is decides
//! now, anything a request brings leaves the cell conditional, named with its keys. A change
//! up the scale denied < conditional < allowed widens access; down it narrows; a conditional
//! cell whose conditions changed counts as both, since it may do either.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::Serialize;

use super::{Statement, Subject, SubjectKind};
use crate::config::Config;
use crate::policy::context::{derives_from_caller, principal_tag};
use crate::policy::{Action, Context, Partial, Reach};
use crate::swf::ResourceSource;

/// The domain that stands for every domain neither configuration names.
pub const OTHER_DOMAIN: &str = "any-other-domain--swf-warden";
/// The role that stands for every role neither configuration names.
const OTHER_ROLE: &str = "any-other-role--swf-warden";

/// What a diff found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub subjects: usize,
    pub actions: usize,
    /// Domain columns (the other domain included).
    pub domains: usize,
    /// Cells compared.
    pub cells: u64,
    pub widening: u64,
    pub narrowing: u64,
    pub conditions_changed: u64,
    /// Every cell that differs, in subject, resource, action order.
    pub changes: Vec<Cell>,
}

/// One cell that differs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub subject: SubjectKind,
    pub name: String,
    pub action: &'static str,
    /// The column: a domain, a domain pattern, `(any other domain)`, `(all domains)`, a role.
    pub resource: String,
    pub old: Side,
    pub new: Side,
    pub change: ChangeKind,
}

/// A cell on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// `allowed`, `explicitDeny`, `implicitDeny`, `conditional`, or `absent` (the subject
    /// is not in that configuration).
    pub decision: String,
    /// A conditional cell's condition keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    pub statements: Vec<Statement>,
}

/// Which way a cell changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    Widening,
    Narrowing,
    ConditionsChanged,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Widening => "widening",
            ChangeKind::Narrowing => "narrowing",
            ChangeKind::ConditionsChanged => "conditions changed",
        }
    }
}

/// One column: what it is called and the resource evaluated for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    pub label: String,
    /// The domain name (or role name) evaluated.
    pub name: String,
}

/// Compares `old` and `new`.
pub fn diff(old: &Config, new: &Config) -> Report {
    let rows = rows(old, new);
    let domains = domain_columns(&[old, new]);
    let roles = role_columns(&[old, new]);
    let mut report = Report {
        subjects: rows.len(),
        actions: Action::all().count(),
        domains: domains.len(),
        ..Report::default()
    };
    let all_domains = [Column {
        label: "(all domains)".into(),
        name: "*".into(),
    }];
    for (kind, name) in &rows {
        let sides = [old, new].map(|c| subject(c, *kind, name));
        for action in Action::all() {
            let columns: &[Column] = match action {
                Action::AssumeRole if *kind == SubjectKind::Role => continue,
                Action::AssumeRole => &roles,
                Action::Operation(op) if op.resource_source() == ResourceSource::AllDomains => {
                    &all_domains
                }
                _ => &domains,
            };
            for column in columns {
                report.cells += 1;
                let [a, b] = [0, 1].map(|i| {
                    let config = [old, new][i];
                    sides[i]
                        .as_ref()
                        .map(|s| cell(config, s, action, &resource(config, action, &column.name)))
                });
                let Some(change) = change(a.as_ref(), b.as_ref()) else {
                    continue;
                };
                match change {
                    ChangeKind::Widening => report.widening += 1,
                    ChangeKind::Narrowing => report.narrowing += 1,
                    ChangeKind::ConditionsChanged => report.conditions_changed += 1,
                }
                report.changes.push(Cell {
                    subject: *kind,
                    name: name.clone(),
                    action: action.iam_action(),
                    resource: column.label.clone(),
                    old: side(a.as_ref()),
                    new: side(b.as_ref()),
                    change,
                });
            }
        }
    }
    report
        .changes
        .sort_by(|x, y| (x.subject, &x.name, &x.resource).cmp(&(y.subject, &y.name, &y.resource)));
    report
}

/// Every principal and role of either configuration, principals first.
fn rows(old: &Config, new: &Config) -> BTreeSet<(SubjectKind, String)> {
    let mut rows = BTreeSet::new();
    for config in [old, new] {
        for p in &config.principals {
            rows.insert((SubjectKind::Principal, p.name.clone()));
        }
        for r in config.sts.iter().flat_map(|s| &s.roles) {
            rows.insert((SubjectKind::Role, r.name.clone()));
        }
    }
    rows
}

/// The row's subject in `config`: a principal as configured, a role as a session whose every
/// tag the policies name is the placeholder `<key>`.
pub fn subject<'c>(config: &'c Config, kind: SubjectKind, name: &str) -> Option<Subject<'c>> {
    match kind {
        SubjectKind::Principal => super::principal(config, name),
        SubjectKind::Role => {
            let tags = tag_keys(config)
                .into_iter()
                .map(|k| (k.clone(), format!("<{k}>")))
                .collect();
            super::role_session(config, name, "<session>", tags)
        }
    }
}

/// Every `aws:PrincipalTag/<key>` the configuration's policies name, in resources or
/// conditions.
fn tag_keys(config: &Config) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for policy in config.policies.values() {
        for s in &policy.document.statements {
            let texts = s
                .resource
                .patterns
                .iter()
                .map(String::as_str)
                .chain(s.conditions.iter().map(|c| c.key.as_str()))
                .chain(
                    s.conditions
                        .iter()
                        .flat_map(|c| c.values.iter().map(String::as_str)),
                );
            for text in texts {
                let mut rest = text;
                while let Some(at) = find_ignore_case(rest, "aws:PrincipalTag/") {
                    let tail = &rest[at + 17..];
                    let end = tail
                        .find(|c: char| c == '}' || c == ',' || c.is_whitespace())
                        .unwrap_or(tail.len());
                    if end > 0 {
                        keys.insert(tail[..end].to_owned());
                    }
                    rest = &tail[end..];
                }
            }
        }
    }
    keys
}

fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    text.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The domain columns: every domain the configurations' policies name (a pattern by an
/// instance of it; a name built from a variable by its value for each principal, and as the
/// policy writes it for a role session's own, evaluated with the placeholder `<key>`), and
/// the one standing for all others.
pub fn domain_columns(configs: &[&Config]) -> Vec<Column> {
    let mut columns = BTreeSet::new();
    for config in configs {
        let values: Vec<BTreeMap<String, String>> = config
            .principals
            .iter()
            .map(|p| {
                let mut v: BTreeMap<String, String> = p
                    .tags
                    .iter()
                    .map(|(k, val)| {
                        (
                            format!("aws:principaltag/{}", k.to_ascii_lowercase()),
                            val.clone(),
                        )
                    })
                    .collect();
                v.insert("aws:username".into(), p.name.clone());
                v.insert("aws:userid".into(), p.name.clone());
                v
            })
            .collect();
        let placeholders: BTreeMap<String, String> = tag_keys(config)
            .into_iter()
            .map(|k| {
                (
                    format!("aws:principaltag/{}", k.to_ascii_lowercase()),
                    format!("<{k}>"),
                )
            })
            .collect();
        for policy in config.policies.values() {
            for s in &policy.document.statements {
                for pattern in &s.resource.patterns {
                    let Some((_, domain)) = pattern.split_once(":/domain/") else {
                        continue;
                    };
                    if domain.contains("${") {
                        for v in &values {
                            if let Some(d) = substitute(domain, v) {
                                columns.insert(instance(&d));
                            }
                        }
                        // A role session's own domain: labelled as the policy writes it.
                        if let Some(d) = substitute(domain, &placeholders) {
                            columns.insert(Column {
                                label: domain.to_owned(),
                                name: d,
                            });
                        }
                    } else if domain != "*" {
                        columns.insert(instance(domain));
                    }
                }
            }
        }
    }
    let mut columns: Vec<Column> = columns.into_iter().collect();
    columns.push(Column {
        label: "(any other domain)".into(),
        name: OTHER_DOMAIN.into(),
    });
    columns
}

/// A domain pattern's column: a literal is itself; a pattern is evaluated at an instance
/// (`*` and `?` each standing for `x`).
fn instance(pattern: &str) -> Column {
    Column {
        label: pattern.to_owned(),
        name: pattern.replace(['*', '?'], "x"),
    }
}

/// `text` with each `${key}` replaced by its value; `None` if one has none.
fn substitute(text: &str, values: &BTreeMap<String, String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let key = rest[start + 2..end].trim().to_ascii_lowercase();
        out.push_str(values.get(&key)?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The role columns of `sts:AssumeRole`: every role of either configuration, and one standing
/// for all others.
fn role_columns(configs: &[&Config]) -> Vec<Column> {
    let mut names: BTreeSet<String> = configs
        .iter()
        .flat_map(|c| c.sts.iter().flat_map(|s| &s.roles))
        .map(|r| r.name.clone())
        .collect();
    names.remove(OTHER_ROLE);
    let mut columns: Vec<Column> = names
        .into_iter()
        .map(|n| Column {
            label: format!("role/{n}"),
            name: n,
        })
        .collect();
    columns.push(Column {
        label: "(any other role)".into(),
        name: OTHER_ROLE.into(),
    });
    columns
}

/// The resource ARN of a column for `action` in `config`.
fn resource(config: &Config, action: Action, name: &str) -> String {
    match action {
        Action::AssumeRole => format!(
            "arn:{}:iam::{}:role/{name}",
            config.service.partition, config.service.account_id
        ),
        _ => config.service.domain_arn(name),
    }
}

/// One cell of one side, decided with the request unknown.
pub fn cell(config: &Config, subject: &Subject<'_>, action: Action, resource: &str) -> Partial {
    let ctx = Context {
        caller: subject.caller(),
        action,
        input: None,
        source_ip: None,
        now: SystemTime::now(),
        secure_transport: false,
        region: &config.service.region,
        overrides: None,
    };
    let principal = subject.kind == SubjectKind::Principal;
    subject
        .policies
        .reach(resource, &ctx, |key| fixed(key, principal))
}

/// Whether a condition key's value is known without a request: who the caller is, the
/// region it signs for, and a static principal's tags (a session's come with the session).
pub fn fixed(key: &str, principal: bool) -> bool {
    derives_from_caller(key)
        || key.eq_ignore_ascii_case("aws:RequestedRegion")
        || (principal && principal_tag(key).is_some())
}

/// How a cell changed from `old` to `new` (`None`: a subject not in a configuration), if it
/// did.
fn change(old: Option<&Partial>, new: Option<&Partial>) -> Option<ChangeKind> {
    let rank = |p: Option<&Partial>| p.map_or(0, |p| p.reach.rank());
    let (a, b) = (rank(old), rank(new));
    if b > a {
        return Some(ChangeKind::Widening);
    }
    if b < a {
        return Some(ChangeKind::Narrowing);
    }
    match (old.map(|p| &p.reach), new.map(|p| &p.reach)) {
        (
            Some(Reach::Conditional { conditions: x, .. }),
            Some(Reach::Conditional { conditions: y, .. }),
        ) if x != y => Some(ChangeKind::ConditionsChanged),
        _ => None,
    }
}

fn side(p: Option<&Partial>) -> Side {
    match p {
        None => Side {
            decision: "absent".into(),
            keys: Vec::new(),
            statements: Vec::new(),
        },
        Some(p) => Side {
            decision: p.reach.as_str().into(),
            keys: match &p.reach {
                Reach::Conditional { keys, .. } => keys.iter().cloned().collect(),
                _ => Vec::new(),
            },
            statements: p.statements.iter().map(Statement::from).collect(),
        },
    }
}

impl Report {
    /// Whether `fail_on` names a change found (a changed condition counts both ways).
    pub fn fails(&self, fail_on: super::replay::FailOn) -> bool {
        use super::replay::FailOn;
        let either = self.conditions_changed > 0;
        match fail_on {
            FailOn::Widening => self.widening > 0 || either,
            FailOn::Narrowing => self.narrowing > 0 || either,
            FailOn::Any => self.widening > 0 || self.narrowing > 0 || either,
        }
    }

    /// The report in words: the changed cells grouped by subject, resource and change.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} cells compared ({} subjects × {} actions × {} domains, and the roles for sts:AssumeRole)",
            self.cells, self.subjects, self.actions, self.domains
        );
        let _ = writeln!(
            out,
            "  widening: {}, narrowing: {}, conditions changed: {}",
            self.widening, self.narrowing, self.conditions_changed
        );
        // Subject, resource, both sides and the change → the actions.
        type Group<'a> = (SubjectKind, &'a str, &'a str, &'a Side, &'a Side, &'a str);
        let mut groups: BTreeMap<Group<'_>, Vec<&str>> = BTreeMap::new();
        for c in &self.changes {
            groups
                .entry((
                    c.subject,
                    &c.name,
                    &c.resource,
                    &c.old,
                    &c.new,
                    c.change.as_str(),
                ))
                .or_default()
                .push(c.action);
        }
        // The actions of a domain column: every one but `sts:AssumeRole` and the operations
        // on all domains. A group of most of them is named by what it lacks.
        let on_a_domain: Vec<&str> = Action::all()
            .filter(|a| match a {
                Action::Operation(op) => op.resource_source() != ResourceSource::AllDomains,
                Action::Decision(_) => true,
                Action::AssumeRole => false,
            })
            .map(Action::iam_action)
            .collect();
        for ((kind, name, resource, old, new, change), actions) in groups {
            let _ = writeln!(
                out,
                "\n{change}: {} {name} on {resource}: {} → {}",
                kind.as_str(),
                describe(old),
                describe(new)
            );
            let all = actions.len() > on_a_domain.len() / 2
                && actions.iter().all(|a| on_a_domain.contains(a));
            if all {
                let missing: Vec<&str> = on_a_domain
                    .iter()
                    .copied()
                    .filter(|a| !actions.contains(a))
                    .collect();
                let _ = match missing.as_slice() {
                    [] => writeln!(out, "  every action on a domain ({})", actions.len()),
                    _ => writeln!(
                        out,
                        "  every action on a domain ({}) but {}",
                        actions.len(),
                        missing.join(", ")
                    ),
                };
            } else {
                let _ = writeln!(out, "  {}", actions.join(", "));
            }
        }
        out
    }
}

impl PartialOrd for Side {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Side {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.decision, &self.keys, &self.statements).cmp(&(
            &other.decision,
            &other.keys,
            &other.statements,
        ))
    }
}

fn describe(side: &Side) -> String {
    let mut text = side.decision.clone();
    if !side.keys.is_empty() {
        text.push_str(&format!(" on {}", side.keys.join(", ")));
    }
    if !side.statements.is_empty() {
        text.push_str(&format!(" ({})", super::statements_text(&side.statements)));
    }
    text
}
