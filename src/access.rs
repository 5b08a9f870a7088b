//! The access log: one line per call at `info` (`[log] access`, on by default), in the process
//! log, with the words the audit log uses. It names who called what and how it went, never a
//! secret, a signature or a task token; the audit log stays the record of decisions.

use std::fmt;
use std::time::Duration;

use crate::audit::Outcome;

/// What one access log line says.
pub struct Line<'a> {
    /// The id the client received: the upstream's for a forwarded call (the span carries the
    /// proxy's own).
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
}

/// Writes `line` at `info` under the target `swf_warden::access`, inside the call's span (which
/// carries its `request_id`). Every value is escaped ([`Escaped`]): no request can forge a
/// line, a field or a terminal sequence.
pub fn log(line: &Line<'_>) {
    tracing::info!(
        target: "swf_warden::access",
        request_id = %Escaped(line.request_id),
        principal = %Escaped(line.principal.unwrap_or("-")),
        operation = %line.operation.unwrap_or("-"),
        resource = %Escaped(line.resource.unwrap_or("-")),
        decision = %line.decision.as_str(),
        status = line.status,
        upstream_ms = %Millis(line.upstream_time),
        proxy_ms = %Millis(line.proxy_time),
        "call"
    );
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

    #[test]
    fn milliseconds_keep_microseconds() {
        assert_eq!(Millis(Duration::from_micros(1_234)).to_string(), "1.234");
        assert_eq!(Millis(Duration::ZERO).to_string(), "0.000");
    }
}
