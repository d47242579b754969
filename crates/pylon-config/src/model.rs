//! The file schema: what users write, as typed Rust values. One model for YAML, TOML and
//! JSON. Doc comments on fields become the JSON Schema descriptions editors show.
//!
//! This is the user's vocabulary, shorthands included (a server may be a bare address);
//! the runtime compiles it into its own model and never reads these types on the hot path.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::duration::DurationSchema;

/// Default time allowed to establish a connection to an upstream server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed between two reads from an upstream server.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed between two writes to an upstream server.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default load-balancing weight of a server.
pub const DEFAULT_WEIGHT: u32 = 1;
/// Lowest HTTP status a `respond` route may answer with.
pub const MIN_STATUS: u16 = 100;
/// Highest HTTP status a `respond` route may answer with.
pub const MAX_STATUS: u16 = 599;

/// A Pylon configuration: where traffic enters (`listeners`), where it goes (`upstreams`),
/// how requests are matched to a target (`routes`), and engine settings (`server`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
    /// On graceful shutdown, how long to keep serving before closing, so a new process
    /// can take over. Rounded up to whole seconds. Default: 5s.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub grace_period: Option<Duration>,
    /// On graceful shutdown, how long in-flight requests then get to finish before the
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

/// A named pool of servers that routes forward to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The servers, each an address (`"127.0.0.1:3000"`) or `{ address, weight }`.
    #[schemars(length(min = 1))]
    pub servers: Vec<Server>,
    /// Time allowed to connect to a server. Default: 5s.
    #[serde(
        default = "default_connect_timeout",
        with = "crate::duration::required"
    )]
    #[schemars(with = "DurationSchema")]
    pub connect_timeout: Duration,
    /// Time allowed between two reads from a server. Default: 60s.
    #[serde(default = "default_read_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub read_timeout: Duration,
    /// Time allowed between two writes to a server. Default: 60s.
    #[serde(default = "default_write_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub write_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}
fn default_read_timeout() -> Duration {
    DEFAULT_READ_TIMEOUT
}
fn default_write_timeout() -> Duration {
    DEFAULT_WRITE_TIMEOUT
}
fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

/// One server of an upstream. Written either as its address alone (`"127.0.0.1:3000"`,
/// weight 1) or as a map `{ address, weight }`; serialises as the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    /// IP address and port of the server.
    pub address: SocketAddr,
    /// Share of traffic relative to the other servers of the upstream; at least 1.
    pub weight: u32,
}

/// A server written as a map.
// The derive gives the map form unknown-key rejection and defaults; `Server` wraps it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ServerMap")]
struct ServerMap {
    /// IP address and port of the server: `"127.0.0.1:3000"` or `"[::1]:3000"`.
    #[serde(with = "crate::addr")]
    #[schemars(with = "AddrSchema")]
    address: SocketAddr,
    /// Share of traffic relative to the other servers of the upstream. Default: 1.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1))]
    weight: u32,
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ServerVisitor;
        impl<'de> Visitor<'de> for ServerVisitor {
            type Value = Server;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "{} or a map with `address` and `weight`",
                    crate::addr::EXPECTING
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Server, E> {
                let address = crate::addr::parse(v).map_err(E::custom)?;
                Ok(Server {
                    address,
                    weight: DEFAULT_WEIGHT,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Server, A::Error> {
                let m = ServerMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Server {
                    address: m.address,
                    weight: m.weight,
                })
            }
        }
        d.deserialize_any(ServerVisitor)
    }
}

impl JsonSchema for Server {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Server".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<ServerMap>();
        let addr = generator.subschema_for::<AddrSchema>();
        json_schema!({
            "description": "A server: its address (weight 1), or `{ address, weight }`.",
            "anyOf": [addr, map]
        })
    }
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
/// Exactly one of `upstream` and `respond` is required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["upstream"] }, { "required": ["respond"] }]))]
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
}

impl Route {
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
