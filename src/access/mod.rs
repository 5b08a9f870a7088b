//! The access log: one line per call at `info` (`[log] access`, on by default), beside the
//! process log on standard error and in its format (text or JSON), with the words the audit
//! log uses. It names who called what and how it went, never a secret, a signature or a task
//! token; the audit log stays the record of decisions.
//!
//! A line is formatted here, on the call's thread, into a reused buffer, and appended whole to
//! [`writer`]'s bounded buffer, which a thread of its own writes out: a call never waits on
//! standard error.

pub mod writer;

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::Outcome;

/// What one access log line says.
pub struct Line<'a> {
    /// The id the client received: the upstream's for a forwarded call.
    pub request_id: &'a str,
    /// `None` before the caller is known (an unauthenticated call).
    pub principal: Option<&'a str>,
    pub operation: Option<&'static str>,
    pub resource: Option<&'a str>,
    pub decision: Outcome,
    pub status: u16,
    /// Time waiting for the upstream (zero when nothing was forwarded).
    pub upstream_time: Duration,
    /// Time spent in the proxy itself.
    pub proxy_time: Duration,
    /// The call's trace, when one is recorded.
    pub trace_id: Option<&'a str>,
}

/// Writes `line` (when the access log is set up and `info` is enabled for the target
/// `swf_warden::access`). Every value is escaped ([`Escaped`], or JSON's escapes with the
/// invisible characters too): no request can forge a line, a field or a terminal sequence.
pub fn log(line: &Line<'_>) {
    let Some(writer) = writer::writer() else {
        return;
    };
    if !tracing::enabled!(target: "swf_warden::access", tracing::Level::INFO) {
        return;
    }
    thread_local! {
        static TEXT: RefCell<String> = RefCell::new(String::with_capacity(512));
    }
    TEXT.with_borrow_mut(|text| {
        text.clear();
        if writer.json {
            json_line(text, line, SystemTime::now());
        } else {
            text_line(text, line, SystemTime::now());
        }
        writer.append(text.as_bytes());
    });
}

/// `2026-12-06T17:22:45.920123Z  INFO swf_warden::access: call request_id=… …`, as the
/// process log's text lines read.
fn text_line(out: &mut String, line: &Line<'_>, now: SystemTime) {
    timestamp(out, now);
    let _ = write!(
        out,
        "  INFO swf_warden::access: call request_id={} principal={} operation={} resource={} decision={} status={} upstream_ms={} proxy_ms={}",
        Escaped(line.request_id),
        Escaped(line.principal.unwrap_or("-")),
        line.operation.unwrap_or("-"),
        Escaped(line.resource.unwrap_or("-")),
        line.decision.as_str(),
        line.status,
        Millis(line.upstream_time),
        Millis(line.proxy_time),
    );
    if let Some(trace_id) = line.trace_id {
        let _ = write!(out, " trace_id={}", Escaped(trace_id));
    }
    out.push('\n');
}

/// The same line as the process log's JSON lines read (`[log] json`).
fn json_line(out: &mut String, line: &Line<'_>, now: SystemTime) {
    out.push_str("{\"timestamp\":\"");
    timestamp(out, now);
    out.push_str("\",\"level\":\"INFO\",\"fields\":{\"message\":\"call\",\"request_id\":");
    json_string(out, line.request_id);
    out.push_str(",\"principal\":");
    json_string(out, line.principal.unwrap_or("-"));
    out.push_str(",\"operation\":");
    json_string(out, line.operation.unwrap_or("-"));
    out.push_str(",\"resource\":");
    json_string(out, line.resource.unwrap_or("-"));
    let _ = write!(
        out,
        ",\"decision\":\"{}\",\"status\":{},\"upstream_ms\":\"{}\",\"proxy_ms\":\"{}\"",
        line.decision.as_str(),
        line.status,
        Millis(line.upstream_time),
        Millis(line.proxy_time)
    );
    if let Some(trace_id) = line.trace_id {
        out.push_str(",\"trace_id\":");
        json_string(out, trace_id);
    }
    out.push_str("},\"target\":\"swf_warden::access\"}\n");
}

/// A JSON string: `"` and `\\` escaped, and every control and invisible character as `\\u`.
fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if invisible(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RFC 3339 UTC with microseconds; the date and time of the current second are formatted once
/// a second per thread.
fn timestamp(out: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() {
            *second = since.as_secs();
            let format =
                time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
            *text = time::OffsetDateTime::from(UNIX_EPOCH + Duration::from_secs(*second))
                .format(&format)
                .unwrap_or_default();
        }
        out.push_str(text);
    });
    let _ = write!(out, ".{:06}Z", since.subsec_micros());
}

/// A value as it goes into a log line: as it is when it holds only visible ASCII other than
/// `"`, `\\` and `=`; otherwise in double quotes, with `"` and `\\` escaped, and control and
/// invisible formatting characters (bidirectional overrides included) written as `\\u{…}`.
pub struct Escaped<'a>(pub &'a str);

impl Escaped<'_> {
    fn plain(&self) -> bool {
        !self.0.is_empty()
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='))
    }
}

/// Characters that change how text reads without showing: controls, and Unicode's
/// formatting characters (bidirectional marks and overrides, zero-width ones).
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain() {
            return f.write_str(self.0);
        }
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if invisible(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        f.write_str("\"")
    }
}

/// Milliseconds with microsecond precision.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.0.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_so_that_no_line_or_field_can_be_forged() {
        let e = |s: &str| Escaped(s).to_string();
        assert_eq!(
            e("arn:aws:swf:us-east-1:1:/domain/a-b_c"),
            "arn:aws:swf:us-east-1:1:/domain/a-b_c"
        );
        assert_eq!(e("a\nINFO forged"), "\"a\\u{a}INFO forged\"");
        assert_eq!(e("x decision=allowed"), "\"x decision=allowed\"");
        assert_eq!(e("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(e("\u{1b}[31mred"), "\"\\u{1b}[31mred\"");
        assert_eq!(e("abc\u{202e}cba"), "\"abc\\u{202e}cba\"");
        assert_eq!(e("été"), "\"été\"");
        assert_eq!(e(""), "\"\"");
        for s in ["a\rb", "\u{7f}", "\u{85}", "\u{2028}"] {
            assert!(!e(s).chars().any(invisible), "{s:?}");
        }
    }

    fn sample<'a>(resource: &'a str, trace_id: Option<&'a str>) -> Line<'a> {
        Line {
            request_id: "3c90f1fe-0000",
            principal: Some("tenant-a-worker"),
            operation: Some("RecordActivityTaskHeartbeat"),
            resource: Some(resource),
            decision: Outcome::Allowed,
            status: 200,
            upstream_time: Duration::from_micros(1_500),
            proxy_time: Duration::from_micros(42),
            trace_id,
        }
    }

    #[test]
    fn text_lines_read_as_the_process_log_does() {
        let at = UNIX_EPOCH + Duration::from_micros(1_796_577_765_920_123);
        let mut out = String::new();
        text_line(&mut out, &sample("arn:x:/domain/a", None), at);
        assert_eq!(
            out,
            "2026-12-06T17:22:45.920123Z  INFO swf_warden::access: call request_id=3c90f1fe-0000 principal=tenant-a-worker operation=RecordActivityTaskHeartbeat resource=arn:x:/domain/a decision=allowed status=200 upstream_ms=1.500 proxy_ms=0.042\n"
        );
        out.clear();
        text_line(
            &mut out,
            &sample("a\nforged", Some("4bf92f3577b34da6a3ce929d0e0e4736")),
            at,
        );
        assert!(
            out.ends_with(" trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"),
            "{out}"
        );
        assert_eq!(out.matches('\n').count(), 1, "{out}");
        // The next second is formatted anew.
        out.clear();
        text_line(&mut out, &sample("r", None), at + Duration::from_secs(1));
        assert!(out.starts_with("2026-12-06T17:22:46.920123Z "), "{out}");
    }

    #[test]
    fn json_lines_are_json_with_every_invisible_character_escaped() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_577_765);
        let mut out = String::new();
        let resource = "q\"\\\u{1b}[31m\u{202e}é\u{1F600}";
        json_line(&mut out, &sample(resource, Some("abc")), at);
        assert!(
            out.ends_with("}\n") && out.matches('\n').count() == 1,
            "{out}"
        );
        assert!(
            !out.contains('\u{1b}') && !out.contains('\u{202e}'),
            "{out}"
        );
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["fields"]["resource"], resource);
        assert_eq!(value["fields"]["status"], 200);
        assert_eq!(value["fields"]["trace_id"], "abc");
        assert_eq!(value["target"], "swf_warden::access");
        assert_eq!(value["timestamp"], "2026-12-06T17:22:45.000000Z");
    }

    #[test]
    fn a_full_buffer_drops_and_counts_lines_and_never_tears_one() {
        let sink = writer::test_writer(false);
        let w = writer::writer().unwrap();
        let line = vec![b'x'; 1000];
        let mut whole = line.clone();
        whole.push(b'\n');
        let before = writer::dropped();
        // Twice the capacity, as fast as it goes: whatever the thread did not write out in
        // time is dropped whole and counted, never lost silently or torn.
        for _ in 0..(2 * writer::CAPACITY / whole.len()) {
            w.append(&whole);
        }
        writer::flush();
        let written = sink.lock().unwrap().clone();
        assert!(written
            .split(|&b| b == b'\n')
            .all(|l| l.is_empty() || l == line.as_slice()));
        let lines = written.iter().filter(|&&b| b == b'\n').count() as u64;
        let dropped = writer::dropped() - before;
        assert_eq!(lines + dropped, (2 * writer::CAPACITY / whole.len()) as u64);
    }

    #[test]
    fn milliseconds_keep_microseconds() {
        assert_eq!(Millis(Duration::from_micros(1_234)).to_string(), "1.234");
        assert_eq!(Millis(Duration::ZERO).to_string(), "0.000");
    }
}
