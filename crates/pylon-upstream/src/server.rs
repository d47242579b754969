//! The live state of one upstream server.
//!
//! One `ServerState` exists per resolved address of a pool; it is shared by `Arc` between the
//! balancer, the proxy (in-flight counts, latency, outcomes), the health checker and the
//! outlier detector, and kept across reloads and DNS refreshes when the server stays, so
//! that health and counters are not reset by an unrelated change. Fields are atomics: the
//! hot path never takes a lock. Each concern adds its own methods in its own module
//! (`balance`, `health`); this file only holds the shared data and the clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Milliseconds on a monotonic clock private to this process (never 0 after start-up, so 0
/// can mean "unset" in the atomics below).
pub fn now_ms() -> u64 {
    ms_at(Instant::now())
}

/// `instant` on [`now_ms`]'s scale, for a caller that has just read the clock for another
/// purpose (one clock read a request fewer; they cost more than their instructions on a VM).
pub fn ms_at(instant: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| Instant::now() - Duration::from_millis(1));
    u64::try_from(instant.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
pub struct ServerState {
    /// Where to connect.
    pub address: SocketAddr,
    /// Share of traffic relative to the pool's other servers (at least 1).
    pub weight: u32,
    /// How the user wrote it (`api.internal:8080` or the address), for logs.
    pub label: String,

    // --- load (balance) ---
    /// Requests sent to this server and not finished yet.
    pub in_flight: AtomicU32,
    /// Exponentially weighted moving average of response latency, in microseconds
    /// (0 = no sample yet).
    pub latency_ewma_us: AtomicU64,
    /// When the last latency sample was taken (`now_ms`), for time-based decay.
    pub latency_updated_ms: AtomicU64,

    // --- active health (health::active) ---
    /// Whether the last probes say the server is up. Starts true: a pool serves at once
    /// and the first failing probes take a dead server out.
    pub active_healthy: AtomicBool,
    /// Consecutive probe successes / failures, for the thresholds.
    pub probe_successes: AtomicU32,
    pub probe_failures: AtomicU32,
    /// When the next probe is due (`now_ms`; 0 = at once).
    pub next_probe_ms: AtomicU64,

    // --- passive health (health::passive) ---
    /// Consecutive failures of real traffic.
    pub consecutive_failures: AtomicU32,
    /// Until when the server is ejected (`now_ms`; 0 = not ejected).
    pub ejected_until_ms: AtomicU64,
    /// How many times it was ejected recently (the back-off exponent).
    pub ejection_count: AtomicU32,
    /// When it was last ejected or last decayed the count (`now_ms`).
    pub last_ejection_ms: AtomicU64,
    /// Ejections since this server's state was built (never decays; metrics read it).
    pub ejections_total: AtomicU64,
}

impl ServerState {
    pub fn new(address: SocketAddr, weight: u32, label: impl Into<String>) -> Self {
        ServerState {
            address,
            weight: weight.max(1),
            label: label.into(),
            in_flight: AtomicU32::new(0),
            latency_ewma_us: AtomicU64::new(0),
            latency_updated_ms: AtomicU64::new(0),
            active_healthy: AtomicBool::new(true),
            probe_successes: AtomicU32::new(0),
            probe_failures: AtomicU32::new(0),
            next_probe_ms: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            ejection_count: AtomicU32::new(0),
            last_ejection_ms: AtomicU64::new(0),
            ejections_total: AtomicU64::new(0),
        }
    }

    /// Requests in flight to this server.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the server is ejected by outlier detection at `now` (`now_ms`).
    #[inline]
    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now
    }

    /// Whether the balancer may choose this server: the active checks say it is up and
    /// outlier detection has not ejected it.
    #[inline]
    pub fn is_healthy(&self, now: u64) -> bool {
        self.active_healthy.load(Ordering::Relaxed) && !self.is_ejected(now)
    }
}
