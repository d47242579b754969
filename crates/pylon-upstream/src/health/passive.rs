//! Passive health: outlier detection from real traffic, modelled on Envoy's.
//!
//! The proxy reports every request's outcome. A server that fails `consecutive_failures`
//! requests in a row is ejected (left out by the balancer) for `ejection_time`, doubled for
//! each recent ejection and capped at `max_ejection_time`, so a flapping server stays out
//! longer each time; every `ejection_time` it then spends in service forgives one past
//! ejection. It comes back on its own when the ejection ends. To keep outlier detection from
//! emptying a pool, no ejection may take the ejected share above `max_ejected_percent`,
//! except that one server may always be ejected.
//!
//! Everything is atomics on [`ServerState`]: a success costs one relaxed load on the hot
//! path. Forgiveness is computed when it matters (at the next ejection), not by a timer.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use log::{debug, warn};

use super::{human_duration, millis, server_name};
use crate::ServerState;

/// How outlier detection treats one upstream's servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Failures in a row that eject a server (0 turns ejection off).
    pub consecutive_failures: u32,
    /// Response statuses that count as failures (connect errors and timeouts always do).
    pub failure_statuses: Vec<u16>,
    /// Length of a first ejection, and the period that forgives one past ejection
    /// (zero turns ejection off).
    pub ejection_time: Duration,
    /// Cap on the doubled ejection time (at least `ejection_time`).
    pub max_ejection_time: Duration,
    /// Most servers of a pool that may be ejected at once, in percent (one always may).
    pub max_ejected_percent: u8,
}

/// How one real request to a server went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure(
        &'static str, /* reason: "connect failure", "timeout", "status 503", ... */
    ),
}

impl OutlierPolicy {
    pub fn is_failure_status(&self, status: u16) -> bool {
        self.failure_statuses.contains(&status)
    }

    /// The outcome of a request answered with `status`: a failure with reason `status NNN`
    /// when the status is one of `failure_statuses`, else a success.
    pub fn outcome_for_status(&self, status: u16) -> Outcome {
        if self.is_failure_status(status) {
            Outcome::Failure(status_reason(status))
        } else {
            Outcome::Success
        }
    }

    /// Records one real request's outcome for `server`; `pool` is every server of the upstream
    /// (to enforce max_ejected_percent). Ejects after `consecutive_failures` in a row, for
    /// ejection_time × 2^(ejection_count) capped at max_ejection_time (exponential back-off for
    /// repeat offenders); the ejection_count decays by one for each ejection_time period spent
    /// healthy since the last ejection. At least one server may always be ejected; beyond that,
    /// no ejection that would take the ejected share above max_ejected_percent. Logs each
    /// ejection once (server, reason, duration). Returns true when this call ejected the server.
    /// Lock-free (atomics on ServerState), cheap on Success (the hot path).
    ///
    /// Failures reported while the server is ejected (requests that were already in flight)
    /// do not count towards its next ejection. A failure refused by `max_ejected_percent`
    /// keeps the streak, so the server is ejected by its next failure once there is room.
    pub fn record(
        &self,
        upstream: &str,
        server: &ServerState,
        outcome: Outcome,
        pool: &[Arc<ServerState>],
        now_ms: u64,
    ) -> bool {
        let reason = match outcome {
            Outcome::Success => {
                // Read before writing: most successes find no streak, and a load does not
                // take the cache line away from the other cores.
                if server.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    server.consecutive_failures.store(0, Ordering::Relaxed);
                }
                return false;
            }
            Outcome::Failure(reason) => reason,
        };
        if self.consecutive_failures == 0 || self.ejection_time.is_zero() {
            return false;
        }
        let previous_until = server.ejected_until_ms.load(Ordering::Acquire);
        if previous_until > now_ms {
            return false;
        }
        let streak = server
            .consecutive_failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(1))
            })
            .unwrap_or_else(|n| n)
            .saturating_add(1);
        if streak < self.consecutive_failures {
            return false;
        }
        if !self.room_to_eject(server, pool, now_ms) {
            debug!(
                "upstream `{upstream}` server {} not ejected ({reason}, {streak} consecutive failures): \
                 {}% of the pool is ejected already",
                server_name(server),
                self.max_ejected_percent
            );
            return false;
        }
        let count = self.ejection_count_at(server, previous_until, now_ms);
        let duration_ms = self.ejection_ms(count);
        let until = now_ms.saturating_add(duration_ms);
        // Concurrent failures may all reach the threshold; the one that moves the deadline
        // ejects, the others see the server ejected.
        if server
            .ejected_until_ms
            .compare_exchange(previous_until, until, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        server
            .ejection_count
            .store(count.saturating_add(1), Ordering::Relaxed);
        server.last_ejection_ms.store(now_ms, Ordering::Relaxed);
        server.consecutive_failures.store(0, Ordering::Relaxed);
        server.ejections_total.fetch_add(1, Ordering::Relaxed);
        warn!(
            "upstream `{upstream}` server {} ejected for {}: {reason} ({streak} consecutive failures, ejection #{})",
            server_name(server),
            human_duration(Duration::from_millis(duration_ms)),
            count.saturating_add(1)
        );
        super::events::emit(|| super::events::HealthEvent {
            upstream: upstream.to_string(),
            server: server_name(server),
            healthy: false,
            reason: format!(
                "ejected by passive health for {}: {reason} ({streak} consecutive failures)",
                human_duration(Duration::from_millis(duration_ms)),
            ),
        });
        true
    }

    /// The server's ejection count at `now_ms` after forgiveness (for display; what the next
    /// ejection's back-off will start from).
    pub fn ejection_count(&self, server: &ServerState, now_ms: u64) -> u32 {
        let until = server.ejected_until_ms.load(Ordering::Acquire);
        if until > now_ms {
            return server.ejection_count.load(Ordering::Relaxed);
        }
        self.ejection_count_at(server, until, now_ms)
    }

    /// `ejection_count` less one for each whole `ejection_time` spent in service since the
    /// last ejection ended (`ejected_until`).
    fn ejection_count_at(&self, server: &ServerState, ejected_until: u64, now_ms: u64) -> u32 {
        let count = server.ejection_count.load(Ordering::Relaxed);
        let period = millis(self.ejection_time);
        if count == 0 || period == 0 {
            return count;
        }
        let healthy_since = server
            .last_ejection_ms
            .load(Ordering::Relaxed)
            .max(ejected_until);
        let periods = now_ms.saturating_sub(healthy_since) / period;
        count.saturating_sub(u32::try_from(periods).unwrap_or(u32::MAX))
    }

    /// `ejection_time × 2^count`, capped.
    fn ejection_ms(&self, count: u32) -> u64 {
        let base = millis(self.ejection_time);
        let cap = millis(self.max_ejection_time).max(base);
        let factor = 1u64.checked_shl(count).unwrap_or(u64::MAX);
        base.saturating_mul(factor).min(cap)
    }

    /// Whether ejecting `server` keeps the pool's ejected share within `max_ejected_percent`
    /// (or it would be the only server ejected).
    fn room_to_eject(&self, server: &ServerState, pool: &[Arc<ServerState>], now_ms: u64) -> bool {
        let mut in_pool = false;
        let mut others_ejected = 0usize;
        for other in pool {
            if std::ptr::eq(other.as_ref(), server) {
                in_pool = true;
            } else if other.is_ejected(now_ms) {
                others_ejected += 1;
            }
        }
        if others_ejected == 0 {
            return true;
        }
        let total = pool.len() + usize::from(!in_pool);
        let percent = usize::from(self.max_ejected_percent.min(100));
        (others_ejected + 1) * 100 <= percent * total
    }
}

/// `"status NNN"` as a `&'static str`, for [`Outcome::Failure`].
pub fn status_reason(status: u16) -> &'static str {
    static REASONS: OnceLock<Vec<String>> = OnceLock::new();
    let reasons = REASONS.get_or_init(|| (100..=599).map(|s| format!("status {s}")).collect());
    match status
        .checked_sub(100)
        .and_then(|i| reasons.get(usize::from(i)))
    {
        Some(reason) => reason.as_str(),
        None => "invalid status",
    }
}

#[cfg(test)]
mod tests;
