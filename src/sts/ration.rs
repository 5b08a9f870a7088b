//! Rations kept per key (an identity, a source address): a GCRA bucket each, in a map of
//! bounded size. Past [`KEYS`] keys the full (idle) buckets are forgotten, which changes
//! nothing for them; if every bucket is busy, all are forgotten rather than the map growing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::error::ProxyError;
use crate::quota::gcra::{self, Gcra, Rate};

/// Keys whose buckets are kept.
const KEYS: usize = 65_536;

/// One ration per key.
#[derive(Debug)]
pub(super) struct Rations<K> {
    rate: Rate,
    /// Names the ration in `Throttling` refusals and their audit records.
    quota: Arc<str>,
    buckets: Mutex<HashMap<K, Gcra>>,
}

impl<K: Hash + Eq + Clone> Rations<K> {
    pub(super) fn new(rate: Rate, quota: &str) -> Rations<K> {
        Rations {
            rate,
            quota: Arc::from(quota),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Spends one of `key`'s ration, or refuses with `Throttling`.
    pub(super) fn admit<Q>(&self, key: &Q) -> Result<(), ProxyError>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = gcra::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= KEYS {
            buckets.retain(|_, bucket| !bucket.is_full(now));
            if buckets.len() >= KEYS {
                buckets.clear();
            }
        }
        let admitted = match buckets.get_mut(key) {
            Some(bucket) => bucket.admit(self.rate, now),
            None => buckets
                .entry(key.to_owned())
                .or_default()
                .admit(self.rate, now),
        };
        admitted.map_err(|_| ProxyError::Throttled {
            quota: self.quota.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn each_key_has_its_own_ration() {
        let rations: Rations<IpAddr> = Rations::new(Rate::new(0.001, 2), "sts-unverified");
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!(rations.admit(&a).is_ok());
        assert!(rations.admit(&a).is_ok());
        let refused = rations.admit(&a).unwrap_err();
        assert_eq!(refused.quota(), Some("sts-unverified"));
        assert!(rations.admit(&b).is_ok(), "another source is not held back");
    }
}
