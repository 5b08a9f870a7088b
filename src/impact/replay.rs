//! `policy replay`: every call an audit log recorded, decided again under another
//! configuration's principals, roles and policies, and counted as unchanged, `allowed →
//! denied`, `denied → allowed` or not replayable (with why).
//!
//! It streams. A call is one decision however many records it left (shadow mode writes a
//! `wouldDeny` per denied decision, and an `allowed` record after them): records are
//! gathered by `requestId` within a window of the last [`WINDOW`] calls, which holds every
//! record of a call because they are written one after another. Memory is the window's and
//! the samples', whatever the log's size.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use super::record::{self, Read, Recorded};
use super::{Statement, SubjectKind};
use crate::config::Config;
use crate::policy::DecisionKind;

/// How many calls are kept open for more of their records.
pub const WINDOW: usize = 256;

/// What a replay found.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Lines read, records among them, and the calls those records were.
    pub lines: u64,
    pub records: u64,
    pub calls: u64,
    pub unchanged: u64,
    /// A tenant would break.
    pub allowed_to_denied: Change,
    /// Access would widen.
    pub denied_to_allowed: Change,
    pub not_replayable: Tally,
    /// Records no policy decided, by their `decision`.
    pub not_decisions: BTreeMap<String, u64>,
    /// Lines that are not JSON (a line torn by a crash).
    pub unreadable_lines: u64,
}

/// Calls whose decision changed one way.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub count: u64,
    /// By principal or role name.
    pub by_subject: BTreeMap<String, u64>,
    /// The first ones, in log order.
    pub samples: Vec<Sample>,
}

/// Calls that could not be decided again.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub total: u64,
    /// Why, with how many.
    pub reasons: BTreeMap<String, u64>,
}

/// One changed call.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub seq: Option<u64>,
    pub request_id: String,
    pub principal: String,
    pub subject: SubjectKind,
    /// The action whose decision is shown (a decision's, when a decision decided the call).
    pub action: String,
    pub resource: String,
    pub old: Side,
    pub new: Side,
}

/// A call's decision on one side, and the statements that made it.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub decision: String,
    pub statements: Vec<Statement>,
}

/// One call's records gathered so far: the first, and the first denial after an allowed
/// first.
struct Open {
    request_id: String,
    first: Recorded<'static>,
    denial: Option<Recorded<'static>>,
}

/// Replays records, one line at a time.
pub struct Replay<'c> {
    config: &'c Config,
    samples: usize,
    window: VecDeque<Open>,
    /// Request id → its call's position in `window`, counted from `opened`.
    by_id: HashMap<String, u64>,
    /// How many calls have left the window.
    closed: u64,
    report: Report,
}

impl<'c> Replay<'c> {
    /// A replay under `config`, keeping the first `samples` calls of each change.
    pub fn new(config: &'c Config, samples: usize) -> Replay<'c> {
        Replay {
            config,
            samples,
            window: VecDeque::with_capacity(WINDOW + 1),
            by_id: HashMap::with_capacity(WINDOW + 1),
            closed: 0,
            report: Report::default(),
        }
    }

    /// Reads one line of an audit file.
    pub fn line(&mut self, bytes: &[u8]) {
        self.report.lines += 1;
        let recorded = match record::read(bytes) {
            Read::NotRecord { torn } => {
                self.report.unreadable_lines += u64::from(torn);
                return;
            }
            Read::NotDecision(what) => {
                self.report.records += 1;
                *self.report.not_decisions.entry(what).or_default() += 1;
                return;
            }
            Read::Decided(recorded) => recorded,
        };
        self.report.records += 1;
        let recorded = (*recorded).into_owned();
        let id = recorded.line.request_id.as_deref().unwrap_or("").to_owned();
        if let Some(&n) = self.by_id.get(&id) {
            if let Some(open) = n
                .checked_sub(self.closed)
                .and_then(|i| self.window.get_mut(i as usize))
            {
                if !recorded.allowed && open.first.allowed && open.denial.is_none() {
                    open.denial = Some(recorded);
                }
                return;
            }
        }
        let position = self.closed + self.window.len() as u64;
        if !id.is_empty() {
            self.by_id.insert(id.clone(), position);
        }
        self.window.push_back(Open {
            request_id: id,
            first: recorded,
            denial: None,
        });
        if self.window.len() > WINDOW {
            self.close_oldest();
        }
    }

    /// Decides every call still open and returns the report.
    pub fn finish(mut self) -> Report {
        while !self.window.is_empty() {
            self.close_oldest();
        }
        self.report
    }

    fn close_oldest(&mut self) {
        let Some(open) = self.window.pop_front() else {
            return;
        };
        if self.by_id.get(&open.request_id) == Some(&self.closed) {
            self.by_id.remove(&open.request_id);
        }
        self.closed += 1;
        self.decide(open);
    }

    /// Decides one call again and counts it.
    fn decide(&mut self, open: Open) {
        let report = &mut self.report;
        report.calls += 1;
        // A call is denied if any of its records is a denial; that record names what denied.
        let old = open.denial.as_ref().unwrap_or(&open.first);
        let replayed = record::subject(self.config, &old.line).and_then(|subject| {
            old.decide(&subject, &self.config.service.region)
                .map(|r| (r, subject.kind))
        });
        let (replayed, kind) = match replayed {
            Ok(r) => r,
            Err(why) => {
                report.not_replayable.total += 1;
                *report.not_replayable.reasons.entry(why).or_default() += 1;
                return;
            }
        };
        let now_allowed = replayed.decision.kind == DecisionKind::Allowed;
        let change = match (old.allowed, now_allowed) {
            (true, false) => &mut report.allowed_to_denied,
            (false, true) => &mut report.denied_to_allowed,
            _ => {
                report.unchanged += 1;
                return;
            }
        };
        change.count += 1;
        let name = old
            .line
            .principal
            .as_ref()
            .map(|p| p.name.to_string())
            .unwrap_or_default();
        *change.by_subject.entry(name.clone()).or_default() += 1;
        if change.samples.len() < self.samples {
            let decision = old.line.decision.as_deref().unwrap_or_default();
            change.samples.push(Sample {
                seq: old.line.seq,
                request_id: open.request_id.clone(),
                principal: name,
                subject: kind,
                action: if old.allowed {
                    replayed.action.to_owned()
                } else {
                    old.line.action.as_deref().unwrap_or_default().to_owned()
                },
                resource: old.line.resource.as_deref().unwrap_or_default().to_owned(),
                old: Side {
                    decision: decision.to_owned(),
                    // An allowed call names what allowed the action that now denies.
                    statements: if old.allowed {
                        replayed.was_allowed_by.clone()
                    } else {
                        old.line.matched_statements.clone()
                    },
                },
                new: Side {
                    decision: replayed.decision.kind.as_str().to_owned(),
                    statements: replayed
                        .decision
                        .statements
                        .iter()
                        .map(Statement::from)
                        .collect(),
                },
            });
        }
    }
}

impl Report {
    /// Whether `fail_on` (`widening`, `narrowing` or `any`) names a change that happened.
    pub fn fails(&self, fail_on: FailOn) -> bool {
        let widening = self.denied_to_allowed.count > 0;
        let narrowing = self.allowed_to_denied.count > 0;
        match fail_on {
            FailOn::Widening => widening,
            FailOn::Narrowing => narrowing,
            FailOn::Any => widening || narrowing,
        }
    }

    /// The report in words.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} calls replayed from {} records ({} lines)",
            self.calls, self.records, self.lines
        );
        let _ = writeln!(out, "  unchanged:        {}", self.unchanged);
        let _ = writeln!(
            out,
            "  allowed → denied: {} (would break callers)",
            self.allowed_to_denied.count
        );
        let _ = writeln!(
            out,
            "  denied → allowed: {} (would widen access)",
            self.denied_to_allowed.count
        );
        let _ = writeln!(out, "  not replayable:   {}", self.not_replayable.total);
        for (why, n) in &self.not_replayable.reasons {
            let _ = writeln!(out, "    {n}: {why}");
        }
        let not_decisions: u64 = self.not_decisions.values().sum();
        if not_decisions > 0 {
            let kinds: Vec<String> = self
                .not_decisions
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  records no policy decided: {not_decisions} ({})",
                kinds.join(", ")
            );
        }
        if self.unreadable_lines > 0 {
            let _ = writeln!(
                out,
                "  lines that are not JSON (torn by a crash?): {}",
                self.unreadable_lines
            );
        }
        for (title, change) in [
            ("allowed → denied", &self.allowed_to_denied),
            ("denied → allowed", &self.denied_to_allowed),
        ] {
            if change.count == 0 {
                continue;
            }
            let by: Vec<String> = change
                .by_subject
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(out, "\n{title}: {} ({})", change.count, by.join(", "));
            for s in &change.samples {
                let seq = s.seq.map_or("-".to_owned(), |n| n.to_string());
                let _ = writeln!(
                    out,
                    "  seq {seq} {} {} {} {} on {}",
                    s.request_id,
                    s.subject.as_str(),
                    s.principal,
                    s.action,
                    s.resource
                );
                let _ = writeln!(
                    out,
                    "    was {} by {}; now {} by {}",
                    s.old.decision,
                    super::statements_text(&s.old.statements),
                    s.new.decision,
                    super::statements_text(&s.new.statements)
                );
            }
            if (change.samples.len() as u64) < change.count {
                let _ = writeln!(
                    out,
                    "  … and {} more",
                    change.count - change.samples.len() as u64
                );
            }
        }
        out
    }
}

/// Which changes make a command exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOn {
    Widening,
    Narrowing,
    Any,
}

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<FailOn, String> {
        match s {
            "widening" => Ok(FailOn::Widening),
            "narrowing" => Ok(FailOn::Narrowing),
            "any" => Ok(FailOn::Any),
            _ => Err(format!("`{s}`: expected widening, narrowing or any")),
        }
    }
}
