//! Prometheus metrics, kept in atomics (no locks on the request path) and rendered in the
//! text exposition format by the admin listener's `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::Outcome;
use crate::swf::Operation;

const OUTCOMES: [Outcome; 8] = [
    Outcome::Allowed,
    Outcome::ExplicitDeny,
    Outcome::ImplicitDeny,
    Outcome::WouldDeny,
    Outcome::AuthFailed,
    Outcome::InvalidRequest,
    Outcome::Throttled,
    Outcome::Issued,
];

/// Where `o` is counted: every decision its own (a new one fails to compile here).
fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Allowed => 0,
        Outcome::ExplicitDeny => 1,
        Outcome::ImplicitDeny => 2,
        Outcome::WouldDeny => 3,
        Outcome::AuthFailed => 4,
        Outcome::InvalidRequest => 5,
        Outcome::Throttled => 6,
        Outcome::Issued => 7,
    }
}

/// Authentication failures by error name.
pub const AUTH_ERRORS: [&str; 4] = [
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "UnrecognizedClientException",
];

/// Why the server closed a client connection (or turned one away) before its client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// No complete request head in time (`header_read_timeout_seconds`).
    HeaderTimeout,
    /// No call in flight for `idle_timeout_seconds`.
    Idle,
    /// An answer the client did not take (`write_timeout_seconds`).
    WriteTimeout,
    /// Turned away at accept: its address was at `max_connections_per_ip`.
    PerIpLimit,
    /// Idle while fewer than a tenth of the slots were free: it yielded to a new connection.
    Pressure,
}

impl Closed {
    const ALL: [Closed; 5] = [
        Closed::HeaderTimeout,
        Closed::Idle,
        Closed::WriteTimeout,
        Closed::PerIpLimit,
        Closed::Pressure,
    ];

    fn name(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::Idle => "idle_timeout",
            Closed::WriteTimeout => "write_timeout",
            Closed::PerIpLimit => "per_ip_limit",
            Closed::Pressure => "pressure",
        }
    }
}

/// Histogram bucket bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0, 70.0,
];

/// A latency histogram.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_nanos.load(Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the proxy exports.
pub struct Metrics {
    /// `[operation or "unknown"][outcome]`.
    requests: Vec<[AtomicU64; OUTCOMES.len()]>,
    /// Calls by principal and outcome; each generation holds its principals' counters.
    principals: Mutex<BTreeMap<String, Arc<PrincipalCounters>>>,
    /// Throttled calls by (principal, quota).
    throttled: Mutex<BTreeMap<(String, String), Arc<AtomicU64>>>,
    auth_failures: [AtomicU64; 4],
    pub proxy_time: Histogram,
    pub upstream_time: Histogram,
    upstream_errors: AtomicU64,
    in_flight: AtomicI64,
    audit_records: AtomicU64,
    audit_suppressed: AtomicU64,
    audit_failures: AtomicU64,
    token_failures: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_reload_ok: AtomicU64,
    last_reload_time: AtomicU64,
    connections: AtomicI64,
    /// The proxy listener's `max_connections`, for "slots near full".
    max_connections: AtomicI64,
    closed: [AtomicU64; Closed::ALL.len()],
    capacity_refusals: AtomicU64,
    /// Lease requests to the Redis quota store, and those that failed or timed out.
    pub quota_store: crate::quota::redis::StoreCounters,
    /// Refresh failures and the expiry of the upstream credentials.
    pub upstream_credentials: Arc<crate::credentials::Counters>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..=Operation::ALL.len())
                .map(|_| Default::default())
                .collect(),
            auth_failures: Default::default(),
            principals: Mutex::default(),
            throttled: Mutex::default(),
            proxy_time: Histogram::default(),
            upstream_time: Histogram::default(),
            upstream_errors: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            audit_records: AtomicU64::new(0),
            audit_suppressed: AtomicU64::new(0),
            audit_failures: AtomicU64::new(0),
            token_failures: AtomicU64::new(0),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_reload_ok: AtomicU64::new(1),
            last_reload_time: AtomicU64::new(0),
            connections: AtomicI64::new(0),
            max_connections: AtomicI64::new(0),
            closed: Default::default(),
            capacity_refusals: AtomicU64::new(0),
            quota_store: Default::default(),
            upstream_credentials: Default::default(),
        }
    }
}

/// One principal's calls by outcome.
#[derive(Debug, Default)]
pub struct PrincipalCounters([AtomicU64; OUTCOMES.len()]);

impl PrincipalCounters {
    pub fn count(&self, outcome: Outcome) {
        self.0[outcome_index(outcome)].fetch_add(1, Relaxed);
    }
}

/// Decrements the in-flight gauge when dropped.
pub struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Metrics {
    pub fn request(&self, op: Option<Operation>, outcome: Outcome) {
        let row = op.map_or(Operation::ALL.len(), Operation::index);
        self.requests[row][outcome_index(outcome)].fetch_add(1, Relaxed);
    }

    /// The call counters of principal `name` (made on first use, kept across reloads).
    pub fn principal(&self, name: &str) -> Arc<PrincipalCounters> {
        let mut map = self.principals.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().clone()
    }

    /// The counter of `principal`'s calls that `quota` throttled.
    pub fn throttle_counter(&self, principal: &str, quota: &str) -> Arc<AtomicU64> {
        let mut map = self.throttled.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((principal.to_owned(), quota.to_owned()))
            .or_default()
            .clone()
    }

    pub fn auth_failure(&self, error: &str) {
        if let Some(i) = AUTH_ERRORS.iter().position(|e| *e == error) {
            self.auth_failures[i].fetch_add(1, Relaxed);
        }
    }

    pub fn upstream_error(&self) {
        self.upstream_errors.fetch_add(1, Relaxed);
    }

    pub fn token_failure(&self) {
        self.token_failures.fetch_add(1, Relaxed);
    }

    pub fn audit_record(&self, ok: bool) {
        if ok {
            self.audit_records.fetch_add(1, Relaxed);
        } else {
            self.audit_failures.fetch_add(1, Relaxed);
        }
    }

    /// An unauthenticated refusal counted into a flood summary instead of its own record.
    pub fn audit_suppressed(&self) {
        self.audit_suppressed.fetch_add(1, Relaxed);
    }

    pub fn reload(&self, ok: bool, at_unix: u64) {
        if ok {
            self.reloads_ok.fetch_add(1, Relaxed);
        } else {
            self.reloads_failed.fetch_add(1, Relaxed);
        }
        self.last_reload_ok.store(u64::from(ok), Relaxed);
        self.last_reload_time.store(at_unix, Relaxed);
    }

    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Relaxed);
        InFlight(self)
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Relaxed)
    }

    /// The proxy listener's connection cap (set when it starts serving).
    pub fn set_max_connections(&self, max: usize) {
        self.max_connections
            .store(i64::try_from(max).unwrap_or(i64::MAX), Relaxed);
    }

    pub fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Relaxed);
    }

    pub fn closed(&self, why: Closed) {
        self.closed[why as usize].fetch_add(1, Relaxed);
    }

    /// A call refused because every slot under the connection caps was taken.
    pub fn capacity_refusal(&self) {
        self.capacity_refusals.fetch_add(1, Relaxed);
    }

    /// Calls per principal and throttled calls per principal and quota. Names are safe in a
    /// label as they are: the configuration allows no quote, backslash or newline in them.
    fn render_principals(&self, out: &mut String) {
        out.push_str("# HELP swf_warden_principal_requests_total Authenticated calls by principal and decision.\n# TYPE swf_warden_principal_requests_total counter\n");
        for (name, counters) in self
            .principals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            for (outcome, counter) in OUTCOMES.iter().zip(&counters.0) {
                let n = counter.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "swf_warden_principal_requests_total{{principal=\"{name}\",decision=\"{}\"}} {n}",
                        outcome.as_str()
                    );
                }
            }
        }
        out.push_str("# HELP swf_warden_throttled_total Calls a quota refused, by principal and quota.\n# TYPE swf_warden_throttled_total counter\n");
        for ((principal, quota), counter) in self
            .throttled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "swf_warden_throttled_total{{principal=\"{principal}\",quota=\"{quota}\"}} {}",
                counter.load(Relaxed)
            );
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP swf_warden_requests_total Calls by operation and decision.\n# TYPE swf_warden_requests_total counter\n");
        for (row, counters) in self.requests.iter().enumerate() {
            let op = Operation::ALL.get(row).map_or("unknown", |o| o.name());
            for (outcome, counter) in OUTCOMES.iter().zip(counters) {
                let n = counter.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "swf_warden_requests_total{{operation=\"{op}\",decision=\"{}\"}} {n}",
                        outcome.as_str()
                    );
                }
            }
        }
        self.render_principals(&mut out);
        out.push_str("# HELP swf_warden_auth_failures_total Authentication failures by error.\n# TYPE swf_warden_auth_failures_total counter\n");
        for (name, counter) in AUTH_ERRORS.iter().zip(&self.auth_failures) {
            let _ = writeln!(
                out,
                "swf_warden_auth_failures_total{{error=\"{name}\"}} {}",
                counter.load(Relaxed)
            );
        }
        self.proxy_time.render(
            &mut out,
            "swf_warden_proxy_duration_seconds",
            "Time spent in the proxy itself, upstream excluded.",
        );
        self.upstream_time.render(
            &mut out,
            "swf_warden_upstream_duration_seconds",
            "Time waiting for the upstream.",
        );
        let counters = [
            (
                "swf_warden_upstream_errors_total",
                "Upstream calls that failed or timed out.",
                self.upstream_errors.load(Relaxed),
            ),
            (
                "swf_warden_audit_records_total",
                "Audit records written.",
                self.audit_records.load(Relaxed),
            ),
            (
                "swf_warden_audit_suppressed_total",
                "Unauthenticated refusals counted into a flood summary record instead of their own.",
                self.audit_suppressed.load(Relaxed),
            ),
            (
                "swf_warden_log_lines_dropped_total",
                "Access log lines dropped because its buffer was full (a call never waits to log).",
                crate::access::writer::dropped(),
            ),
            (
                "swf_warden_audit_write_failures_total",
                "Audit records that could not be written.",
                self.audit_failures.load(Relaxed),
            ),
            (
                "swf_warden_token_verification_failures_total",
                "Task tokens refused.",
                self.token_failures.load(Relaxed),
            ),
            (
                "swf_warden_upstream_credential_refresh_failures_total",
                "Attempts to obtain or renew the upstream credentials that failed.",
                self.upstream_credentials
                    .refresh_failures
                    .load(Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        out.push_str("# HELP swf_warden_connections_closed_total Client connections the proxy closed or turned away, by reason.\n# TYPE swf_warden_connections_closed_total counter\n");
        for why in Closed::ALL {
            let _ = writeln!(
                out,
                "swf_warden_connections_closed_total{{reason=\"{}\"}} {}",
                why.name(),
                self.closed[why as usize].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP swf_warden_capacity_refusals_total Calls refused with 503 because the connection caps were reached.\n# TYPE swf_warden_capacity_refusals_total counter\nswf_warden_capacity_refusals_total {}",
            self.capacity_refusals.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP swf_warden_quota_store_requests_total Lease requests to the Redis quota store.\n# TYPE swf_warden_quota_store_requests_total counter\nswf_warden_quota_store_requests_total {}\n# HELP swf_warden_quota_store_failures_total Lease requests to the Redis quota store that failed or timed out.\n# TYPE swf_warden_quota_store_failures_total counter\nswf_warden_quota_store_failures_total {}",
            self.quota_store.requests.load(Relaxed),
            self.quota_store.failures.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP swf_warden_reloads_total Configuration reloads by outcome.\n# TYPE swf_warden_reloads_total counter\nswf_warden_reloads_total{{outcome=\"success\"}} {}\nswf_warden_reloads_total{{outcome=\"failure\"}} {}",
            self.reloads_ok.load(Relaxed),
            self.reloads_failed.load(Relaxed)
        );
        let gauges = [
            (
                "swf_warden_last_reload_success",
                "1 if the last reload succeeded (or none was tried).",
                self.last_reload_ok.load(Relaxed) as i64,
            ),
            (
                "swf_warden_last_reload_timestamp_seconds",
                "When the last reload was tried.",
                self.last_reload_time.load(Relaxed) as i64,
            ),
            (
                "swf_warden_in_flight_requests",
                "Calls being handled.",
                self.in_flight.load(Relaxed),
            ),
            (
                "swf_warden_upstream_credentials_expiry_seconds",
                "When the upstream credentials in use expire (Unix time; 0: they do not).",
                self.upstream_credentials.expiry.load(Relaxed) as i64,
            ),
            (
                "swf_warden_open_connections",
                "Client connections open.",
                self.connections.load(Relaxed),
            ),
            (
                "swf_warden_max_connections",
                "Client connections the listener holds at most (`[limits] max_connections`).",
                self.max_connections.load(Relaxed),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every decision is counted under its own label (STS's `issued` was counted as
    /// `allowed`).
    #[test]
    fn every_decision_is_counted_under_its_own_label() {
        let m = Metrics::default();
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            assert_eq!(outcome_index(*outcome), i);
            m.request(None, *outcome);
        }
        let text = m.render();
        for outcome in OUTCOMES {
            let line = format!(
                "swf_warden_requests_total{{operation=\"unknown\",decision=\"{}\"}} 1",
                outcome.as_str()
            );
            assert!(text.contains(&line), "{line}");
        }
    }

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request(
            Some(Operation::RecordActivityTaskHeartbeat),
            Outcome::Allowed,
        );
        m.request(
            Some(Operation::RecordActivityTaskHeartbeat),
            Outcome::Allowed,
        );
        m.request(None, Outcome::AuthFailed);
        m.auth_failure("InvalidSignatureException");
        m.proxy_time.observe(Duration::from_micros(300));
        m.reload(false, 42);
        let _guard = m.enter();
        let text = m.render();
        assert!(text.contains("swf_warden_requests_total{operation=\"RecordActivityTaskHeartbeat\",decision=\"allowed\"} 2"), "{text}");
        assert!(text.contains(
            "swf_warden_requests_total{operation=\"unknown\",decision=\"authFailed\"} 1"
        ));
        assert!(
            text.contains("swf_warden_auth_failures_total{error=\"InvalidSignatureException\"} 1")
        );
        assert!(text.contains("swf_warden_proxy_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("swf_warden_proxy_duration_seconds_bucket{le=\"0.00025\"} 0"));
        assert!(text.contains("swf_warden_proxy_duration_seconds_count 1"));
        assert!(text.contains("swf_warden_reloads_total{outcome=\"failure\"} 1"));
        assert!(text.contains("swf_warden_last_reload_success 0"));
        assert!(text.contains("swf_warden_in_flight_requests 1"));
    }

    #[test]
    fn renders_connection_closures_by_reason() {
        let m = Metrics::default();
        m.closed(Closed::WriteTimeout);
        m.closed(Closed::WriteTimeout);
        m.closed(Closed::PerIpLimit);
        m.capacity_refusal();
        let text = m.render();
        assert!(text.contains("swf_warden_connections_closed_total{reason=\"write_timeout\"} 2"));
        assert!(text.contains("swf_warden_connections_closed_total{reason=\"per_ip_limit\"} 1"));
        assert!(text.contains("swf_warden_connections_closed_total{reason=\"header_timeout\"} 0"));
        assert!(text.contains("swf_warden_capacity_refusals_total 1"));
    }
}
