//! The audit log's hash chain (SPEC, "Audit integrity"): every line carries `seq` (1, 2, 3, …
//! for the life of the log, across restarts and rotations) and `prev`, the lowercase hex
//! SHA-256 of the previous line's bytes as written, without its newline. The first line of a
//! log names the log (`{"seq":1,"prev":…,"log":{"id":…,"started":…}}`), and its `prev` is the
//! SHA-256 of `swf-warden audit genesis <log id>`, so anyone can check the chain with
//! standard tools.
//!
//! Where a log goes on from: its file's last whole line (after a crash, a torn last line is
//! closed with a newline and left out of the chain), or, when the file is empty (rotated
//! away), the chain's state file beside it (`<path>.chain`), written whenever the file is
//! reopened, at every checkpoint and at shutdown.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The text whose SHA-256 is the first line's `prev`.
pub fn genesis_text(log_id: &str) -> String {
    format!("swf-warden audit genesis {log_id}")
}

/// Lowercase hex SHA-256.
pub fn hash_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    hash_into(bytes, &mut out);
    out
}

/// The lowercase hex SHA-256 of `bytes`, written over `out` (no allocation once `out` has room:
/// the chain does this for every line).
fn hash_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut text = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        text[2 * i] = DIGITS[usize::from(b >> 4)];
        text[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    out.clear();
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// Where the chain stands: the log, the last line's `seq` and its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub log: String,
    pub seq: u64,
    /// Lowercase hex SHA-256 of the last line written.
    pub hash: String,
}

impl State {
    /// A new log, before its first line.
    pub fn genesis(log: String) -> State {
        let hash = hash_hex(genesis_text(&log).as_bytes());
        State { log, seq: 0, hash }
    }

    /// The next line: `{"seq":…,"prev":…,` then `fields` (a JSON object's members without
    /// its opening brace, e.g. a serialized record with its first byte cut). The chain moves
    /// on only once the line is written ([`State::advance`]).
    pub fn line(&self, fields: &[u8]) -> Vec<u8> {
        let mut line = Vec::with_capacity(fields.len() + 100);
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(itoa::Buffer::new().format(self.seq + 1).as_bytes());
        line.extend_from_slice(b",\"prev\":\"");
        line.extend_from_slice(self.hash.as_bytes());
        line.extend_from_slice(b"\",");
        line.extend_from_slice(fields);
        line
    }

    /// The next line, and the chain moved on past it (tests, tools).
    pub fn chain(&mut self, fields: &[u8]) -> Vec<u8> {
        let line = self.line(fields);
        self.advance(&line);
        line
    }

    /// The chain after `line` (without its newline) was written.
    pub fn advance(&mut self, line: &[u8]) {
        self.seq += 1;
        hash_into(line, &mut self.hash);
    }

    /// The state file beside an audit file.
    pub fn path_for(audit: &Path) -> PathBuf {
        let mut name = audit.as_os_str().to_owned();
        name.push(".chain");
        PathBuf::from(name)
    }

    pub fn load(path: &Path) -> io::Result<Option<State>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the state file (a temporary file renamed over it: never half written).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(self).map_err(io::Error::other)?)?;
        file.sync_data()?;
        std::fs::rename(&tmp, path)
    }
}

/// The fields of a line the chain reads: its `seq`, and the log a first line names.
#[derive(serde::Deserialize)]
struct Head {
    seq: u64,
    #[serde(default)]
    log: Option<LogField>,
    #[serde(default)]
    checkpoint: Option<LogRef>,
}

#[derive(serde::Deserialize)]
struct LogField {
    id: String,
}

#[derive(serde::Deserialize)]
struct LogRef {
    log: String,
}

/// What the end of an existing audit file says.
#[derive(Debug, PartialEq, Eq)]
pub struct Tail {
    /// The last whole line's `seq` and hash.
    pub seq: u64,
    pub hash: String,
    /// The log, if a line read names it (the first line, or a checkpoint).
    pub log: Option<String>,
    /// Whether the file ended in a torn line (closed with a newline by [`recover`]).
    pub torn: bool,
    /// Whether the file holds no chained line (written before the chain, or not by this
    /// proxy): a new log starts after its lines.
    pub unchained: bool,
}

/// The largest last line looked for at the end of a file.
const MAX_TAIL: u64 = 4 * 1024 * 1024;

/// Reads the end of the audit file `file`: its last whole chained line, closing a torn last
/// line with a newline first. `None` for an empty file.
pub fn recover(file: &mut File) -> io::Result<Option<Tail>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(MAX_TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut tail)?;
    let mut torn = tail.last() != Some(&b'\n');
    if torn {
        file.write_all(b"\n")?;
        // A line written whole but for its newline is whole: the chain counts it.
        let start = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        torn = serde_json::from_slice::<Head>(&tail[start..]).is_err();
    }
    // The whole lines at the end: the last one (before a torn one) is where the chain stands.
    let body = if torn {
        &tail[..tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)]
    } else {
        &tail[..]
    };
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    // The newest chained line: lines after it are torn lines earlier crashes left (closed).
    let Some((last, head)) = lines.iter().rev().find_map(|line| {
        serde_json::from_slice::<Head>(line)
            .ok()
            .map(|head| (*line, head))
    }) else {
        return Ok(Some(Tail {
            seq: 0,
            hash: String::new(),
            log: None,
            torn,
            unchained: true,
        }));
    };
    // The log this file belongs to, from the newest line that names it.
    let log = lines.iter().rev().find_map(|line| {
        let head: Head = serde_json::from_slice(line).ok()?;
        head.log.map(|l| l.id).or(head.checkpoint.map(|c| c.log))
    });
    Ok(Some(Tail {
        seq: head.seq,
        hash: hash_hex(last),
        log,
        torn,
        unchained: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_chain_on_the_hash_of_the_line_before() {
        let mut state = State::genesis("log-1".into());
        assert_eq!(state.hash, hash_hex(b"swf-warden audit genesis log-1"));
        let first = state.chain(br#""a":1}"#);
        let expected = format!(
            r#"{{"seq":1,"prev":"{}","a":1}}"#,
            hash_hex(b"swf-warden audit genesis log-1")
        );
        assert_eq!(String::from_utf8(first.clone()).unwrap(), expected);
        let second = state.chain(br#""b":2}"#);
        assert!(String::from_utf8(second.clone())
            .unwrap()
            .starts_with(&format!(r#"{{"seq":2,"prev":"{}","#, hash_hex(&first))));
        assert_eq!((state.seq, state.hash), (2, hash_hex(&second)));
    }

    #[test]
    fn a_torn_last_line_is_closed_and_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut state = State::genesis("log-1".into());
        let one = state.chain(br#""log":{"id":"log-1"}}"#);
        let two = state.chain(br#""a":1}"#);
        let mut text = [one.clone(), two.clone()].join(&b'\n');
        text.extend_from_slice(b"\n{\"seq\":3,\"pr");
        std::fs::write(&path, &text).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let tail = recover(&mut file).unwrap().unwrap();
        assert_eq!(
            tail,
            Tail {
                seq: 2,
                hash: hash_hex(&two),
                log: Some("log-1".into()),
                torn: true,
                unchained: false
            }
        );
        assert!(std::fs::read(&path)
            .unwrap()
            .ends_with(b"{\"seq\":3,\"pr\n"));
        // Closed now: read again, nothing is torn, and the closed torn line is passed over.
        let again = recover(&mut file).unwrap().unwrap();
        assert_eq!((again.seq, again.torn), (2, false));
        // A line written whole but for its newline is whole.
        let mut text = [one.clone(), two.clone()].join(&b'\n');
        text.push(b'\n');
        let three = state.chain(br#""a":3}"#);
        text.extend_from_slice(&three);
        std::fs::write(&path, &text).unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let tail = recover(&mut file).unwrap().unwrap();
        assert_eq!((tail.seq, tail.torn), (3, false));
        // Lines of no chain: a new log starts after them.
        std::fs::write(&path, b"{\"eventTime\":\"t\"}\n").unwrap();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        assert!(recover(&mut file).unwrap().unwrap().unchained);
        let empty = dir.path().join("empty.log");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            recover(
                &mut File::options()
                    .read(true)
                    .append(true)
                    .open(&empty)
                    .unwrap()
            )
            .unwrap(),
            None
        );
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = State::path_for(&dir.path().join("audit.log"));
        assert!(path.ends_with("audit.log.chain"));
        assert_eq!(State::load(&path).unwrap(), None);
        let state = State {
            log: "l".into(),
            seq: 7,
            hash: "ab".into(),
        };
        state.save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), Some(state));
    }
}
