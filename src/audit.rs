//! The audit log (SPEC, "Audit log"): JSON Lines, one record per refused call (and per
//! allowed call with `include_allowed`).
//!
//! Each record is serialized whole, then written with a single `write_all` under a lock on a
//! file opened for appending, so lines never interleave or tear between writers. Records hold
//! no secrets, signatures, bodies or whole task tokens; only what `Record` names.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

/// The audit `decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
    WouldDeny,
    AuthFailed,
    InvalidRequest,
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

enum Sink {
    File(File),
    Stdout,
}

/// The audit log writer, shared by all requests.
pub struct AuditLog {
    sink: Mutex<Sink>,
    include_allowed: bool,
}

impl AuditLog {
    /// Opens `path` for appending (creating it), or standard output when `path` is `None`.
    pub fn open(path: Option<&Path>, include_allowed: bool) -> io::Result<AuditLog> {
        let sink = match path {
            Some(p) => Sink::File(OpenOptions::new().create(true).append(true).open(p)?),
            None => Sink::Stdout,
        };
        Ok(AuditLog {
            sink: Mutex::new(sink),
            include_allowed,
        })
    }

    /// Whether allowed calls are recorded too.
    pub fn include_allowed(&self) -> bool {
        self.include_allowed
    }

    /// Writes one record as one line.
    pub fn write(&self, record: &Record) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::File(f) => f.write_all(&line),
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&line)?;
                out.flush()
            }
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
        }
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
        let log = std::sync::Arc::new(AuditLog::open(Some(&path), false).unwrap());
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
}
