//! An upstream: a named pool of servers, how requests are balanced over them, how their
//! health is judged, how failed requests are retried, and how Pylon connects.

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::DurationSchema;
use crate::health::{HealthCheck, PassiveHealth};
use crate::peer::{peer_fields, PeerOptions};
use crate::retry::Retries;
use crate::server::Server;

/// Default time allowed to establish a connection to an upstream server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed between two reads from an upstream server.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time allowed between two writes to an upstream server.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time a request waits for a server below its `max_connections` before a 503.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default panic threshold: never ignore health (answer 503 when no server is healthy).
pub const DEFAULT_PANIC_THRESHOLD: u8 = 0;
/// Name of the upstream (and of the route) that a top-level `upstream:` stands for.
pub const LB_NAME: &str = "default";
/// Rule of the route that a top-level `upstream:` stands for: every request.
pub const LB_RULE: &str = "PathPrefix(`/`)";

peer_fields! {
    model
    /// A named pool of servers that routes forward to: how requests are balanced over them,
    /// how their health is judged, retries, timeouts, and the connection options (TLS, TCP,
    /// limits) every server inherits unless it sets its own.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    #[serde(from = "UpstreamMap")]
    pub struct Upstream;

    /// A named pool of servers that routes forward to (the file form).
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct UpstreamMap {
        /// The servers, each an address (`"10.0.0.1:3000"`, `"api.internal:3000"`) or a map
        /// `{ address, weight, …peer options }`.
        #[schemars(length(min = 1))]
        pub servers: Vec<Server>,
        /// How a server is chosen for each request. Default: `round_robin`.
        #[serde(default)]
        pub balance: Balance,
        /// What `balance: hash` hashes: `client_ip`, `header:NAME`, `cookie:NAME`, `path` or
        /// `query:NAME`. Required with `balance: hash`, and only allowed with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub hash_key: Option<HashKey>,
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
        /// How long an idle keep-alive connection stays in the pool for reuse. Default: until
        /// the server closes it.
        #[serde(
            default,
            with = "crate::duration::optional",
            skip_serializing_if = "Option::is_none"
        )]
        #[schemars(with = "Option<DurationSchema>")]
        pub idle_timeout: Option<Duration>,
        /// Retrying failed requests on another server. Default (no `retries` key): 2 retries
        /// on `connect_failure` only, which is safe for every method; `{ attempts: 0 }` turns
        /// retries off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retries: Option<Retries>,
        /// Active health checks: probes sent to every server. Default: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub health_check: Option<HealthCheck>,
        /// Passive health: servers that keep failing real requests are ejected for a while.
        /// Default: off.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub passive_health: Option<PassiveHealth>,
        /// Percent of servers (0 to 100) that must be healthy for health to count: below it,
        /// requests are balanced over all servers, healthy or not. 0 never ignores health
        /// (a 503 when no server is healthy). Default: 0.
        #[serde(default)]
        #[schemars(range(max = 100))]
        pub panic_threshold: u8,
        /// How long a request waits for a server below its `max_connections`, before a
        /// 503. Default: 1s.
        #[serde(default = "default_queue_timeout", with = "crate::duration::required")]
        #[schemars(with = "DurationSchema")]
        pub queue_timeout: Duration,
    }
}

impl Upstream {
    /// An upstream of these servers, every other setting at its default.
    pub fn new(servers: Vec<Server>) -> Upstream {
        Upstream {
            servers,
            balance: Balance::default(),
            hash_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            idle_timeout: None,
            retries: None,
            health_check: None,
            passive_health: None,
            panic_threshold: DEFAULT_PANIC_THRESHOLD,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            peer: PeerOptions::default(),
        }
    }
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
fn default_queue_timeout() -> Duration {
    DEFAULT_QUEUE_TIMEOUT
}

/// How a server is chosen for each request, among the healthy ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// In turn, in proportion to the weights (smooth weighted round robin).
    #[default]
    RoundRobin,
    /// At random, in proportion to the weights.
    Random,
    /// The server with the fewest requests in flight relative to its weight.
    LeastConn,
    /// By the client's IP address, on a consistent-hash ring: a client sticks to a server.
    IpHash,
    /// By `hash_key`, on a consistent-hash ring.
    Hash,
    /// The faster of two servers picked at random (by a moving average of latency).
    LeastTime,
}

/// What `balance: hash` hashes. Written `"client_ip"`, `"header:X-User"`, `"cookie:sid"`,
/// `"path"` or `"query:user"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// The client's IP address.
    ClientIp,
    /// A request header's value (names are case-insensitive).
    Header(String),
    /// A cookie's value.
    Cookie(String),
    /// The request path, without the query.
    Path,
    /// A query parameter's value.
    Query(String),
}

const HASH_KEY_EXPECTING: &str =
    r#"a hash key like "client_ip", "header:X-User", "cookie:sid", "path" or "query:user""#;

impl HashKey {
    /// Parses `"client_ip"`, `"header:NAME"`, `"cookie:NAME"`, `"path"` or `"query:NAME"`.
    pub fn parse(text: &str) -> Result<HashKey, String> {
        let fail = |why: &str| format!("expected {HASH_KEY_EXPECTING}, found {text:?}{why}");
        match text.split_once(':') {
            None => match text {
                "client_ip" => Ok(HashKey::ClientIp),
                "path" => Ok(HashKey::Path),
                "header" | "cookie" | "query" => {
                    Err(fail(&format!(" (name the {text}: \"{text}:NAME\")")))
                }
                _ => Err(fail("")),
            },
            Some((kind, name)) => {
                let token = !name.is_empty() && name.bytes().all(crate::validate::is_tchar);
                match kind {
                    "header" if token => Ok(HashKey::Header(name.to_string())),
                    "cookie" if token => Ok(HashKey::Cookie(name.to_string())),
                    "query" if !name.is_empty() => Ok(HashKey::Query(name.to_string())),
                    "header" | "cookie" | "query" => {
                        Err(fail(&format!(" (invalid {kind} name {name:?})")))
                    }
                    _ => Err(fail("")),
                }
            }
        }
    }
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashKey::ClientIp => f.write_str("client_ip"),
            HashKey::Header(name) => write!(f, "header:{name}"),
            HashKey::Cookie(name) => write!(f, "cookie:{name}"),
            HashKey::Path => f.write_str("path"),
            HashKey::Query(name) => write!(f, "query:{name}"),
        }
    }
}

impl Serialize for HashKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HashKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = HashKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(HASH_KEY_EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HashKey, E> {
                HashKey::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl JsonSchema for HashKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HashKey".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "What to hash: `client_ip`, `header:NAME`, `cookie:NAME`, `path` or `query:NAME`.",
            "type": "string",
            "pattern": "^(client_ip|path|(header|cookie):[!#$%&'*+.^_`|~0-9A-Za-z-]+|query:.+)$|\\$\\{",
            "examples": ["client_ip", "header:X-User", "cookie:sid", "path", "query:user"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_round_trip() {
        for (text, key) in [
            ("client_ip", HashKey::ClientIp),
            ("header:X-User", HashKey::Header("X-User".into())),
            ("cookie:sid", HashKey::Cookie("sid".into())),
            ("path", HashKey::Path),
            ("query:user", HashKey::Query("user".into())),
        ] {
            assert_eq!(HashKey::parse(text), Ok(key.clone()));
            assert_eq!(key.to_string(), text);
        }
        for bad in [
            "ip",
            "header",
            "header:",
            "header:a b",
            "cookie:",
            "query:",
            "x:y",
        ] {
            assert!(HashKey::parse(bad).is_err(), "{bad}");
        }
    }
}
