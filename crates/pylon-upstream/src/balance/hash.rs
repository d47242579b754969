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
//! An unusable server is handled by walking on along the ring (as
//! [`Continuum::node_iter`] does) to the next usable server's point, not by rebuilding the
//! ring: the unusable server's keys spread over the others as if it had been removed, and
//! every other key stays put. The walk is bounded ([`WALK_LIMIT`] points); past it — only
//! when most of the pool is unusable — the key scans the indexes from its own server on,
//! which is still stable per key. The walk reads a table of each point's server index,
//! taken from the ring when it is built, rather than the ring's addresses: no address
//! lookup per request.
//!
//! Without a key (the header or cookie is missing) the request is balanced by smooth
//! weighted round robin over the same servers.
//!
//! Limits: weights are scaled down (keeping at least 1) when they add up to more than
//! [`MAX_RING_WEIGHT`], to bound the ring's memory (10 bytes a point); keys then map
//! differently from nginx, and a pool change that alters the scaling moves more keys. Only
//! the first [`MAX_RING_SERVERS`] servers (the ring's node index is 16 bits) are put on the
//! ring. Two servers with the same address (ip and port) share one set of points: the first
//! gets their keys.

use std::net::SocketAddr;
use std::sync::Arc;

use pingora_ketama::{Bucket, Continuum};

use super::round_robin::SmoothRoundRobin;
use super::{Probe, WALK_LIMIT};
use crate::ServerState;

/// Largest sum of weights put on the ring as given; above it weights are scaled down.
/// 4,096 × 160 points × 10 bytes (Ketama's point and our owner index) ≈ 6.5 MiB at most
/// per pool.
pub const MAX_RING_WEIGHT: u64 = 4_096;

/// How many servers the ring can hold (Ketama stores node indexes as `u16`).
pub const MAX_RING_SERVERS: usize = u16::MAX as usize + 1;

pub struct KetamaHash {
    ring: Continuum,
    /// The server index of each ring point, in ring order. The ring only yields
    /// addresses; this table, read off the ring once when it is built, turns a point into
    /// our index without looking the address up per request.
    owners: Box<[u16]>,
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
        let ring = Continuum::new(&buckets);
        KetamaHash {
            owners: owners(&ring, servers),
            ring,
            round_robin: SmoothRoundRobin::new(&weights),
        }
    }

    /// The server owning `key` on the ring, or the next usable one after it.
    pub(crate) fn select(&self, key: Option<&[u8]>, probe: &mut Probe<'_>) -> Option<usize> {
        let Some(key) = key else {
            return self.round_robin.select(probe);
        };
        let len = self.owners.len();
        if len == 0 {
            return None;
        }
        let mut point = self.ring.node_idx(key).min(len - 1);
        let home = usize::from(self.owners[point]);
        if probe.check(home) {
            return Some(home);
        }
        for _ in 0..WALK_LIMIT.min(len) {
            if probe.exhausted() {
                return None;
            }
            point = if point + 1 == len { 0 } else { point + 1 };
            let index = usize::from(self.owners[point]);
            if probe.check(index) {
                return Some(index);
            }
        }
        probe.first_usable_from(home + 1)
    }
}

/// Reads the ring once, point by point, and maps each point's address to the index of
/// the first server with that address.
fn owners(ring: &Continuum, servers: &[Arc<ServerState>]) -> Box<[u16]> {
    let mut by_address: Vec<(AddressKey, u16)> = servers
        .iter()
        .zip(0..=u16::MAX)
        .map(|(server, index)| (AddressKey::of(&server.address), index))
        .collect();
    // Stable, so the first of duplicate addresses comes first.
    by_address.sort_by_key(|&(key, _)| key);
    by_address.dedup_by_key(|&mut (key, _)| key);
    let mut owners = Vec::new();
    let mut point = 0;
    // `get_addr` steps to the next point and wraps to 0 after the last one.
    while let Some(address) = ring.get_addr(&mut point) {
        let key = AddressKey::of(address);
        let owner = by_address
            .binary_search_by_key(&key, |&(key, _)| key)
            .map_or(0, |found| by_address[found].1);
        owners.push(owner);
        if point == 0 {
            break;
        }
    }
    owners.into_boxed_slice()
}

/// What Ketama hashes of an address: ip and port, not an IPv6 flow label or scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct AddressKey {
    ip: u128,
    /// The port, and bit 16 set for IPv6 (so `1.2.3.4` and `::102:304` differ).
    port: u32,
}

impl AddressKey {
    #[inline]
    fn of(address: &SocketAddr) -> Self {
        match address {
            SocketAddr::V4(v4) => AddressKey {
                ip: u128::from(v4.ip().to_bits()),
                port: u32::from(v4.port()),
            },
            SocketAddr::V6(v6) => AddressKey {
                ip: v6.ip().to_bits(),
                port: 1 << 16 | u32::from(v6.port()),
            },
        }
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
