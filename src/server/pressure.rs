//! What is idle yields to what is waiting (SPEC, "Connections"): when fewer than a tenth of the
//! `max_connections` slots are free, connections with no call in flight are asked to close,
//! the longest idle first, so that a new connection never waits behind idle ones. Neither a
//! stranger who sends one request per connection and then idles, nor a tenant whose refused
//! or finished calls leave connections open, can keep others out until the idle timeout.
//!
//! Every open connection is registered here with its [`Activity`]; the accept loop calls
//! [`Pressure::relieve`] with the slots still free after each accept, and again while a new
//! connection waits for a slot. A connection asked to close finishes its current answer
//! (HTTP/1.1) or sends a GOAWAY (HTTP/2), then frees its slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::watch::Activity;

/// The open connections of one listener.
pub(super) struct Pressure {
    /// Below this many free slots, idle connections are asked to close.
    low: usize,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    next: AtomicU64,
}

/// A connection's place in the registry; leaving it when dropped.
pub(super) struct Registered {
    pressure: Arc<Pressure>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.pressure
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

impl Pressure {
    /// For a listener of `max_connections` slots.
    pub(super) fn new(max_connections: usize) -> Arc<Pressure> {
        Arc::new(Pressure {
            low: max_connections.div_ceil(10).max(1),
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// Registers an open connection until the returned value is dropped.
    pub(super) fn register(self: &Arc<Pressure>, activity: Arc<Activity>) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, activity);
        Registered {
            pressure: self.clone(),
            id,
        }
    }

    /// With `free` slots left: if that is under a tenth, asks the connections idle longest to
    /// close, as many as bring the free slots (counting those already asked) back to a tenth.
    /// Returns how many were asked.
    pub(super) fn relieve(&self, free: usize) -> usize {
        if free >= self.low {
            return 0;
        }
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let leaving = open.values().filter(|a| a.asked_to_close()).count();
        let need = (self.low - free).saturating_sub(leaving);
        if need == 0 {
            return 0;
        }
        let mut idle: Vec<_> = open
            .values()
            .filter(|a| !a.asked_to_close())
            .filter_map(|a| Some((a.idle_since()?, a)))
            .collect();
        if idle.len() > need {
            idle.select_nth_unstable_by_key(need - 1, |(since, _)| *since);
            idle.truncate(need);
        }
        idle.iter().filter(|(_, a)| a.ask_to_close()).count()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use tokio::time::Instant;

    use super::super::caps::Caps;
    use super::*;

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A connection that was served once and has been idle since `epoch + idle_ms`.
    fn idle(epoch: Instant, idle_ms: u64) -> Arc<Activity> {
        let activity = Activity::new(epoch);
        drop(
            activity
                .enter(&Caps::new(4, None), IP, http::Version::HTTP_11)
                .unwrap(),
        );
        activity.set_idle_since_for_test(idle_ms);
        activity
    }

    #[tokio::test]
    async fn the_longest_idle_are_asked_first_and_only_under_pressure() {
        let pressure = Pressure::new(20);
        let epoch = Instant::now();
        let (young, old, oldest) = (idle(epoch, 300), idle(epoch, 200), idle(epoch, 100));
        let busy = Activity::new(epoch);
        let _call = busy
            .enter(&Caps::new(4, None), IP, http::Version::HTTP_11)
            .unwrap();
        let _registered: Vec<_> = [&young, &old, &oldest, &busy]
            .into_iter()
            .map(|a| pressure.register(a.clone()))
            .collect();

        assert_eq!(pressure.relieve(2), 0, "a tenth of 20 slots is free");
        assert_eq!(pressure.relieve(1), 1);
        assert!(oldest.asked_to_close(), "the longest idle goes first");
        assert!(!old.asked_to_close() && !young.asked_to_close());
        assert_eq!(
            pressure.relieve(1),
            0,
            "one already leaving makes up the missing slot"
        );
        assert_eq!(pressure.relieve(0), 1);
        assert!(old.asked_to_close() && !young.asked_to_close());
        drop(_registered);
        assert!(pressure.open.lock().unwrap().is_empty());
        assert!(!busy.asked_to_close(), "a call in flight is never asked");
    }
}
