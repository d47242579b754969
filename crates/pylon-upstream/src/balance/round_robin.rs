//! Smooth weighted round robin, precomputed so that picking a server is one atomic add.
//!
//! nginx's smooth weighted round robin spreads a heavy server's turns out over the cycle
//! (weights 5,1,1 give `a a b a c a a`, not `a a a a a b c`), which keeps a weighted server
//! from receiving bursts. Running that algorithm needs a lock over the current weights, so we
//! run it once when the pool is built and store the resulting cycle; a request then only
//! advances an atomic cursor. The cycle has `sum(weight) / gcd(weights)` entries, capped at
//! [`MAX_CYCLE_LEN`]: past the cap the cycle is a prefix of the full one, still smooth and
//! within one turn per server of the exact proportions.
//!
//! When the cycle's pick is unusable, the request takes the next turn of the cycle, and the
//! next, consuming them: the skipped server's turns are thus shared among the others in
//! the cycle's own weighted, smooth order (skipping without consuming would hand all of a
//! down server's turns to whichever server follows it). After [`WALK_LIMIT`] turns — only
//! when most of the pool is unusable — it scans the indexes from the last pick on.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Probe, WALK_LIMIT};

/// The longest cycle we precompute (entries are `u32`, so 256 KiB at most).
pub const MAX_CYCLE_LEN: usize = 65_536;

/// A precomputed smooth weighted round-robin cycle over server indexes.
#[derive(Debug)]
pub struct SmoothRoundRobin {
    cycle: Box<[u32]>,
    cursor: AtomicUsize,
}

impl SmoothRoundRobin {
    /// Builds the cycle for servers with the given weights (a weight of 0 is treated as 1).
    pub fn new(weights: &[u32]) -> Self {
        SmoothRoundRobin {
            cycle: smooth_cycle(weights).into_boxed_slice(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The next server index in the cycle, or `None` when there is no server.
    #[inline]
    pub fn next(&self) -> Option<usize> {
        if self.cycle.is_empty() {
            return None;
        }
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed);
        Some(self.cycle[turn % self.cycle.len()] as usize)
    }

    /// The next usable server in the cycle.
    pub(crate) fn select(&self, probe: &mut Probe<'_>) -> Option<usize> {
        let mut last = 0;
        for _ in 0..WALK_LIMIT.min(self.cycle.len()) {
            last = self.next()?;
            if probe.check(last) {
                return Some(last);
            }
            if probe.exhausted() {
                return None;
            }
        }
        probe.first_usable_from(last + 1)
    }

    /// The precomputed cycle (for tests and diagnostics).
    pub fn cycle(&self) -> &[u32] {
        &self.cycle
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Runs nginx's smooth weighted round robin for one full cycle.
fn smooth_cycle(weights: &[u32]) -> Vec<u32> {
    if weights.is_empty() {
        return Vec::new();
    }
    let weights: Vec<u64> = weights.iter().map(|&w| u64::from(w.max(1))).collect();
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<i64> = weights.iter().map(|w| (w / divisor) as i64).collect();
    let total: i64 = weights.iter().sum();
    let len = usize::try_from(total)
        .unwrap_or(MAX_CYCLE_LEN)
        .min(MAX_CYCLE_LEN);
    let mut current = vec![0i64; weights.len()];
    let mut cycle = Vec::with_capacity(len);
    for _ in 0..len {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        cycle.push(best as u32);
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{servers, tally};
    use crate::balance::{Algorithm, Balancer};

    #[test]
    fn equal_weights_alternate() {
        let rr = SmoothRoundRobin::new(&[1, 1, 1]);
        let picks: Vec<_> = (0..6).filter_map(|_| rr.next()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weights_are_smooth_like_nginx() {
        // nginx's documented example: weights 5,1,1 give a a b a c a a.
        let rr = SmoothRoundRobin::new(&[5, 1, 1]);
        assert_eq!(rr.cycle(), &[0, 0, 1, 0, 2, 0, 0]);
        let servers = servers(&[5, 1, 1]);
        let balancer = Balancer::new(Algorithm::RoundRobin, &servers);
        let picks: Vec<_> = (0..14)
            .filter_map(|_| balancer.select(&servers, None, &mut |_| true))
            .collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn no_server_gets_a_burst_beyond_its_share() {
        // Smoothness: over any window of the cycle, each server's count stays within one
        // turn of its exact share.
        let weights = [7u32, 3, 2, 1];
        let rr = SmoothRoundRobin::new(&weights);
        let total: u32 = weights.iter().sum();
        let cycle = rr.cycle();
        for window in 1..=cycle.len() {
            for start in 0..cycle.len() {
                for (server, &w) in weights.iter().enumerate() {
                    let seen = (0..window)
                        .filter(|k| cycle[(start + k) % cycle.len()] as usize == server)
                        .count() as f64;
                    let exact = window as f64 * f64::from(w) / f64::from(total);
                    assert!((seen - exact).abs() < 2.0, "{server} in {start}+{window}");
                }
            }
        }
    }

    #[test]
    fn weights_are_reduced_by_gcd_and_honoured() {
        let rr = SmoothRoundRobin::new(&[200, 100]);
        assert_eq!(rr.cycle(), &[0, 1, 0]);
        let mut counts = [0usize; 2];
        for _ in 0..300 {
            counts[rr.next().unwrap_or(9)] += 1;
        }
        assert_eq!(counts, [200, 100]);
    }

    #[test]
    fn huge_weights_are_capped_and_still_proportional() {
        let rr = SmoothRoundRobin::new(&[1_000_000, 999_999]);
        assert_eq!(rr.cycle().len(), MAX_CYCLE_LEN);
        let zeros = rr.cycle().iter().filter(|&&i| i == 0).count();
        assert!((zeros as i64 - (MAX_CYCLE_LEN / 2) as i64).abs() <= 1);
    }

    #[test]
    fn distribution_follows_weights_1_2_3() {
        let servers = servers(&[1, 2, 3]);
        let balancer = Balancer::new(Algorithm::RoundRobin, &servers);
        let counts = tally(&balancer, &servers, 6_000, |_| None, |_| true);
        // Exact for whole cycles; the brief asks for ±5%.
        assert_eq!(counts, [1_000, 2_000, 3_000]);
    }

    #[test]
    fn an_unusable_servers_turns_are_shared_by_the_others() {
        // Skipping consumes turns, so the others keep their relative weights instead of the
        // server after the unusable one taking all its turns.
        let servers = servers(&[1, 1, 1]);
        let balancer = Balancer::new(Algorithm::RoundRobin, &servers);
        let counts = tally(&balancer, &servers, 600, |_| None, |i| i != 1);
        assert_eq!(counts, [300, 0, 300]);

        let servers = self::servers(&[5, 1, 1]);
        let balancer = Balancer::new(Algorithm::RoundRobin, &servers);
        let counts = tally(&balancer, &servers, 600, |_| None, |i| i != 0);
        assert_eq!(counts, [0, 300, 300]);
    }

    #[test]
    fn a_rare_usable_server_in_a_long_cycle_is_found() {
        // 1000:1 — the light server appears once per 1001 turns, far past the walk limit.
        let servers = servers(&[1_000, 1]);
        let balancer = Balancer::new(Algorithm::RoundRobin, &servers);
        for _ in 0..10 {
            assert_eq!(balancer.select(&servers, None, &mut |i| i == 1), Some(1));
        }
    }
}
