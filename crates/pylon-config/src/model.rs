//! The file schema: what users write, as typed Rust values. One model for YAML, TOML and
//! JSON. Doc comments on fields become the JSON Schema descriptions editors show.
//!
//! This is the user's vocabulary, shorthands included (a server may be a bare address);
//! the runtime compiles it into its own model and never reads these types on the hot path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::dns::DnsConfig;
use crate::duration::DurationSchema;
use crate::middleware::{Middleware, MiddlewareRef};
use crate::retry::Retries;
use crate::upstream::Upstream;

/// Lowest HTTP status a `respond` route may answer with.
pub const MIN_STATUS: u16 = 100;
/// Highest HTTP status a `respond` route may answer with.
pub const MAX_STATUS: u16 = 599;

/// A Pylon configuration: where traffic enters (`listeners`), where it goes (`upstreams`),
/// how requests are matched to a target (`routes`), how server names are resolved (`dns`),
/// and engine settings (`server`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = { "required": ["upstream", "routes"] }))]
pub struct Config {
    /// Pingora engine settings; all optional.
    #[serde(default)]
    pub server: ServerConfig,
    /// Addresses Pylon accepts traffic on. At least one is required.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Named pools of servers that routes forward to.
    #[serde(default)]
    pub upstreams: BTreeMap<String, Upstream>,
    /// Rules that send a request to an upstream or answer it directly. When several match,
    /// the highest priority wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Load-balancer mode: one upstream that receives every request, instead of `routes`.
    /// Stands for an upstream named `default` and a route sending everything to it; a
    /// loaded config never has it set (the loader rewrites it into those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
    /// How server host names are resolved: hosts file, then DNS.
    #[serde(default)]
    pub dns: DnsConfig,
    /// Live reload: watching the config files, SIGHUP.
    #[serde(default)]
    pub reload: crate::ReloadConfig,
    /// The management API: its listener, credentials and rate limit. Off when absent.
    /// Read at start only, like `server` and `listeners`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<crate::AdminConfig>,
    /// Named middleware instances that routes use by name. Each is a map with one key,
    /// the middleware type: `strip-api: { transform: { request: "StripPrefix(`/api`)" } }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub middlewares: BTreeMap<String, Middleware>,
    /// Bodies for the error responses Pylon writes itself (404, 502, 504, …), by status
    /// (`"404"`) or class (`"5xx"`). Default: JSON for clients that accept it, else a short
    /// text page.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_pages: BTreeMap<String, ErrorPage>,
    /// Where routes, upstreams, middlewares and error pages come from: this file (the
    /// default), or etcd, shared by a fleet (`{ store: etcd, endpoints: [...], prefix: /pylon }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<crate::StoreConfig>,
    /// Webhooks Pylon POSTs events to (a server down, a config applied or refused,
    /// started, stopping): `[{ url, events, format: json|slack|discord }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::Notification>,
    /// Distributed tracing: W3C trace context and span export over OTLP/HTTP. Off when
    /// absent (`traceparent` passes through untouched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<crate::TracingConfig>,
    /// One line per request, as text or JSON, to a file or stdout
    /// (`{ format: json, path: /var/log/pylon/access.log }`). Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<crate::AccessLogConfig>,
    /// Prometheus metrics: on by default, served at `/metrics`. Read at start only.
    #[serde(default, skip_serializing_if = "crate::MetricsConfig::is_default")]
    pub metrics: crate::MetricsConfig,
}

impl Config {
    /// The etcd store settings, when the shared part of the config lives in etcd.
    pub fn etcd(&self) -> Option<&crate::StoreConfig> {
        self.config.as_ref().filter(|c| c.is_etcd())
    }
}

/// A custom body for Pylon's own error responses. `{status}`, `{error}` (the message),
/// `{request_id}` and `{trace_id}` (empty when tracing is off) in the body are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorPage {
    /// The body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A file whose content is the body, read when the config is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// `Content-Type` of the body. Default: `text/html; charset=utf-8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Pingora engine settings. The binary applies the defaults documented on each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Worker threads per service. Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Whether idle worker threads steal work from busy ones. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_stealing: Option<bool>,
    /// On SIGTERM or SIGQUIT (upgrade), how long requests in flight get to finish: new
    /// connections stop being accepted at the signal, and requests still running when the
    /// period ends are cut. Rounded up to whole seconds. Default: 5s.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub grace_period: Option<Duration>,
    /// After the grace period, how long the engine's threads get to stop before the
    /// process exits. Rounded up to whole seconds. Default: 10s.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub graceful_shutdown_timeout: Option<Duration>,
    /// Idle upstream connections kept for reuse. Default: 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive_pool_size: Option<usize>,
    /// Whether HTTP/1 header names keep the case they arrived in (`X-Request-ID` stays
    /// `X-Request-ID`). Off by default: names are written in lower case (`x-request-id`),
    /// as HAProxy and Envoy do, but for a few common ones Pingora title-cases (`Host`,
    /// `Content-Type`, `Content-Length`, `Date`, `Server`, ...), which saves a second header
    /// map per message. Names are case-insensitive in HTTP; turn
    /// this on for a peer that reads them case-sensitively. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_header_case: Option<bool>,
    /// Where the process id is written. Default: `/tmp/pylon.pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_file: Option<PathBuf>,
    /// File that error output goes to when running as a daemon. Default: standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_log: Option<PathBuf>,
    /// Run in the background (also `pylon -d`). Default: false.
    #[serde(default)]
    pub daemon: bool,
    /// Unix socket used to hand listening sockets to a new process on zero-downtime upgrade
    /// (`pylon -u`). Default: `/tmp/pylon_upgrade.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_sock: Option<PathBuf>,
    /// User to switch to after binding, when started as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group to switch to after binding, when started as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// An address Pylon accepts HTTP traffic on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Unique name; routes refer to it in their `listeners` list.
    pub name: String,
    /// IP address and port: `"127.0.0.1:8080"`, `"0.0.0.0:80"` or `"[::1]:8080"`.
    #[serde(with = "crate::addr")]
    #[schemars(with = "AddrSchema")]
    pub address: SocketAddr,
}

/// The JSON Schema of a socket address as users write it.
pub(crate) struct AddrSchema;

impl JsonSchema for AddrSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SocketAddr".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "IP address and port: \"127.0.0.1:8080\", or \"[::1]:8080\" for IPv6.",
            "type": "string",
            "examples": ["127.0.0.1:8080", "0.0.0.0:80", "[::1]:8080"]
        })
    }
}

/// A rule that sends matching requests to an upstream, or answers them directly.
/// Exactly one of `upstream` and `respond` is required, unless a middleware of the route
/// answers every request (`static`, `redirect`, `respond` without `when`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = { "required": ["upstream", "respond"] }))]
pub struct Route {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// What the route matches, in Traefik's rule language:
    /// ``Host(`api.example.com`) && PathPrefix(`/v1`)``.
    pub rule: String,
    /// Higher wins when several routes match. Default: the length of the rule, so more
    /// specific rules win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Name of the upstream to forward matching requests to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Answer matching requests directly with this response instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond: Option<Respond>,
    /// Names of the listeners this route serves. Default: all listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<String>>,
    /// Total time for a request, from its arrival to the end of the response (retries
    /// included); a 504 when it runs out before the response starts. Default: no limit.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub timeout: Option<Duration>,
    /// Overrides the upstream's `connect_timeout` for this route.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub connect_timeout: Option<Duration>,
    /// Overrides the upstream's `read_timeout` for this route.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub read_timeout: Option<Duration>,
    /// Overrides the upstream's `write_timeout` for this route.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub write_timeout: Option<Duration>,
    /// Overrides the upstream's `idle_timeout` for this route's connections.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub idle_timeout: Option<Duration>,
    /// Replaces the upstream's `retries` for this route (`{ attempts: 0 }` turns them off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// The middlewares requests on this route go through, in order: names from top-level
    /// `middlewares:`, or instances written in place (`{ request_id: {} }`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<MiddlewareRef>,
    /// This route's access log: `off` (or `false`) for none, or a map in place of the
    /// top-level `access_log`. Default: the top-level one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<crate::RouteAccessLog>,
}

impl Route {
    /// A route with this name and rule forwarding to `upstream`, every option unset.
    pub fn to_upstream(name: &str, rule: &str, upstream: &str) -> Route {
        Route {
            name: name.into(),
            rule: rule.into(),
            priority: None,
            upstream: Some(upstream.into()),
            respond: None,
            listeners: None,
            timeout: None,
            connect_timeout: None,
            read_timeout: None,
            write_timeout: None,
            idle_timeout: None,
            retries: None,
            middlewares: Vec::new(),
            access_log: None,
        }
    }

    /// The priority the router uses: the explicit `priority`, else the rule's length.
    pub fn effective_priority(&self) -> i64 {
        // Same value as `pylon_rules::Rule::default_priority` (the rule's length in bytes),
        // computed from the text so no parse is needed; the test
        // `default_priority_is_the_rules` keeps the two in step.
        self.priority
            .unwrap_or_else(|| i64::try_from(self.rule.len()).unwrap_or(i64::MAX))
    }
}

/// A fixed response.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Respond {
    /// HTTP status code, 100 to 599.
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    /// Response body. Default: empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Response headers, name to value. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}
