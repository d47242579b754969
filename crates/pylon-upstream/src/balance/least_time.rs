//! Least time: the power of two choices over expected latency × load.
//!
//! Each request draws two distinct usable servers at random (weighted by their weights)
//! and takes the one with the lower cost, `latency × (in_flight + 1)`: the time a new
//! request can expect to wait there. Comparing two random servers instead of scanning all
//! for the best avoids the herd effect of every gateway thread piling onto the one server
//! that looked best a moment ago, costs O(1), and still steers almost all traffic away from
//! slow or overloaded servers (Mitzenmacher's "power of two choices"; linkerd and Finagle
//! balance this way). Equal costs are broken by fewer requests in flight.
//!
//! Latency is a peak EWMA, as in linkerd (tower's `PeakEwma`): a sample above the average
//! replaces it at once, so a server that starts to struggle is avoided at once; a lower
//! sample is averaged in with a weight that depends on the time since the last sample
//! (`1 - e^(-Δt/τ)`, τ = [`LATENCY_DECAY`]), so the average forgets at the same speed
//! whatever the request rate. Read for balancing, the average also decays toward zero with
//! the time since its last sample: a server avoided after a slow spell looks faster and
//! faster until it gets a request again, whose latency then sets its estimate afresh.
//! Without that, a server would be shunned forever by a single slow response.
//!
//! A server with no sample (new, or idle so long its estimate decayed to zero) is taken to
//! be as fast as the server it is compared with, so it gets tried, while in-flight counts
//! still stop a new server from receiving every request until its first response.
//!
//! Updates use atomics only: `latency_updated_ms` is advanced with `fetch_max` (so each
//! millisecond of elapsed time weighs one sample) and the average with a compare-and-swap
//! loop. The two are not updated together; a racing sample can be weighed with a slightly
//! wrong interval, which an average does not notice.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::random::{WeightedRandom, REDRAWS};
use super::Probe;
use crate::server::now_ms;
use crate::ServerState;

/// τ of the latency average: a sample's weight fades to `1/e` after this long (linkerd's
/// default).
pub const LATENCY_DECAY: Duration = Duration::from_secs(10);

const DECAY_MS: f64 = LATENCY_DECAY.as_millis() as f64;

/// `e^(-elapsed/τ)`: how much of the average is kept after `elapsed_ms`.
#[inline]
fn kept(elapsed_ms: u64) -> f64 {
    (-(elapsed_ms as f64) / DECAY_MS).exp()
}

impl ServerState {
    /// Records one response latency into the EWMA used by least_time.
    pub fn record_latency(&self, latency: Duration) {
        self.record_latency_at(latency, now_ms());
    }

    pub(crate) fn record_latency_at(&self, latency: Duration, now: u64) {
        // 0 means "no sample", so the fastest sample recorded is 1 µs.
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.latency_updated_ms.fetch_max(now, Ordering::Relaxed);
        let kept = if last == 0 {
            0.0
        } else {
            kept(now.saturating_sub(last))
        };
        let _ =
            self.latency_ewma_us
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                    if average == 0 || sample >= average {
                        return Some(sample);
                    }
                    let next = average as f64 * kept + sample as f64 * (1.0 - kept);
                    Some((next as u64).max(sample))
                });
    }

    /// The latency estimate least_time uses now (`None` before the first sample or once
    /// it has decayed away).
    pub fn latency_estimate(&self) -> Option<Duration> {
        match self.latency_estimate_at(now_ms()) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// The average decayed for the time since its last sample, in µs (0 = unknown).
    pub(crate) fn latency_estimate_at(&self, now: u64) -> u64 {
        let average = self.latency_ewma_us.load(Ordering::Relaxed);
        if average == 0 {
            return 0;
        }
        let elapsed = now.saturating_sub(self.latency_updated_ms.load(Ordering::Relaxed));
        if elapsed == 0 {
            return average;
        }
        (average as f64 * kept(elapsed)) as u64
    }
}

/// What least_time compares: latency estimate (µs, 0 = unknown) and requests in flight.
#[derive(Debug, Clone, Copy)]
struct Load {
    latency_us: u64,
    in_flight: u32,
}

impl Load {
    fn of(server: &ServerState, now: u64) -> Self {
        Load {
            latency_us: server.latency_estimate_at(now),
            in_flight: server.in_flight(),
        }
    }

    /// Whether `other` is strictly cheaper than `self`. An unknown latency counts as the
    /// known one, so only in-flight requests decide.
    fn beaten_by(self, other: Load) -> bool {
        let (mine, theirs) = match (self.latency_us, other.latency_us) {
            (0, known) | (known, 0) => (known, known),
            pair => pair,
        };
        let cost = |latency: u64, in_flight: u32| latency.saturating_mul(u64::from(in_flight) + 1);
        (cost(theirs, other.in_flight), other.in_flight)
            < (cost(mine, self.in_flight), self.in_flight)
    }
}

#[derive(Debug)]
pub struct LeastTime {
    weights: WeightedRandom,
}

impl LeastTime {
    pub fn new(weights: &[u32]) -> Self {
        LeastTime {
            weights: WeightedRandom::new(weights),
        }
    }

    pub(crate) fn select(
        &self,
        servers: &[Arc<ServerState>],
        probe: &mut Probe<'_>,
    ) -> Option<usize> {
        let now = now_ms();
        let mut first = None;
        for _ in 0..REDRAWS {
            let index = self.weights.pick()?;
            if probe.check(index) {
                first = Some(index);
                break;
            }
            if probe.exhausted() {
                return None;
            }
        }
        let Some(first) = first else {
            return Self::best_of_all(servers, probe, now);
        };
        let mut second = None;
        for _ in 0..REDRAWS {
            let Some(index) = self.weights.pick_other(first) else {
                break;
            };
            if probe.check(index) {
                second = Some(index);
                break;
            }
        }
        let Some(second) = second else {
            return Some(first);
        };
        let beaten = Load::of(&servers[first], now).beaten_by(Load::of(&servers[second], now));
        Some(if beaten { second } else { first })
    }

    /// Most of the pool is unusable: compare all the usable servers, from a random start.
    fn best_of_all(servers: &[Arc<ServerState>], probe: &mut Probe<'_>, now: u64) -> Option<usize> {
        let len = servers.len();
        let start = fastrand::usize(..len);
        let mut best: Option<(usize, Load)> = None;
        for offset in 0..len {
            let index = (start + offset) % len;
            let load = Load::of(&servers[index], now);
            let better = best.is_none_or(|(_, best)| best.beaten_by(load));
            if better && probe.check(index) {
                best = Some((index, load));
            }
        }
        best.map(|(index, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::{servers, tally};
    use crate::balance::{Algorithm, Balancer};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_faster_server_is_preferred_after_samples() {
        fastrand::seed(5);
        let servers = servers(&[1, 1, 1]);
        servers[0].record_latency(50 * MS);
        servers[1].record_latency(5 * MS);
        servers[2].record_latency(6 * MS);
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        let counts = tally(&balancer, &servers, 3_000, |_| None, |_| true);
        // The slow server loses every comparison; the two fast ones only lose to each
        // other, and the faster one always wins that.
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[1] > counts[2] && counts[2] > 500, "{counts:?}");
    }

    #[test]
    fn equal_servers_share_the_load() {
        fastrand::seed(6);
        let servers = servers(&[1, 1, 1, 1]);
        // Exactly equal estimates, stamped at the same instant: recording them one after the
        // other lets a busy machine's clock advance in between, and the decay then makes
        // the earliest look fastest, which would decide every comparison.
        let now = now_ms();
        for server in &servers {
            server.latency_ewma_us.store(10_000, Ordering::Relaxed);
            server.latency_updated_ms.store(now, Ordering::Relaxed);
        }
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        let counts = tally(&balancer, &servers, 4_000, |_| None, |_| true);
        assert!(
            counts.iter().all(|&n| n.abs_diff(1_000) < 150),
            "{counts:?}"
        );
    }

    #[test]
    fn weights_shape_the_draws() {
        fastrand::seed(7);
        let servers = servers(&[1, 3]);
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        let counts = tally(&balancer, &servers, 4_000, |_| None, |_| true);
        assert!(counts[0].abs_diff(1_000) < 150, "{counts:?}");
    }

    #[test]
    fn requests_in_flight_count_against_a_fast_server() {
        let servers = servers(&[1, 1]);
        servers[0].record_latency(5 * MS);
        servers[1].record_latency(10 * MS);
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        assert_eq!(balancer.select(&servers, None, &mut |_| true), Some(0));
        // 5 ms × 3 = 15 ms > 10 ms × 1.
        let _busy: Vec<_> = (0..2).map(|_| servers[0].start_request()).collect();
        assert_eq!(balancer.select(&servers, None, &mut |_| true), Some(1));
    }

    #[test]
    fn a_new_server_gets_tried_but_not_flooded() {
        fastrand::seed(8);
        let servers = servers(&[1, 1, 1]);
        servers[0].record_latency(10 * MS);
        servers[1].record_latency(10 * MS);
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        // Idle: unknown latency ties with the known one; in flight breaks the tie.
        let counts = tally(&balancer, &servers, 3_000, |_| None, |_| true);
        assert!(counts[2] > 500, "{counts:?}");
        let _waiting: Vec<_> = (0..3).map(|_| servers[2].start_request()).collect();
        let counts = tally(&balancer, &servers, 300, |_| None, |_| true);
        assert_eq!(counts[2], 0, "{counts:?}");
    }

    #[test]
    fn the_average_jumps_to_peaks_and_decays_with_time() {
        let server = &servers(&[1])[0];
        let t = 1_000_000;
        server.record_latency_at(100 * MS, t);
        assert_eq!(server.latency_estimate_at(t), 100_000);
        // A lower sample in the same millisecond weighs nothing…
        server.record_latency_at(10 * MS, t);
        assert_eq!(server.latency_estimate_at(t), 100_000);
        // …and one τ later it takes 1 - 1/e of the average.
        server.record_latency_at(10 * MS, t + 10_000);
        let expected =
            100_000.0 / std::f64::consts::E + 10_000.0 * (1.0 - 1.0 / std::f64::consts::E);
        let average = server.latency_estimate_at(t + 10_000) as f64;
        assert!((average - expected).abs() < 2.0, "{average} vs {expected}");
        // A higher sample replaces it at once.
        server.record_latency_at(200 * MS, t + 10_001);
        assert_eq!(server.latency_estimate_at(t + 10_001), 200_000);
        // Unrefreshed, the estimate fades toward "unknown".
        let later = server.latency_estimate_at(t + 20_001) as f64;
        assert!(
            (later - 200_000.0 / std::f64::consts::E).abs() < 2.0,
            "{later}"
        );
        assert_eq!(server.latency_estimate_at(t + 10_001 + 300_000), 0);
    }

    #[test]
    fn a_shunned_server_is_tried_again_once_its_estimate_fades() {
        let servers = servers(&[1, 1]);
        let t = 1_000_000;
        servers[0].record_latency_at(500 * MS, t);
        servers[1].record_latency_at(10 * MS, t + 60_000);
        let load = |i: usize, now| Load::of(&servers[i], now);
        assert!(load(0, t + 1).beaten_by(load(1, t + 1)));
        // 500 ms × e^-6 ≈ 1.2 ms: a minute later the slow server is worth a try.
        assert!(load(1, t + 60_000).beaten_by(load(0, t + 60_000)));
    }

    #[test]
    fn a_few_usable_servers_in_a_large_pool_are_found() {
        let servers = servers(&[1; 20]);
        for (i, server) in servers.iter().enumerate() {
            server.record_latency(Duration::from_millis(100 - i as u64));
        }
        let balancer = Balancer::new(Algorithm::LeastTime, &servers);
        // Four draws mostly miss the three usable servers; then all usable ones are compared.
        for _ in 0..50 {
            let picked = balancer.select(&servers, None, &mut |i| matches!(i, 0 | 7 | 14));
            assert!(matches!(picked, Some(0 | 7 | 14)), "{picked:?}");
        }
    }
}
