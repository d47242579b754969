//! Buckets in this process's memory: 64 shards of `Mutex<HashMap<key hash, tat>>`.
//!
//! Why hand-written rather than `governor`: a bucket here is one `u64` (see `gcra.rs`), the
//! map is keyed by a hash computed without allocating, and eviction is exact — a bucket
//! whose `tat` has passed is full, the same as a key never seen, so sweeping it changes no
//! decision. `governor`'s keyed limiter would need `retain_recent()` driven by a timer and
//! an owned key per lookup. A decision locks one shard for a hash lookup and a few integer
//! operations; with 64 shards, two requests rarely wait on each other.
//!
//! Memory stays bounded under a flood of distinct keys: a shard sweeps out full buckets
//! whenever it has doubled since its last sweep, and never holds more than its share of
//! `max_keys`. When a sweep frees too little, the quarter of buckets closest to full is
//! forgotten (their keys start again from a full bucket: the limit loosens for them, it
//! never tightens). A flood's keys each hold one request's debt, so they go before a
//! heavy client's bucket does.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::gcra::{Rate, Report};
use super::key::{shard_of, PrehashedState, SHARDS};

/// A shard never sweeps below this many keys (sweeping tiny maps often is wasted work).
const MIN_SWEEP: usize = 16;

#[derive(Debug)]
pub struct LocalBuckets {
    rate: Rate,
    shards: Box<[Mutex<Shard>]>,
    /// The most keys one shard holds.
    shard_cap: usize,
    /// The clock's zero: `tat`s are nanoseconds since.
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Shard {
    tats: HashMap<u64, u64, PrehashedState>,
    /// Sweep when the map reaches this size.
    sweep_at: usize,
}

impl LocalBuckets {
    /// Buckets of `rate`, at most `max_keys` of them (rounded down to a multiple of 64).
    pub fn new(rate: Rate, max_keys: usize) -> LocalBuckets {
        let shard_cap = (max_keys / SHARDS).max(MIN_SWEEP);
        LocalBuckets {
            rate,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tats: HashMap::default(),
                        sweep_at: MIN_SWEEP,
                    })
                })
                .collect(),
            shard_cap,
            epoch: Instant::now(),
        }
    }

    /// Decides one request of the key with this hash, now.
    pub fn decide(&self, key: u64) -> Report {
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.decide_at(key, now)
    }

    /// Decides one request of the key with this hash at `now` (nanoseconds since the
    /// epoch; it must not go backwards).
    pub fn decide_at(&self, key: u64, now: u64) -> Report {
        let mut shard = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(tat) = shard.tats.get_mut(&key) {
            let (report, new_tat) = self.rate.take(*tat, now);
            if let Some(new_tat) = new_tat {
                *tat = new_tat;
            }
            return report;
        }
        // A new key: its bucket is full, so the request passes.
        let (report, new_tat) = self.rate.take(0, now);
        if let Some(new_tat) = new_tat {
            shard.make_room(now, self.shard_cap);
            shard.tats.insert(key, new_tat);
        }
        report
    }

    /// How many keys are held.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).tats.len())
            .sum()
    }
}

impl Shard {
    /// Before a new key goes in: sweeps full buckets when the map has doubled since the
    /// last sweep (amortised O(1) per insert), and keeps it under `cap`.
    fn make_room(&mut self, now: u64, cap: usize) {
        if self.tats.len() < self.sweep_at.min(cap) {
            return;
        }
        self.tats.retain(|_, tat| *tat > now);
        if self.tats.len() >= cap {
            // Forget the quarter closest to full: the smallest `tat`s.
            let mut tats: Vec<u64> = self.tats.values().copied().collect();
            let (_, threshold, _) = tats.select_nth_unstable(cap / 4);
            let threshold = *threshold;
            self.tats.retain(|_, tat| *tat > threshold);
        }
        self.sweep_at = (self.tats.len() * 2).clamp(MIN_SWEEP, cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    /// Distinct keys spread like real key hashes (splitmix64).
    fn spread(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn rate_limit_keys_have_separate_buckets() {
        let b = LocalBuckets::new(Rate::new(Duration::from_secs(3600), 1, 2), 100_000);
        let (a, c) = (spread(1), spread(2));
        let now = 5 * S;
        assert!(b.decide_at(a, now).allowed);
        assert!(b.decide_at(a, now).allowed);
        assert!(!b.decide_at(a, now).allowed);
        assert!(b.decide_at(c, now).allowed);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn rate_limit_memory_stays_bounded_under_100k_distinct_keys() {
        // A long period: no bucket refills during the flood, so only the cap bounds it.
        let cap = 10_240;
        let b = LocalBuckets::new(Rate::new(Duration::from_secs(3600), 1, 5), cap);
        let heavy = spread(u64::MAX);
        for _ in 0..5 {
            assert!(b.decide_at(heavy, S).allowed);
        }
        let mut most = 0;
        for i in 0..100_000u64 {
            assert!(b.decide_at(spread(i), S + i).allowed, "a new key passes");
            if i % 1000 == 0 {
                most = most.max(b.len());
            }
        }
        most = most.max(b.len());
        assert!(most <= cap, "held {most} keys, cap {cap}");
        assert!(b.len() > cap / 2, "eviction keeps most keys: {}", b.len());
        // The heavy client's empty bucket is not what the flood pushed out.
        assert!(!b.decide_at(heavy, 2 * S).allowed);
    }

    #[test]
    fn rate_limit_idle_keys_are_evicted() {
        // 10 per second, bucket of 10: a key is full again 1s after its last request.
        let b = LocalBuckets::new(Rate::new(Duration::from_secs(1), 10, 10), 100_000);
        for i in 0..5_000u64 {
            b.decide_at(spread(i), S);
        }
        assert_eq!(b.len(), 5_000);
        // Later, other keys arrive: the idle ones are swept as the shards grow.
        for i in 5_000..10_000u64 {
            b.decide_at(spread(i), 10 * S);
        }
        assert!(
            b.len() < 7_000,
            "idle keys were not evicted: {} held",
            b.len()
        );
        // Evicted keys lost nothing: they start from a full bucket, as they would have.
        for _ in 0..10 {
            assert!(b.decide_at(spread(1), 10 * S).allowed);
        }
        assert!(!b.decide_at(spread(1), 10 * S).allowed);
    }
}
