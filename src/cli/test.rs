//! `swf-warden test`: policy test cases in the spirit of `opa test`. Each case names a
//! principal, an action, a domain or resource, optional context, the expected decision and
//! optionally the statements expected to decide it. Every case of every file is run: a failure
//! prints, in policy terms, what was expected and what decided, then the explanation; a case
//! that cannot run (an unknown principal, a bad action) is reported at its line and counted as
//! failed.
//!
//! ```toml
//! [[case]]
//! name = "tenant A heartbeats in its domain"
//! principal = "tenant-a-worker"
//! action = "swf:RecordActivityTaskHeartbeat"
//! domain = "tenant-a"
//! context = { "swf:taskList.name" = "work" }
//! expect = "allowed"                       # allowed | explicitDeny | implicitDeny
//! statements = [{ policy = "tenant-a", sid = "OwnDomain" }]
//!
//! [[case]]
//! name = "a session of the worker role, tagged with its namespace"
//! role = "swf-worker"                      # instead of `principal`
//! tags = { namespace = "orders" }
//! action = "swf:PollForActivityTask"
//! domain = "orders"
//! expect = "allowed"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::diag::Diagnostic;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    case: Vec<toml::Spanned<Case>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: Option<String>,
    /// A session of this role instead, with these session tags.
    role: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    action: String,
    domain: Option<String>,
    resource: Option<String>,
    #[serde(default)]
    context: BTreeMap<String, Values>,
    expect: String,
    statements: Option<Vec<Expected>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Values {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct Expected {
    policy: String,
    sid: Option<String>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "statement `{sid}` of policy `{}`", self.policy),
            None => write!(f, "a statement without Sid of policy `{}`", self.policy),
        }
    }
}

/// `a, b and c`, or `no statement`.
fn statements<T: std::fmt::Display>(list: &[T]) -> String {
    match list {
        [] => "no statement".to_owned(),
        [one] => one.to_string(),
        [init @ .., last] => format!(
            "{} and {last}",
            init.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The outcome of a run: how many passed and failed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

pub fn run(config: &Path, files: &[PathBuf]) -> u8 {
    let Some(config) = super::load(config) else {
        return EXIT_USAGE;
    };
    let mut summary = Summary::default();
    let mut unreadable = 0;
    for file in files {
        if let Err(d) = run_file(&config, file, &mut summary) {
            eprintln!("{d}");
            unreadable += 1;
        }
    }
    println!("{} passed, {} failed", summary.passed, summary.failed);
    if unreadable > 0 {
        EXIT_USAGE
    } else if summary.failed == 0 {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// The query a case asks, or why it cannot run.
fn query<'a>(config: &'a crate::config::Config, case: &Case) -> Result<super::Query<'a>, String> {
    if !matches!(
        case.expect.as_str(),
        "allowed" | "explicitDeny" | "implicitDeny"
    ) {
        return Err(format!(
            "`expect` must be allowed, explicitDeny or implicitDeny, not `{}`",
            case.expect
        ));
    }
    let context: Vec<String> = case
        .context
        .iter()
        .flat_map(|(k, v)| match v {
            Values::One(s) => vec![format!("{k}={s}")],
            Values::Many(list) => list.iter().map(|s| format!("{k}={s}")).collect(),
        })
        .collect();
    Ok(super::Query {
        subject: super::subject(
            config,
            case.principal.as_deref(),
            case.role.as_deref(),
            None,
            &case
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )?,
        action: super::action(&case.action)?,
        resource: super::resource(config, case.domain.as_deref(), case.resource.as_deref())?,
        context: super::context(&context)?,
    })
}

fn run_file(
    config: &crate::config::Config,
    file: &Path,
    summary: &mut Summary,
) -> Result<(), Diagnostic> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::file(file, format!("cannot read: {e}")))?;
    let cases: CaseFile = toml::from_str(&source).map_err(|e| {
        Diagnostic::at(
            file,
            &source,
            e.span().map_or(0, |s| s.start),
            e.message().to_owned(),
        )
    })?;
    for spanned in cases.case {
        let (line, _) = crate::diag::line_col(&source, spanned.span().start);
        let case = spanned.into_inner();
        let query = match query(config, &case) {
            Ok(q) => q,
            Err(m) => {
                summary.failed += 1;
                let at = Diagnostic::line_col(file, line, 1, format!("case `{}`: {m}", case.name));
                println!("FAIL  {at}");
                continue;
            }
        };
        let decision = query.decide(&config.service.region);
        let mut got: Vec<Expected> = decision
            .statements
            .iter()
            .map(|s| Expected {
                policy: s.policy.to_string(),
                sid: s.sid.as_deref().map(str::to_owned),
            })
            .collect();
        got.sort();
        let statements_ok = case.statements.as_ref().is_none_or(|want| {
            let mut want: Vec<&Expected> = want.iter().collect();
            want.sort();
            want.len() == got.len() && want.iter().zip(&got).all(|(a, b)| *a == b)
        });
        if decision.kind.as_str() == case.expect && statements_ok {
            summary.passed += 1;
            println!("ok    {}:{line} {}", file.display(), case.name);
        } else {
            summary.failed += 1;
            println!(
                "FAIL  {}:{line} {}: expected {}{}, got {} by {}",
                file.display(),
                case.name,
                case.expect,
                case.statements
                    .as_ref()
                    .map_or(String::new(), |s| format!(" by {}", statements(s))),
                decision.kind.as_str(),
                statements(&got)
            );
            let (_, text) = query.evaluate(crate::policy::explain::explain, &config.service.region);
            for l in text.lines() {
                println!("      {l}");
            }
        }
    }
    Ok(())
}
