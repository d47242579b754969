//! Active health checks: probes sent to each server on a schedule, whatever the traffic.
//!
//! A probe is a TCP (or TLS, when the peer has `tls`) connect, or an HTTP/1.1 request whose
//! response status must match the expected ones. Each probe opens a fresh connection and
//! closes it: a pooled connection would hide a dead listener, firewall or L4 balancer, and
//! the proxy's own pools never see probe connections. Results go through the thresholds of
//! [`record_probe`] into `ServerState::active_healthy`; the transition, not every probe, is
//! logged.
//!
//! [`HealthCheckService`] is the Pingora background service that drives it: it asks for the
//! current targets on every tick (reloads and DNS change them), probes those that are due,
//! concurrently but bounded, and stops on shutdown. The schedule lives in the shared
//! `next_probe_ms`, so a server that survives a reload keeps its rhythm and its counters.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use log::{debug, info, warn};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::{HttpPeer, ALPN};
use pingora::{Error, ErrorType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{human_duration, millis, server_name};
use crate::server::{now_ms, ServerState};

/// Probes in flight at once across all targets, by default. Probes are cheap and bounded by
/// their timeouts; the bound keeps a large fleet from opening thousands of sockets in one tick.
pub const DEFAULT_MAX_CONCURRENT_PROBES: usize = 64;
/// The longest the service sleeps between two looks at the targets.
pub const MAX_TICK: Duration = Duration::from_millis(100);
/// The shortest, so a zero interval cannot spin the loop.
const MIN_TICK: Duration = Duration::from_millis(5);
/// The next probe is delayed by up to this share of the interval (1/10), so servers checked
/// together at start-up drift apart instead of being probed in lockstep forever.
const JITTER_DIVISOR: u64 = 10;
/// `User-Agent` of HTTP probes, unless the check sets its own.
const USER_AGENT: &str = concat!("pylon-health-check/", env!("CARGO_PKG_VERSION"));

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// Open a connection (and complete the TLS handshake when the peer has `tls`), then close it.
    Tcp,
    /// Send one HTTP/1.1 request and require a matching status. The body is not read.
    Http {
        method: String,
        /// Request target, starting with `/` (an empty path sends `/`).
        path: String,
        /// `Host` header; when `None`, the peer's SNI if set, else the probed `address:port`.
        host: Option<String>,
        /// Extra request headers. A `Host` here replaces the one above.
        headers: Vec<(String, String)>,
        /// Statuses that count as healthy; empty means any 2xx.
        expected: Vec<StatusMatch>,
    },
}

/// One accepted response status, or a whole class of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    /// Exactly this status.
    Code(u16),
    /// Every status of this class: `Class(2)` is 200–299.
    Class(u8),
}

impl StatusMatch {
    pub fn matches(&self, status: u16) -> bool {
        match *self {
            StatusMatch::Code(code) => status == code,
            StatusMatch::Class(class) => status / 100 == u16::from(class),
        }
    }
}

/// How one upstream's servers are probed.
#[derive(Debug, Clone)]
pub struct ActiveCheck {
    pub kind: ProbeKind,
    /// From the end of one probe to the start of the next (plus a little jitter).
    pub interval: Duration,
    /// Bound on a whole probe: connect, TLS, request and response header.
    pub timeout: Duration,
    /// Consecutive successes that bring a down server back (0 counts as 1).
    pub healthy_threshold: u32,
    /// Consecutive failures that take an up server out (0 counts as 1).
    pub unhealthy_threshold: u32,
}

/// One thing to probe: the server's state, and the peer to probe it through (the lead builds it
/// with the server's TLS/SNI/client-cert options and the probe port; `tls` on the peer means https).
#[derive(Debug, Clone)]
pub struct CheckTarget {
    /// The upstream's name, for logs.
    pub upstream: String,
    pub check: Arc<ActiveCheck>,
    pub server: Arc<ServerState>,
    /// Probed as given, ALPN aside (see [`probe`]). Note Pingora's rule for TLS peers: an
    /// empty `sni` turns certificate verification off altogether; with an SNI, the
    /// certificate is verified (against `options.ca`, else the system roots) unless
    /// `options.verify_cert` is false, and its name unless `options.verify_hostname` is false.
    pub peer: HttpPeer,
}

/// Probes once. Ok(()) when healthy, Err(reason) like "connect refused", "status 500", "timed out after 2s".
///
/// The peer is used as given (address, TLS, SNI, verification, CA, client certificate, bind
/// address) except that ALPN is forced to HTTP/1.1: probes never speak h2. Use a `connector`
/// dedicated to health checks: probes never return connections to its pool, so every probe
/// connects afresh.
pub async fn probe(
    check: &ActiveCheck,
    peer: &HttpPeer,
    connector: &Connector,
) -> Result<(), String> {
    let mut peer = peer.clone();
    peer.options.alpn = ALPN::H1;
    match tokio::time::timeout(check.timeout, probe_untimed(&check.kind, &peer, connector)).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {}", human_duration(check.timeout))),
    }
}

async fn probe_untimed(
    kind: &ProbeKind,
    peer: &HttpPeer,
    connector: &Connector,
) -> Result<(), String> {
    let (mut session, _reused) = connector
        .get_http_session(peer)
        .await
        .map_err(|e| describe(&e))?;
    let ProbeKind::Http {
        method,
        path,
        host,
        headers,
        expected,
    } = kind
    else {
        // Connected (and TLS done): that is the whole TCP check. Dropping the session closes it.
        return Ok(());
    };
    let request = build_request(method, path, host.as_deref(), headers, peer)?;
    session
        .write_request_header(Box::new(request))
        .await
        .map_err(|e| describe(&e))?;
    session
        .finish_request_body()
        .await
        .map_err(|e| describe(&e))?;
    session
        .read_response_header()
        .await
        .map_err(|e| describe(&e))?;
    let status = session
        .response_header()
        .map(|header| header.status.as_u16())
        .ok_or_else(|| "no response header".to_string())?;
    let healthy = if expected.is_empty() {
        StatusMatch::Class(2).matches(status)
    } else {
        expected.iter().any(|m| m.matches(status))
    };
    // The body is left unread: the connection is closed when `session` drops.
    if healthy {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

fn build_request(
    method: &str,
    path: &str,
    host: Option<&str>,
    headers: &[(String, String)],
    peer: &HttpPeer,
) -> Result<RequestHeader, String> {
    let path = if path.is_empty() { "/" } else { path };
    let mut request = RequestHeader::build(method, path.as_bytes(), Some(headers.len() + 4))
        .map_err(|e| format!("invalid probe request `{method} {path}`: {e}"))?;
    let host = match host {
        Some(host) => host.to_string(),
        None if !peer.sni.is_empty() => peer.sni.clone(),
        None => peer._address.to_string(),
    };
    let header_error = |name: &str, e: Box<Error>| format!("invalid probe header `{name}`: {e}");
    request
        .insert_header("Host", host)
        .map_err(|e| header_error("Host", e))?;
    request
        .insert_header("User-Agent", USER_AGENT)
        .map_err(|e| header_error("User-Agent", e))?;
    request
        .insert_header("Connection", "close")
        .map_err(|e| header_error("Connection", e))?;
    for (name, value) in headers {
        // Headers the probe sets itself are replaced, others appended (a list may repeat a name).
        let own = ["host", "user-agent", "connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        let result = if own {
            request.insert_header(name.clone(), value.as_str())
        } else {
            request
                .append_header(name.clone(), value.as_str())
                .map(drop)
        };
        result.map_err(|e| header_error(name, e))?;
    }
    Ok(request)
}

/// A probe failure in a few words, for the "is down: …" log line.
fn describe(error: &Error) -> String {
    let (what, detail) = match &error.etype {
        ErrorType::ConnectRefused => ("connect refused", false),
        ErrorType::ConnectTimedout => ("connect timed out", false),
        ErrorType::ConnectNoRoute => ("connect failed: no route to host", false),
        ErrorType::TLSHandshakeTimedout => ("TLS handshake timed out", false),
        ErrorType::TLSHandshakeFailure
        | ErrorType::TLSWantX509Lookup
        | ErrorType::HandshakeError => ("TLS handshake failed", true),
        ErrorType::InvalidCert => ("TLS certificate rejected", true),
        ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::SocketError
        | ErrorType::ConnectProxyFailure => ("connect failed", true),
        ErrorType::ReadTimedout => ("read timed out", false),
        ErrorType::WriteTimedout => ("write timed out", false),
        ErrorType::ConnectionClosed => ("connection closed before a response", false),
        ErrorType::ReadError => ("read failed", true),
        ErrorType::WriteError => ("write failed", true),
        ErrorType::InvalidHTTPHeader
        | ErrorType::H1Error
        | ErrorType::H2Error
        | ErrorType::InvalidH2 => ("invalid response", true),
        other => (other.as_str(), true),
    };
    if !detail {
        return what.to_string();
    }
    let mut reason = what.to_string();
    if let Some(context) = &error.context {
        reason.push_str(": ");
        reason.push_str(context.as_str());
    }
    if let Some(cause) = &error.cause {
        reason.push_str(&format!(" ({cause})"));
    }
    reason
}

/// Applies one probe result with the thresholds (healthy_threshold consecutive successes to come
/// back, unhealthy_threshold consecutive failures to leave); logs the transition ONCE at warn/info
/// with upstream, server label and the reason ("upstream `api` server 127.0.0.1:3001 is down: status 500 (3 failed probes)").
/// Returns Some(new_state) when the state changed.
pub fn record_probe(target: &CheckTarget, result: &Result<(), String>) -> Option<bool> {
    let server = &target.server;
    let check = &target.check;
    match result {
        Ok(()) => {
            server.probe_failures.store(0, Ordering::Relaxed);
            let successes = bump(&server.probe_successes);
            if successes < check.healthy_threshold.max(1) {
                return None;
            }
            server
                .active_healthy
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .ok()?;
            info!(
                "upstream `{}` server {} is up again ({successes} successful probe{})",
                target.upstream,
                server_name(server),
                if successes == 1 { "" } else { "s" }
            );
            super::events::emit(|| super::events::HealthEvent {
                upstream: target.upstream.clone(),
                server: server_name(server),
                healthy: true,
                reason: format!("up again ({successes} successful probes)"),
            });
            Some(true)
        }
        Err(reason) => {
            server.probe_successes.store(0, Ordering::Relaxed);
            let failures = bump(&server.probe_failures);
            if failures < check.unhealthy_threshold.max(1) {
                debug!(
                    "upstream `{}` server {}: probe failed: {reason} ({failures} in a row)",
                    target.upstream,
                    server_name(server)
                );
                return None;
            }
            server
                .active_healthy
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
                .ok()?;
            warn!(
                "upstream `{}` server {} is down: {reason} ({failures} failed probe{})",
                target.upstream,
                server_name(server),
                if failures == 1 { "" } else { "s" }
            );
            super::events::emit(|| super::events::HealthEvent {
                upstream: target.upstream.clone(),
                server: server_name(server),
                healthy: false,
                reason: format!("down: {reason} ({failures} failed probes)"),
            });
            Some(false)
        }
    }
}

/// Adds one to a streak counter without wrapping; returns the new value.
fn bump(counter: &std::sync::atomic::AtomicU32) -> u32 {
    let previous = counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_add(1))
        })
        .unwrap_or_else(|n| n);
    previous.saturating_add(1)
}

/// The Pingora background service: every tick (≤ 100 ms granularity or the smallest interval),
/// calls `targets()` to get the current targets (the set changes with reloads and DNS), probes those
/// whose `next_probe_ms` is due (concurrently, bounded, each with its own `timeout`), records results,
/// schedules the next probe at now + interval (with small jitter), and stops on shutdown.
pub struct HealthCheckService {
    targets: Arc<dyn Fn() -> Vec<CheckTarget> + Send + Sync>,
    connector: Arc<Connector>,
    max_concurrent: usize,
}

impl HealthCheckService {
    pub fn new(targets: Arc<dyn Fn() -> Vec<CheckTarget> + Send + Sync>) -> Self {
        HealthCheckService {
            targets,
            connector: Arc::new(Connector::new(None)),
            max_concurrent: DEFAULT_MAX_CONCURRENT_PROBES,
        }
    }

    /// Bounds the probes in flight at once (at least 1; default [`DEFAULT_MAX_CONCURRENT_PROBES`]).
    pub fn with_max_concurrent_probes(mut self, max: usize) -> Self {
        self.max_concurrent = max.max(1);
        self
    }

    /// Probes through this connector instead of a default one (e.g. one built with
    /// `ConnectorOptions` carrying a CA file or bind addresses). Keep it for probes only.
    pub fn with_connector(mut self, connector: Connector) -> Self {
        self.connector = Arc::new(connector);
        self
    }

    /// One look at the targets: starts the probes that are due, as far as permits allow
    /// (the rest stay due). Returns how long to sleep before the next look, and whether
    /// probes are waiting for a permit (then a finishing probe should wake the loop sooner).
    fn launch_due(&self, permits: &Arc<Semaphore>, running: &mut JoinSet<()>) -> (Duration, bool) {
        let now = now_ms();
        let mut wake = now.saturating_add(millis(MAX_TICK));
        let mut saturated = false;
        for target in (self.targets)() {
            let interval = millis(target.check.interval).max(1);
            // Never sleep past the smallest interval: a probe in flight now is due again then.
            wake = wake.min(now.saturating_add(interval));
            let due = target.server.next_probe_ms.load(Ordering::Acquire);
            if due > now {
                wake = wake.min(due);
                continue;
            }
            let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
                saturated = true;
                break;
            };
            // Claim the probe, so that a second target for the same server (or a slow probe
            // seen by the next tick) does not probe it twice. Should the task be lost, the
            // claim expires by itself and the server is probed again.
            let lease = now
                .saturating_add(interval)
                .saturating_add(millis(target.check.timeout));
            if target
                .server
                .next_probe_ms
                .compare_exchange(due, lease, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let connector = Arc::clone(&self.connector);
            running.spawn(async move {
                let result = probe(&target.check, &target.peer, &connector).await;
                drop(permit);
                record_probe(&target, &result);
                let next = now_ms()
                    .saturating_add(interval)
                    .saturating_add(jitter(interval));
                target.server.next_probe_ms.store(next, Ordering::Release);
            });
        }
        let sleep = Duration::from_millis(wake.saturating_sub(now)).clamp(MIN_TICK, MAX_TICK);
        (sleep, saturated)
    }
}

/// A random delay in `0..=interval/10` ms.
fn jitter(interval_ms: u64) -> u64 {
    let span = interval_ms / JITTER_DIVISOR;
    if span == 0 {
        return 0;
    }
    // Each `RandomState` is seeded afresh: a cheap random number without a dependency.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(now_ms());
    hasher.finish() % (span + 1)
}

#[async_trait]
impl BackgroundService for HealthCheckService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        info!("active health checks started");
        let permits = Arc::new(Semaphore::new(self.max_concurrent));
        let mut running = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while running.try_join_next().is_some() {}
            let (sleep, saturated) = self.launch_due(&permits, &mut running);
            tokio::select! {
                // All permits taken: look again as soon as one probe ends.
                Some(_) = running.join_next(), if saturated => {}
                changed = shutdown.changed() => {
                    // A dropped sender means nobody can ask us to stop any more: stop now.
                    if changed.is_err() {
                        break;
                    }
                }
                () = tokio::time::sleep(sleep) => {}
            }
        }
        // Probes in flight are abandoned: their claims expire, nothing is left half-recorded.
        running.shutdown().await;
        info!("active health checks stopped");
    }
}

#[cfg(test)]
mod tests;
