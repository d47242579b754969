//! Cost of one `Balancer::select` per algorithm, over a pool of 10 servers.
//!
//! `all usable` is the common case. `3 of 10 unusable` makes every algorithm step past
//! unusable servers (round robin consumes further turns, random redraws, hash walks the
//! ring, least_conn and least_time skip them), which is what a pool with a few servers down
//! costs. Servers have weights 1..=10, some requests in flight and latency samples, so
//! least_conn and least_time compare real numbers. `locked nginx swrr` is the baseline the
//! precomputed round robin replaces: nginx's smooth weighted round robin run per request
//! under a mutex (uncontended here, so its real cost under load is higher).
//!
//! Run: `cargo bench -p pylon-upstream --bench balance -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pylon_upstream::balance::{Algorithm, Balancer};
use pylon_upstream::ServerState;

const ALGORITHMS: [Algorithm; 5] = [
    Algorithm::RoundRobin,
    Algorithm::Random,
    Algorithm::LeastConn,
    Algorithm::Hash,
    Algorithm::LeastTime,
];

fn pool() -> Vec<Arc<ServerState>> {
    (0..10u8)
        .map(|i| {
            let address = SocketAddr::from(([10, 0, 0, i + 1], 8080));
            let server = Arc::new(ServerState::new(
                address,
                u32::from(i) + 1,
                address.to_string(),
            ));
            server
                .in_flight
                .store(u32::from(i % 4), std::sync::atomic::Ordering::Relaxed);
            server.record_latency(Duration::from_millis(5 + u64::from(i)));
            server
        })
        .collect()
}

/// nginx's smooth weighted round robin, computed per request under a lock.
struct LockedSwrr {
    weights: Vec<i64>,
    current: Mutex<Vec<i64>>,
}

impl LockedSwrr {
    fn next(&self) -> usize {
        let total: i64 = self.weights.iter().sum();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let mut best = 0;
        for (i, w) in self.weights.iter().enumerate() {
            current[i] += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    }
}

/// A named `usable` predicate.
type Case = (&'static str, fn(usize) -> bool);

fn select(c: &mut Criterion) {
    let servers = pool();
    let keys: Vec<Vec<u8>> = (0..64u8).map(|i| vec![192, 168, 1, i]).collect();
    let cases: [Case; 2] = [
        ("all usable", |_| true),
        ("3 of 10 unusable", |i| !matches!(i, 2 | 5 | 9)),
    ];
    for (case, usable) in cases {
        let mut group = c.benchmark_group(format!("select/{case}"));
        for algorithm in ALGORITHMS {
            let balancer = Balancer::new(algorithm, &servers);
            let mut turn = 0usize;
            group.bench_function(BenchmarkId::from_parameter(algorithm), |b| {
                b.iter(|| {
                    turn = turn.wrapping_add(1);
                    let key = keys[turn % keys.len()].as_slice();
                    let mut usable = usable;
                    black_box(balancer.select(&servers, Some(black_box(key)), &mut usable))
                })
            });
        }
        group.finish();
    }

    let baseline = LockedSwrr {
        weights: servers.iter().map(|s| i64::from(s.weight)).collect(),
        current: Mutex::new(vec![0; servers.len()]),
    };
    c.bench_function("select/all usable/locked nginx swrr", |b| {
        b.iter(|| black_box(baseline.next()))
    });
    c.bench_function("record_latency", |b| {
        b.iter(|| servers[3].record_latency(black_box(Duration::from_micros(6_500))))
    });
}

criterion_group!(benches, select);
criterion_main!(benches);
