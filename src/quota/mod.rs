//! Fair share (SPEC, "Fair share"): quotas that keep one tenant from starving the others of
//! the SWF account's throttles, its pollers and the proxy's own connections.
//!
//! A `[[quota]]` ([`Spec`]) matches calls by IAM action pattern and callers by principal name
//! pattern or group, and gives each key (`per` principal, domain, both, or one for all) a rate
//! bucket ([`gcra`]) and/or a cap on calls in flight. A generation resolves, for every
//! principal and operation, the quotas that apply ([`Meter`]s, built at load so that a call
//! matches nothing at run time); the buckets themselves live in a [`Registry`] that outlives
//! reloads, so a reload neither refills a bucket nor forgets a call in flight.
//!
//! Calls are checked after authorization (a denied call spends nothing) and before
//! forwarding. With `[quota_store] backend = "redis"` the rate buckets are shared by every
//! replica ([`redis`]); caps on calls in flight stay per replica.

pub mod gcra;
pub mod redis;
mod registry;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::error::ProxyError;
use crate::policy::wildcard;
use crate::swf::Operation;

pub use gcra::Rate;
pub use registry::Registry;

/// What gets its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Principal,
    Domain,
    PrincipalDomain,
    All,
}

impl Per {
    pub fn parse(text: &str) -> Option<Per> {
        Some(match text {
            "principal" => Per::Principal,
            "domain" => Per::Domain,
            "principal+domain" => Per::PrincipalDomain,
            "all" => Per::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Per::Principal => "principal",
            Per::Domain => "domain",
            Per::PrincipalDomain => "principal+domain",
            Per::All => "all",
        }
    }

    fn by_principal(self) -> bool {
        matches!(self, Per::Principal | Per::PrincipalDomain)
    }

    fn by_domain(self) -> bool {
        matches!(self, Per::Domain | Per::PrincipalDomain)
    }
}

/// One validated `[[quota]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: Arc<str>,
    /// The operations its action patterns match.
    pub operations: Vec<Operation>,
    /// Principal name patterns (IAM wildcards) …
    pub principals: Vec<String>,
    /// … or groups: a principal matching either is subject to it.
    pub groups: Vec<String>,
    pub per: Per,
    /// Tokens a second and bucket size.
    pub rate: Option<(f64, u64)>,
    pub max_in_flight: Option<u32>,
    /// Where it is defined (`file:line`), for `explain`.
    pub origin: String,
}

impl Spec {
    /// Whether a principal with this name and these groups is subject to the quota.
    pub fn applies_to(&self, name: &str, groups: &[String]) -> bool {
        self.principals.iter().any(|p| wildcard::matches(p, name))
            || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Whether the quota counts calls of `op`.
    pub fn covers(&self, op: Operation) -> bool {
        self.operations.contains(&op)
    }

    /// `50/s (burst 100), 20 in flight, per principal`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((rate, burst)) = self.rate {
            parts.push(format!("{rate}/s (burst {burst})"));
        }
        if let Some(max) = self.max_in_flight {
            parts.push(format!("{max} in flight"));
        }
        format!("{}, per {}", parts.join(", "), self.per.as_str())
    }

    fn gcra_rate(&self) -> Option<Rate> {
        self.rate.map(|(r, b)| Rate::new(r, b))
    }
}

/// Where a quota's counters are for one principal: one slot, or one per domain.
#[derive(Debug, Clone)]
enum Place {
    Fixed(Arc<Slot>),
    ByDomain(Arc<registry::DomainSlots>),
}

/// One quota as it applies to one principal's calls of one operation.
#[derive(Debug, Clone)]
pub struct Meter {
    spec: Arc<Spec>,
    rate: Option<Rate>,
    place: Place,
    /// `swf_warden_throttled_total{principal, quota}`.
    throttled: Arc<AtomicU64>,
}

impl Meter {
    pub fn spec(&self) -> &Spec {
        &self.spec
    }
}

/// The counters behind one key of one quota.
#[derive(Debug)]
pub struct Slot {
    bucket: gcra::Gcra,
    in_flight: AtomicU32,
    /// Tokens leased from the shared store, in Redis mode.
    lease: redis::Lease,
    /// The key in the shared store.
    key: Box<str>,
}

impl Slot {
    fn new(key: String) -> Slot {
        Slot {
            bucket: gcra::Gcra::default(),
            in_flight: AtomicU32::new(0),
            lease: redis::Lease::default(),
            key: key.into_boxed_str(),
        }
    }

    /// Whether forgetting the slot changes nothing: a full bucket, nothing in flight, no lease.
    fn is_idle(&self, now: u64) -> bool {
        self.bucket.is_full(now) && self.in_flight.load(Relaxed) == 0 && self.lease.is_empty()
    }

    fn enter(self: &Arc<Slot>, max: u32) -> Option<Held> {
        let before = self.in_flight.fetch_add(1, Relaxed);
        let held = Held(self.clone());
        (before < max).then_some(held)
    }
}

/// One call in flight under a cap; dropping it ends the call.
#[derive(Debug)]
struct Held(Arc<Slot>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Proof that a call got through its quotas; holds its places under the in-flight caps until
/// dropped (when the call ends).
#[derive(Debug, Default)]
#[must_use]
pub struct Admission {
    held: Vec<Held>,
}

/// Why a call was throttled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttle {
    /// Over a rate: `ThrottlingException`.
    Rate { quota: Arc<str> },
    /// Over `max_in_flight`: `LimitExceededFault` where the operation's model lists it.
    InFlight { quota: Arc<str>, max: u32 },
}

impl Throttle {
    pub fn quota(&self) -> &Arc<str> {
        match self {
            Throttle::Rate { quota } | Throttle::InFlight { quota, .. } => quota,
        }
    }

    /// The refusal for a call `op` this throttled (SPEC, "Fair share").
    pub fn refusal(self, op: Operation) -> ProxyError {
        match self {
            Throttle::InFlight { quota, max } if op.may_exceed_limits() => {
                ProxyError::LimitExceeded { quota, max }
            }
            Throttle::InFlight { quota, .. } | Throttle::Rate { quota } => {
                ProxyError::Throttled { quota }
            }
        }
    }
}

/// The quotas of one generation and the store their rate buckets live in.
#[derive(Debug, Default)]
pub struct Quotas {
    pub specs: Vec<Arc<Spec>>,
    store: Option<Arc<redis::Store>>,
}

/// A principal's meters, by operation index; empty when no quota applies to it.
pub type Meters = Box<[Box<[Meter]>]>;

impl Quotas {
    pub fn new(specs: Vec<Arc<Spec>>, store: Option<Arc<redis::Store>>) -> Quotas {
        Quotas { specs, store }
    }

    /// The meters of a principal (by name and groups): for each operation, the quotas that
    /// count its calls, with their slots taken from `registry` and throttle counters from
    /// `counter(quota)`.
    pub fn meters(
        &self,
        registry: &Registry,
        name: &str,
        groups: &[String],
        counter: impl FnMut(&str) -> Arc<AtomicU64>,
    ) -> Meters {
        meters(&self.specs, registry, name, name, groups, counter)
    }

    /// Checks a call against every quota in `meters` (a principal's, for the call's
    /// operation): the caps on calls in flight first, then the rates; a refusal by one gives
    /// back what the others took.
    pub async fn admit(
        &self,
        meters: &[Meter],
        domain: Option<&str>,
    ) -> Result<Admission, Throttle> {
        let mut admission = Admission::default();
        if meters.is_empty() {
            return Ok(admission);
        }
        let slots = meters
            .iter()
            .map(|m| slot(m, domain))
            .collect::<Result<Vec<_>, _>>()?;
        for (meter, slot) in meters.iter().zip(&slots) {
            if let Some(max) = meter.spec.max_in_flight {
                match slot.enter(max) {
                    Some(held) => admission.held.push(held),
                    None => {
                        return Err(throttled(
                            meter,
                            Throttle::InFlight {
                                quota: meter.spec.name.clone(),
                                max,
                            },
                        ))
                    }
                }
            }
        }
        let now = gcra::now();
        for (i, (meter, slot)) in meters.iter().zip(&slots).enumerate() {
            let Some(rate) = meter.rate else { continue };
            let admitted = match &self.store {
                None => slot.bucket.admit(rate, now).is_ok(),
                // Boxed: only with a shared store, and its future would otherwise be part of
                // every call's, held for as long as a long poll waits.
                Some(store) => Box::pin(store.admit(&meter.spec, rate, slot, now)).await,
            };
            if !admitted {
                for (m, s) in meters[..i].iter().zip(&slots) {
                    if let Some(rate) = m.rate {
                        match &self.store {
                            None => s.bucket.refund(rate),
                            Some(_) => s.lease.refund(),
                        }
                    }
                }
                return Err(throttled(
                    meter,
                    Throttle::Rate {
                        quota: meter.spec.name.clone(),
                    },
                ));
            }
        }
        Ok(admission)
    }
}

/// The meters of the quotas among `specs` that apply to a principal `name` in `groups`, with
/// its `per = "principal"` slots kept under `bucket` (its name, or a role session's tenant,
/// `role/tag value`).
pub fn meters(
    specs: &[Arc<Spec>],
    registry: &Registry,
    name: &str,
    bucket: &str,
    groups: &[String],
    mut counter: impl FnMut(&str) -> Arc<AtomicU64>,
) -> Meters {
    let applying: Vec<Meter> = specs
        .iter()
        .filter(|s| s.applies_to(name, groups))
        .map(|spec| Meter {
            rate: spec.gcra_rate(),
            place: registry.place(spec, bucket),
            throttled: counter(&spec.name),
            spec: spec.clone(),
        })
        .collect();
    if applying.is_empty() {
        return Box::default();
    }
    Operation::ALL
        .iter()
        .map(|op| {
            applying
                .iter()
                .filter(|m| m.spec.covers(*op))
                .cloned()
                .collect()
        })
        .collect()
}

fn slot(meter: &Meter, domain: Option<&str>) -> Result<Arc<Slot>, Throttle> {
    match &meter.place {
        Place::Fixed(slot) => Ok(slot.clone()),
        Place::ByDomain(slots) => slots.get(domain.unwrap_or("")).ok_or_else(|| {
            // Every slot is busy: refuse rather than count the call nowhere.
            throttled(
                meter,
                Throttle::Rate {
                    quota: meter.spec.name.clone(),
                },
            )
        }),
    }
}

fn throttled(meter: &Meter, why: Throttle) -> Throttle {
    meter.throttled.fetch_add(1, Relaxed);
    why
}

#[cfg(test)]
mod tests;
