//! Health of upstream servers, from two sources that both write to the shared
//! [`ServerState`](crate::ServerState):
//!
//! - [`active`]: probes (TCP connect, or an HTTP request) sent on a schedule by a Pingora
//!   background service, with healthy/unhealthy thresholds; they set `active_healthy`.
//! - [`passive`]: outlier detection from real traffic, modelled on Envoy's: consecutive
//!   failures eject a server for a while (`ejected_until_ms`), longer for repeat offenders,
//!   never more than a set share of the pool.
//!
//! The two are independent: `ServerState::is_healthy(now)` requires both to agree, and an
//! ejected server comes back on its own when its ejection ends, without a probe.

pub mod active;
pub mod events;
pub mod passive;

pub use active::{
    probe, record_probe, ActiveCheck, CheckTarget, HealthCheckService, ProbeKind, StatusMatch,
};
pub use passive::{Outcome, OutlierPolicy};

use std::time::Duration;

use crate::ServerState;

/// How a server is named in health logs: its label, with the address when the label is a
/// host name (`api.internal:8080 (10.0.0.7:8080)`).
pub(crate) fn server_name(server: &ServerState) -> String {
    let address = server.address.to_string();
    if server.label.is_empty() || server.label == address {
        address
    } else {
        format!("{} ({address})", server.label)
    }
}

/// A duration as a person writes it in a config: `2s`, `1500ms`, `5m`.
pub(crate) fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        format!("{}us", d.as_micros())
    } else if ms.is_multiple_of(60_000) && ms >= 60_000 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Whole milliseconds of `d`, saturating (for arithmetic on `now_ms` values).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(90)), "90s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn server_names_show_the_address_behind_a_host_name() {
        let addr = "10.0.0.7:8080".parse().expect("address");
        assert_eq!(
            server_name(&ServerState::new(addr, 1, "10.0.0.7:8080")),
            "10.0.0.7:8080"
        );
        assert_eq!(
            server_name(&ServerState::new(addr, 1, "api.internal:8080")),
            "api.internal:8080 (10.0.0.7:8080)"
        );
    }
}
