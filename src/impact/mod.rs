//! Policy change impact (SPEC, "Policy change impact"): what a change to the policies would
//! do, known before it ships.
//!
//! - [`replay`]: every call an audit log recorded, decided again under another
//!   configuration, with the proxy's own evaluator (`PolicySet::evaluate`);
//! - [`diff`]: two configurations compared cell by cell over subject × action × resource,
//!   with the request unknown (`PolicySet::reach`);
//! - [`suggest`]: the least policy that allows what one principal or role was recorded doing,
//!   and what its current policies grant that nothing used.
//!
//! [`record`] reads the audit log's records back; [`Subjects`] finds who a record names in a
//! configuration.

pub mod diff;
pub mod record;
pub mod replay;
pub mod suggest;

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::audit::MatchedStatement as Statement;
use crate::config::Config;
use crate::policy::{Caller, PolicySet, RoleSession};

/// Who a record or a grid row names, resolved in one configuration.
#[derive(Debug, Clone)]
pub struct Subject<'c> {
    /// The principal's name, or the role's.
    pub name: String,
    /// `principal` or `role`.
    pub kind: SubjectKind,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub policies: &'c PolicySet,
    /// A role session's role ARN and session name.
    pub session: Option<(String, String)>,
}

/// Whether a subject is a static principal or a role's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectKind {
    Principal,
    Role,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Principal => "principal",
            SubjectKind::Role => "role",
        }
    }
}

impl Subject<'_> {
    /// The caller as the policy context sees it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            name: &self.name,
            arn: &self.arn,
            tags: &self.tags,
            session: self
                .session
                .as_ref()
                .map(|(role_arn, name)| RoleSession { role_arn, name }),
        }
    }
}

/// The static principal `name` of `config`.
pub fn principal<'c>(config: &'c Config, name: &str) -> Option<Subject<'c>> {
    config
        .principals
        .iter()
        .find(|p| p.name == name)
        .map(|p| Subject {
            name: p.name.clone(),
            kind: SubjectKind::Principal,
            arn: p.arn.clone(),
            tags: p.tags.clone(),
            policies: &p.policies,
            session: None,
        })
}

/// A session `session` of the role `name` of `config`, with `tags`.
pub fn role_session<'c>(
    config: &'c Config,
    name: &str,
    session: &str,
    tags: BTreeMap<String, String>,
) -> Option<Subject<'c>> {
    let role = config.sts.as_ref()?.roles.iter().find(|r| r.name == name)?;
    Some(Subject {
        name: role.name.clone(),
        kind: SubjectKind::Role,
        arn: crate::sts::assumed_role_arn(&config.service, &role.name, session),
        tags,
        policies: &role.policies,
        session: Some((role.arn.clone(), session.to_owned())),
    })
}

/// `a, b` for a list of statements, or `none`.
pub fn statements_text(statements: &[Statement]) -> String {
    if statements.is_empty() {
        return "no statement".to_owned();
    }
    statements
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
