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
/// carries its `request_id`).
pub fn log(line: &Line<'_>) {
    tracing::info!(
        target: "swf_warden::access",
        request_id = %line.request_id,
        principal = %line.principal.unwrap_or("-"),
        operation = %line.operation.unwrap_or("-"),
        resource = %line.resource.unwrap_or("-"),
        decision = %line.decision.as_str(),
        status = line.status,
        upstream_ms = %Millis(line.upstream_time),
        proxy_ms = %Millis(line.proxy_time),
        "call"
    );
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
    fn milliseconds_keep_microseconds() {
        assert_eq!(Millis(Duration::from_micros(1_234)).to_string(), "1.234");
        assert_eq!(Millis(Duration::ZERO).to_string(), "0.000");
    }
}
