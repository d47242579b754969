//! Weighted random: each request picks a server with probability proportional to weight.
//!
//! Random needs no shared cursor, so unlike round robin it costs no cache-line traffic
//! between cores, and many independent gateways in front of the same pool do not fall into
//! lock-step. A pick draws a number below the total weight and binary-searches the
//! cumulative weights built with the pool.
//!
//! An unusable pick is redrawn a few times ([`REDRAWS`]); with most of the pool usable that
//! almost always succeeds, without touching the other servers. If it does not, one pass
//! over the pool does a weighted reservoir draw among the usable servers (each replaces
//! the choice with probability `weight / weight seen so far`), which is exactly weighted
//! over the usable ones and allocates nothing.
//!
//! [`WeightedRandom::pick`] and [`WeightedRandom::pick_other`] are also least_time's way
//! of drawing its two candidates.

use super::Probe;

/// How many draws are tried before the one-pass fallback.
pub const REDRAWS: usize = 4;

/// Cumulative weights of a pool, for weighted draws.
#[derive(Debug)]
pub struct WeightedRandom {
    /// `cumulative[i]` is the sum of the weights of servers `0..=i`.
    cumulative: Box<[u64]>,
}

impl WeightedRandom {
    /// Builds the table for servers with the given weights (a weight of 0 is treated as 1).
    pub fn new(weights: &[u32]) -> Self {
        let cumulative = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w.max(1));
                Some(*sum)
            })
            .collect();
        WeightedRandom { cumulative }
    }

    /// Sum of all weights.
    #[inline]
    fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    #[inline]
    fn weight(&self, index: usize) -> u64 {
        let below = if index == 0 {
            0
        } else {
            self.cumulative[index - 1]
        };
        self.cumulative[index] - below
    }

    /// The server whose weight range holds `point` (< total).
    #[inline]
    fn locate(&self, point: u64) -> usize {
        self.cumulative.partition_point(|&c| c <= point)
    }

    /// A server drawn with probability proportional to its weight; `None` for no server.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        let total = self.total();
        (total > 0).then(|| self.locate(fastrand::u64(..total)))
    }

    /// A server other than `excluded`, drawn proportionally to weight among the others;
    /// `None` if there is no other.
    #[inline]
    pub fn pick_other(&self, excluded: usize) -> Option<usize> {
        if excluded >= self.cumulative.len() {
            return self.pick();
        }
        let excluded_weight = self.weight(excluded);
        let rest = self.total() - excluded_weight;
        if rest == 0 {
            return None;
        }
        // Draw over the total without the excluded range, then step over that range.
        let mut point = fastrand::u64(..rest);
        if point >= self.cumulative[excluded] - excluded_weight {
            point += excluded_weight;
        }
        Some(self.locate(point))
    }

    /// A usable server, drawn proportionally to weight among the usable ones.
    pub(crate) fn select(&self, probe: &mut Probe<'_>) -> Option<usize> {
        for _ in 0..REDRAWS {
            let index = self.pick()?;
            if probe.check(index) {
                return Some(index);
            }
            if probe.exhausted() {
                return None;
            }
        }
        self.reservoir(probe)
    }

    /// One pass of weighted reservoir sampling over the usable servers.
    fn reservoir(&self, probe: &mut Probe<'_>) -> Option<usize> {
        let mut chosen = None;
        let mut seen = 0u64;
        for index in 0..probe.len().min(self.cumulative.len()) {
            if !probe.check(index) {
                continue;
            }
            let weight = self.weight(index);
            seen += weight;
            if fastrand::u64(..seen) < weight {
                chosen = Some(index);
            }
        }
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{servers, tally};
    use crate::balance::{Algorithm, Balancer};

    /// Asserts each server's share of `counts` is within 5 points of its weight's share.
    fn assert_shares(counts: &[usize], weights: &[u32]) {
        let picks: usize = counts.iter().sum();
        let total: u32 = weights.iter().sum();
        for (i, (&n, &w)) in counts.iter().zip(weights).enumerate() {
            let share = n as f64 / picks as f64;
            let expected = f64::from(w) / f64::from(total);
            assert!(
                (share - expected).abs() <= 0.05,
                "server {i}: {share:.3} vs {expected:.3} ({counts:?})"
            );
        }
    }

    #[test]
    fn distribution_follows_weights_1_2_3() {
        fastrand::seed(1);
        let servers = servers(&[1, 2, 3]);
        let balancer = Balancer::new(Algorithm::Random, &servers);
        let counts = tally(&balancer, &servers, 6_000, |_| None, |_| true);
        assert_shares(&counts, &[1, 2, 3]);
    }

    #[test]
    fn usable_servers_keep_their_relative_weights() {
        fastrand::seed(2);
        let servers = servers(&[1, 5, 2, 3]);
        let balancer = Balancer::new(Algorithm::Random, &servers);
        // The heavy server is out: draws fail often, the rest is weighted 1:2:3.
        let counts = tally(&balancer, &servers, 6_000, |_| None, |i| i != 1);
        assert_eq!(counts[1], 0);
        assert_shares(&[counts[0], counts[2], counts[3]], &[1, 2, 3]);
    }

    #[test]
    fn the_reservoir_fallback_is_weighted() {
        fastrand::seed(3);
        let random = WeightedRandom::new(&[1, 100, 2, 100, 3]);
        let usable = |i: usize| matches!(i, 0 | 2 | 4);
        let mut counts = [0usize; 5];
        for _ in 0..6_000 {
            let mut usable = usable;
            let mut probe = Probe::new(&mut usable, 5);
            let picked = random.reservoir(&mut probe).expect("a usable server");
            counts[picked] += 1;
        }
        assert_shares(&[counts[0], counts[2], counts[4]], &[1, 2, 3]);
    }

    #[test]
    fn pick_other_never_returns_the_excluded_and_stays_weighted() {
        fastrand::seed(4);
        let random = WeightedRandom::new(&[3, 1, 2, 3]);
        let mut counts = [0usize; 4];
        for _ in 0..6_000 {
            let picked = random.pick_other(3).expect("another server");
            counts[picked] += 1;
        }
        assert_eq!(counts[3], 0);
        assert_shares(&counts[..3], &[3, 1, 2]);
        assert_eq!(WeightedRandom::new(&[4]).pick_other(0), None);
        assert_eq!(WeightedRandom::new(&[]).pick(), None);
    }
}
