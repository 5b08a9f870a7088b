//! Flood control for unauthenticated refusals (SPEC, "Connections"): past
//! `unauthenticated_per_second` records per source and decision in one second, records are
//! suppressed and counted, and one summary record per source, decision and second says how
//! many (`suppressed: N`). Every refusal is still counted, and no source can drive the log's
//! size faster than the limit. A source is an IPv4 address or an IPv6 /64 (what one client
//! usually holds); at most `MAX_SOURCES` are counted apart in a second, so the log grows by
//! at most `(MAX_SOURCES + 1) × limit` unauthenticated records per second and decision.
//!
//! Windows are whole seconds. A window's summary is due once the second is over: the next
//! refusal from that source writes it, or the once-a-second flush does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;

use super::Outcome;

/// At most this many sources are counted apart in one second; past it, new sources share one
/// window (recorded with the source `*`), so the table's memory stays bounded.
const MAX_SOURCES: usize = 10_000;

/// The default `[audit] unauthenticated_per_second`.
pub const DEFAULT_PER_SECOND: u32 = 100;

/// What to do with one unauthenticated refusal's record.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    Write,
    Suppress,
}

/// A finished window that suppressed records: one summary record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `None`: the sources past `MAX_SOURCES`, together.
    pub source: Option<IpAddr>,
    pub decision: Outcome,
    /// The Unix second the window covered.
    pub second: u64,
    pub suppressed: u64,
    /// The request id of the last suppressed refusal.
    pub last_request_id: String,
}

#[derive(Debug)]
struct Window {
    second: u64,
    written: u32,
    suppressed: u64,
    last_request_id: String,
}

/// Which window a refusal counts in: its source (`None`: past `MAX_SOURCES`) and decision.
type Key = (Option<IpAddr>, Outcome);

/// The per-source counters, shared by every worker and kept across reloads.
#[derive(Debug)]
pub struct FloodGate {
    per_second: AtomicU32,
    windows: Mutex<HashMap<Key, Window>>,
}

/// The source a refusal counts against: the IPv4 address, or the IPv6 /64.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

impl FloodGate {
    pub fn new(per_second: u32) -> FloodGate {
        FloodGate {
            per_second: AtomicU32::new(per_second),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_per_second(&self, per_second: u32) {
        self.per_second.store(per_second, Relaxed);
    }

    /// Counts one refusal (`decision`) from `ip` in `second`. Returns whether to write its
    /// record, and the summary of this window's previous second if that one is now due.
    pub fn admit(
        &self,
        ip: IpAddr,
        decision: Outcome,
        second: u64,
        request_id: &str,
    ) -> (Admit, Option<Summary>) {
        let limit = self.per_second.load(Relaxed);
        let source = source_of(ip);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let key = if windows.len() < MAX_SOURCES || windows.contains_key(&(Some(source), decision))
        {
            (Some(source), decision)
        } else {
            (None, decision)
        };
        let window = windows.entry(key).or_insert_with(|| Window {
            second,
            written: 0,
            suppressed: 0,
            last_request_id: String::new(),
        });
        let mut due = None;
        if window.second != second {
            due = summary(key, window);
            *window = Window {
                second,
                written: 0,
                suppressed: 0,
                last_request_id: String::new(),
            };
        }
        if window.written < limit {
            window.written += 1;
            return (Admit::Write, due);
        }
        window.suppressed += 1;
        request_id.clone_into(&mut window.last_request_id);
        (Admit::Suppress, due)
    }

    /// Ends every window older than `second`: returns the summaries due, and forgets the
    /// sources, so the table holds only those seen in the current second.
    pub fn flush(&self, second: u64) -> Vec<Summary> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut due = Vec::new();
        windows.retain(|key, window| {
            if window.second >= second {
                return true;
            }
            due.extend(summary(*key, window));
            false
        });
        due
    }
}

fn summary((source, decision): Key, window: &mut Window) -> Option<Summary> {
    (window.suppressed > 0).then(|| Summary {
        source,
        decision,
        second: window.second,
        suppressed: window.suppressed,
        last_request_id: std::mem::take(&mut window.last_request_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: Outcome = Outcome::AuthFailed;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source_and_decisions_count_apart() {
        let gate = FloodGate::new(1);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(gate.admit(a, AUTH, 1, "a").0, Admit::Write);
        assert_eq!(gate.admit(b, AUTH, 1, "b").0, Admit::Suppress, "same /64");
        assert_eq!(gate.admit(other, AUTH, 1, "c").0, Admit::Write);
        let invalid = Outcome::InvalidRequest;
        assert_eq!(gate.admit(a, invalid, 1, "d").0, Admit::Write);
        assert_eq!(gate.admit(b, invalid, 1, "e").0, Admit::Suppress);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(source_of(mapped), ip(1));
        let mut due = gate.flush(2);
        due.sort_by_key(|s| s.last_request_id.clone());
        assert_eq!(due.len(), 2);
        assert_eq!((due[0].decision, due[0].suppressed), (AUTH, 1));
        assert_eq!((due[1].decision, due[1].suppressed), (invalid, 1));
        assert_eq!(due[0].source, Some("2001:db8:1:2::".parse().unwrap()));
    }

    #[test]
    fn past_the_limit_records_are_counted_not_written() {
        let gate = FloodGate::new(3);
        let outcomes: Vec<Admit> = (0..10)
            .map(|i| gate.admit(ip(1), AUTH, 100, &format!("r{i}")).0)
            .collect();
        assert_eq!(outcomes.iter().filter(|a| **a == Admit::Write).count(), 3);
        // Another source has its own allowance.
        assert_eq!(gate.admit(ip(2), AUTH, 100, "x").0, Admit::Write);
        // The next second starts afresh, and the finished window's summary is due.
        let (admit, due) = gate.admit(ip(1), AUTH, 101, "r10");
        assert_eq!(admit, Admit::Write);
        assert_eq!(
            due,
            Some(Summary {
                source: Some(ip(1)),
                decision: AUTH,
                second: 100,
                suppressed: 7,
                last_request_id: "r9".into(),
            })
        );
    }

    #[test]
    fn flush_reports_finished_windows_once_and_forgets_them() {
        let gate = FloodGate::new(1);
        for second in [5, 5, 5] {
            gate.admit(ip(1), AUTH, second, "a");
        }
        gate.admit(ip(2), AUTH, 5, "b");
        gate.admit(ip(3), AUTH, 6, "c");
        gate.admit(ip(3), AUTH, 6, "c");
        assert!(gate.flush(5).is_empty(), "second 5 is not over");
        let due = gate.flush(6);
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!((due[0].source, due[0].suppressed), (Some(ip(1)), 2));
        assert!(gate.flush(6).is_empty());
        assert_eq!(gate.flush(7)[0].suppressed, 1);
        assert!(gate.windows.lock().unwrap().is_empty());
    }

    #[test]
    fn sources_past_the_table_size_share_one_window() {
        let gate = FloodGate::new(1);
        for i in 0..MAX_SOURCES as u32 {
            gate.admit(IpAddr::from(i.to_be_bytes()), AUTH, 1, "a");
        }
        let other = IpAddr::from([255, 255, 255, 254]);
        let also = IpAddr::from([255, 255, 255, 253]);
        assert_eq!(gate.admit(other, AUTH, 1, "b").0, Admit::Write);
        assert_eq!(gate.admit(also, AUTH, 1, "c").0, Admit::Suppress);
        assert_eq!(gate.windows.lock().unwrap().len(), MAX_SOURCES + 1);
        let shared: Vec<Summary> = gate
            .flush(2)
            .into_iter()
            .filter(|s| s.source.is_none())
            .collect();
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].suppressed, 1);
    }

    #[test]
    fn a_limit_of_zero_writes_only_summaries() {
        let gate = FloodGate::new(0);
        assert_eq!(gate.admit(ip(1), AUTH, 1, "a").0, Admit::Suppress);
        assert_eq!(gate.flush(2)[0].suppressed, 1);
    }
}
