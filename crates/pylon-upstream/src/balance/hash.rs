//! Consistent hashing: a request key (client ip for `ip_hash`, a header, a cookie, …)
//! always goes to the same server, and changing the pool moves few keys.
//!
//! The ring is Pingora's Ketama [`Continuum`], a port of nginx's `hash … consistent`: each
//! server puts `160 × weight` points on a 32-bit circle, seeded by its address, and a key
//! (hashed with CRC32) belongs to the first point at or after its hash. Because a server's
//! points depend only on its own address and weight, adding or removing one server moves
//! only the keys whose first point changes — those of that server — and, with the same
//! servers and weights, keys land where nginx would put them.
//!
//! An unusable server is handled by walking on along the ring ([`Continuum::node_iter`]) to
//! the next usable server's point, not by rebuilding the ring: the unusable server's keys
//! spread over the others as if it had been removed, and every other key stays put. The walk
//! is bounded ([`WALK_LIMIT`] points); past it — only when most of the pool is unusable —
//! the key scans the indexes from its own server on, which is still stable per key.
//!
//! Without a key (the header or cookie is missing) the request is balanced by smooth
//! weighted round robin over the same servers.
//!
//! Limits: weights are scaled down (keeping at least 1) when they add up to more than
//! [`MAX_RING_WEIGHT`], to bound the ring's memory (8 bytes a point); keys then map
//! differently from nginx, and a pool change that alters the scaling moves more keys. Only
//! the first [`MAX_RING_SERVERS`] servers (the ring's node index is 16 bits) are put on the
//! ring. Two servers with the same address share one set of points: the first gets their
//! keys.

use std::net::SocketAddr;
use std::sync::Arc;

use pingora_ketama::{Bucket, Continuum};

use super::round_robin::SmoothRoundRobin;
use super::{Probe, WALK_LIMIT};
use crate::ServerState;

/// Largest sum of weights put on the ring as given; above it weights are scaled down.
/// 4,096 × 160 points × 8 bytes ≈ 5 MiB at most per pool.
pub const MAX_RING_WEIGHT: u64 = 4_096;

/// How many servers the ring can hold (Ketama stores node indexes as `u16`).
pub const MAX_RING_SERVERS: usize = u16::MAX as usize + 1;

pub struct KetamaHash {
    ring: Continuum,
    /// Ring addresses back to server indexes, sorted by address for binary search (the
    /// ring yields addresses, not our indexes).
    by_address: Box<[(SocketAddr, usize)]>,
    /// For requests without a key.
    round_robin: SmoothRoundRobin,
}

impl KetamaHash {
    pub fn new(servers: &[Arc<ServerState>]) -> Self {
        let servers = &servers[..servers.len().min(MAX_RING_SERVERS)];
        let weights: Vec<u32> = servers.iter().map(|s| s.weight.max(1)).collect();
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let buckets: Vec<Bucket> = servers
            .iter()
            .zip(&weights)
            .map(|(server, &weight)| {
                let weight = if total > MAX_RING_WEIGHT {
                    let scaled = u64::from(weight) * MAX_RING_WEIGHT / total;
                    u32::try_from(scaled).unwrap_or(1).max(1)
                } else {
                    weight
                };
                Bucket::new(server.address, weight)
            })
            .collect();
        let mut by_address: Vec<(SocketAddr, usize)> = servers
            .iter()
            .enumerate()
            .map(|(index, server)| (server.address, index))
            .collect();
        // Stable, so the first of duplicate addresses comes first.
        by_address.sort_by_key(|&(address, _)| address);
        by_address.dedup_by_key(|&mut (address, _)| address);
        KetamaHash {
            ring: Continuum::new(&buckets),
            by_address: by_address.into_boxed_slice(),
            round_robin: SmoothRoundRobin::new(&weights),
        }
    }

    fn index_of(&self, address: &SocketAddr) -> Option<usize> {
        self.by_address
            .binary_search_by_key(address, |&(address, _)| address)
            .ok()
            .map(|found| self.by_address[found].1)
    }

    /// The server owning `key` on the ring, or the next usable one after it.
    pub(crate) fn select(&self, key: Option<&[u8]>, probe: &mut Probe<'_>) -> Option<usize> {
        let Some(key) = key else {
            return self.round_robin.select(probe);
        };
        let mut home = None;
        for address in self.ring.node_iter(key).take(WALK_LIMIT) {
            let Some(index) = self.index_of(address) else {
                continue;
            };
            home.get_or_insert(index);
            if probe.check(index) {
                return Some(index);
            }
            if probe.exhausted() {
                return None;
            }
        }
        probe.first_usable_from(home.map_or(0, |home| home + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::tests::servers;
    use crate::balance::{Algorithm, Balancer};

    fn key(i: usize) -> Vec<u8> {
        format!("10.1.{}.{}", i / 256, i % 256).into_bytes()
    }

    /// The address each of `keys` keys goes to.
    fn owners(
        servers: &[Arc<ServerState>],
        keys: usize,
        mut usable: impl FnMut(usize) -> bool,
    ) -> Vec<SocketAddr> {
        let balancer = Balancer::new(Algorithm::Hash, servers);
        (0..keys)
            .map(|i| {
                let index = balancer
                    .select(servers, Some(&key(i)), &mut usable)
                    .expect("a usable server");
                servers[index].address
            })
            .collect()
    }

    #[test]
    fn a_key_sticks_to_its_server() {
        let servers = servers(&[1, 1, 1, 1, 1]);
        let balancer = Balancer::new(Algorithm::Hash, &servers);
        for i in 0..100 {
            let first = balancer.select(&servers, Some(&key(i)), &mut |_| true);
            for _ in 0..5 {
                assert_eq!(
                    balancer.select(&servers, Some(&key(i)), &mut |_| true),
                    first
                );
            }
        }
        // A balancer rebuilt for the same servers agrees (no per-instance state).
        assert_eq!(
            owners(&servers, 1_000, |_| true),
            owners(&servers, 1_000, |_| true)
        );
    }

    #[test]
    fn keys_spread_over_servers_by_weight() {
        let servers = servers(&[1, 2, 3]);
        let owners = owners(&servers, 6_000, |_| true);
        for (server, expected) in servers.iter().zip([1_000, 2_000, 3_000]) {
            let n = owners.iter().filter(|&&a| a == server.address).count();
            // Ketama is only roughly proportional: 160 points per weight unit.
            assert!(n.abs_diff(expected) < expected / 5, "{n} vs {expected}");
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let all = servers(&[1, 1, 1, 1, 1]);
        let before = owners(&all, 10_000, |_| true);
        let removed = all[2].address;
        let rest: Vec<_> = all
            .iter()
            .filter(|s| s.address != removed)
            .cloned()
            .collect();
        let after = owners(&rest, 10_000, |_| true);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == removed {
                moved += 1;
                assert_ne!(*a, removed);
            } else {
                assert_eq!(a, b, "a key that was not on the removed server moved");
            }
        }
        // About a fifth of the keys were on it.
        assert!((1_000..3_000).contains(&moved), "{moved}");
    }

    #[test]
    fn an_unusable_servers_keys_go_elsewhere_and_others_stay() {
        let servers = servers(&[1, 1, 1, 1, 1]);
        let before = owners(&servers, 10_000, |_| true);
        let down = servers[3].address;
        let during = owners(&servers, 10_000, |i| i != 3);
        // Marking a server unusable walks the ring exactly as removing it does.
        let rest: Vec<_> = servers
            .iter()
            .filter(|s| s.address != down)
            .cloned()
            .collect();
        assert_eq!(during, owners(&rest, 10_000, |_| true));
        let mut moved_to = vec![0; servers.len()];
        for (b, d) in before.iter().zip(&during) {
            if *b == down {
                let index = servers.iter().position(|s| s.address == *d);
                moved_to[index.expect("a pool server")] += 1;
            } else {
                assert_eq!(b, d);
            }
        }
        // Its keys spread over the others instead of all landing on one neighbour.
        assert_eq!(moved_to[3], 0);
        assert!(
            moved_to.iter().enumerate().all(|(i, &n)| i == 3 || n > 100),
            "{moved_to:?}"
        );
    }

    #[test]
    fn keys_map_like_nginx_for_small_weights() {
        // The ring is built from the raw weights, so it is Pingora's (and nginx's) ring.
        let servers = servers(&[1, 2, 1]);
        let buckets: Vec<_> = servers
            .iter()
            .map(|s| Bucket::new(s.address, s.weight))
            .collect();
        let ring = Continuum::new(&buckets);
        let owners = owners(&servers, 1_000, |_| true);
        for (i, owner) in owners.iter().enumerate() {
            assert_eq!(ring.node(&key(i)), Some(*owner));
        }
    }

    #[test]
    fn huge_weights_are_scaled_to_a_bounded_ring() {
        let servers = servers(&[1_000_000, 3_000_000, 1]);
        let owners = owners(&servers, 4_000, |_| true);
        let heavy = owners.iter().filter(|&&a| a == servers[1].address).count();
        assert!((2_700..3_300).contains(&heavy), "{heavy}");
    }

    #[test]
    fn no_key_means_round_robin() {
        let servers = servers(&[2, 1]);
        let balancer = Balancer::new(Algorithm::Hash, &servers);
        let picks: Vec<_> = (0..6)
            .filter_map(|_| balancer.select(&servers, None, &mut |_| true))
            .collect();
        assert_eq!(picks, [0, 1, 0, 0, 1, 0]);
    }

    #[test]
    fn duplicate_addresses_do_not_break_the_ring() {
        let mut pool = servers(&[1, 1]);
        pool.push(Arc::clone(&pool[0]));
        let balancer = Balancer::new(Algorithm::Hash, &pool);
        for i in 0..200 {
            let picked = balancer.select(&pool, Some(&key(i)), &mut |_| true);
            assert!(matches!(picked, Some(0 | 1)), "{picked:?}");
        }
        // Only the duplicate left: keys still find it through the fallback scan.
        assert_eq!(
            balancer.select(&pool, Some(&key(1)), &mut |i| i == 2),
            Some(2)
        );
    }
}
