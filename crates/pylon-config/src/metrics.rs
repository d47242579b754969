//! The `metrics:` section: whether Pylon records Prometheus metrics, an optional listener
//! of their own, and the request-duration histogram's buckets.
//!
//! Node-local like `server` and `admin`: read at start (the registry's buckets and the
//! listener are fixed then); a reload keeps the running value.

use std::net::SocketAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::loader::Pieces;
use crate::model::AddrSchema;
use crate::validate::Spot;

/// The request-duration buckets when none are given, in seconds: 5 ms to 10 s, the
/// Prometheus client libraries' default set.
pub const DEFAULT_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The most buckets a duration histogram may have: each is a series per route.
pub const MAX_DURATION_BUCKETS: usize = 30;

/// Prometheus metrics (`/metrics` on the admin listener, and on `listener` when set).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Record metrics. When false nothing is recorded and `/metrics` answers 404.
    /// Default: true.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// An address of its own serving `GET /metrics` (no credentials: keep it on a private
    /// network), e.g. `"127.0.0.1:9100"`. Default: none (the admin listener serves it).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::addr::optional"
    )]
    #[schemars(with = "Option<AddrSchema>")]
    pub listener: Option<SocketAddr>,
    /// Upper bounds of the request and upstream duration histograms' buckets, in seconds,
    /// strictly increasing. Default: 0.005 … 10 (11 buckets); at most 30.
    #[serde(default = "default_buckets")]
    pub duration_buckets: Vec<f64>,
}

// Validation refuses NaN (it is not positive), so equality is reflexive for every loaded
// value and `Config` can stay `Eq`.
impl Eq for MetricsConfig {}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listener: None,
            duration_buckets: default_buckets(),
        }
    }
}

impl MetricsConfig {
    /// Whether this is the default (left out when a config is written back).
    pub fn is_default(&self) -> bool {
        *self == MetricsConfig::default()
    }
}

fn default_enabled() -> bool {
    true
}

fn default_buckets() -> Vec<f64> {
    DEFAULT_DURATION_BUCKETS.to_vec()
}

/// Checks the `metrics` section: the buckets are positive, finite, strictly increasing and
/// not too many; the listener is not an address something else of this config listens on.
pub(crate) fn validate(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let Some(piece) = &pieces.metrics else {
        return;
    };
    let metrics = &piece.value;
    let spot = Spot::new(&piece.doc.file, piece.node, piece.path.clone());
    if let Some(addr) = metrics.listener {
        let taken = pieces
            .listeners
            .iter()
            .find(|l| l.value.address == addr)
            .map(|l| format!("listener `{}`", l.value.name))
            .or_else(|| {
                let admin = pieces.admin.as_ref()?;
                (admin.value.listen == addr).then(|| "the admin API".to_string())
            });
        if let Some(user) = taken {
            errors.push(spot.key("listener").error(format!(
                "address {addr} is already used by {user} (the admin listener serves /metrics too: leave `listener` out)"
            )));
        }
    }
    let buckets = spot.key("duration_buckets");
    if metrics.duration_buckets.is_empty() {
        errors.push(buckets.error("give at least one bucket (in seconds), or leave the key out"));
    }
    if metrics.duration_buckets.len() > MAX_DURATION_BUCKETS {
        errors.push(buckets.error(format!(
            "at most {MAX_DURATION_BUCKETS} buckets, found {} (each is a series per route)",
            metrics.duration_buckets.len()
        )));
    }
    let mut previous: Option<f64> = None;
    // Durations are counted in whole nanoseconds: bounds are compared as they will be kept.
    let nanos = |s: f64| (s * 1e9).round();
    for (i, &bound) in metrics.duration_buckets.iter().enumerate() {
        let item = buckets.item(i);
        if !(bound.is_finite() && bound > 0.0) {
            errors.push(item.error(format!(
                "a bucket is a positive number of seconds, found {bound}"
            )));
        } else if nanos(bound) < 1.0 {
            errors.push(item.error(format!(
                "a bucket is at least 1ns (1e-9): durations are counted in nanoseconds, found {bound}"
            )));
        } else if previous.is_some_and(|p| nanos(bound) <= nanos(p)) {
            errors.push(item.error(format!(
                "buckets must be strictly increasing: {bound} follows {}",
                previous.unwrap_or_default()
            )));
        }
        previous = Some(bound);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{load_str, Format};
    use std::path::Path;

    const BASE: &str = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nroutes: [{ name: r, rule: \"PathPrefix(`/`)\", respond: { status: 200 } }]\n";

    fn load(metrics: &str) -> Result<crate::Config, String> {
        load_str(
            &format!("{BASE}{metrics}"),
            Format::Yaml,
            Path::new("t.yaml"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_a_full_section() {
        let config = load("").unwrap();
        assert!(config.metrics.enabled);
        assert_eq!(config.metrics.listener, None);
        assert_eq!(config.metrics.duration_buckets.len(), 11);
        let config = load(
            "metrics: { enabled: false, listener: \"127.0.0.1:9100\", duration_buckets: [0.1, 1, 10] }\n",
        )
        .unwrap();
        assert!(!config.metrics.enabled);
        assert_eq!(
            config.metrics.listener,
            Some("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(config.metrics.duration_buckets, vec![0.1, 1.0, 10.0]);
    }

    #[test]
    fn bad_buckets_are_refused_at_their_place() {
        let e = load("metrics:\n  duration_buckets: [0.1, 0.05, -1]\n").unwrap_err();
        assert!(
            e.contains("t.yaml:4:")
                && e.contains("strictly increasing: 0.05 follows 0.1")
                && e.contains("positive number of seconds, found -1"),
            "{e}"
        );
        let tiny = load("metrics:\n  duration_buckets: [1e-10, 0.1]\n").unwrap_err();
        assert!(tiny.contains("at least 1ns"), "{tiny}");
        let many: Vec<String> = (1..=31).map(|i| i.to_string()).collect();
        let e = load(&format!(
            "metrics: {{ duration_buckets: [{}] }}\n",
            many.join(", ")
        ))
        .unwrap_err();
        assert!(e.contains("at most 30 buckets, found 31"), "{e}");
        let e = load("metrics: { duration_buckets: [] }\n").unwrap_err();
        assert!(e.contains("at least one bucket"), "{e}");
        let e = load("metrics: { listener: \"localhost:9100\" }\n").unwrap_err();
        assert!(
            e.contains("t.yaml:3:") && e.contains("use an IP address"),
            "{e}"
        );
        let e = load(
            "admin: { listen: \"127.0.0.1:9180\" }\nmetrics: { listener: \"127.0.0.1:9180\" }\n",
        )
        .unwrap_err();
        assert!(
            e.contains("t.yaml:4:") && e.contains("already used by the admin API"),
            "{e}"
        );
        let e = load("metrics: { listener: \"127.0.0.1:8080\" }\n").unwrap_err();
        assert!(e.contains("already used by listener `web`"), "{e}");
        let e = load("metrics: { enabled: true, port: 1 }\n").unwrap_err();
        assert!(e.contains("port"), "{e}");
    }
}
