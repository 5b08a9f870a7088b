//! Rate buckets shared by every replica through Redis (or Valkey), with Redis off the
//! critical path of most calls.
//!
//! Each bucket is a token bucket in Redis, refilled and spent by one Lua script on Redis's own
//! clock (so replicas' clocks do not matter). A replica does not ask Redis for one token per
//! call: it leases a batch of `L = ceil(rate × lease_ms / 1000)` tokens (at least 1, at most
//! the burst) and spends them locally, asking again when the batch is gone; a batch not spent
//! within [`LEASE_TTL`] is dropped. When Redis has no token, the script says how long until
//! one, and the replica refuses locally until then, so a flooding tenant does not turn into a
//! flood of Redis calls.
//!
//! Error bound: every admitted call spent a token taken from the shared bucket, so over any
//! window of `W` seconds one key is admitted at most `burst + rate × W` calls, plus the
//! tokens that were leased before the window and spent in it: at most `N × L` with `N`
//! replicas. The price of leasing is the other way: tokens leased by a replica that then gets
//! no calls are not available to the others until they expire.
//!
//! Every Redis call has a deadline (`timeout_ms`); a failure or a timeout marks the store
//! down for [`RETRY_AFTER`], during which calls do not wait on Redis but follow `on_error`:
//! `local` (this replica's own buckets), `allow` or `deny`. Concurrent calls of one key
//! share one lease request. The connection is redis-rs's multiplexed `ConnectionManager`
//! (one connection pipelining every replica's requests, reconnecting by itself).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::Rate;
use super::{Slot, Spec};
use crate::secret::Secret;

/// How long leased tokens may be kept unspent.
pub const LEASE_TTL: Duration = Duration::from_secs(1);

/// How long the store is left alone after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Every key this proxy writes starts with this.
pub const KEY_PREFIX: &str = "swf-warden:quota:";

/// What a call does while Redis cannot answer (`on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Count on this replica's own buckets.
    Local,
    Allow,
    Deny,
}

impl OnError {
    pub fn parse(text: &str) -> Option<OnError> {
        Some(match text {
            "local" => OnError::Local,
            "allow" => OnError::Allow,
            "deny" => OnError::Deny,
            _ => return None,
        })
    }
}

/// `[quota_store]` with `backend = "redis"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub url: Secret,
    pub on_error: OnError,
    /// Deadline of each Redis call (connecting included).
    pub timeout: Duration,
    /// How much of a rate one lease takes.
    pub lease: Duration,
}

/// Refills and spends one bucket; returns `{granted, microseconds until a token}`.
const SCRIPT: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000000)
end
local granted = math.min(want, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait = 0
if granted == 0 then wait = math.ceil((1 - tokens) * 1000000 / rate) end
return {granted, wait}
";

/// Tokens a replica holds for one key.
#[derive(Debug, Default)]
pub struct Lease {
    state: Mutex<LeaseState>,
    /// One lease request at a time per key.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default, Clone, Copy)]
struct LeaseState {
    tokens: u64,
    /// When the unspent tokens are dropped (process clock, ns).
    expires: u64,
    /// Until when Redis said the bucket is empty.
    empty_until: u64,
}

impl Lease {
    /// Spends a leased token: `Some(true)`; `Some(false)` while the bucket is known empty;
    /// `None` when Redis must be asked.
    fn take(&self, now: u64) -> Option<bool> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.tokens > 0 && now < s.expires {
            s.tokens -= 1;
            return Some(true);
        }
        (now < s.empty_until).then_some(false)
    }

    /// Keeps a new lease of `granted` tokens and spends the first for the caller (so that no
    /// concurrent call can take the token the caller asked Redis for): whether it got one.
    fn fill(&self, granted: u64, wait: Duration, now: u64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.tokens = granted.saturating_sub(1);
        s.expires = now.saturating_add(nanos(LEASE_TTL));
        s.empty_until = if granted == 0 {
            now.saturating_add(nanos(wait))
        } else {
            0
        };
        granted > 0
    }

    /// Gives back a token for a call another quota refused.
    pub fn refund(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.tokens += 1;
    }

    /// Whether the replica holds no tokens for this key.
    pub fn is_empty(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tokens == 0
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The connection to Redis and its health.
pub struct Store {
    settings: Settings,
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    /// Until when the store is considered down (process clock, ns).
    down_until: AtomicU64,
    /// Whether the last call failed (to log the change, not every failure).
    failing: AtomicBool,
    counters: StoreCounters,
}

/// What the store did, for `/metrics` (shared by every generation's store).
#[derive(Debug, Clone, Default)]
pub struct StoreCounters {
    pub requests: Arc<AtomicU64>,
    pub failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("on_error", &self.settings.on_error)
            .finish_non_exhaustive()
    }
}

/// Why the store could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("quota store: {0}")]
pub struct StoreError(String);

impl Store {
    /// Prepares the client; nothing is connected until the first call needs Redis.
    pub fn new(settings: Settings, counters: StoreCounters) -> Result<Store, StoreError> {
        let client = redis::Client::open(settings.url.expose())
            .map_err(|e| StoreError(format!("invalid Redis URL ({:?})", e.kind())))?;
        Ok(Store {
            settings,
            client,
            connection: tokio::sync::OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            down_until: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            counters,
        })
    }

    pub fn on_error(&self) -> OnError {
        self.settings.on_error
    }

    /// Spends one token of `slot`'s shared bucket: from the local lease when it has one,
    /// else from a new lease.
    pub(super) async fn admit(&self, spec: &Spec, rate: Rate, slot: &Slot, now: u64) -> bool {
        if let Some(answer) = slot.lease.take(now) {
            return answer;
        }
        if now < self.down_until.load(Relaxed) {
            return self.fallback(rate, slot, now);
        }
        let _one = slot.lease.fetching.lock().await;
        // Another call may have leased meanwhile.
        let now = super::gcra::now();
        if let Some(answer) = slot.lease.take(now) {
            return answer;
        }
        let (per_second, burst) = spec.rate.unwrap_or((1.0, 1));
        let want = ((per_second * self.settings.lease.as_secs_f64()).ceil() as u64).clamp(1, burst);
        self.counters.requests.fetch_add(1, Relaxed);
        match tokio::time::timeout(
            self.settings.timeout,
            self.lease(&slot.key, per_second, burst, want),
        )
        .await
        {
            Ok(Ok((granted, wait_us))) => {
                if self.failing.swap(false, Relaxed) {
                    tracing::info!("quota store: Redis answers again");
                }
                let now = super::gcra::now();
                slot.lease
                    .fill(granted, Duration::from_micros(wait_us), now)
            }
            outcome => {
                self.counters.failures.fetch_add(1, Relaxed);
                let why = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", self.settings.timeout),
                };
                let now = super::gcra::now();
                self.down_until
                    .store(now.saturating_add(nanos(RETRY_AFTER)), Relaxed);
                if !self.failing.swap(true, Relaxed) {
                    tracing::warn!(error = %why, on_error = ?self.settings.on_error, "quota store: Redis is unavailable");
                }
                self.fallback(rate, slot, now)
            }
        }
    }

    fn fallback(&self, rate: Rate, slot: &Slot, now: u64) -> bool {
        match self.settings.on_error {
            OnError::Local => slot.bucket.admit(rate, now).is_ok(),
            OnError::Allow => true,
            OnError::Deny => false,
        }
    }

    async fn lease(
        &self,
        key: &str,
        per_second: f64,
        burst: u64,
        want: u64,
    ) -> redis::RedisResult<(u64, u64)> {
        let mut connection = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.settings.timeout))
                    .set_response_timeout(Some(self.settings.timeout))
                    .set_number_of_retries(1);
                self.client.get_connection_manager_with_config(config)
            })
            .await?
            .clone();
        self.script
            .key(format!("{KEY_PREFIX}{key}"))
            .arg(per_second)
            .arg(burst)
            .arg(want)
            .invoke_async(&mut connection)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_lease_spends_its_first_token_for_the_caller() {
        let lease = Lease::default();
        let now = 1_000;
        assert_eq!(lease.take(now), None, "nothing leased: ask Redis");
        assert!(lease.fill(1, Duration::ZERO, now), "the caller's token");
        assert_eq!(
            lease.take(now),
            None,
            "no token left for a newcomer to take"
        );
        assert!(lease.fill(3, Duration::ZERO, now));
        assert_eq!(lease.take(now), Some(true));
        assert_eq!(lease.take(now), Some(true));
        assert_eq!(lease.take(now), None);
        assert!(
            !lease.fill(0, Duration::from_millis(5), now),
            "Redis had none"
        );
        assert_eq!(
            lease.take(now + 1),
            Some(false),
            "known empty until the next token"
        );
        assert_eq!(
            lease.take(now + nanos(Duration::from_millis(5))),
            None,
            "ask again"
        );
        assert!(lease.fill(2, Duration::ZERO, now));
        assert_eq!(
            lease.take(now + nanos(LEASE_TTL)),
            None,
            "unspent tokens expire"
        );
    }
}
