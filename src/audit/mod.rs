//! The audit log (SPEC, "Audit log"): JSON Lines, one record per refused call (and per
//! allowed call with `include_allowed`).
//!
//! Each record is serialized whole, then chained (`chain`: `seq` and `prev`, the hash of the
//! line before) and written with a single `write_all` under a lock on a file opened for
//! appending, so lines never interleave or tear between writers; a write that fails is cut
//! back off the file, so a full disk leaves no half line. With a signing key, signed
//! checkpoints (`checkpoint`) commit to everything before them. Records hold no secrets,
//! signatures, bodies or whole task tokens; only what `Record` names. Unauthenticated refusals
//! pass through `flood` first, so they cannot flood the log. `verify` checks a log the way
//! `swf-warden audit verify` reports on it.

pub mod chain;
pub mod checkpoint;
pub mod files;
pub mod flood;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct MatchedStatement {
    pub policy: String,
    pub sid: Option<String>,
}

/// `policy/Sid`, as reports name a statement.
impl std::fmt::Display for MatchedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "{}/{sid}", self.policy),
            None => write!(f, "{} (statement without Sid)", self.policy),
        }
    }
}

/// `context` in a record: the condition keys the request presented and their values, and for
/// `RespondDecisionTaskCompleted` each decision's, so that the decision can be made again
/// (`policy replay`). No secret, no token, no body beyond these keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RecordContext {
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionContext>,
}

/// One decision of a `RespondDecisionTaskCompleted` in a record's `context`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DecisionContext {
    /// `swf:ScheduleActivityTask`, …
    pub action: String,
    pub resource: String,
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    /// The statements that allowed it, when the call was allowed and is recorded as such.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<MatchedStatement>,
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
    /// The condition keys the call presented (`[audit] record_context`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<RecordContext>,
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
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `None`: standard output.
    pub path: Option<PathBuf>,
    pub include_allowed: bool,
    pub fsync: Fsync,
    /// Records of unauthenticated refusals per source address and second (`flood`).
    pub unauthenticated_per_second: u32,
    /// Signed checkpoints (`[audit] signing_key_file`); `None`: the chain alone.
    pub checkpoints: Option<Checkpoints>,
    /// Records carry the call's condition keys (`context`).
    pub record_context: bool,
}

/// When and how checkpoints are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoints {
    pub key: Arc<checkpoint::SigningKey>,
    /// Lines between two checkpoints (`checkpoint_every`).
    pub every: u64,
    /// The longest a line waits for a checkpoint (`checkpoint_seconds`).
    pub interval: Duration,
    /// Where the newest checkpoint is also written (`checkpoint_path`).
    pub path: Option<PathBuf>,
}

/// `checkpoint_every` and `checkpoint_seconds` when not given.
pub const CHECKPOINT_EVERY: u64 = 1000;
pub const CHECKPOINT_SECONDS: u64 = 60;

enum Sink {
    /// Shared so that a flush can run outside the lock while writers go on appending.
    File(Arc<File>),
    Stdout,
}

struct Inner {
    sink: Sink,
    settings: Settings,
    dirty: bool,
    /// Where the chain stands: the last line written.
    chain: chain::State,
    /// The file's length after the last whole line: a failed write is cut back to it.
    len: u64,
    /// Lines since the last checkpoint, and when that was.
    since_checkpoint: u64,
    checkpointed_at: Instant,
    /// The newest checkpoint line (`GET /audit/checkpoint`).
    newest_checkpoint: Option<Arc<[u8]>>,
}

/// The audit log writer, shared by all requests and kept across configuration reloads.
pub struct AuditLog {
    inner: Mutex<Inner>,
    include_allowed: AtomicBool,
    record_context: AtomicBool,
    healthy: AtomicBool,
    gate: flood::FloodGate,
}

/// The sink at `path`, and the chain it goes on with: its last whole line's (after closing a
/// torn one), or, for an empty file, the state saved beside it when it was rotated away, or a
/// new log.
fn open_sink(
    path: Option<&Path>,
    chain: Option<&chain::State>,
) -> io::Result<(Sink, chain::State, u64, bool)> {
    let Some(path) = path else {
        let state = chain.cloned().unwrap_or_else(new_log);
        return Ok((Sink::Stdout, state, 0, false));
    };
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let tail = chain::recover(&mut file)?;
    let saved = || chain::State::load(&chain::State::path_for(path));
    let (state, torn) = match (tail, chain) {
        // Reopened in the same process (rotation): the chain in hand goes on.
        (None, Some(state)) => (state.clone(), false),
        (None, None) => (saved()?.unwrap_or_else(new_log), false),
        (Some(tail), _) if tail.unchained => {
            tracing::warn!(
                path = %path.display(),
                "the audit file holds lines of no chain (written before the chain existed, or not by swf-warden): a new log starts after them; rotate the file to keep them apart"
            );
            (new_log(), tail.torn)
        }
        (Some(tail), _) => {
            let log = match tail.log.clone() {
                Some(log) => log,
                None => saved()?.map(|s| s.log).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "`{}` names no log and `{}` is missing: the chain cannot go on",
                            path.display(),
                            chain::State::path_for(path).display()
                        ),
                    )
                })?,
            };
            (
                chain::State {
                    log,
                    seq: tail.seq,
                    hash: tail.hash.clone(),
                },
                tail.torn,
            )
        }
    };
    let len = file.seek(io::SeekFrom::End(0))?;
    Ok((Sink::File(Arc::new(file)), state, len, torn))
}

fn new_log() -> chain::State {
    chain::State::genesis(uuid::Uuid::new_v4().hyphenated().to_string())
}

impl AuditLog {
    /// Opens the log for appending (creating the file), going on with its chain.
    pub fn open(settings: Settings) -> io::Result<AuditLog> {
        let (sink, chain, len, torn) = open_sink(settings.path.as_deref(), None)?;
        if torn {
            tracing::warn!(
                "the audit log ended in a torn line (the process was killed while writing it): closed with a newline; the chain goes on from the line before it"
            );
        }
        let log = AuditLog {
            include_allowed: AtomicBool::new(settings.include_allowed),
            record_context: AtomicBool::new(settings.record_context),
            gate: flood::FloodGate::new(settings.unauthenticated_per_second),
            inner: Mutex::new(Inner {
                sink,
                settings,
                dirty: false,
                chain,
                len,
                since_checkpoint: 0,
                checkpointed_at: Instant::now(),
                newest_checkpoint: None,
            }),
            healthy: AtomicBool::new(true),
        };
        log.lock().save_state();
        Ok(log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies new settings (on reload); reopens only when the path changed (the chain goes
    /// on in the new file).
    pub fn reconfigure(&self, settings: Settings) -> io::Result<()> {
        let mut inner = self.lock();
        if inner.settings.path != settings.path {
            let _ = inner.file().map(|f| f.sync_data());
            inner.reopen_at(settings.path.as_deref())?;
        }
        self.include_allowed
            .store(settings.include_allowed, Relaxed);
        self.record_context.store(settings.record_context, Relaxed);
        self.gate
            .set_per_second(settings.unauthenticated_per_second);
        inner.settings = settings;
        Ok(())
    }

    /// Reopens the file at the same path (after logrotate moved it away: SIGUSR1); the
    /// chain goes on into it.
    pub fn reopen(&self) -> io::Result<()> {
        let mut inner = self.lock();
        let _ = inner.file().map(|f| f.sync_data());
        let path = inner.settings.path.clone();
        inner.reopen_at(path.as_deref())?;
        self.healthy.store(true, Relaxed);
        Ok(())
    }

    /// Whether allowed calls are recorded too.
    pub fn include_allowed(&self) -> bool {
        self.include_allowed.load(Relaxed)
    }

    /// Whether records carry the call's condition keys.
    pub fn record_context(&self) -> bool {
        self.record_context.load(Relaxed)
    }

    /// False after a write failed, until one succeeds again.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Relaxed)
    }

    /// Writes one record as one line, with a single write under the lock. In `always` mode
    /// the record is on disk when this returns; the flush runs outside the lock, so concurrent
    /// writers are not queued behind one another's flushes.
    pub fn write(&self, record: &Record) -> io::Result<()> {
        let fields = serde_json::to_vec(record).map_err(io::Error::other)?;
        let result = self.append(&fields).and_then(|flush| match flush {
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

    /// Appends the serialized record `fields`, chained (and a checkpoint when one is due);
    /// returns the file to flush now in `always` mode.
    fn append(&self, fields: &[u8]) -> io::Result<Option<Arc<File>>> {
        let mut inner = self.lock();
        inner.append_chained(fields)?;
        if let Some(every) = inner.settings.checkpoints.as_ref().map(|c| c.every) {
            if inner.since_checkpoint >= every {
                inner.checkpoint()?;
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

    /// Writes a checkpoint if lines were written since the last one and it is due: `now`
    /// (at shutdown), or once `checkpoint_seconds` have passed (once a second, by the
    /// lifecycle task). Without a signing key, only the chain's state is saved.
    pub fn checkpoint_if_due(&self, now: bool) -> io::Result<()> {
        let mut inner = self.lock();
        let Some(interval) = inner.settings.checkpoints.as_ref().map(|c| c.interval) else {
            if now {
                inner.save_state();
            }
            return Ok(());
        };
        if inner.since_checkpoint > 0 && (now || inner.checkpointed_at.elapsed() >= interval) {
            inner.checkpoint()?;
        }
        Ok(())
    }

    /// The newest checkpoint line written, if any.
    pub fn newest_checkpoint(&self) -> Option<Arc<[u8]>> {
        self.lock().newest_checkpoint.clone()
    }

    /// Where the chain stands (`seq` and `prev` of the next line follow from it).
    pub fn chain_state(&self) -> chain::State {
        self.lock().chain.clone()
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
        context: None,
    }
}

impl Inner {
    fn file(&self) -> Option<Arc<File>> {
        match &self.sink {
            Sink::File(f) => Some(f.clone()),
            Sink::Stdout => None,
        }
    }

    /// Writes `fields` (a JSON object) as the chain's next line, in one write; a write that
    /// fails is cut back off the file, and the chain stays where it was. Returns the line
    /// written (without its newline).
    fn append_chained(&mut self, fields: &[u8]) -> io::Result<Vec<u8>> {
        if self.chain.seq == 0 {
            // A new log: its first line names it.
            let first = serde_json::json!({
                "log": {"id": self.chain.log, "started": now_rfc3339()}
            });
            self.append_line(&serde_json::to_vec(&first).map_err(io::Error::other)?)?;
        }
        self.append_line(fields)
    }

    /// Writes `fields` as the chain's next line (see `append_chained`).
    fn append_line(&mut self, fields: &[u8]) -> io::Result<Vec<u8>> {
        let mut line = self.chain.line(fields.get(1..).unwrap_or_default());
        line.push(b'\n');
        match &self.sink {
            Sink::File(f) => {
                if let Err(e) = (&**f).write_all(&line) {
                    // No half line is left for the next one to follow (a full disk).
                    let _ = f.set_len(self.len);
                    return Err(e);
                }
                self.len += line.len() as u64;
            }
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&line).and_then(|()| out.flush())?;
            }
        }
        line.pop();
        self.chain.advance(&line);
        self.since_checkpoint += 1;
        self.dirty = true;
        Ok(line)
    }

    /// Writes a signed checkpoint of everything written so far (with a signing key), copies it
    /// to `checkpoint_path`, and saves the chain's state.
    fn checkpoint(&mut self) -> io::Result<()> {
        let Some(settings) = self.settings.checkpoints.clone() else {
            return Ok(());
        };
        let signed = settings.key.sign(
            &self.chain.log,
            self.chain.seq,
            &self.chain.hash,
            now_rfc3339(),
        );
        let fields = serde_json::to_vec(&serde_json::json!({ "checkpoint": signed }))
            .map_err(io::Error::other)?;
        let line: Arc<[u8]> = self.append_chained(&fields)?.into();
        self.newest_checkpoint = Some(line.clone());
        self.since_checkpoint = 0;
        self.checkpointed_at = Instant::now();
        if let Some(path) = &settings.path {
            if let Err(e) = write_atomically(path, &line) {
                tracing::warn!(path = %path.display(), error = %e, "could not copy the newest audit checkpoint");
            }
        }
        self.save_state();
        Ok(())
    }

    /// Opens the log at `path` (rotation, or another path), the chain going on into it.
    fn reopen_at(&mut self, path: Option<&Path>) -> io::Result<()> {
        self.save_state();
        let (sink, chain, len, _) = open_sink(path, Some(&self.chain))?;
        self.sink = sink;
        self.chain = chain;
        self.len = len;
        Ok(())
    }

    /// Saves where the chain stands beside the file, for a restart on an empty (rotated)
    /// file; a failure is logged, not fatal (the file itself says where a non-empty log is).
    fn save_state(&self) {
        if let Some(path) = &self.settings.path {
            if let Err(e) = self.chain.save(&chain::State::path_for(path)) {
                tracing::warn!(error = %e, "could not save the audit chain's state");
            }
        }
    }
}

/// Writes `line` and a newline to `path` through a temporary file renamed over it.
fn write_atomically(path: &Path, line: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(line)?;
    file.write_all(b"\n")?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)
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
            context: None,
        }
    }

    fn settings(path: &Path, fsync: Fsync) -> Settings {
        Settings {
            path: Some(path.to_owned()),
            include_allowed: false,
            fsync,
            unauthenticated_per_second: flood::DEFAULT_PER_SECOND,
            checkpoints: None,
            record_context: true,
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
            3,
            "the log's first line and the records before the reopen go to the moved file"
        );
        assert_eq!(fresh.lines().count(), 1);
        assert!(fresh.contains("\"requestId\":\"3\""));
        // The chain goes on into the new file.
        assert!(fresh.starts_with("{\"seq\":4,\"prev\":"), "{fresh}");
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
            checkpoints: None,
            record_context: true,
        })
        .unwrap();
        log.write(&record("2")).unwrap();
        log.sync().unwrap();
        assert!(log.include_allowed());
        assert_eq!(std::fs::read_to_string(&a).unwrap().lines().count(), 2);
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
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 1600, "and the log's first line");
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
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r.get("decision").is_some())
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
