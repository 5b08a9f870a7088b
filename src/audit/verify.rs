//! Checking an audit log for integrity and completeness (`swf-warden audit verify`, SPEC
//! "Audit integrity"), with the chain's and the checkpoints' own code (`chain`, `checkpoint`).
//!
//! The files are read line by line (streaming: memory does not grow with the log), in the
//! order of their first `seq`, and each line is checked against the one before: `seq` one
//! more, `prev` the SHA-256 of the line before as written; the first line of a log against
//! its genesis; every checkpoint's Ed25519 signature against the public key its `keyId` names;
//! and, given a checkpoint a monitor kept, that the log holds it and goes on to it. The report
//! names the first line that is not intact and how, in the words CloudTrail's
//! `validate-logs` uses: changed, removed, inserted, reordered, a missing file, a checkpoint
//! whose signature fails or whose key is unknown, lines missing after a kept checkpoint. A torn
//! line left by a crash (a prefix of the line being written, closed with a newline on restart,
//! and the next line written again with its `seq`) is reported as such, never as tampering.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use super::chain::{genesis_text, hash_hex};
use super::checkpoint::{Checkpoint, PublicKey};

/// The longest line read.
pub const MAX_LINE: usize = 1024 * 1024;

/// What `verify` is told besides the files.
#[derive(Debug, Default)]
pub struct Options {
    /// Public keys by key id.
    pub keys: HashMap<String, PublicKey>,
    /// A checkpoint line a monitor kept.
    pub monitor: Option<Vec<u8>>,
    /// The `seq` the files given begin at, when the log's first files are gone (expired by
    /// retention); without it the log must begin at its first line.
    pub from: Option<u64>,
}

/// How a log is not intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A line's hash no longer matches the next line's `prev`.
    Changed,
    /// Lines are missing within a file.
    Removed,
    /// A line that the chain does not account for.
    Inserted,
    /// Lines out of their order.
    Reordered,
    /// Lines missing between two files.
    MissingFile,
    /// A checkpoint's signature does not verify.
    BadSignature,
    /// A checkpoint signed with a key that was not given.
    UnknownKey,
    /// The log ends before a checkpoint a monitor kept, or does not hold it as kept.
    Truncated,
    /// The first line does not start a log, or a line is not a chained line at all.
    NotAChain,
}

/// The first line that is not intact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub file: String,
    /// 1-based line number in `file`.
    pub line: u64,
    pub seq: Option<u64>,
    pub kind: Kind,
    pub message: String,
}

/// A torn line left by a crash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Torn {
    pub file: String,
    pub line: u64,
    /// The `seq` that was being written.
    pub seq: u64,
}

/// One file's part of the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    pub file: String,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub lines: u64,
}

/// What `verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub log: Option<String>,
    pub files: Vec<FileReport>,
    /// Chained lines read (records, summaries, checkpoints, the log's first line).
    pub lines: u64,
    pub checkpoints: u64,
    /// The `seq` the last verified checkpoint covers.
    pub signed_through: Option<u64>,
    /// Where the files begin, when that is not the log's first line.
    pub starts_at: Option<u64>,
    pub torn: Vec<Torn>,
    pub failure: Option<Failure>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.failure.is_none()
    }
}

/// The fields of a line the verifier reads.
#[derive(serde::Deserialize)]
struct Head {
    seq: u64,
    prev: String,
    #[serde(default)]
    checkpoint: Option<Checkpoint>,
    #[serde(default)]
    log: Option<LogField>,
}

#[derive(serde::Deserialize)]
struct LogField {
    id: String,
}

/// One line as read: where it is, its bytes (without the newline), and whether a newline
/// ended it.
struct Line {
    file: usize,
    number: u64,
    bytes: Vec<u8>,
    ended: bool,
}

/// Reads the lines of the files in order, one line of lookahead.
struct Lines<'a> {
    inputs: Vec<(String, Box<dyn BufRead + 'a>)>,
    /// The file being read, and its line number.
    file: usize,
    number: u64,
    peeked: Option<Option<Line>>,
    /// A line over [`MAX_LINE`], where.
    too_long: Option<(usize, u64)>,
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        if let Some(peeked) = self.peeked.take() {
            return Ok(peeked);
        }
        while self.file < self.inputs.len() {
            let mut bytes = Vec::new();
            let reader: &mut dyn BufRead = &mut *self.inputs[self.file].1;
            let n = Read::take(reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut bytes)?;
            if n == 0 {
                self.file += 1;
                self.number = 0;
                continue;
            }
            self.number += 1;
            let ended = bytes.last() == Some(&b'\n');
            if ended {
                bytes.pop();
            } else if bytes.len() > MAX_LINE {
                self.too_long = Some((self.file, self.number));
                return Ok(None);
            }
            return Ok(Some(Line {
                file: self.file,
                number: self.number,
                bytes,
                ended,
            }));
        }
        Ok(None)
    }

    fn peek(&mut self) -> std::io::Result<Option<&Line>> {
        if self.peeked.is_none() {
            let line = self.next_line()?;
            self.peeked = Some(line);
        }
        Ok(self.peeked.as_ref().and_then(Option::as_ref))
    }
}

/// The first `seq` of a file's content, if its first line is a chained line.
fn first_seq(first: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Head>(first.split(|&b| b == b'\n').next()?)
        .ok()
        .map(|h| h.seq)
}

/// Verifies the log in `inputs` (name, content), in any order: rotated files are put in the
/// order of their first `seq`.
pub fn verify<'a>(inputs: Vec<(String, Box<dyn BufRead + 'a>)>, options: &Options) -> Report {
    let mut ordered = Vec::with_capacity(inputs.len());
    for (name, mut reader) in inputs {
        // The first line decides the order; it is read again from a buffer.
        let mut first = Vec::new();
        let _ = Read::take(&mut *reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut first);
        let seq = first_seq(&first);
        let replay: Box<dyn BufRead + 'a> =
            Box::new(Read::chain(std::io::Cursor::new(first), reader));
        ordered.push((seq.unwrap_or(u64::MAX), name, replay));
    }
    ordered.sort_by_key(|(seq, _, _)| *seq);
    let mut report = Report {
        files: ordered
            .iter()
            .map(|(_, name, _)| FileReport {
                file: name.clone(),
                first_seq: None,
                last_seq: None,
                lines: 0,
            })
            .collect(),
        ..Report::default()
    };
    let mut lines = Lines {
        inputs: ordered.into_iter().map(|(_, n, r)| (n, r)).collect(),
        file: 0,
        number: 0,
        peeked: None,
        too_long: None,
    };
    let failure = match walk(&mut lines, options, &mut report) {
        Ok(failure) => failure,
        Err(e) => Some(Failure {
            file: lines
                .inputs
                .get(lines.file)
                .map_or_else(String::new, |(n, _)| n.clone()),
            line: lines.number,
            seq: None,
            kind: Kind::NotAChain,
            message: format!("could not be read: {e}"),
        }),
    };
    report.failure = failure;
    report
}

/// The chain as checked so far.
struct Expect {
    seq: u64,
    /// The hash of the last line, and where that line is.
    hash: String,
    at: (usize, u64),
}

fn walk(
    lines: &mut Lines<'_>,
    options: &Options,
    report: &mut Report,
) -> std::io::Result<Option<Failure>> {
    let monitor = match options.monitor.as_deref().map(monitor_checkpoint) {
        Some(Ok(kept)) => Some(kept),
        Some(Err(message)) => {
            return Ok(Some(Failure {
                file: "--checkpoint".into(),
                line: 1,
                seq: None,
                kind: Kind::Truncated,
                message,
            }))
        }
        None => None,
    };
    let name = |lines: &Lines<'_>, file: usize| lines.inputs[file].0.clone();
    let mut expect: Option<Expect> = None;
    loop {
        let Some(line) = lines.next_line()? else {
            if let Some((file, number)) = lines.too_long {
                return Ok(Some(Failure {
                    file: name(lines, file),
                    line: number,
                    seq: expect.as_ref().map(|e| e.seq + 1),
                    kind: Kind::NotAChain,
                    message: format!(
                        "a line longer than {MAX_LINE} bytes: not a line this proxy writes"
                    ),
                }));
            }
            break;
        };
        let at = (line.file, line.number);
        let head = serde_json::from_slice::<Head>(&line.bytes).ok();
        let Some(head) = head else {
            // Not a whole chained line: a crash's torn line, or something that has no
            // place in the log.
            let Some(e) = &expect else {
                return Ok(failure(
                    lines,
                    at,
                    Kind::NotAChain,
                    None,
                    "not a line of a chained audit log (no `seq` and `prev`)".into(),
                ));
            };
            let written = format!("{{\"seq\":{},\"prev\":\"{}\",", e.seq + 1, e.hash);
            let prefix = line.bytes.len() <= written.len()
                && written.as_bytes().starts_with(&line.bytes)
                || line.bytes.starts_with(written.as_bytes());
            let continued = match lines.peek()? {
                // The line was written again after the restart.
                Some(next) => serde_json::from_slice::<Head>(&next.bytes)
                    .is_ok_and(|n| n.seq == e.seq + 1 && n.prev == e.hash),
                // The crash was the end: nothing after it yet.
                None => true,
            };
            if prefix && continued && !line.bytes.is_empty() {
                report.torn.push(Torn {
                    file: name(lines, line.file),
                    line: line.number,
                    seq: e.seq + 1,
                });
                continue;
            }
            return Ok(failure(
                lines,
                at,
                Kind::Inserted,
                None,
                format!(
                    "inserted: a line that is no chained line of this log, where seq {} was due",
                    e.seq + 1
                ),
            ));
        };
        if !line.ended && lines.peek()?.is_some() {
            return Ok(failure(
                lines,
                at,
                Kind::NotAChain,
                Some(head.seq),
                "a line without its newline in the middle of the log".into(),
            ));
        }
        let hash = hash_hex(&line.bytes);
        match &expect {
            None => {
                if head.seq == 1 {
                    let Some(log) = &head.log else {
                        return Ok(failure(
                            lines,
                            at,
                            Kind::NotAChain,
                            Some(1),
                            "the first line does not name its log: not the start of a log".into(),
                        ));
                    };
                    if head.prev != hash_hex(genesis_text(&log.id).as_bytes()) {
                        return Ok(failure(
                            lines,
                            at,
                            Kind::Changed,
                            Some(1),
                            format!(
                                "changed: the first line's prev is not the genesis hash of log {}",
                                log.id
                            ),
                        ));
                    }
                    report.log = Some(log.id.clone());
                } else if options.from == Some(head.seq) {
                    report.starts_at = Some(head.seq);
                } else {
                    let said = options.from.map_or(String::new(), |from| {
                        format!(", not at seq {from} as said (--from)")
                    });
                    return Ok(failure(lines, at, Kind::Removed, Some(head.seq), format!("removed: the log's first lines are missing: it begins at seq {}{said} (if older files expired, say where the files begin: --from {})", head.seq, head.seq)));
                }
            }
            Some(e) => {
                let due = e.seq + 1;
                let new_file = line.file != e.at.0;
                if head.seq > due {
                    let next_is_due = lines
                        .peek()?
                        .and_then(|n| serde_json::from_slice::<Head>(&n.bytes).ok())
                        .is_some_and(|n| n.seq == due);
                    let (kind, what) = if next_is_due {
                        (
                            Kind::Reordered,
                            format!("reordered: seq {} comes before seq {due}", head.seq),
                        )
                    } else if new_file {
                        (
                            Kind::MissingFile,
                            format!(
                                "a file is missing: seq {due} to {} are in none of the files given (between {} and {})",
                                head.seq - 1,
                                name(lines, e.at.0),
                                name(lines, line.file)
                            ),
                        )
                    } else if head.seq - 1 == due {
                        (
                            Kind::Removed,
                            format!("removed: the line with seq {due} is missing before this one"),
                        )
                    } else {
                        (Kind::Removed, format!("removed: the lines with seq {due} to {} are missing before this one", head.seq - 1))
                    };
                    return Ok(failure(lines, at, kind, Some(head.seq), what));
                }
                if head.seq < due {
                    let kind = if head.seq + 1 == due && head.prev != e.hash {
                        Kind::Inserted
                    } else {
                        Kind::Reordered
                    };
                    let what = match kind {
                        Kind::Inserted => format!("inserted: a second line with seq {} (a line the chain does not account for)", head.seq),
                        _ => format!("reordered: seq {} comes after seq {}", head.seq, e.seq),
                    };
                    return Ok(failure(lines, at, kind, Some(head.seq), what));
                }
                if head.prev != e.hash {
                    // The line before was changed (or this one's `prev` was).
                    let (file, number) = e.at;
                    return Ok(Some(Failure {
                        file: name(lines, file),
                        line: number,
                        seq: Some(e.seq),
                        kind: Kind::Changed,
                        message: format!(
                            "changed: the line with seq {} no longer hashes to the prev of the line after it (seq {due}, {} line {})",
                            e.seq,
                            name(lines, line.file),
                            line.number
                        ),
                    }));
                }
            }
        }
        if let Some(checkpoint) = &head.checkpoint {
            report.checkpoints += 1;
            if checkpoint.covers + 1 != head.seq {
                return Ok(failure(
                    lines,
                    at,
                    Kind::BadSignature,
                    Some(head.seq),
                    format!(
                        "the checkpoint at seq {} says it covers seq {}: not the line before it",
                        head.seq, checkpoint.covers
                    ),
                ));
            }
            if report
                .log
                .as_ref()
                .is_some_and(|log| *log != checkpoint.log)
            {
                return Ok(failure(
                    lines,
                    at,
                    Kind::NotAChain,
                    Some(head.seq),
                    format!(
                        "the checkpoint at seq {} belongs to another log ({})",
                        head.seq, checkpoint.log
                    ),
                ));
            }
            let Some(key) = options.keys.get(&checkpoint.key_id) else {
                return Ok(failure(lines, at, Kind::UnknownKey, Some(head.seq), format!("the checkpoint at seq {} is signed with key `{}`, which was not given (--public-key {}=FILE): it cannot be verified", head.seq, checkpoint.key_id, checkpoint.key_id)));
            };
            if !key.verifies(checkpoint, &head.prev) {
                return Ok(failure(lines, at, Kind::BadSignature, Some(head.seq), format!("the checkpoint at seq {} does not verify with key `{}`: the lines it covers, or the checkpoint itself, were changed", head.seq, checkpoint.key_id)));
            }
            report.log.get_or_insert_with(|| checkpoint.log.clone());
            report.signed_through = Some(checkpoint.covers);
        }
        if let Some((kept_seq, kept)) = &monitor {
            if head.seq == *kept_seq && line.bytes != *kept {
                return Ok(failure(lines, at, Kind::Truncated, Some(head.seq), format!("the checkpoint a monitor kept (seq {kept_seq}) is not in the log as kept: this line is not it")));
            }
        }
        let file = &mut report.files[line.file];
        file.first_seq.get_or_insert(head.seq);
        file.last_seq = Some(head.seq);
        file.lines += 1;
        report.lines += 1;
        expect = Some(Expect {
            seq: head.seq,
            hash,
            at: (line.file, line.number),
        });
    }
    if let Some((kept_seq, _)) = &monitor {
        let last = expect.as_ref().map_or(0, |e| e.seq);
        if last < *kept_seq {
            let file = lines.inputs.len().saturating_sub(1);
            return Ok(Some(Failure {
                file: lines.inputs.get(file).map_or_else(String::new, |(n, _)| n.clone()),
                line: report.files.get(file).map_or(0, |f| f.lines),
                seq: Some(last),
                kind: Kind::Truncated,
                message: format!("lines missing after the checkpoint a monitor kept: the log ends at seq {last}, the kept checkpoint is seq {kept_seq}"),
            }));
        }
    }
    Ok(None)
}

/// A failure at line `at` (file index, line number).
fn failure(
    lines: &Lines<'_>,
    at: (usize, u64),
    kind: Kind,
    seq: Option<u64>,
    message: String,
) -> Option<Failure> {
    Some(Failure {
        file: lines.inputs[at.0].0.clone(),
        line: at.1,
        seq,
        kind,
        message,
    })
}

/// The `seq` and bytes of a kept checkpoint line (`--checkpoint FILE`).
fn monitor_checkpoint(text: &[u8]) -> Result<(u64, Vec<u8>), String> {
    let line = text.strip_suffix(b"\n").unwrap_or(text);
    let head: Head = serde_json::from_slice(line)
        .map_err(|_| "the checkpoint given (--checkpoint) is not a checkpoint line".to_owned())?;
    if head.checkpoint.is_none() {
        return Err("the line given with --checkpoint is not a checkpoint".into());
    }
    Ok((head.seq, line.to_vec()))
}

impl Report {
    /// The report in words.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let log = self
            .log
            .as_deref()
            .unwrap_or("(not named in the lines read)");
        out.push_str(&format!(
            "log {log}: {} lines in {} file(s)\n",
            self.lines,
            self.files.len()
        ));
        for f in &self.files {
            match (f.first_seq, f.last_seq) {
                (Some(a), Some(b)) => out.push_str(&format!(
                    "  {}: seq {a} to {b} ({} lines)\n",
                    f.file, f.lines
                )),
                _ => out.push_str(&format!("  {}: no chained line\n", f.file)),
            }
        }
        if let Some(seq) = self.starts_at {
            out.push_str(&format!(
                "the files begin at seq {seq} (--from): lines before it were not checked\n"
            ));
        }
        match self.signed_through {
            Some(covers) => out.push_str(&format!("{} signed checkpoint(s) verified; the last covers seq {covers}\n", self.checkpoints)),
            None if self.checkpoints == 0 => out.push_str("no signed checkpoint: the chain alone vouches for the lines (a log cut short, or recomputed, needs checkpoints and a monitor to be caught)\n"),
            None => {}
        }
        for t in &self.torn {
            out.push_str(&format!("torn line left by a crash: {} line {} (seq {} was being written); the chain goes on from the line before it: not tampering\n", t.file, t.line, t.seq));
        }
        match &self.failure {
            None => out.push_str("intact\n"),
            Some(f) => {
                let seq = f.seq.map_or(String::new(), |s| format!(" (seq {s})"));
                out.push_str(&format!(
                    "INVALID: {} line {}{seq}: {}\n",
                    f.file, f.line, f.message
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
