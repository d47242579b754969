//! Least connections: the usable server with the fewest in-flight requests per unit of
//! weight.
//!
//! In-flight requests are the load a server is carrying now, so this adapts at once to a
//! server that slows down (its requests pile up) without measuring time. Loads are compared
//! as `in_flight_a / weight_a < in_flight_b / weight_b` by cross-multiplication in `u64`,
//! so no floats and no rounding.
//!
//! Ties are common (at low load every server has 0 in flight), and scanning from index 0
//! would then send everything to the first server. The scan therefore starts at the next
//! turn of a smooth weighted round-robin cycle and a later server must be strictly less
//! loaded to win: equally loaded servers share requests in proportion to their weights,
//! which is what nginx does (it breaks ties by weighted round robin). A server with nothing
//! in flight cannot be beaten, so the scan stops at the first usable idle one.
//!
//! `usable` is only asked about a server that would become the best so far, so a scan
//! usually asks about one or two servers, not all of them.

use std::sync::Arc;

use super::round_robin::SmoothRoundRobin;
use super::Probe;
use crate::ServerState;

#[derive(Debug)]
pub struct LeastConn {
    /// Where each scan starts: the weighted rotation that breaks ties.
    start: SmoothRoundRobin,
}

impl LeastConn {
    pub fn new(weights: &[u32]) -> Self {
        LeastConn {
            start: SmoothRoundRobin::new(weights),
        }
    }

    pub(crate) fn select(
        &self,
        servers: &[Arc<ServerState>],
        probe: &mut Probe<'_>,
    ) -> Option<usize> {
        let len = servers.len();
        let start = self.start.next()? % len;
        // (index, in flight, weight) of the best usable server so far.
        let mut best: Option<(usize, u64, u64)> = None;
        for offset in 0..len {
            let index = (start + offset) % len;
            let server = &servers[index];
            let load = u64::from(server.in_flight());
            let weight = u64::from(server.weight.max(1));
            let better = match best {
                None => true,
                Some((_, best_load, best_weight)) => load * best_weight < best_load * weight,
            };
            if better && probe.check(index) {
                best = Some((index, load, weight));
                if load == 0 {
                    break;
                }
            }
        }
        best.map(|(index, _, _)| index)
    }
}

#[cfg(test)]
mod tests {
    use crate::balance::tests::{servers, tally};
    use crate::balance::{Algorithm, Balancer};

    #[test]
    fn the_idle_server_is_preferred() {
        let servers = servers(&[1, 1, 1]);
        let _busy: Vec<_> = [0, 0, 2]
            .iter()
            .map(|&i| servers[i].start_request())
            .collect();
        let balancer = Balancer::new(Algorithm::LeastConn, &servers);
        let counts = tally(&balancer, &servers, 100, |_| None, |_| true);
        assert_eq!(counts, [0, 100, 0]);
    }

    #[test]
    fn load_is_relative_to_weight() {
        let servers = servers(&[1, 3]);
        let balancer = Balancer::new(Algorithm::LeastConn, &servers);
        // 1 of weight 1 (load 1) vs 2 of weight 3 (load 2/3): the heavy server wins.
        let _a = servers[0].start_request();
        let _b: Vec<_> = (0..2).map(|_| servers[1].start_request()).collect();
        assert_eq!(balancer.select(&servers, None, &mut |_| true), Some(1));
        // 1 vs 3 of weight 3: equal loads, the tie is broken by the weighted rotation.
        let _c = servers[1].start_request();
        let counts = tally(&balancer, &servers, 400, |_| None, |_| true);
        assert_eq!(counts, [100, 300]);
    }

    #[test]
    fn held_requests_spread_by_weight() {
        // Requests that stay in flight fill servers in proportion to their weights.
        let servers = servers(&[1, 2, 3]);
        let balancer = Balancer::new(Algorithm::LeastConn, &servers);
        let mut held = Vec::new();
        for _ in 0..600 {
            let index = balancer
                .select(&servers, None, &mut |_| true)
                .expect("a server");
            held.push(servers[index].start_request());
        }
        let in_flight: Vec<_> = servers.iter().map(|s| s.in_flight()).collect();
        assert_eq!(in_flight, [100, 200, 300]);
        drop(held);
        assert!(servers.iter().all(|s| s.in_flight() == 0));
    }

    #[test]
    fn idle_servers_share_by_weight() {
        let servers = servers(&[1, 2, 3]);
        let balancer = Balancer::new(Algorithm::LeastConn, &servers);
        let counts = tally(&balancer, &servers, 6_000, |_| None, |_| true);
        assert_eq!(counts, [1_000, 2_000, 3_000]);
    }

    #[test]
    fn an_unusable_idle_server_is_passed_over() {
        let servers = servers(&[1, 1, 1]);
        let _busy = servers[2].start_request();
        let balancer = Balancer::new(Algorithm::LeastConn, &servers);
        let counts = tally(&balancer, &servers, 100, |_| None, |i| i != 1);
        assert_eq!(counts, [100, 0, 0]);
        let counts = tally(&balancer, &servers, 100, |_| None, |i| i == 2);
        assert_eq!(counts, [0, 0, 100]);
    }
}
