//! A lock-free token bucket as GCRA (the generic cell rate algorithm): one atomic word, the
//! bucket's "theoretical arrival time", per bucket. A call is admitted when, after spending its
//! token, the bucket would not be more than `burst` tokens in debt to the clock; admission is
//! one compare-and-swap, with no timer and no refill task.
//!
//! Times are nanoseconds on the process's monotonic clock ([`now`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds since the process's first call: the clock every bucket reads.
pub fn now() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A rate: one token every `interval` nanoseconds, at most `burst` saved up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub interval: u64,
    pub burst: u64,
}

impl Rate {
    /// `per_second` tokens a second (fractions allowed), `burst` at most.
    pub fn new(per_second: f64, burst: u64) -> Rate {
        let interval = (1e9 / per_second).round().clamp(1.0, u64::MAX as f64) as u64;
        Rate {
            interval,
            burst: burst.max(1),
        }
    }

    /// How far the bucket may run ahead of the clock: the burst, in time.
    fn tolerance(self) -> u64 {
        self.interval.saturating_mul(self.burst)
    }
}

/// One bucket: a full bucket is the state of a new one (`tat` 0), so an idle bucket can be
/// dropped and made again without changing any answer.
#[derive(Debug, Default)]
pub struct Gcra {
    tat: AtomicU64,
}

impl Gcra {
    /// Spends one token at `now`, or says how long until one is there.
    pub fn admit(&self, rate: Rate, now: u64) -> Result<(), Duration> {
        let mut tat = self.tat.load(Relaxed);
        loop {
            let next = tat.max(now).saturating_add(rate.interval);
            let ahead = next - now;
            if ahead > rate.tolerance() {
                return Err(Duration::from_nanos(ahead - rate.tolerance()));
            }
            match self.tat.compare_exchange_weak(tat, next, Relaxed, Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }

    /// Gives back a token spent by [`admit`](Self::admit) for a call that another quota then
    /// refused.
    pub fn refund(&self, rate: Rate) {
        // Never below zero; a bucket refilled meanwhile just stays full.
        let _ = self
            .tat
            .fetch_update(Relaxed, Relaxed, |t| Some(t.saturating_sub(rate.interval)));
    }

    /// Whether the bucket is full at `now` (nothing spent that has not refilled).
    pub fn is_full(&self, now: u64) -> bool {
        self.tat.load(Relaxed) <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_full_bucket_admits_its_burst_then_one_per_interval() {
        let rate = Rate::new(10.0, 5);
        let bucket = Gcra::default();
        let t0 = 7 * SECOND;
        for i in 0..5 {
            assert_eq!(bucket.admit(rate, t0), Ok(()), "call {i} of the burst");
        }
        let wait = bucket.admit(rate, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(100));
        // 99 ms later still nothing; at 100 ms one token.
        assert!(bucket.admit(rate, t0 + 99_000_000).is_err());
        assert_eq!(bucket.admit(rate, t0 + 100_000_000), Ok(()));
        assert!(bucket.admit(rate, t0 + 100_000_000).is_err());
    }

    #[test]
    fn admits_the_rate_over_a_long_run() {
        let rate = Rate::new(50.0, 10);
        let bucket = Gcra::default();
        let mut admitted = 0;
        // 10 calls every millisecond for 10 s: 50/s plus the burst get through.
        for ms in 0..10_000u64 {
            for _ in 0..10 {
                admitted += u64::from(bucket.admit(rate, SECOND + ms * 1_000_000).is_ok());
            }
        }
        assert!((500..=511).contains(&admitted), "{admitted}");
    }

    #[test]
    fn fractional_rates_and_refunds() {
        let rate = Rate::new(0.5, 1);
        assert_eq!(rate.interval, 2 * SECOND);
        let bucket = Gcra::default();
        assert!(bucket.admit(rate, SECOND).is_ok());
        assert!(bucket.admit(rate, 2 * SECOND).is_err());
        bucket.refund(rate);
        assert!(bucket.admit(rate, 2 * SECOND).is_ok());
        assert!(!bucket.is_full(2 * SECOND));
        assert!(bucket.is_full(4 * SECOND));
    }

    #[test]
    fn the_clock_moves_forward() {
        let a = now();
        let b = now();
        assert!(b >= a);
    }
}
