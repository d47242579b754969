//! The retry budget: retries may add at most a fraction of the pool's request rate (plus a
//! small floor), so that a failing fleet is not hammered by its own clients' retries.
//!
//! Modelled on Finagle's and linkerd's retry budgets: over a sliding window of
//! [`WINDOW_SECS`] one-second slots, a retry is allowed while
//! `retries + 1 <= ratio × requests + min_per_sec × WINDOW_SECS`. Counters are atomics in a
//! ring of slots; a slot is reset by the first request that finds it stale. The reset can race
//! with a concurrent increment and lose it: the budget is a safety valve, not an invoice.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Length of the sliding window, in one-second slots.
pub const WINDOW_SECS: u64 = 10;

#[derive(Debug, Default)]
struct Slot {
    second: AtomicU64,
    requests: AtomicU32,
    retries: AtomicU32,
}

#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: u32,
    slots: [Slot; WINDOW_SECS as usize],
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_sec: u32) -> Self {
        RetryBudget {
            ratio: ratio.clamp(0.0, 1.0),
            min_per_sec,
            slots: Default::default(),
        }
    }

    fn slot(&self, second: u64) -> &Slot {
        let slot = &self.slots[(second % WINDOW_SECS) as usize];
        let seen = slot.second.load(Ordering::Relaxed);
        if seen != second
            && slot
                .second
                .compare_exchange(seen, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            slot.requests.store(0, Ordering::Relaxed);
            slot.retries.store(0, Ordering::Relaxed);
        }
        slot
    }

    fn totals(&self, second: u64) -> (u64, u64) {
        let oldest = second.saturating_sub(WINDOW_SECS - 1);
        self.slots
            .iter()
            .filter(|s| {
                let at = s.second.load(Ordering::Relaxed);
                at >= oldest && at <= second
            })
            .fold((0, 0), |(req, ret), s| {
                (
                    req + u64::from(s.requests.load(Ordering::Relaxed)),
                    ret + u64::from(s.retries.load(Ordering::Relaxed)),
                )
            })
    }

    /// Counts one original request at `now_ms` (a monotonic millisecond clock).
    pub fn record_request(&self, now_ms: u64) {
        self.slot(now_ms / 1000)
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if it allows one; returns whether it did.
    pub fn try_retry(&self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        let (requests, retries) = self.totals(second);
        let allowed =
            self.ratio * requests as f64 + f64::from(self.min_per_sec) * WINDOW_SECS as f64;
        if (retries + 1) as f64 > allowed {
            return false;
        }
        self.slot(second).retries.fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_at_ratio_plus_floor() {
        let budget = RetryBudget::new(0.2, 0);
        let t = 5_000;
        for _ in 0..100 {
            budget.record_request(t);
        }
        let granted = (0..100).filter(|_| budget.try_retry(t)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn the_floor_allows_retries_at_low_rates() {
        let budget = RetryBudget::new(0.2, 3);
        let granted = (0..100).filter(|_| budget.try_retry(1_000)).count();
        assert_eq!(granted, 30, "min_per_sec × window");
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let budget = RetryBudget::new(0.5, 0);
        for _ in 0..10 {
            budget.record_request(1_000);
        }
        assert!(budget.try_retry(1_000));
        // Eleven seconds later the requests of second 1 no longer count.
        assert!(!budget.try_retry(12_000));
    }
}
