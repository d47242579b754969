//! Prometheus metrics: a hand-rolled registry of relaxed atomics, written out in the text
//! format at scrape time.
//!
//! Recording costs a request a few `fetch_add`s on handles its compiled route holds
//! ([`RouteMetrics`], resolved when the snapshot compiles): no lookup, lock, hash or
//! allocation. Everything that can be read instead of counted — server health, the config
//! generation, `/proc` — is read at scrape time. `docs/observability.md` lists every metric.
//!
//! Other subsystems add series of their own with [`register_collector`].
//!
//! Hook point for features that do not exist yet: response caching and compression will
//! add their series (see [`RESERVED`]) to [`registry::RouteSeries`] and write them in
//! `render` next to the route families.

mod classes;
pub mod connections;
pub mod histogram;
mod process;
mod registry;
pub mod text;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::SystemTime;

pub use classes::{code_index, method_index, CODES, ERROR_KINDS, METHODS};
pub use registry::{enabled, init, record, RouteMetrics, BODY_BUCKETS};
pub use text::{Exposition, Kind, CONTENT_TYPE};

use crate::snapshot::Snapshot;
use pylon_upstream::server::now_ms;
use registry::{registry, Rejection};

/// Every metric family Pylon exports (histograms by their base name). A unit test keeps
/// this list and the exposition in step; the Grafana dashboard test checks its queries
/// against it.
pub const FAMILIES: [&str; 24] = [
    "pylon_build_info",
    "pylon_config_generation",
    "pylon_config_reloads_total",
    "pylon_config_last_reload_timestamp_seconds",
    "pylon_config_last_reload_success",
    "pylon_downstream_connections_active",
    "pylon_downstream_connections_accepted_total",
    "pylon_requests_total",
    "pylon_request_duration_seconds",
    "pylon_request_body_bytes",
    "pylon_response_body_bytes",
    "pylon_upstream_requests_total",
    "pylon_upstream_connect_duration_seconds",
    "pylon_upstream_header_duration_seconds",
    "pylon_upstream_errors_total",
    "pylon_upstream_retries_total",
    "pylon_upstream_server_up",
    "pylon_upstream_ejections_total",
    "pylon_auth_failures_total",
    "pylon_rate_limit_rejections_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_start_time_seconds",
];

/// Families other subsystems write through [`register_collector`] (the access log's and
/// tracing's counters): list each here and in `docs/observability.md` when registering it.
/// The end-to-end tests accept in a scrape exactly [`FAMILIES`] and these.
pub const COLLECTED_FAMILIES: [&str; 3] = [
    "pylon_access_log_dropped_lines_total",
    "pylon_tracing_dropped_spans_total",
    "pylon_notifications_dropped_total",
];

/// The drop counters of the access log, span export and notifications, whose queues are
/// bounded so that a slow disk or endpoint never slows traffic: a collector for
/// [`register_collector`].
pub fn dropped_counters(e: &mut Exposition) {
    let counters = [
        (
            COLLECTED_FAMILIES[0],
            "Access log lines dropped because the writer fell behind (more than 8 MiB pending).",
            crate::access_log::dropped_lines(),
        ),
        (
            COLLECTED_FAMILIES[1],
            "Spans dropped because the OTLP export queue was full.",
            crate::tracing::dropped_spans(),
        ),
        (
            COLLECTED_FAMILIES[2],
            "Notification events dropped because their queue was full.",
            crate::notify::dropped_events(),
        ),
    ];
    for (name, help, value) in counters {
        e.family(name, Kind::Counter, help);
        // Counts far below 2^53 are exact as f64.
        #[allow(clippy::cast_precision_loss)]
        e.sample(name, &[], value as f64);
    }
}

/// Names kept for features that do not exist yet; not exported.
pub const RESERVED: [&str; 4] = [
    "pylon_cache_lookups_total",
    "pylon_cache_hits_total",
    "pylon_cache_lock_wait_seconds",
    "pylon_compression_duration_seconds",
];

/// Writes series of another subsystem into a scrape.
pub type Collector = fn(&mut Exposition);

static COLLECTORS: Mutex<Vec<Collector>> = Mutex::new(Vec::new());

/// Adds `collector` to every scrape, after Pylon's own families (register once, at start).
/// Its family names go in [`COLLECTED_FAMILIES`].
pub fn register_collector(collector: Collector) {
    COLLECTORS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(collector);
}

static RELOADS_APPLIED: AtomicU64 = AtomicU64::new(0);
static RELOADS_REJECTED: AtomicU64 = AtomicU64::new(0);
/// Milliseconds since the epoch of the last reload; 0 before the first.
static LAST_RELOAD_MS: AtomicU64 = AtomicU64::new(0);
static LAST_RELOAD_OK: AtomicBool = AtomicBool::new(false);

/// A reload from the config source ended: applied (or unchanged) when `ok`, else refused.
pub fn reload_recorded(ok: bool, at: SystemTime) {
    if ok {
        RELOADS_APPLIED.fetch_add(1, Relaxed);
    } else {
        RELOADS_REJECTED.fetch_add(1, Relaxed);
    }
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    LAST_RELOAD_MS.store(ms.max(1), Relaxed);
    LAST_RELOAD_OK.store(ok, Relaxed);
}

/// The whole exposition, for a scrape of `/metrics`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut e = Exposition::new();
    // Series of routes and upstreams no longer served go first, for every family below.
    registry().prune();
    node(&mut e, snapshot);
    routes(&mut e);
    upstreams(&mut e, snapshot);
    rejections(&mut e);
    process::write(&mut e);
    let collectors = COLLECTORS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for collector in collectors {
        collector(&mut e);
    }
    e.finish()
}

/// Build, config and connection families.
fn node(e: &mut Exposition, snapshot: &Snapshot) {
    e.family(
        "pylon_build_info",
        Kind::Gauge,
        "Always 1; the version of the running Pylon is a label.",
    );
    e.sample(
        "pylon_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    e.family(
        "pylon_config_generation",
        Kind::Gauge,
        "Generation of the config serving now (1 at start, +1 per applied change).",
    );
    e.sample("pylon_config_generation", &[], snapshot.generation as f64);
    e.family(
        "pylon_config_reloads_total",
        Kind::Counter,
        "Reloads from the config source (file change, SIGHUP), by result.",
    );
    for (result, counter) in [
        ("applied", &RELOADS_APPLIED),
        ("rejected", &RELOADS_REJECTED),
    ] {
        e.sample(
            "pylon_config_reloads_total",
            &[("result", result)],
            counter.load(Relaxed) as f64,
        );
    }
    let last = LAST_RELOAD_MS.load(Relaxed);
    if last > 0 {
        e.family(
            "pylon_config_last_reload_timestamp_seconds",
            Kind::Gauge,
            "When the last reload from the config source ended, in seconds since the epoch.",
        );
        e.sample(
            "pylon_config_last_reload_timestamp_seconds",
            &[],
            last as f64 / 1000.0,
        );
        e.family(
            "pylon_config_last_reload_success",
            Kind::Gauge,
            "1 if the last reload from the config source applied, 0 if it was refused.",
        );
        e.sample(
            "pylon_config_last_reload_success",
            &[],
            if LAST_RELOAD_OK.load(Relaxed) {
                1.0
            } else {
                0.0
            },
        );
    }
    e.family(
        "pylon_downstream_connections_active",
        Kind::Gauge,
        "Client connections open now.",
    );
    e.sample(
        "pylon_downstream_connections_active",
        &[],
        connections::ACTIVE.load(Relaxed) as f64,
    );
    e.family(
        "pylon_downstream_connections_accepted_total",
        Kind::Counter,
        "Client connections accepted.",
    );
    e.sample(
        "pylon_downstream_connections_accepted_total",
        &[],
        connections::ACCEPTED.load(Relaxed) as f64,
    );
}

/// Which histogram of a route's series a family shows.
type RouteHistogram = fn(&registry::RouteSeries) -> &histogram::Histogram;

/// Per-route families.
fn routes(e: &mut Exposition) {
    let reg = registry();
    let routes: Vec<_> = reg
        .routes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    e.family(
        "pylon_requests_total",
        Kind::Counter,
        "Requests by route, upstream, method and status class (code=\"none\": the client left before a response).",
    );
    for s in &routes {
        for (m, by_code) in s.requests.iter().enumerate() {
            for (c, count) in by_code.iter().enumerate() {
                let count = count.load(Relaxed);
                if count > 0 {
                    e.sample(
                        "pylon_requests_total",
                        &[
                            ("route", &s.route),
                            ("upstream", &s.upstream),
                            ("method", METHODS[m]),
                            ("code", CODES[c]),
                        ],
                        count as f64,
                    );
                }
            }
        }
    }
    let families: [(&str, &str, RouteHistogram); 3] = [
        (
            "pylon_request_duration_seconds",
            "Time from reading the request header to the end of the response, in seconds.",
            |s| &s.duration,
        ),
        (
            "pylon_request_body_bytes",
            "Request body bytes read from the client.",
            |s| &s.request_bytes,
        ),
        (
            "pylon_response_body_bytes",
            "Response body bytes sent to the client.",
            |s| &s.response_bytes,
        ),
    ];
    for (name, help, histogram) in families {
        e.family(name, Kind::Histogram, help);
        for s in &routes {
            e.histogram(
                name,
                &[("route", &s.route), ("upstream", &s.upstream)],
                histogram(s),
            );
        }
    }
}

/// Per-upstream families: recorded ones from the registry, health read from the pools.
fn upstreams(e: &mut Exposition, snapshot: &Snapshot) {
    let ups: Vec<_> = registry()
        .upstreams
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    e.family(
        "pylon_upstream_requests_total",
        Kind::Counter,
        "Requests sent upstream (last attempt of each), by whether the connection was new or reused from the pool.",
    );
    for u in &ups {
        for (connection, counter) in [
            ("new", &u.new_connections),
            ("reused", &u.reused_connections),
        ] {
            e.sample(
                "pylon_upstream_requests_total",
                &[("upstream", &u.name), ("connection", connection)],
                counter.load(Relaxed) as f64,
            );
        }
    }
    e.family(
        "pylon_upstream_connect_duration_seconds",
        Kind::Histogram,
        "Time to open a new upstream connection (TCP and TLS), in seconds.",
    );
    for u in &ups {
        e.histogram(
            "pylon_upstream_connect_duration_seconds",
            &[("upstream", &u.name)],
            &u.connect,
        );
    }
    e.family(
        "pylon_upstream_header_duration_seconds",
        Kind::Histogram,
        "Time from the start of an upstream attempt to the response header (time to first byte), in seconds.",
    );
    for u in &ups {
        e.histogram(
            "pylon_upstream_header_duration_seconds",
            &[("upstream", &u.name)],
            &u.header,
        );
    }
    e.family(
        "pylon_upstream_errors_total",
        Kind::Counter,
        "Failed upstream attempts by kind: connect, timeout, reset, tls, other.",
    );
    for u in &ups {
        for (kind, counter) in ERROR_KINDS.iter().zip(&u.errors) {
            e.sample(
                "pylon_upstream_errors_total",
                &[("upstream", &u.name), ("kind", kind)],
                counter.load(Relaxed) as f64,
            );
        }
    }
    e.family(
        "pylon_upstream_retries_total",
        Kind::Counter,
        "Upstream attempts beyond the first of a request.",
    );
    for u in &ups {
        e.sample(
            "pylon_upstream_retries_total",
            &[("upstream", &u.name)],
            u.retries.load(Relaxed) as f64,
        );
    }
    let mut pools: Vec<_> = snapshot.upstreams.iter().collect();
    pools.sort_by(|a, b| a.0.cmp(b.0));
    let now = now_ms();
    let mut servers = Vec::new();
    for (name, pool) in pools {
        for endpoint in &pool.endpoints().list {
            let state = &endpoint.state;
            servers.push((
                name.as_str(),
                state.address.to_string(),
                state.is_healthy(now),
                state.ejections_total.load(Relaxed),
            ));
        }
    }
    e.family(
        "pylon_upstream_server_up",
        Kind::Gauge,
        "1 if the server takes traffic (active checks pass and outlier detection has not ejected it), else 0.",
    );
    for (upstream, server, up, _) in &servers {
        e.sample(
            "pylon_upstream_server_up",
            &[("upstream", upstream), ("server", server)],
            if *up { 1.0 } else { 0.0 },
        );
    }
    e.family(
        "pylon_upstream_ejections_total",
        Kind::Counter,
        "Times outlier detection (passive health) ejected the server.",
    );
    for (upstream, server, _, ejections) in &servers {
        e.sample(
            "pylon_upstream_ejections_total",
            &[("upstream", upstream), ("server", server)],
            *ejections as f64,
        );
    }
}

/// Answers of auth and rate-limit middlewares.
fn rejections(e: &mut Exposition) {
    let all: Vec<_> = registry()
        .rejections
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((what, route, kind), c)| (*what, route.clone(), *kind, c.load(Relaxed)))
        .collect();
    for (what, name, help) in [
        (
            Rejection::Auth,
            "pylon_auth_failures_total",
            "Requests an authentication middleware refused, by route and middleware type.",
        ),
        (
            Rejection::RateLimit,
            "pylon_rate_limit_rejections_total",
            "Requests a rate_limit or concurrency_limit middleware refused, by route and middleware type.",
        ),
    ] {
        e.family(name, Kind::Counter, help);
        for (_, route, kind, count) in all.iter().filter(|r| r.0 == what) {
            e.sample(
                name,
                &[("route", route), ("middleware", kind)],
                *count as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests;
