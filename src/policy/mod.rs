//! Step 3 of the request path: IAM-style authorization.
//!
//! Parse (`document`), compile (`compile`: actions become a bit set, resources ARN segments,
//! conditions and variables parsed), evaluate (`PolicySet::evaluate`: pure, reads the request
//! only through a [`Context`]). `authorize` is the only way to obtain a [`Permit`], and
//! forwarding takes a `Permit`: an unauthorized call cannot reach the upstream.

pub mod actions;
pub mod analysis;
mod compile;
pub mod condition;
pub mod context;
pub mod document;
pub mod explain;
mod index;
mod partial;
mod spanned;
pub mod variables;
pub mod wildcard;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Diagnostic;
pub use actions::Action;
use compile::CompiledStatement;
pub use context::{Caller, Context, RoleSession};
use document::{Document, Effect};
pub use partial::{Partial, Reach};

/// A loaded policy file.
#[derive(Debug)]
pub struct Policy {
    pub name: Arc<str>,
    pub path: PathBuf,
    pub document: Document,
    compiled: Vec<CompiledStatement>,
}

/// Where a statement came from: what decisions and audit records name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: Arc<str>,
    pub sid: Option<Arc<str>>,
    pub file: Arc<Path>,
    pub line: usize,
}

/// What an audit record names of a statement: its policy and `Sid`.
impl From<&StatementRef> for crate::audit::MatchedStatement {
    fn from(s: &StatementRef) -> Self {
        crate::audit::MatchedStatement {
            policy: s.policy.to_string(),
            sid: s.sid.as_deref().map(str::to_owned),
        }
    }
}

impl Policy {
    /// Compiles a validated document; each statement that cannot compile is reported.
    pub fn compile(name: &str, path: &Path, document: Document) -> Result<Policy, Vec<Diagnostic>> {
        let name: Arc<str> = Arc::from(name);
        let compiled = compile::compile(&name, path, &document)?;
        Ok(Policy {
            name,
            path: path.to_owned(),
            document,
            compiled,
        })
    }
}

/// What `load_dir` found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The policies whose files have no error, by name.
    pub policies: BTreeMap<String, Arc<Policy>>,
    /// Every error and warning, each file's in order.
    pub diagnostics: Vec<Diagnostic>,
    /// The names of the files with errors: a reference to one is not an error of its own.
    pub failed: BTreeSet<String>,
}

/// Loads every `*.toml` and `*.json` file in `dir`, the policy's name being the file stem, and
/// analyses each (src/policy/analysis.rs). A file with any error never becomes a policy.
pub fn load_dir(dir: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            loaded.diagnostics.push(Diagnostic::file(
                dir,
                format!("cannot read the policy folder: {e}"),
            ));
            return loaded;
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
            loaded.diagnostics.push(Diagnostic::file(
                &path,
                "policy file names must be valid UTF-8",
            ));
            continue;
        };
        if loaded.policies.contains_key(&name) {
            loaded.diagnostics.push(Diagnostic::file(
                &path,
                format!("a policy named `{name}` is already defined by another file"),
            ));
            continue;
        }
        let (document, mut found) = read_file(&path);
        // A document read with errors is compiled and analysed only to report every error in
        // it at once; its warnings would be about a document that is not the one written.
        let partial = !found.is_empty();
        if let Some(document) = document {
            match Policy::compile(&name, &path, document) {
                Ok(policy) => {
                    found.extend(
                        analysis::analyze(&policy)
                            .into_iter()
                            .filter(|d| d.is_error() || !partial),
                    );
                    if !found.iter().any(Diagnostic::is_error) {
                        loaded.policies.insert(name.clone(), Arc::new(policy));
                    }
                }
                Err(d) => found.extend(d),
            }
        }
        if found.iter().any(Diagnostic::is_error) {
            loaded.failed.insert(name);
        }
        found.sort_by_key(|d| (d.line, d.column));
        loaded.diagnostics.extend(found);
    }
    loaded
}

/// Reads one policy file by its extension: what could be read, and every error
/// (`document::read_toml`).
fn read_file(path: &Path) -> (Option<Document>, Vec<Diagnostic>) {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(e) => {
            return (
                None,
                vec![Diagnostic::file(path, format!("cannot read policy: {e}"))],
            )
        }
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => document::read_json(path, &source),
        _ => document::read_toml(path, &source),
    }
}

/// A principal's effective policies: its own plus its groups', each once, with an index
/// (built on first use) that keeps evaluation flat however many statements there are.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
    index: std::sync::OnceLock<Arc<index::Index>>,
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
            self.index = std::sync::OnceLock::new();
        }
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.iter()
    }

    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| &*p.name)
    }

    /// Whether some `Allow` statement names `action`, whatever its resources and conditions:
    /// whether a call of it can be allowed at all (`check` warns about a quota no principal
    /// can meet).
    pub fn may_allow(&self, action: Action) -> bool {
        let bit = 1u64 << action.index();
        self.policies
            .iter()
            .flat_map(|p| &p.compiled)
            .any(|s| s.effect == Effect::Allow && s.actions & bit != 0)
    }

    /// Builds the statement index now. The proxy does this when it loads a configuration
    /// (`App::new`, off the request threads), so no call pays for it; otherwise the first
    /// evaluation builds it.
    pub fn build_index(&self) {
        self.index();
    }

    fn index(&self) -> &index::Index {
        self.index
            .get_or_init(|| Arc::new(index::Index::build(&self.policies)))
    }

    /// IAM's evaluation: an explicit `Deny` wins, else any `Allow` allows, else implicit deny.
    /// A statement applies when its action, its resource and all its conditions match.
    pub fn evaluate(&self, resource: &str, ctx: &Context<'_>) -> Decision {
        let bit = 1u64 << ctx.action.index();
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        self.index().candidates(resource, |p, s| {
            let statement = &self.policies[p].compiled[s];
            if statement.actions & bit == 0
                || !statement.resources.applies(resource, ctx)
                || !statement.conditions.iter().all(|c| c.evaluate(ctx))
            {
                return;
            }
            match statement.effect {
                Effect::Deny => denies.push(statement.origin.clone()),
                Effect::Allow => allows.push(statement.origin.clone()),
            }
        });
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
    resource: &str,
    ctx: &Context<'_>,
    enforce: bool,
) -> Result<Permit, (Decision, String)> {
    let decision = policies.evaluate(resource, ctx);
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
    let action = ctx.action.iam_action();
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
