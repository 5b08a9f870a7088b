//! The audit log (SPEC, "Audit log"): JSON Lines, one record per refused call (and per
//! allowed call with `include_allowed`).
//!
//! Each record is serialized whole, then written with a single `write_all` under a lock on a
//! file opened for appending, so lines never interleave or tear between writers. Records hold
//! no secrets, signatures, bodies or whole task tokens; only what `Record` names.
//! Unauthenticated refusals pass through `flood` first, so they cannot flood the log.

pub mod flood;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::OffsetDateTime;

/// The audit `decision`, written as `as_str` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
    WouldDeny,
    AuthFailed,
    InvalidRequest,
    /// Refused by a quota (the record names it).
    Throttled,
    /// The STS issued a role session (the record names its web identity).
    Issued,
}

impl Outcome {
    /// The word the audit log uses (`decision`), and the access log and metrics with it.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::ExplicitDeny => "explicitDeny",
            Outcome::ImplicitDeny => "implicitDeny",
            Outcome::WouldDeny => "wouldDeny",
            Outcome::AuthFailed => "authFailed",
            Outcome::InvalidRequest => "invalidRequest",
            Outcome::Throttled => "throttled",
            Outcome::Issued => "issued",
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// `webIdentity` in a record.
#[derive(Debug, Clone, Serialize)]
pub struct WebIdentity {
    pub issuer: String,
    pub subject: String,
}

/// `principal` in a record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    pub name: String,
    pub arn: String,
    pub access_key_id: String,
}

/// One entry of `matchedStatements`.
#[derive(Debug, Clone, Serialize)]
pub struct MatchedStatement {
    pub policy: String,
    pub sid: Option<String>,
}

/// One audit record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub event_time: String,
    pub request_id: String,
    pub decision: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    pub principal: Option<PrincipalRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub matched_statements: Vec<MatchedStatement>,
    pub source_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A short fingerprint of the task token involved, never the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_token_fingerprint: Option<String>,
    /// The quota that throttled the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// The session an STS call issued (`issued`): `{ name, arn, accessKeyId }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued: Option<PrincipalRef>,
    /// The web identity an STS call presented (`iss` and `sub` of its token, once verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentity>,
    /// In a flood summary: how many refusals from this source this record stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T01:02:03.456Z`.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `t` as RFC 3339 UTC with exactly three fraction digits.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from(t).format(&format).unwrap_or_default()
}

/// When records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// After every record, before the answer is sent.
    Always,
    /// Once a second, by a background task.
    Interval,
    /// When the operating system decides.
    Never,
}

/// Where and how records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None`: standard output.
    pub path: Option<PathBuf>,
    pub include_allowed: bool,
    pub fsync: Fsync,
    /// Records of unauthenticated refusals per source address and second (`flood`).
    pub unauthenticated_per_second: u32,
}

enum Sink {
    /// Shared so that a flush can run outside the lock while writers go on appending.
    File(Arc<File>),
    Stdout,
}

struct Inner {
    sink: Sink,
    settings: Settings,
    dirty: bool,
}

/// The audit log writer, shared by all requests and kept across configuration reloads.
pub struct AuditLog {
    inner: Mutex<Inner>,
    include_allowed: AtomicBool,
    healthy: AtomicBool,
    gate: flood::FloodGate,
}

fn open_sink(path: Option<&Path>) -> io::Result<Sink> {
    Ok(match path {
        Some(p) => Sink::File(Arc::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => Sink::Stdout,
    })
}

impl AuditLog {
    /// Opens the log for appending (creating the file).
    pub fn open(settings: Settings) -> io::Result<AuditLog> {
        let sink = open_sink(settings.path.as_deref())?;
        Ok(AuditLog {
            include_allowed: AtomicBool::new(settings.include_allowed),
            gate: flood::FloodGate::new(settings.unauthenticated_per_second),
            inner: Mutex::new(Inner {
                sink,
                settings,
                dirty: false,
            }),
            healthy: AtomicBool::new(true),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies new settings (on reload); reopens only when the path changed.
    pub fn reconfigure(&self, settings: Settings) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.settings.path != settings.path {
            let _ = inner.file().map(|f| f.sync_data());
            inner.sink = open_sink(settings.path.as_deref())?;
        }
        self.include_allowed
            .store(settings.include_allowed, Relaxed);
        self.gate
            .set_per_second(settings.unauthenticated_per_second);
        inner.settings = settings;
        Ok(())
    }

    /// Reopens the file at the same path (after logrotate moved it away: SIGUSR1).
    pub fn reopen(&self) -> io::Result<()> {
        let mut inner = self.lock();
        let _ = inner.file().map(|f| f.sync_data());
        inner.sink = open_sink(inner.settings.path.as_deref())?;
        self.healthy.store(true, Relaxed);
        Ok(())
    }

    /// Whether allowed calls are recorded too.
    pub fn include_allowed(&self) -> bool {
        self.include_allowed.load(Relaxed)
    }

    /// False after a write failed, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Writes one record as one line, with a single write under the lock. In `always` mode
    /// the record is on disk when this returns; the flush runs outside the lock, so concurrent
    /// writers are not queued behind one another's flushes.
    pub fn write(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let result = self.append(&line).and_then(|flush| match flush {
            Some(file) => file.sync_data(),
            None => Ok(()),
        });
        self.healthy.store(result.is_ok(), Relaxed);
        result
    }

    /// Writes the record of an unauthenticated refusal from `source`, unless that source is
    /// past its allowance this second: then the refusal is only counted, for the summary
    /// record due when the second is over (written here, or by `flush_summaries`). Returns
    /// whether the refusal's own record was written.
    pub fn write_unauthenticated(&self, record: &Record, source: IpAddr) -> io::Result<bool> {
        let second = unix_second(std::time::SystemTime::now());
        let (admit, due) = self
            .gate
            .admit(source, record.decision, second, &record.request_id);
        let summary = due.map_or(Ok(()), |s| self.write(&summary_record(s)));
        match admit {
            flood::Admit::Write => summary.and(self.write(record)).map(|()| true),
            flood::Admit::Suppress => summary.map(|()| false),
        }
    }

    /// Writes the summaries of the flood windows that are over (once a second), or of every
    /// window (`final_flush`, at shutdown). Every summary is tried; the first error is returned.
    pub fn flush_summaries(&self, final_flush: bool) -> io::Result<()> {
        let second = if final_flush {
            u64::MAX
        } else {
            unix_second(std::time::SystemTime::now())
        };
        let mut result = Ok(());
        for summary in self.gate.flush(second) {
            let written = self.write(&summary_record(summary));
            result = result.and(written);
        }
        result
    }

    /// Appends `line`; returns the file to flush now in `always` mode.
    fn append(&self, line: &[u8]) -> io::Result<Option<Arc<File>>> {
        let mut inner = self.lock();
        match &inner.sink {
            Sink::File(f) => (&**f).write_all(line)?,
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line).and_then(|()| out.flush())?;
            }
        }
        if inner.settings.fsync == Fsync::Always {
            inner.dirty = false;
            return Ok(inner.file());
        }
        inner.dirty = true;
        Ok(None)
    }

    /// Flushes written records to disk (the interval task, and shutdown). The flush runs
    /// outside the lock: writers are never held up by the disk.
    pub fn sync(&self) -> io::Result<()> {
        let file = {
            let mut inner = self.lock();
            if !std::mem::take(&mut inner.dirty) {
                return Ok(());
            }
            inner.file()
        };
        let result = file.map_or(Ok(()), |f| f.sync_data());
        if result.is_err() {
            self.lock().dirty = true;
        }
        result
    }

    pub fn fsync_mode(&self) -> Fsync {
        self.lock().settings.fsync
    }
}

fn unix_second(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The record that stands for the refusals a flood window suppressed.
fn summary_record(s: flood::Summary) -> Record {
    let from = rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.second));
    Record {
        event_time: now_rfc3339(),
        request_id: s.last_request_id,
        decision: s.decision,
        error_code: None,
        cause: None,
        principal: None,
        action: None,
        resource: None,
        matched_statements: Vec::new(),
        source_ip: s.source.map_or_else(|| "*".to_owned(), |ip| ip.to_string()),
        user_agent: None,
        message: Some(format!(
            "{} more unauthenticated refusals from this source (an IPv6 source is its /64) in the second from {from} were counted, not recorded one by one (`[audit] unauthenticated_per_second`)",
            s.suppressed
        )),
        task_token_fingerprint: None,
        quota: None,
        suppressed: Some(s.suppressed),
        issued: None,
        web_identity: None,
    }
}

impl Inner {
    fn file(&self) -> Option<Arc<File>> {
        match &self.sink {
            Sink::File(f) => Some(f.clone()),
            Sink::Stdout => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            event_time: now_rfc3339(),
            request_id: id.into(),
            decision: Outcome::ImplicitDeny,
            error_code: Some("OperationNotPermittedFault"),
            cause: Some("OPERATION_NOT_PERMITTED"),
            principal: None,
            action: Some("swf:PollForActivityTask"),
            resource: None,
            matched_statements: vec![],
            source_ip: "127.0.0.1".into(),
            user_agent: None,
            message: Some("m".into()),
            task_token_fingerprint: None,
            quota: None,
            suppressed: None,
            issued: None,
            web_identity: None,
        }
    }

    fn settings(path: &Path, fsync: Fsync) -> Settings {
        Settings {
            path: Some(path.to_owned()),
            include_allowed: false,
            fsync,
            unauthenticated_per_second: flood::DEFAULT_PER_SECOND,
        }
    }

    #[test]
    fn reopen_follows_logrotate_and_fsync_always_writes_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(settings(&path, Fsync::Always)).unwrap();
        log.write(&record("1")).unwrap();
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        log.write(&record("2")).unwrap();
        log.reopen().unwrap();
        log.write(&record("3")).unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("audit.log.1")).unwrap();
        let fresh = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            rotated.lines().count(),
            2,
            "records before the reopen go to the moved file"
        );
        assert_eq!(fresh.lines().count(), 1);
        assert!(fresh.contains("\"requestId\":\"3\""));
    }

    #[test]
    fn a_failing_log_is_reported_unhealthy() {
        let log = AuditLog::open(settings(Path::new("/dev/full"), Fsync::Never)).unwrap();
        assert!(log.healthy());
        assert!(log.write(&record("x")).is_err());
        assert!(!log.healthy());
    }

    #[test]
    fn reconfigure_moves_to_a_new_path() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        let log = AuditLog::open(settings(&a, Fsync::Interval)).unwrap();
        log.write(&record("1")).unwrap();
        log.reconfigure(Settings {
            path: Some(b.clone()),
            include_allowed: true,
            fsync: Fsync::Interval,
            unauthenticated_per_second: 1,
        })
        .unwrap();
        log.write(&record("2")).unwrap();
        log.sync().unwrap();
        assert!(log.include_allowed());
        assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 1);
        assert_eq!(std::fs::read_to_string(&b).unwrap().lines().count(), 1);
    }

    #[test]
    fn event_time_has_milliseconds() {
        let t = now_rfc3339();
        assert_eq!(t.len(), "2026-11-24T01:02:03.456Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn concurrent_writers_produce_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = std::sync::Arc::new(AuditLog::open(settings(&path, Fsync::Never)).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        log.write(&record(&format!("{t}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1600);
        for line in lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["decision"], "implicitDeny");
            assert_eq!(v["cause"], "OPERATION_NOT_PERMITTED");
            assert!(v.get("resource").is_none());
            assert!(v["principal"].is_null());
        }
    }

    #[test]
    fn unauthenticated_floods_are_summarized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(Settings {
            unauthenticated_per_second: 2,
            ..settings(&path, Fsync::Never)
        })
        .unwrap();
        let source = IpAddr::from([127, 0, 0, 9]);
        let started = unix_second(std::time::SystemTime::now());
        for i in 0..20 {
            log.write_unauthenticated(
                &Record {
                    decision: Outcome::AuthFailed,
                    ..record(&i.to_string())
                },
                source,
            )
            .unwrap();
        }
        let seconds = unix_second(std::time::SystemTime::now()) - started + 1;
        log.flush_summaries(true).unwrap();
        let records: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let (summaries, single): (Vec<_>, Vec<_>) =
            records.iter().partition(|r| r.get("suppressed").is_some());
        let suppressed: u64 = summaries
            .iter()
            .map(|r| r["suppressed"].as_u64().unwrap())
            .sum();
        assert_eq!(
            single.len() as u64 + suppressed,
            20,
            "every refusal counted"
        );
        assert!(
            single.len() as u64 <= 2 * seconds,
            "{} records",
            single.len()
        );
        assert!(!summaries.is_empty());
        for s in &summaries {
            assert_eq!(s["decision"], "authFailed");
            assert_eq!(s["sourceIp"], "127.0.0.9");
        }
    }
}
