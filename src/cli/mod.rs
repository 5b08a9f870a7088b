//! The tools of the command line: `check`, `explain`, `test`, `audit` and `policy` (SPEC, "Command
//! line"). Each returns its exit code: 0 success, 64 invalid usage or configuration, 1 a failed
//! test or a log that is not intact.

pub mod audit;
pub mod check;
pub mod explain;
pub mod policy;
pub mod test;

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::config::{self, Config};
use crate::policy::{Action, Caller, Context, Decision, PolicySet, RoleSession};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 64;

/// Loads the configuration for a tool that decides but never serves (secrets given by
/// environment variable or file are not read: `config::load_policies`), printing its
/// diagnostics to stderr; `None` when it has errors.
pub fn load(path: &std::path::Path) -> Option<Config> {
    match config::load_policies(path) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("{w}");
            }
            Some(config)
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            None
        }
    }
}

/// Who asks: a `[[principal]]`, or a session of a `[[role]]` with the tags given.
pub struct Subject<'a> {
    pub name: String,
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub policies: &'a PolicySet,
    pub groups: &'a [String],
    /// A role session: the role's ARN and the session's name.
    pub session: Option<(String, String)>,
}

/// What to evaluate, as the tools are asked it.
pub struct Query<'a> {
    pub subject: Subject<'a>,
    pub action: Action,
    pub resource: String,
    /// Lowercase key → values.
    pub context: BTreeMap<String, Vec<String>>,
}

impl Query<'_> {
    /// The evaluation context: the principal's own keys, the given ones on top.
    pub fn evaluate<R>(
        &self,
        f: impl FnOnce(&PolicySet, &str, &Context<'_>) -> R,
        region: &str,
    ) -> R {
        let ctx = Context {
            caller: Caller {
                name: &self.subject.name,
                arn: &self.subject.arn,
                tags: &self.subject.tags,
                session: self
                    .subject
                    .session
                    .as_ref()
                    .map(|(role_arn, name)| RoleSession { role_arn, name }),
            },
            action: self.action,
            input: None,
            source_ip: None,
            now: SystemTime::now(),
            secure_transport: false,
            region,
            overrides: Some(&self.context),
        };
        f(self.subject.policies, &self.resource, &ctx)
    }

    pub fn decide(&self, region: &str) -> Decision {
        self.evaluate(|set, resource, ctx| set.evaluate(resource, ctx), region)
    }
}

/// Resolves `swf:<Name>` (an operation or a decision), case-insensitively.
pub fn action(name: &str) -> Result<Action, String> {
    Action::all()
        .find(|a| a.iam_action().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!("unknown action `{name}`: expected swf:<Operation>, swf:<DecisionType> or sts:AssumeRole")
        })
}

/// The resource from `--domain` or `--resource`, exactly one.
pub fn resource(
    config: &Config,
    domain: Option<&str>,
    resource: Option<&str>,
) -> Result<String, String> {
    match (domain, resource) {
        (Some(d), None) => {
            crate::swf::check_domain_name("domain", d).map_err(|e| e.to_string())?;
            Ok(config.service.domain_arn(d))
        }
        (None, Some(r)) => Ok(r.to_owned()),
        _ => Err("give exactly one of a domain and a resource".to_owned()),
    }
}

/// Parses `KEY=VALUE` pairs; a key given twice has several values.
pub fn context(pairs: &[String]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("context `{pair}` must be KEY=VALUE"))?;
        if !crate::policy::context::is_known_key(k) {
            return Err(format!("context key `{k}` is not one swf-warden supplies"));
        }
        out.entry(k.to_ascii_lowercase())
            .or_default()
            .push(v.to_owned());
    }
    Ok(out)
}

/// The subject named by exactly one of `principal` and `role`; `tags` (`KEY=VALUE`) are a
/// role session's, named `session`.
pub fn subject<'c>(
    config: &'c Config,
    principal: Option<&str>,
    role: Option<&str>,
    session: Option<&str>,
    tags: &[String],
) -> Result<Subject<'c>, String> {
    match (principal, role) {
        (Some(name), None) => {
            if !tags.is_empty() || session.is_some() {
                return Err("tags and a session name go with a role, not a principal".into());
            }
            let p = config
                .principals
                .iter()
                .find(|p| p.name == name)
                .ok_or_else(|| format!("unknown principal `{name}`"))?;
            Ok(Subject {
                name: p.name.clone(),
                arn: p.arn.clone(),
                tags: p.tags.clone(),
                policies: &p.policies,
                groups: &p.groups,
                session: None,
            })
        }
        (None, Some(name)) => {
            let r = config
                .sts
                .as_ref()
                .and_then(|s| s.roles.iter().find(|r| r.name == name))
                .ok_or_else(|| format!("unknown role `{name}`"))?;
            let session = session.unwrap_or("explain").to_owned();
            let mut session_tags = BTreeMap::new();
            for pair in tags {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("tag `{pair}` must be KEY=VALUE"))?;
                session_tags.insert(k.to_owned(), v.to_owned());
            }
            Ok(Subject {
                name: r.name.clone(),
                arn: crate::sts::assumed_role_arn(&config.service, &r.name, &session),
                tags: session_tags,
                policies: &r.policies,
                groups: &r.groups,
                session: Some((r.arn.clone(), session)),
            })
        }
        _ => Err("give exactly one of a principal and a role".into()),
    }
}
