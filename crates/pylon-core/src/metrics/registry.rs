//! The global registry: series by label set, created when a snapshot is compiled (so the
//! hot path holds `Arc` handles and never looks anything up) and kept across reloads (a
//! reload that recompiles a route finds the same counters by name). A series only the
//! registry still holds — its route or upstream left the config — is dropped at scrape.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use pylon_config::{Config, MiddlewareRef, Route};

use super::classes::{code_index, error_index, method_index, CODES, ERROR_KINDS, METHODS};
use super::histogram::{Bounds, Histogram};
use crate::measured::Measured;

/// Body-size buckets, in bytes: 64 B to 64 MiB, by fours.
pub const BODY_BUCKETS: [u64; 11] = [
    64, 256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864,
];

/// Middleware types whose answer is an authentication failure.
const AUTH: [&str; 4] = ["basic_auth", "api_key", "jwt", "forward_auth"];
/// Middleware types whose answer is a rate-limit rejection.
const LIMITS: [&str; 2] = ["rate_limit", "concurrency_limit"];

/// The series of one route (and the upstream it proxies to; `""` for none).
#[derive(Debug)]
pub struct RouteSeries {
    pub route: Arc<str>,
    pub upstream: Arc<str>,
    /// Requests by method and status class.
    pub requests: [[AtomicU64; CODES.len()]; METHODS.len()],
    pub duration: Histogram,
    pub request_bytes: Histogram,
    pub response_bytes: Histogram,
}

/// The series of one upstream pool, by name.
#[derive(Debug)]
pub struct UpstreamSeries {
    pub name: Arc<str>,
    pub connect: Histogram,
    pub header: Histogram,
    /// Failed attempts by kind (see [`ERROR_KINDS`]).
    pub errors: [AtomicU64; ERROR_KINDS.len()],
    pub retries: AtomicU64,
    /// Attempts on a new connection / on a pooled one.
    pub new_connections: AtomicU64,
    pub reused_connections: AtomicU64,
}

/// What a middleware's answer counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    Auth,
    RateLimit,
}

type RejectionKey = (Rejection, Arc<str>, &'static str);
/// Route and upstream names.
type RouteKey = (Arc<str>, Arc<str>);

/// Every series, by labels.
#[derive(Debug, Default)]
pub struct Registry {
    pub routes: Mutex<BTreeMap<RouteKey, Arc<RouteSeries>>>,
    pub upstreams: Mutex<BTreeMap<Arc<str>, Arc<UpstreamSeries>>>,
    pub rejections: Mutex<BTreeMap<RejectionKey, Arc<AtomicU64>>>,
}

/// Settings read at start (`metrics:` is node-local).
#[derive(Debug)]
struct Settings {
    durations: Bounds,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(true);
static REGISTRY: OnceLock<Registry> = OnceLock::new();
/// Requests no route matched (`route=""`), held here so they are never pruned.
static UNMATCHED: OnceLock<Arc<RouteSeries>> = OnceLock::new();

/// Applies the `metrics:` section; call once at start, before the first snapshot compiles.
pub fn init(config: &pylon_config::MetricsConfig) {
    ENABLED.store(config.enabled, Relaxed);
    let _ = SETTINGS.set(Settings {
        durations: Bounds::seconds(&config.duration_buckets),
    });
}

/// Whether metrics are recorded.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Relaxed)
}

pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::default)
}

fn duration_bounds() -> Bounds {
    SETTINGS
        .get_or_init(|| Settings {
            durations: Bounds::seconds(&pylon_config::DEFAULT_DURATION_BUCKETS),
        })
        .durations
        .clone()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    fn route(&self, route: &str, upstream: &str) -> Arc<RouteSeries> {
        let mut routes = lock(&self.routes);
        let key = (Arc::<str>::from(route), Arc::<str>::from(upstream));
        routes
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(RouteSeries {
                    route: key.0,
                    upstream: key.1,
                    requests: Default::default(),
                    duration: Histogram::new(duration_bounds()),
                    request_bytes: Histogram::new(Bounds::bytes(&BODY_BUCKETS)),
                    response_bytes: Histogram::new(Bounds::bytes(&BODY_BUCKETS)),
                })
            })
            .clone()
    }

    fn upstream(&self, name: &str) -> Arc<UpstreamSeries> {
        let mut upstreams = lock(&self.upstreams);
        let name = Arc::<str>::from(name);
        upstreams
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(UpstreamSeries {
                    name,
                    connect: Histogram::new(duration_bounds()),
                    header: Histogram::new(duration_bounds()),
                    errors: Default::default(),
                    retries: AtomicU64::new(0),
                    new_connections: AtomicU64::new(0),
                    reused_connections: AtomicU64::new(0),
                })
            })
            .clone()
    }

    fn rejection(&self, what: Rejection, route: &str, kind: &'static str) -> Arc<AtomicU64> {
        lock(&self.rejections)
            .entry((what, Arc::from(route), kind))
            .or_default()
            .clone()
    }

    /// Drops the series no compiled route holds any more.
    pub fn prune(&self) {
        lock(&self.routes).retain(|_, s| Arc::strong_count(s) > 1);
        lock(&self.upstreams).retain(|_, s| Arc::strong_count(s) > 1);
        lock(&self.rejections).retain(|_, s| Arc::strong_count(s) > 1);
    }
}

fn unmatched() -> &'static Arc<RouteSeries> {
    UNMATCHED.get_or_init(|| registry().route("", ""))
}

/// A compiled route's handles. All empty when metrics are off: recording is then one
/// branch.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    series: Option<Arc<RouteSeries>>,
    upstream: Option<Arc<UpstreamSeries>>,
    /// By position in the route's middleware chain: the counter an answer of that
    /// middleware (an auth failure, a rate-limit rejection) adds to.
    answered: Box<[Option<Arc<AtomicU64>>]>,
}

impl RouteMetrics {
    /// The handles of `route` of `config`.
    pub fn compile(route: &Route, config: &Config) -> RouteMetrics {
        if !enabled() {
            return RouteMetrics::default();
        }
        let reg = registry();
        let upstream = route.upstream.as_deref();
        let answered = route
            .middlewares
            .iter()
            .map(|m| {
                let kind = match m {
                    MiddlewareRef::Named(name) => config.middlewares.get(name)?.type_name(),
                    MiddlewareRef::Inline(def) => def.type_name(),
                };
                let what = if AUTH.contains(&kind) {
                    Rejection::Auth
                } else if LIMITS.contains(&kind) {
                    Rejection::RateLimit
                } else {
                    return None;
                };
                Some(reg.rejection(what, &route.name, kind))
            })
            .collect();
        RouteMetrics {
            series: Some(reg.route(&route.name, upstream.unwrap_or(""))),
            upstream: upstream.map(|u| reg.upstream(u)),
            answered,
        }
    }

    /// The middleware at `position` of the chain answered the request itself.
    #[inline]
    pub fn answered(&self, position: usize) {
        if let Some(Some(counter)) = self.answered.get(position) {
            counter.fetch_add(1, Relaxed);
        }
    }

    /// An upstream attempt failed (`kind` from `proxy::upstream_error_kind`).
    #[inline]
    pub fn upstream_error(&self, kind: &str) {
        if let Some(up) = &self.upstream {
            up.errors[error_index(kind)].fetch_add(1, Relaxed);
        }
    }
}

/// Records a finished request: `route` is `None` when no route matched.
#[inline]
pub fn record(
    route: Option<&RouteMetrics>,
    method: &str,
    status: u16,
    measured: &Measured,
    request_bytes: usize,
    response_bytes: usize,
) {
    let (series, upstream) = match route {
        Some(m) => match &m.series {
            Some(series) => (series, m.upstream.as_ref()),
            None => return,
        },
        None if enabled() => (unmatched(), None),
        None => return,
    };
    series.requests[method_index(method)][code_index(status)].fetch_add(1, Relaxed);
    series.duration.observe_duration(measured.elapsed());
    series.request_bytes.observe(request_bytes as u64);
    series.response_bytes.observe(response_bytes as u64);
    let Some(up) = upstream.filter(|_| measured.attempts > 0) else {
        return;
    };
    if measured.attempts > 1 {
        up.retries
            .fetch_add(u64::from(measured.attempts - 1), Relaxed);
    }
    match measured.upstream_reused {
        Some(true) => up.reused_connections.fetch_add(1, Relaxed),
        Some(false) => up.new_connections.fetch_add(1, Relaxed),
        None => 0,
    };
    if let Some(connect) = measured.upstream_connect {
        up.connect.observe_duration(connect);
    }
    if let Some(header) = measured.upstream_header {
        up.header.observe_duration(header);
    }
}
