//! How long applying a big config takes: compile + swap through [`Applier::apply`], the
//! path every reload and admin API write takes.
//!
//! The config has 10,000 routes over 1,000 virtual hosts (`Host(...) && PathPrefix(...)`,
//! some with a method or header refinement), 100 upstreams of two IP servers each (no DNS),
//! and a named middleware on one route in ten. Two cases:
//! - `change_one_route`: the running config has the 10,000 routes and the new one differs
//!   in one route (what an API write or a small file edit costs); the applier alternates
//!   between the two versions, so every iteration really compiles and swaps;
//! - `first_compile`: the same config compiled from nothing (what start-up costs).
//!
//! The goal (issue 6) is under 100 ms for compile + swap at 10,000 routes.
//!
//! Run: `cargo bench -p pylon-core --bench apply -- --warm-up-time 1 --measurement-time 5`

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use pylon_config::{Config, Route, Upstream};
use pylon_core::apply::Applier;
use pylon_core::Snapshot;
use pylon_upstream::dns::{DnsSettings, Resolver};

/// The binary's allocator: compiling is allocation-heavy, and with glibc's malloc the same
/// apply took three times as long (131 ms instead of 39 ms on the machine of
/// docs/benchmarks.md).
#[global_allocator]
static GLOBAL: pylon_alloc::PylonAlloc = pylon_alloc::PylonAlloc;

const ROUTES: usize = 10_000;
const UPSTREAMS: usize = 100;

/// The 10,000-route config; `variant` changes the body of route 0 only.
fn config(variant: usize) -> Config {
    let text = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nmiddlewares:\n  tag: { headers: { response: { set: { X-Tag: t } } } }\n";
    let mut config = pylon_config::load_str(
        text,
        pylon_config::Format::Yaml,
        std::path::Path::new("bench.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut upstreams = BTreeMap::new();
    for u in 0..UPSTREAMS {
        let (a, b) = (u / 250, u % 250 + 1);
        let servers = serde_json::json!({ "servers": [format!("10.0.{a}.{b}:8080"), format!("10.1.{a}.{b}:8080")] });
        let upstream: Upstream = serde_json::from_value(servers).unwrap_or_else(|e| panic!("{e}"));
        upstreams.insert(format!("up{u}"), upstream);
    }
    config.upstreams = upstreams;
    config.routes = (0..ROUTES)
        .map(|i| {
            let host = format!("h{}.example.com", i / 10);
            let rule = match i % 10 {
                0 => format!("Host(`{host}`) && PathPrefix(`/api/v{i}`) && Method(`GET`)"),
                1 => format!("Host(`{host}`) && PathPrefix(`/p{i}`) && Header(`X-Tenant`, `t{i}`)"),
                _ => format!("Host(`{host}`) && PathPrefix(`/p{i}`)"),
            };
            let mut route =
                Route::to_upstream(&format!("r{i}"), &rule, &format!("up{}", i % UPSTREAMS));
            if i % 10 == 3 {
                route.middlewares = vec![pylon_config::MiddlewareRef::Named("tag".into())];
            }
            if i == 0 {
                route.priority = Some(1000 + i64::try_from(variant).unwrap_or(0));
            }
            route
        })
        .collect();
    config
}

fn bench(c: &mut Criterion) {
    let resolver =
        Arc::new(Resolver::new(DnsSettings::default()).unwrap_or_else(|e| panic!("{e}")));
    let configs = [config(0), config(1)];
    let first = Snapshot::compile(&configs[0], 1, &resolver).unwrap_or_else(|e| panic!("{e}"));
    let applier = Applier::new(Arc::new(ArcSwap::from_pointee(first)), resolver.clone());
    let mut group = c.benchmark_group("apply_10k_routes");
    group.sample_size(20);
    let mut next = 0;
    group.bench_function("change_one_route", |b| {
        b.iter_batched(
            || {
                next = 1 - next;
                configs[next].clone()
            },
            |config| {
                let applied = applier.apply(config).unwrap_or_else(|e| panic!("{e}"));
                assert!(!applied.unchanged);
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("first_compile", |b| {
        b.iter(|| Snapshot::compile(&configs[0], 1, &resolver).unwrap_or_else(|e| panic!("{e}")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
