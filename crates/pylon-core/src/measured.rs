//! What the proxy measured of one request: filled in by the phases as they run (arrival,
//! each upstream attempt's connect and first byte, the final status), read once at the end
//! by the consumers of the `logging` phase — metrics, the access log and tracing — so each
//! of them reads the same numbers and none reads the clock again.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// Timings and outcome of one request. Durations are `None` when the phase did not happen
/// (no upstream, a reused connection has no connect time, the upstream never answered).
#[derive(Debug, Clone)]
pub struct Measured {
    /// When the proxy made the request's context (the request header was read).
    pub received: Instant,
    /// Wall-clock time of `received`, for log timestamps and span start times. Set by
    /// [`Measured::finish`] when a consumer needs it (the Unix epoch until then): reading the
    /// wall clock on every request for consumers that are off cost a clock read each.
    pub received_at: SystemTime,
    /// When the current upstream attempt started (the server was chosen).
    pub attempt_started: Option<Instant>,
    /// Upstream attempts made (1 + retries); 0 when the request never went upstream.
    pub attempts: u32,
    /// Time to open the last attempt's upstream connection; `None` when it reused a pooled
    /// connection or none was made.
    pub upstream_connect: Option<Duration>,
    /// Whether the last attempt reused a pooled upstream connection.
    pub upstream_reused: Option<bool>,
    /// Time from the last attempt's start to the upstream's response header ("time to
    /// first byte", the upstream's processing time).
    pub upstream_header: Option<Duration>,
    /// The server the last attempt went to.
    pub upstream_addr: Option<SocketAddr>,
    /// The status the upstream answered the last attempt with.
    pub upstream_status: Option<u16>,
    /// How the last failed attempt failed, when one did: `connect`, `timeout`, `reset`,
    /// `tls` or `other` (see `proxy::upstream_error_kind`).
    pub upstream_error: Option<&'static str>,
    /// The request's whole duration, fixed when the `logging` phase starts
    /// ([`Measured::finish`]) so that every consumer reports the same number.
    pub finished: Option<Duration>,
}

impl Measured {
    /// Starts measuring a request that arrives now.
    pub fn start() -> Self {
        Measured {
            received: Instant::now(),
            received_at: SystemTime::UNIX_EPOCH,
            attempt_started: None,
            attempts: 0,
            upstream_connect: None,
            upstream_reused: None,
            upstream_header: None,
            upstream_addr: None,
            upstream_status: None,
            upstream_error: None,
            finished: None,
        }
    }

    /// A new upstream attempt to `addr` started at `started` (the caller's clock reading,
    /// which it also uses for the balancer).
    pub fn attempt(&mut self, addr: SocketAddr, started: Instant) {
        self.attempt_started = Some(started);
        self.attempts += 1;
        self.upstream_addr = Some(addr);
        self.upstream_connect = None;
        self.upstream_reused = None;
        self.upstream_header = None;
        self.upstream_status = None;
    }

    /// The attempt's connection is ready: opened now, or taken from the pool.
    pub fn connected(&mut self, reused: bool) {
        self.upstream_reused = Some(reused);
        if !reused {
            self.upstream_connect = self.attempt_started.map(|s| s.elapsed());
        }
    }

    /// The upstream's response header arrived; returns the time since the attempt started.
    pub fn upstream_answered(&mut self, status: u16) -> Option<Duration> {
        self.upstream_status = Some(status);
        self.upstream_header = self.attempt_started.map(|s| s.elapsed());
        self.upstream_header
    }

    /// The request is done: its duration is fixed now. With `wall_clock` (an access log or a
    /// trace will report it), `received_at` is set: now on the wall clock, less the duration.
    pub fn finish(&mut self, wall_clock: bool) {
        let elapsed = self.received.elapsed();
        self.finished = Some(elapsed);
        if wall_clock {
            self.received_at = SystemTime::now()
                .checked_sub(elapsed)
                .unwrap_or(SystemTime::UNIX_EPOCH);
        }
    }

    /// The request's duration once finished, else the time since it arrived.
    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(|| self.received.elapsed())
    }
}
