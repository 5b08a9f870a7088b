//! Step 3 of the request path: IAM-style authorization.
//!
//! Parse (`document`), compile (`compile`: actions become a bit set over SWF's operations,
//! resources are split into ARN segments once), evaluate (`PolicySet::evaluate`: pure, no
//! allocation unless statements match). `authorize` is the only way to obtain a [`Permit`],
//! and forwarding takes a `Permit`: an unauthorized call cannot reach the upstream.

pub mod document;
pub mod wildcard;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Diagnostic;
use crate::swf::Operation;
use document::{Document, Effect, Patterns};

/// A loaded policy file.
#[derive(Debug)]
pub struct Policy {
    pub name: Arc<str>,
    pub path: PathBuf,
    pub document: Document,
    compiled: Arc<[CompiledStatement]>,
}

/// Where a statement came from: what decisions and audit records name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: Arc<str>,
    pub sid: Option<Arc<str>>,
    pub file: Arc<Path>,
    pub line: usize,
}

#[derive(Debug)]
struct CompiledStatement {
    effect: Effect,
    /// Bit `op.index()` is set when the statement applies to that operation (negation folded in).
    actions: u64,
    resources: ResourceMatcher,
    origin: StatementRef,
}

#[derive(Debug)]
struct ResourceMatcher {
    negated: bool,
    patterns: Vec<ResourcePattern>,
}

#[derive(Debug)]
enum ResourcePattern {
    /// `*`
    Any,
    /// Six ARN segments; the last keeps its colons.
    Arn(Box<[Segment; 6]>),
}

#[derive(Debug)]
enum Segment {
    Any,
    Literal(String),
    Wildcard(String),
}

impl Segment {
    fn new(pattern: &str) -> Segment {
        if pattern == "*" {
            Segment::Any
        } else if wildcard::is_literal(pattern) {
            Segment::Literal(pattern.to_owned())
        } else {
            Segment::Wildcard(pattern.to_owned())
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Segment::Any => true,
            Segment::Literal(l) => l == text,
            Segment::Wildcard(p) => wildcard::matches(p, text),
        }
    }
}

impl ResourcePattern {
    fn new(pattern: &str) -> ResourcePattern {
        if pattern == "*" {
            return ResourcePattern::Any;
        }
        // The document validator guarantees six segments.
        let mut it = pattern.splitn(6, ':').map(Segment::new);
        let mut next = || it.next().unwrap_or(Segment::Any);
        ResourcePattern::Arn(Box::new([next(), next(), next(), next(), next(), next()]))
    }

    fn matches(&self, resource: &str) -> bool {
        match self {
            ResourcePattern::Any => true,
            ResourcePattern::Arn(segments) => {
                let mut parts = resource.splitn(6, ':');
                segments
                    .iter()
                    .all(|s| parts.next().is_some_and(|p| s.matches(p)))
            }
        }
    }
}

impl ResourceMatcher {
    fn applies(&self, resource: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(resource)) != self.negated
    }
}

/// The operations an action list names, as a bit set. Action names are case-insensitive.
fn action_bits(actions: &Patterns) -> u64 {
    let mut bits = 0u64;
    for op in Operation::ALL {
        let action = op.iam_action().to_ascii_lowercase();
        if actions
            .patterns
            .iter()
            .any(|p| wildcard::matches(&p.to_ascii_lowercase(), &action))
        {
            bits |= 1 << op.index();
        }
    }
    if actions.negated {
        bits = !bits & all_operations();
    }
    bits
}

fn all_operations() -> u64 {
    (1u64 << Operation::ALL.len()) - 1
}

impl Policy {
    /// Compiles a validated document.
    pub fn new(name: &str, path: &Path, document: Document) -> Policy {
        let name: Arc<str> = Arc::from(name);
        let file: Arc<Path> = Arc::from(path);
        let compiled = document
            .statements
            .iter()
            .map(|s| CompiledStatement {
                effect: s.effect,
                actions: action_bits(&s.action),
                resources: ResourceMatcher {
                    negated: s.resource.negated,
                    patterns: s
                        .resource
                        .patterns
                        .iter()
                        .map(|p| ResourcePattern::new(p))
                        .collect(),
                },
                origin: StatementRef {
                    policy: name.clone(),
                    sid: s.sid.as_deref().map(Arc::from),
                    file: file.clone(),
                    line: s.line,
                },
            })
            .collect();
        Policy {
            name,
            path: path.to_owned(),
            document,
            compiled,
        }
    }
}

/// Loads every `*.toml` and `*.json` file in `dir`; the policy's name is the file stem.
pub fn load_dir(dir: &Path) -> (BTreeMap<String, Arc<Policy>>, Vec<Diagnostic>) {
    let mut policies = BTreeMap::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(Diagnostic::file(
                dir,
                format!("cannot read the policy folder: {e}"),
            ));
            return (policies, errors);
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str());
        if !matches!(ext, Some("toml") | Some("json")) || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            errors.push(Diagnostic::file(
                &path,
                "policy file names must be valid UTF-8",
            ));
            continue;
        };
        match load_file(&path) {
            Ok(doc) => {
                if policies.contains_key(&name) {
                    errors.push(Diagnostic::file(
                        &path,
                        format!("a policy named `{name}` is already defined by another file"),
                    ));
                } else {
                    policies.insert(name.clone(), Arc::new(Policy::new(&name, &path, doc)));
                }
            }
            Err(d) => errors.push(d),
        }
    }
    (policies, errors)
}

/// Reads and parses one policy file by its extension.
pub fn load_file(path: &Path) -> Result<Document, Diagnostic> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot read policy: {e}")))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => document::parse_json(path, &source),
        _ => document::parse_toml(path, &source),
    }
}

/// A principal's effective policies: its own plus its groups', each once.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
}

/// The outcome of evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allowed => "allowed",
            DecisionKind::ExplicitDeny => "explicitDeny",
            DecisionKind::ImplicitDeny => "implicitDeny",
        }
    }
}

/// A decision and the statements that decided it (the matching `Deny`s for an explicit deny,
/// the matching `Allow`s for an allow, none for an implicit deny).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: DecisionKind,
    pub statements: Vec<StatementRef>,
}

impl PolicySet {
    /// Adds `policy` unless it is already in the set.
    pub fn add(&mut self, policy: Arc<Policy>) {
        if !self.policies.iter().any(|p| Arc::ptr_eq(p, &policy)) {
            self.policies.push(policy);
        }
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.iter()
    }

    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| &*p.name)
    }

    /// IAM's evaluation: an explicit `Deny` wins, else any `Allow` allows, else implicit deny.
    pub fn evaluate(&self, op: Operation, resource: &str) -> Decision {
        let bit = 1u64 << op.index();
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for statement in self.policies.iter().flat_map(|p| p.compiled.iter()) {
            if statement.actions & bit == 0 || !statement.resources.applies(resource) {
                continue;
            }
            match statement.effect {
                Effect::Deny => denies.push(statement.origin.clone()),
                Effect::Allow => allows.push(statement.origin.clone()),
            }
        }
        if !denies.is_empty() {
            Decision {
                kind: DecisionKind::ExplicitDeny,
                statements: denies,
            }
        } else if !allows.is_empty() {
            Decision {
                kind: DecisionKind::Allowed,
                statements: allows,
            }
        } else {
            Decision {
                kind: DecisionKind::ImplicitDeny,
                statements: Vec::new(),
            }
        }
    }
}

/// Proof that a call was authorized (or let through by shadow mode). Only [`authorize`]
/// builds one; forwarding requires it.
#[derive(Debug)]
pub struct Permit {
    decision: Decision,
    shadowed: bool,
}

impl Permit {
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// True when policy denied the call but shadow mode let it through.
    pub fn shadowed(&self) -> bool {
        self.shadowed
    }
}

/// Evaluates and turns the decision into a `Permit` or the denial. With `enforce == false`
/// (shadow mode) a denial still yields a `Permit`, marked as shadowed for the audit log.
pub fn authorize(
    policies: &PolicySet,
    principal_arn: &str,
    op: Operation,
    resource: &str,
    enforce: bool,
) -> Result<Permit, (Decision, String)> {
    let decision = policies.evaluate(op, resource);
    if decision.kind == DecisionKind::Allowed {
        return Ok(Permit {
            decision,
            shadowed: false,
        });
    }
    if !enforce {
        return Ok(Permit {
            decision,
            shadowed: true,
        });
    }
    let action = op.iam_action();
    let reason = match decision.kind {
        DecisionKind::ExplicitDeny => {
            "with an explicit deny in an identity-based policy".to_owned()
        }
        _ => format!("because no identity-based policy allows the {action} action"),
    };
    let message = format!("User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {reason}");
    Err((decision, message))
}

#[cfg(test)]
mod tests;
