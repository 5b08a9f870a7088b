//! Where quota counters live: keyed by quota name and principal (or one for all), in a
//! registry that outlives configuration reloads, so that a reload neither refills a bucket
//! nor forgets the calls in flight. A generation takes its slots from here when it is built;
//! slots no live generation uses are dropped at the next build.
//!
//! Per-domain slots are made on a call's first use of a domain and kept in a bounded map:
//! past [`MAX_DOMAIN_SLOTS`] the idle ones (a full bucket, nothing in flight, no lease: the
//! state of a new slot) are forgotten, and if none is idle the call is throttled rather than
//! counted nowhere (for a second, without scanning the map again).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use super::{gcra, Place, Slot, Spec};

/// Keys of one per-domain quota (for one principal, with `principal+domain`).
pub const MAX_DOMAIN_SLOTS: usize = 65_536;

/// How long a map found full of busy slots refuses new domains before it is scanned again.
const RESCAN_AFTER_NS: u64 = 1_000_000_000;

/// (quota name, principal name or "" when the quota is not per principal).
type Key = (Arc<str>, String);

/// Every quota slot of the process.
#[derive(Debug, Default)]
pub struct Registry {
    fixed: Mutex<HashMap<Key, Arc<Slot>>>,
    by_domain: Mutex<HashMap<Key, Arc<DomainSlots>>>,
}

impl Registry {
    /// Where `spec`'s counters for `principal` are, made if new.
    pub(super) fn place(&self, spec: &Spec, principal: &str) -> Place {
        let who = if spec.per.by_principal() {
            principal.to_owned()
        } else {
            String::new()
        };
        let prefix = format!("{}:{who}", spec.name);
        let key = (spec.name.clone(), who);
        if spec.per.by_domain() {
            let mut map = self.by_domain.lock().unwrap_or_else(|p| p.into_inner());
            Place::ByDomain(
                map.entry(key)
                    .or_insert_with(|| Arc::new(DomainSlots::new(prefix)))
                    .clone(),
            )
        } else {
            let mut map = self.fixed.lock().unwrap_or_else(|p| p.into_inner());
            Place::Fixed(
                map.entry(key)
                    .or_insert_with(|| Arc::new(Slot::new(prefix)))
                    .clone(),
            )
        }
    }

    /// Drops the slots no generation holds any more (called before a generation is built).
    pub fn sweep(&self) {
        self.fixed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, slot| Arc::strong_count(slot) > 1);
        self.by_domain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, slots| Arc::strong_count(slots) > 1);
    }

    /// How many slots exist (fixed, and per domain across every quota).
    pub fn len(&self) -> (usize, usize) {
        let fixed = self.fixed.lock().unwrap_or_else(|p| p.into_inner()).len();
        let domains = self
            .by_domain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|d| d.len())
            .sum();
        (fixed, domains)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

/// The per-domain slots of one quota (and principal).
#[derive(Debug)]
pub struct DomainSlots {
    prefix: String,
    slots: RwLock<HashMap<Box<str>, Arc<Slot>>>,
    /// Until when the map is known to be full of busy slots (process clock, ns): new
    /// domains are refused without scanning it again.
    full_until: AtomicU64,
}

impl DomainSlots {
    fn new(prefix: String) -> DomainSlots {
        DomainSlots {
            prefix,
            slots: RwLock::new(HashMap::new()),
            full_until: AtomicU64::new(0),
        }
    }

    fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The slot of `domain`, made if new; `None` when the map is full of busy slots.
    pub(super) fn get(&self, domain: &str) -> Option<Arc<Slot>> {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(domain)
        {
            return Some(slot.clone());
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get(domain) {
            return Some(slot.clone());
        }
        if slots.len() >= MAX_DOMAIN_SLOTS {
            let now = gcra::now();
            if now < self.full_until.load(Relaxed) {
                return None;
            }
            // Under the write lock no call can be taking a slot: one held only by the map
            // and idle is exactly a new one.
            slots.retain(|_, s| Arc::strong_count(s) > 1 || !s.is_idle(now));
            if slots.len() >= MAX_DOMAIN_SLOTS {
                // Scan again only after a while: a flood of new domains must not turn
                // into a scan of the whole map per call.
                self.full_until
                    .store(now.saturating_add(RESCAN_AFTER_NS), Relaxed);
                return None;
            }
        }
        let slot = Arc::new(Slot::new(format!("{}:{domain}", self.prefix)));
        slots.insert(domain.into(), slot.clone());
        Some(slot)
    }
}
