//! Balancing: which server of a pool gets the next request.
//!
//! A [`Balancer`] is built once per pool snapshot for exactly that snapshot's servers and is
//! immutable afterwards (its only mutable state is an atomic cursor), so the proxy shares it
//! by `Arc` across threads. [`Balancer::select`] takes a `usable` predicate instead of
//! reading health itself: the caller decides what "usable" means (health, ejection, servers
//! already tried by this request's retries) and the algorithms only decide among the
//! servers it allows. Every algorithm is lock-free and allocation-free on the hot path.
//!
//! One file per algorithm:
//!
//! - [`round_robin`]: nginx's smooth weighted round robin, precomputed;
//! - [`random`]: weighted random;
//! - [`least_conn`]: fewest in-flight requests relative to weight;
//! - [`hash`]: Ketama consistent hashing of a request key (client ip, header, …);
//! - [`least_time`]: power of two choices over peak-EWMA latency × load.
//!
//! The load the last two read comes from [`ServerState::start_request`] (the in-flight
//! guard, in [`in_flight`]) and [`ServerState::record_latency`] (in [`least_time`]).

pub mod hash;
pub mod in_flight;
pub mod least_conn;
pub mod least_time;
pub mod random;
pub mod round_robin;

use std::fmt;
use std::sync::Arc;

use crate::ServerState;

pub use in_flight::InFlight;

use hash::KetamaHash;
use least_conn::LeastConn;
use least_time::LeastTime;
use random::WeightedRandom;
use round_robin::SmoothRoundRobin;

/// How a pool chooses among its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Smooth weighted round robin (nginx's default).
    RoundRobin,
    /// Weighted random.
    Random,
    /// Fewest in-flight requests relative to weight.
    LeastConn,
    /// Consistent hashing of a key the caller extracts (client ip for `ip_hash`, a header,
    /// a cookie, …); without a key it behaves like round robin.
    Hash,
    /// Power of two choices over latency (peak EWMA) × in-flight requests.
    LeastTime,
}

impl Algorithm {
    /// The name used in configuration and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::Random => "random",
            Algorithm::LeastConn => "least_conn",
            Algorithm::Hash => "hash",
            Algorithm::LeastTime => "least_time",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The balancer of one pool snapshot: picks a server index among that snapshot's servers.
///
/// Immutable after [`Balancer::new`] apart from atomic cursors; `Send + Sync`.
pub struct Balancer {
    algorithm: Algorithm,
    len: usize,
    inner: Inner,
}

enum Inner {
    RoundRobin(SmoothRoundRobin),
    Random(WeightedRandom),
    LeastConn(LeastConn),
    Hash(KetamaHash),
    LeastTime(LeastTime),
}

impl Balancer {
    /// Builds the balancer for exactly these servers (same order every call of `select`).
    pub fn new(algorithm: Algorithm, servers: &[Arc<ServerState>]) -> Balancer {
        let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
        let inner = match algorithm {
            Algorithm::RoundRobin => Inner::RoundRobin(SmoothRoundRobin::new(&weights)),
            Algorithm::Random => Inner::Random(WeightedRandom::new(&weights)),
            Algorithm::LeastConn => Inner::LeastConn(LeastConn::new(&weights)),
            Algorithm::Hash => Inner::Hash(KetamaHash::new(servers)),
            Algorithm::LeastTime => Inner::LeastTime(LeastTime::new(&weights)),
        };
        Balancer {
            algorithm,
            len: servers.len(),
            inner,
        }
    }

    /// Index of the chosen server, skipping any for which `usable(index)` is false; None if
    /// none is usable.
    ///
    /// `key` is the hash key (client ip bytes, header value, …) for `Hash`; ignored by the
    /// others. `servers` must be the slice the balancer was built for; a shorter one is
    /// tolerated (indexes past its end are never returned). `usable` is called at most once
    /// per index for the first [`MEMO_LEN`] servers, and only for indexes inside `servers`.
    pub fn select(
        &self,
        servers: &[Arc<ServerState>],
        key: Option<&[u8]>,
        usable: &mut dyn FnMut(usize) -> bool,
    ) -> Option<usize> {
        let servers = &servers[..servers.len().min(self.len)];
        let mut probe = Probe::new(usable, servers.len());
        if servers.is_empty() {
            return None;
        }
        match &self.inner {
            Inner::RoundRobin(rr) => rr.select(&mut probe),
            Inner::Random(random) => random.select(&mut probe),
            Inner::LeastConn(lc) => lc.select(servers, &mut probe),
            Inner::Hash(hash) => hash.select(key, &mut probe),
            Inner::LeastTime(lt) => lt.select(servers, &mut probe),
        }
    }

    /// The algorithm this balancer runs.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// How many servers it was built for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it was built for no server (then `select` is always `None`).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("algorithm", &self.algorithm)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// For how many server indexes `select` remembers what `usable` said (in two 256-bit sets
/// on the stack). Past this, `usable` may be asked again about the same index.
pub const MEMO_LEN: usize = 256;

/// How many consecutive entries of a precomputed order (round-robin cycle, hash ring) an
/// algorithm walks past unusable servers before falling back to a plain scan of the
/// indexes. The walk keeps the algorithm's own order when a few servers are down; the scan
/// bounds the cost when almost all are.
pub const WALK_LIMIT: usize = 64;

/// The caller's `usable` predicate, asked at most once per index (for the first
/// [`MEMO_LEN`] indexes) within one `select`, and never about an index outside the pool.
pub(crate) struct Probe<'a> {
    usable: &'a mut dyn FnMut(usize) -> bool,
    len: usize,
    known: [u64; MEMO_LEN / 64],
    ok: [u64; MEMO_LEN / 64],
    rejected: usize,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(usable: &'a mut dyn FnMut(usize) -> bool, len: usize) -> Self {
        Probe {
            usable,
            len,
            known: [0; MEMO_LEN / 64],
            ok: [0; MEMO_LEN / 64],
            rejected: 0,
        }
    }

    /// Number of servers in the pool.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether server `index` may be chosen.
    #[inline]
    pub(crate) fn check(&mut self, index: usize) -> bool {
        if index >= self.len {
            return false;
        }
        if index >= MEMO_LEN {
            return (self.usable)(index);
        }
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        if self.known[word] & bit != 0 {
            return self.ok[word] & bit != 0;
        }
        let usable = (self.usable)(index);
        self.known[word] |= bit;
        if usable {
            self.ok[word] |= bit;
        } else {
            self.rejected += 1;
        }
        usable
    }

    /// Whether every server is known to be unusable, so searching further is pointless.
    #[inline]
    pub(crate) fn exhausted(&self) -> bool {
        self.len <= MEMO_LEN && self.rejected == self.len
    }

    /// The first usable index at or after `start` (wrapping), checking every index once.
    pub(crate) fn first_usable_from(&mut self, start: usize) -> Option<usize> {
        let len = self.len;
        (0..len)
            .map(|offset| (start + offset) % len)
            .find(|&index| self.check(index))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::SocketAddr;

    pub(crate) const ALL: [Algorithm; 5] = [
        Algorithm::RoundRobin,
        Algorithm::Random,
        Algorithm::LeastConn,
        Algorithm::Hash,
        Algorithm::LeastTime,
    ];

    /// Servers 10.0.0.1:80, 10.0.0.2:80, … with the given weights.
    pub(crate) fn servers(weights: &[u32]) -> Vec<Arc<ServerState>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let address = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250 + 1) as u8], 80));
                Arc::new(ServerState::new(address, w, address.to_string()))
            })
            .collect()
    }

    /// Counts picks per server over `n` selections.
    pub(crate) fn tally(
        balancer: &Balancer,
        servers: &[Arc<ServerState>],
        n: usize,
        key: impl Fn(usize) -> Option<Vec<u8>>,
        mut usable: impl FnMut(usize) -> bool,
    ) -> Vec<usize> {
        let mut counts = vec![0; servers.len()];
        for i in 0..n {
            let key = key(i);
            let picked = balancer
                .select(servers, key.as_deref(), &mut usable)
                .expect("a usable server");
            counts[picked] += 1;
        }
        counts
    }

    fn key_of(i: usize) -> Option<Vec<u8>> {
        Some(format!("client-{i}").into_bytes())
    }

    #[test]
    fn balancer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Balancer>();
        assert_send_sync::<InFlight>();
    }

    #[test]
    fn empty_pool_has_no_pick() {
        for algorithm in ALL {
            let balancer = Balancer::new(algorithm, &[]);
            assert!(balancer.is_empty());
            assert_eq!(balancer.select(&[], Some(b"k"), &mut |_| true), None);
            assert_eq!(balancer.select(&[], None, &mut |_| true), None);
        }
    }

    #[test]
    fn all_unusable_has_no_pick_and_asks_each_server_once() {
        for algorithm in ALL {
            for pool in [&[1, 2, 3][..], &[1; 40][..], &[7, 1, 1, 1, 1][..]] {
                let servers = servers(pool);
                let balancer = Balancer::new(algorithm, &servers);
                for key in [None, Some(&b"k"[..])] {
                    let mut asked = vec![0; servers.len()];
                    let picked = balancer.select(&servers, key, &mut |i| {
                        asked[i] += 1;
                        false
                    });
                    assert_eq!(picked, None, "{algorithm}");
                    assert!(asked.iter().all(|&n| n == 1), "{algorithm}: {asked:?}");
                }
            }
        }
    }

    #[test]
    fn only_usable_servers_are_picked() {
        fastrand::seed(7);
        for algorithm in ALL {
            let servers = servers(&[3, 1, 2, 1, 5, 1]);
            let balancer = Balancer::new(algorithm, &servers);
            let usable = |i: usize| i == 1 || i == 3 || i == 5;
            for key in [key_of as fn(usize) -> Option<Vec<u8>>, |_| None] {
                let counts = tally(&balancer, &servers, 3_000, key, usable);
                for (i, &n) in counts.iter().enumerate() {
                    if usable(i) {
                        assert!(n > 0, "{algorithm}: {i} never picked: {counts:?}");
                    } else {
                        assert_eq!(n, 0, "{algorithm}: {i} picked: {counts:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_single_usable_server_is_found_in_a_large_pool() {
        fastrand::seed(11);
        for algorithm in ALL {
            let servers = servers(&[1; 300]);
            let balancer = Balancer::new(algorithm, &servers);
            for target in [0, 137, 299] {
                for key in [None, Some(&b"some key"[..])] {
                    let picked = balancer.select(&servers, key, &mut |i| i == target);
                    assert_eq!(picked, Some(target), "{algorithm}");
                }
            }
            assert_eq!(balancer.select(&servers, None, &mut |_| false), None);
        }
    }

    #[test]
    fn a_shorter_server_slice_never_yields_an_index_past_it() {
        for algorithm in ALL {
            let servers = servers(&[1, 1, 1, 1]);
            let balancer = Balancer::new(algorithm, &servers);
            for _ in 0..100 {
                let picked = balancer.select(&servers[..2], Some(b"k"), &mut |_| true);
                assert!(matches!(picked, Some(0 | 1)), "{algorithm}: {picked:?}");
            }
            assert_eq!(balancer.select(&[], Some(b"k"), &mut |_| true), None);
        }
    }
}
