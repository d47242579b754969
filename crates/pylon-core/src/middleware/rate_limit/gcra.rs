//! The token bucket, as GCRA (the generic cell rate algorithm): the same decisions as a
//! bucket of `burst` tokens refilled one every `interval`, kept as one number per key.
//!
//! That number is the bucket's *theoretical arrival time* (`tat`): when the bucket will be
//! full again. `tat − now` is the bucket's *debt*, `burst − tokens` in time units. A request
//! fits when the debt plus one interval stays within `burst × interval`; it then adds one
//! interval to `tat`. A `tat` in the past is a full bucket, exactly like a key never seen:
//! forgetting such keys loses nothing, which is what makes eviction safe.
//!
//! Units are whatever the caller's clock counts in (nanoseconds locally); Redis works in
//! microseconds, so its [`Rate`] has an interval rounded down to whole microseconds.

use std::time::Duration;

/// The limit's parameters in clock units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Time between two tokens (`period / average`), in nanoseconds.
    interval: u64,
    /// The bucket's size, in tokens.
    burst: u64,
    /// `burst × interval`: the most debt the bucket may carry.
    capacity: u64,
}

/// What one decision found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub allowed: bool,
    /// Tokens left after this decision.
    pub remaining: u64,
    /// Until the bucket is full again.
    pub reset: Duration,
    /// For a refused request: until one token is back (the request would then pass).
    pub retry_after: Duration,
}

impl Rate {
    /// `average` tokens per `period`, at most `burst` at once. Valid configs keep the
    /// interval at 1µs or more and the capacity within a year (see `pylon-config`).
    pub fn new(period: Duration, average: u64, burst: u64) -> Rate {
        let interval = u64::try_from(period.as_nanos() / u128::from(average.max(1)))
            .unwrap_or(u64::MAX)
            .max(1);
        Rate::from_interval(interval, burst)
    }

    fn from_interval(interval: u64, burst: u64) -> Rate {
        let burst = burst.max(1);
        Rate {
            interval,
            burst,
            capacity: interval.saturating_mul(burst),
        }
    }

    /// The same rate with the interval rounded down to whole microseconds (Redis' clock
    /// resolution), so that both sides compute the same numbers.
    pub fn in_whole_micros(&self) -> Rate {
        Rate::from_interval((self.interval / 1_000).max(1) * 1_000, self.burst)
    }

    pub fn interval(&self) -> u64 {
        self.interval
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Decides one request for a bucket whose `tat` is stored (0 for a new key) at `now`.
    /// Returns what to report and, when the request passes, the new `tat` to store.
    pub fn take(&self, tat: u64, now: u64) -> (Report, Option<u64>) {
        let debt = tat.saturating_sub(now);
        let after = debt.saturating_add(self.interval);
        if after > self.capacity {
            (self.report(false, debt), None)
        } else {
            (self.report(true, after), Some(now + after))
        }
    }

    /// The report for a decision that left the bucket with `debt` (in this rate's clock
    /// units, nanoseconds).
    pub fn report(&self, allowed: bool, debt: u64) -> Report {
        let debt = debt.min(self.capacity);
        Report {
            allowed,
            remaining: (self.capacity - debt) / self.interval,
            reset: Duration::from_nanos(debt),
            // A refused request left `debt + interval > capacity`: it fits once the debt
            // has shrunk by the excess.
            retry_after: Duration::from_nanos(if allowed {
                0
            } else {
                debt + self.interval - self.capacity
            }),
        }
    }
}

/// Whole seconds, rounded up: waiting this long is always enough.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Runs requests at the given times (seconds) against one bucket: which passed.
    fn run(rate: Rate, times: &[f64]) -> Vec<bool> {
        let mut tat = 0;
        times
            .iter()
            .map(|t| {
                let now = (t * S as f64) as u64;
                let (report, new) = rate.take(tat, now);
                if let Some(new) = new {
                    tat = new;
                }
                report.allowed
            })
            .collect()
    }

    #[test]
    fn a_full_bucket_lets_burst_through_then_one_per_interval() {
        // 2 per second, bucket of 3: three at once, then one every 500ms.
        let rate = Rate::new(Duration::from_secs(1), 2, 3);
        assert_eq!(
            run(
                rate,
                &[10.0, 10.0, 10.0, 10.0, 10.4, 10.5, 10.6, 11.0, 11.0]
            ),
            [true, true, true, false, false, true, false, true, false]
        );
        // After a quiet spell the bucket is full again, but never fuller than `burst`.
        assert_eq!(
            run(rate, &[0.0, 100.0, 100.0, 100.0, 100.0]),
            [true, true, true, true, false]
        );
    }

    #[test]
    fn reports_remaining_reset_and_an_honest_retry_after() {
        let rate = Rate::new(Duration::from_secs(60), 1, 3);
        let (r, tat) = rate.take(0, 5 * S);
        assert_eq!((r.allowed, r.remaining), (true, 2));
        assert_eq!(r.reset, Duration::from_secs(60));
        let (r, tat) = rate.take(tat.unwrap(), 5 * S);
        let (r2, tat) = rate.take(tat.unwrap(), 5 * S);
        assert_eq!((r.remaining, r2.remaining), (1, 0));
        assert_eq!(r2.reset, Duration::from_secs(180));
        let tat = tat.unwrap();
        // Refused 10s later: one token comes back 60s after the third request.
        let (r, none) = rate.take(tat, 15 * S);
        assert_eq!(none, None);
        assert!(!r.allowed);
        assert_eq!(r.remaining, 0);
        assert_eq!(r.retry_after, Duration::from_secs(50));
        assert_eq!(r.reset, Duration::from_secs(170));
        // Honest: a moment before `retry_after` is still refused, at it the request passes.
        assert!(!rate.take(tat, 65 * S - 1).0.allowed);
        assert!(rate.take(tat, 65 * S).0.allowed);
    }

    #[test]
    fn the_interval_is_period_over_average() {
        let rate = Rate::new(Duration::from_secs(1), 3, 1);
        assert_eq!(rate.interval(), 333_333_333);
        assert_eq!(rate.in_whole_micros().interval(), 333_333_000);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
