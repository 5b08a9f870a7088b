//! Reading the audit log back: each line's fields that replay and suggest need (borrowed from
//! the line where JSON allows), which lines are policy decisions, and how the decision a
//! record names is made again (`Recorded::decide`, on `PolicySet::evaluate`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use serde::Deserialize;

use super::{Statement, Subject};
use crate::audit::RecordContext;
use crate::config::Config;
use crate::policy::context::{derives_from_caller, principal_tag};
use crate::policy::{Action, Context, Decision, DecisionKind};
use crate::swf::Operation;

/// One line of an audit file, as far as impact analysis reads it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line<'a> {
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(borrow, default)]
    pub request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub event_time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub decision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub principal: Option<Principal<'a>>,
    #[serde(borrow, default)]
    pub action: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub resource: Option<Cow<'a, str>>,
    #[serde(default)]
    pub matched_statements: Vec<Statement>,
    #[serde(borrow, default)]
    pub source_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    pub context: Option<RecordContext>,
}

/// `principal` in a record.
#[derive(Debug, Deserialize)]
pub struct Principal<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub arn: Cow<'a, str>,
}

/// What a line is to impact analysis.
pub enum Read<'a> {
    /// Not a record (a checkpoint) or not JSON at all (a line torn by a crash).
    NotRecord { torn: bool },
    /// A record no policy decided (an authentication failure, an invalid request, a session
    /// issued, a flood summary): its `decision`, or what it was.
    NotDecision(String),
    /// A call a policy decided.
    Decided(Box<Recorded<'a>>),
}

/// A record of a call a policy decided.
pub struct Recorded<'a> {
    pub line: Line<'a>,
    /// Whether the policy allowed it (`allowed`, or `throttled` after it was allowed).
    pub allowed: bool,
    /// The operation (or `sts:AssumeRole`) the call was; a decision's record names the
    /// decision, its call is `RespondDecisionTaskCompleted`.
    pub call: Action,
}

/// Reads one line.
pub fn read(bytes: &[u8]) -> Read<'_> {
    let line: Line<'_> = match serde_json::from_slice(bytes) {
        Ok(line) => line,
        Err(_) => return Read::NotRecord { torn: true },
    };
    let Some(decision) = line.decision.as_deref() else {
        return Read::NotRecord { torn: false };
    };
    let allowed = match decision {
        "allowed" | "throttled" => true,
        "explicitDeny" | "implicitDeny" | "wouldDeny" => false,
        other => return Read::NotDecision(other.to_owned()),
    };
    if line.principal.is_none() {
        return Read::NotDecision(decision.to_owned());
    }
    let call = match line.action.as_deref().and_then(action) {
        Some(Action::Decision(_)) => Action::Operation(Operation::RespondDecisionTaskCompleted),
        Some(a) => a,
        // `sts:GetCallerIdentity` and the like: allowed to any caller, no policy decides.
        None => return Read::NotDecision(format!("{decision} (no policy decides it)")),
    };
    Read::Decided(Box::new(Recorded {
        line,
        allowed,
        call,
    }))
}

/// The action an IAM action name stands for (exact, as records write them).
pub fn action(name: &str) -> Option<Action> {
    Action::all().find(|a| a.iam_action() == name)
}

/// The record's principal, resolved in `config`: the static principal of the same name, or a
/// session of the role of the same name with the tags the record kept. `Err` says why not.
pub fn subject<'c>(config: &'c Config, record: &Line<'_>) -> Result<Subject<'c>, String> {
    let principal = record
        .principal
        .as_ref()
        .ok_or_else(|| "no principal".to_owned())?;
    let name = &principal.name;
    match session_name(&principal.arn, name) {
        None => super::principal(config, name)
            .ok_or_else(|| format!("principal `{name}` is not in the configuration")),
        Some(session) => {
            let tags = record.context.as_ref().map(tags).unwrap_or_default();
            super::role_session(config, name, session, tags)
                .ok_or_else(|| format!("role `{name}` is not in the configuration"))
        }
    }
}

/// A session's name, from its assumed-role ARN (`…:assumed-role/<role>/<session>`).
fn session_name<'a>(arn: &'a str, role: &str) -> Option<&'a str> {
    let (_, path) = arn.split_once(":assumed-role/")?;
    path.strip_prefix(role)?.strip_prefix('/')
}

/// A session's tags, from the `aws:PrincipalTag/…` keys a record kept.
fn tags(context: &RecordContext) -> BTreeMap<String, String> {
    context
        .keys
        .iter()
        .filter_map(|(k, v)| Some((principal_tag(k)?.to_owned(), v.first()?.clone())))
        .collect()
}

impl Recorded<'_> {
    /// The record with its own copies of what it borrowed from the line.
    pub fn into_owned(self) -> Recorded<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        let line = self.line;
        Recorded {
            line: Line {
                seq: line.seq,
                request_id: own(line.request_id),
                event_time: own(line.event_time),
                decision: own(line.decision),
                principal: line.principal.map(|p| Principal {
                    name: Cow::Owned(p.name.into_owned()),
                    arn: Cow::Owned(p.arn.into_owned()),
                }),
                action: own(line.action),
                resource: own(line.resource),
                matched_statements: line.matched_statements,
                source_ip: own(line.source_ip),
                context: line.context,
            },
            allowed: self.allowed,
            call: self.call,
        }
    }
}

/// The new decision of a recorded call: its operation, then each decision it carried, the
/// first that is not allowed deciding; which action that was.
pub struct Replayed {
    pub decision: Decision,
    pub action: &'static str,
    /// What allowed that action when it was recorded, if the record says (a decision's
    /// statements are in its context; the call's in `matchedStatements`).
    pub was_allowed_by: Vec<Statement>,
}

impl Recorded<'_> {
    /// Decides the call again for `subject` with the proxy's evaluator, from the keys the
    /// record kept: the caller's own keys (its name, ARN, type and a principal's tags) come
    /// from `subject`, the rest from the record, at the record's time. `Err` says why the
    /// call cannot be decided again.
    pub fn decide(&self, subject: &Subject<'_>, region: &str) -> Result<Replayed, String> {
        let Some(context) = &self.line.context else {
            return Err(
                "no context (recorded before `[audit] record_context`, or with it off)".into(),
            );
        };
        let resource = self
            .line
            .resource
            .as_deref()
            .ok_or_else(|| "no resource".to_owned())?;
        let now = self
            .line
            .event_time
            .as_deref()
            .and_then(parse_time)
            .ok_or_else(|| "no readable eventTime".to_owned())?;
        let source_ip: Option<IpAddr> = self.line.source_ip.as_deref().and_then(|s| s.parse().ok());
        let overrides = recorded_keys(&context.keys, None);
        let ctx = Context {
            caller: subject.caller(),
            action: self.call,
            input: None,
            source_ip,
            now,
            secure_transport: false,
            region,
            overrides: Some(&overrides),
        };
        let decision = subject.policies.evaluate(resource, &ctx);
        if decision.kind != DecisionKind::Allowed {
            return Ok(Replayed {
                decision,
                action: self.call.iam_action(),
                was_allowed_by: self.line.matched_statements.clone(),
            });
        }
        for d in &context.decisions {
            let action =
                action(&d.action).ok_or_else(|| format!("unknown action `{}`", d.action))?;
            let overrides = recorded_keys(&context.keys, Some(&d.keys));
            let ctx = Context {
                action,
                overrides: Some(&overrides),
                ..ctx
            };
            let inner = subject.policies.evaluate(&d.resource, &ctx);
            if inner.kind != DecisionKind::Allowed {
                return Ok(Replayed {
                    decision: inner,
                    action: action.iam_action(),
                    was_allowed_by: d.statements.clone(),
                });
            }
        }
        Ok(Replayed {
            decision,
            action: self.call.iam_action(),
            was_allowed_by: self.line.matched_statements.clone(),
        })
    }
}

/// The recorded keys a replay presents (lowercase, as `Context::overrides` takes them): all
/// but those that derive from who the caller is, which the configuration replayed under
/// supplies; for a decision, the call's keys other than its SWF keys, and the decision's own.
fn recorded_keys(
    call: &BTreeMap<String, Vec<String>>,
    decision: Option<&BTreeMap<String, Vec<String>>>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = call
        .iter()
        .filter(|(k, _)| {
            let swf = decision.is_some() && k.starts_with("swf:");
            !(derives_from_caller(k) || principal_tag(k).is_some() || swf)
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    if let Some(keys) = decision {
        out.extend(
            keys.iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
        );
    }
    out
}

/// An `eventTime` (RFC 3339).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// Calls `f` with each line of `inputs` (newline removed), in order; stops at the first read
/// error, which it returns with the file's name.
pub fn each_line(
    inputs: crate::audit::files::Files,
    mut f: impl FnMut(&[u8]),
) -> Result<(), String> {
    let mut buf = Vec::with_capacity(4096);
    for (name, mut reader) in inputs {
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
                    if !line.is_empty() {
                        f(line);
                    }
                }
                Err(e) => return Err(format!("`{name}`: {e}")),
            }
        }
    }
    Ok(())
}
