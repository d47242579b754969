//! The `tracing:` section: W3C trace context propagation, sampling, and span export over
//! OTLP/HTTP. Absent: Pylon does no trace work and passes `traceparent` through untouched.
//! Present without `otlp`: traces are propagated (and started) but no spans are exported.
//!
//! Node-local like `reload` (each node names its own collector, usually an agent next to
//! it; a fleet's store does not carry it) and applied by a reload: the sampler changes at
//! once, the exporter is rebuilt only when `otlp` changed.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::loader::Piece;
use crate::middleware::AuthUrl;
use crate::validate::Spot;

/// Share of new traces sampled when `sampling` is not written: all of them.
pub const DEFAULT_TRACE_SAMPLING: f64 = 1.0;
/// `service.name` of exported spans when none is written.
pub const DEFAULT_TRACE_SERVICE_NAME: &str = "pylon";
/// Where spans go when `otlp` gives no `endpoint`: a local OpenTelemetry Collector.
pub const DEFAULT_OTLP_ENDPOINT: &str = "http://127.0.0.1:4318/v1/traces";
/// Time allowed for one export request.
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished spans waiting for export; more are dropped (and counted).
pub const DEFAULT_OTLP_MAX_QUEUE: usize = 2048;
/// Spans sent in one export request at most.
pub const DEFAULT_OTLP_MAX_BATCH: usize = 512;
/// How often waiting spans are sent when no full batch forms first.
pub const DEFAULT_OTLP_INTERVAL: Duration = Duration::from_secs(1);

/// Distributed tracing: W3C `traceparent`/`tracestate` are read and passed on, a trace is
/// started when a request has none, and sampled requests are exported as spans.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Share of traces sampled, from 0.0 to 1.0, decided from the trace id (so every node
    /// decides the same for one trace). Default: 1.0.
    #[serde(default = "default_sampling")]
    pub sampling: f64,
    /// When the request carries a `traceparent`, follow its sampled flag instead of
    /// `sampling`. Default: true.
    #[serde(default = "default_true")]
    pub parent_based: bool,
    /// `service.name` of exported spans. Default: `pylon`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// Export sampled spans over OTLP/HTTP. Absent: nothing is exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpConfig>,
}

// `sampling` is checked to be a number from 0 to 1 (never NaN) before a config is used.
impl Eq for TracingConfig {}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP traces URL, `http://host[:port]/path`. Default:
    /// `http://127.0.0.1:4318/v1/traces`.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `http/protobuf` or `http/json`. Default: `http/protobuf`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Headers sent with every export request (an API key: `"${OTLP_TOKEN}"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Time allowed for one export request. Default: 10s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// Finished spans kept waiting for export; when full, new spans are dropped (and
    /// counted). Default: 2048.
    #[serde(default = "default_max_queue")]
    #[schemars(range(min = 1))]
    pub max_queue: usize,
    /// Spans sent in one export request at most. Default: 512.
    #[serde(default = "default_max_batch")]
    #[schemars(range(min = 1))]
    pub max_batch: usize,
    /// How often waiting spans are sent when no full batch forms first. Default: 1s.
    #[serde(default = "default_interval", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub interval: Duration,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: default_endpoint(),
            protocol: OtlpProtocol::default(),
            headers: BTreeMap::new(),
            timeout: DEFAULT_OTLP_TIMEOUT,
            max_queue: DEFAULT_OTLP_MAX_QUEUE,
            max_batch: DEFAULT_OTLP_MAX_BATCH,
            interval: DEFAULT_OTLP_INTERVAL,
        }
    }
}

/// The OTLP/HTTP body encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum OtlpProtocol {
    /// Protobuf (`application/x-protobuf`), what collectors expect by default.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// JSON (`application/json`).
    #[serde(rename = "http/json")]
    HttpJson,
}

fn default_sampling() -> f64 {
    DEFAULT_TRACE_SAMPLING
}
fn default_true() -> bool {
    true
}
fn default_service_name() -> String {
    DEFAULT_TRACE_SERVICE_NAME.to_string()
}
fn default_endpoint() -> String {
    DEFAULT_OTLP_ENDPOINT.to_string()
}
fn default_timeout() -> Duration {
    DEFAULT_OTLP_TIMEOUT
}
fn default_max_queue() -> usize {
    DEFAULT_OTLP_MAX_QUEUE
}
fn default_max_batch() -> usize {
    DEFAULT_OTLP_MAX_BATCH
}
fn default_interval() -> Duration {
    DEFAULT_OTLP_INTERVAL
}

/// Range checks and the endpoint URL.
pub(crate) fn validate(piece: &Piece<'_, TracingConfig>, errors: &mut Vec<ConfigError>) {
    let tracing = &piece.value;
    let spot = Spot::new(&piece.doc.file, piece.node, piece.path.clone());
    if !(0.0..=1.0).contains(&tracing.sampling) {
        errors.push(spot.key("sampling").error(format!(
            "sampling must be from 0.0 to 1.0 (the share of traces kept), found {}",
            tracing.sampling
        )));
    }
    if tracing.service_name.trim().is_empty() {
        errors.push(
            spot.key("service_name")
                .error("service_name must not be empty"),
        );
    }
    let Some(otlp) = &tracing.otlp else {
        return;
    };
    let o = spot.key("otlp");
    let endpoint = otlp.endpoint.as_str();
    if endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        errors.push(o.key("endpoint").error(format!(
            "invalid endpoint {endpoint:?}: https is not supported yet; send spans over http \
             to a collector on the node or a trusted network (an OpenTelemetry Collector \
             agent on `http://127.0.0.1:4318/v1/traces`), which can forward them over TLS"
        )));
    } else if let Err(message) = AuthUrl::parse_like(endpoint, "http://127.0.0.1:4318/v1/traces") {
        errors.push(o.key("endpoint").error(message));
    }
    crate::validate::headers(&o.key("headers"), errors);
    o.at_least("max_queue", otlp.max_queue, 1, errors);
    o.at_least("max_batch", otlp.max_batch, 1, errors);
    for (key, value) in [("timeout", otlp.timeout), ("interval", otlp.interval)] {
        if value.is_zero() {
            errors.push(o.key(key).error(format!("{key} must be more than 0s")));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn errors(tracing: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\ntracing:\n{tracing}\n"
        );
        crate::middleware::load_errors(&text)
    }

    #[test]
    fn defaults_load() {
        assert_eq!(errors("  sampling: 0.25\n  otlp: {}"), "");
        let text = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nroutes: []\ntracing: { otlp: { protocol: http/json } }\n";
        let loaded =
            crate::load_str(text, crate::Format::Yaml, std::path::Path::new("t.yaml")).unwrap();
        let t = loaded.tracing.unwrap();
        assert_eq!(t.sampling, 1.0);
        assert!(t.parent_based);
        assert_eq!(t.service_name, "pylon");
        let otlp = t.otlp.unwrap();
        assert_eq!(otlp.endpoint, super::DEFAULT_OTLP_ENDPOINT);
        assert_eq!(otlp.protocol, super::OtlpProtocol::HttpJson);
        assert_eq!(otlp.max_batch, 512);
    }

    #[test]
    fn bad_values_point_at_their_spot() {
        let e = errors("  sampling: 1.5");
        assert!(
            e.contains("t.yaml:8:13") && e.contains("sampling must be from 0.0 to 1.0"),
            "{e}"
        );
        let e = errors("  otlp: { endpoint: \"https://collector:4318/v1/traces\" }");
        assert!(
            e.contains("tracing.otlp.endpoint") && e.contains("https is not supported"),
            "{e}"
        );
        let e = errors("  otlp: { endpoint: \"collector:4318\" }");
        assert!(e.contains("the scheme must be `http://`"), "{e}");
        let e = errors("  otlp: { max_queue: 0, interval: 0s, headers: { \"bad name\": x } }");
        assert!(e.contains("max_queue must be at least 1"), "{e}");
        assert!(e.contains("interval must be more than 0s"), "{e}");
        assert!(e.contains("bad name"), "{e}");
        let e = errors("  otlp: { protocol: grpc }");
        assert!(e.contains("protocol"), "{e}");
    }
}
