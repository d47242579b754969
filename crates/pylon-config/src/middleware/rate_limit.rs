//! The `rate_limit` middleware's settings, and the request key it shares with
//! `concurrency_limit`.
//!
//! A token bucket per key: it holds at most `burst` tokens, starts full, and gains one token
//! every `period / average`; a request takes one token or is refused with 429. So `average`
//! requests per `period` pass in the long run, and at most `burst` at once.

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::header_name_problem;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::Spot;

/// How long a period is when none is written.
pub const DEFAULT_RATE_PERIOD: Duration = Duration::from_secs(1);
/// How many keys one `rate_limit` keeps in memory at most (its local buckets, or its Redis
/// fallback's). Past it the buckets closest to full are forgotten first.
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// The smallest `max_keys`: the buckets are split into 64 shards of at least 16 keys.
pub const MIN_MAX_KEYS: usize = 1024;
/// A bucket may take at most this long to refill from empty (`burst × period / average`);
/// it keeps Redis' microsecond arithmetic exact.
pub const MAX_REFILL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long one Redis decision may take before the request is decided without Redis.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// What every Redis key of a `rate_limit` starts with, unless `prefix` says otherwise.
pub const DEFAULT_REDIS_PREFIX: &str = "pylon:rl:";
/// The policy name in the `RateLimit-Policy` and `RateLimit` headers, unless set.
pub const DEFAULT_POLICY: &str = "default";

/// Token-bucket rate limiting by client, header, consumer or route; local or on Redis.
///
/// The bucket of each key holds at most `burst` tokens and starts full; it gains
/// `average` tokens per `period`, continuously (one every `period / average`). A request
/// takes one token, or is refused with 429 when there is none.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per `period` in the long run (the refill rate). At least 1.
    pub average: u64,
    /// The period `average` is counted over. Default 1s.
    #[serde(
        default = "default_period",
        with = "crate::duration::required",
        skip_serializing_if = "is_default_period"
    )]
    #[schemars(with = "DurationSchema")]
    pub period: Duration,
    /// The bucket's size: how many requests may pass at once after a quiet spell.
    /// Default: `average`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// What a bucket belongs to: `client_ip` (default), `header:NAME`, `consumer`, `route`,
    /// or a list of these (`[route, client_ip]`).
    #[serde(default, skip_serializing_if = "LimitKey::is_default")]
    pub key: LimitKey,
    /// The policy's name in the `RateLimit-Policy` and `RateLimit` response headers.
    /// Default `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Where the buckets live: `local` (this process, default) or `redis` (shared by every
    /// Pylon using the same Redis).
    #[serde(default, skip_serializing_if = "is_local")]
    pub backend: RateLimitBackend,
    /// The Redis server, for `backend: redis`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisLimit>,
    /// The most keys kept in memory (at least 1024). Default 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keys: Option<usize>,
    /// Add `RateLimit-Policy` and `RateLimit` to the responses of requests that pass, too
    /// (a 429 always carries them). Default false: two headers on every response cost more
    /// than the decision itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub response_headers: bool,
}

fn default_period() -> Duration {
    DEFAULT_RATE_PERIOD
}

fn is_default_period(d: &Duration) -> bool {
    *d == DEFAULT_RATE_PERIOD
}

fn is_local(b: &RateLimitBackend) -> bool {
    *b == RateLimitBackend::Local
}

/// Where a `rate_limit`'s buckets live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// In this process's memory.
    #[default]
    Local,
    /// In Redis, shared by every Pylon that uses the same server and prefix.
    Redis,
}

/// A Redis server holding `rate_limit` buckets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisLimit {
    /// `redis://[user:password@]host[:port][/db]`.
    pub url: String,
    /// What the bucket keys start with. Default `pylon:rl:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How long one decision may wait for Redis. Default 100ms.
    #[serde(
        default = "default_redis_timeout",
        with = "crate::duration::required",
        skip_serializing_if = "is_default_redis_timeout"
    )]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// While Redis cannot be reached: `allow` (default: decide with an in-memory bucket of
    /// the same settings) or `deny` (refuse with 503).
    #[serde(default, skip_serializing_if = "is_allow")]
    pub on_backend_error: OnBackendError,
}

fn default_redis_timeout() -> Duration {
    DEFAULT_REDIS_TIMEOUT
}

fn is_default_redis_timeout(d: &Duration) -> bool {
    *d == DEFAULT_REDIS_TIMEOUT
}

fn is_allow(o: &OnBackendError) -> bool {
    *o == OnBackendError::Allow
}

/// What a Redis-backed `rate_limit` does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBackendError {
    /// Decide with an in-memory bucket of the same settings, in this process.
    #[default]
    Allow,
    /// Refuse with 503.
    Deny,
}

impl RateLimit {
    /// The bucket size: `burst`, or `average` when not set.
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.average)
    }

    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        if self.average == 0 {
            errors.push(
                spot.key("average")
                    .error("average must be at least 1 (requests per `period`)"),
            );
        }
        if self.period.is_zero() {
            errors.push(spot.key("period").error("period must be longer than 0s"));
        }
        if self.burst == Some(0) {
            errors.push(spot.key("burst").error("burst must be at least 1"));
        }
        if self.average > 0 && !self.period.is_zero() {
            let interval = self.period.as_nanos() / u128::from(self.average);
            let refill = interval * u128::from(self.burst().max(1));
            if interval < 1_000 {
                errors.push(spot.key("average").error(format!(
                    "average {} per {} is more than one request per microsecond; use a longer period or a lower average",
                    self.average,
                    crate::duration::format_duration(self.period)
                )));
            } else if refill > MAX_REFILL.as_nanos() {
                errors.push(spot.key("burst").error(
                    "burst × period / average (the time an empty bucket takes to refill) must be at most 365 days",
                ));
            }
        }
        self.key.validate(&spot.key("key"), errors);
        if let Some(policy) = &self.policy {
            if let Some(problem) = policy_name_problem(policy) {
                errors.push(spot.key("policy").error(problem));
            }
        }
        if let Some(max) = self.max_keys {
            spot.at_least("max_keys", max, MIN_MAX_KEYS, errors);
        }
        match (&self.backend, &self.redis) {
            (RateLimitBackend::Redis, None) => errors.push(spot.key_error(
                "backend",
                "`backend: redis` needs `redis: { url: \"redis://host:6379\" }`",
            )),
            (RateLimitBackend::Local, Some(_)) => errors.push(spot.key_error(
                "redis",
                "`redis` settings are used only with `backend: redis`; add it or remove them",
            )),
            (_, Some(redis)) => redis.validate(&spot.key("redis"), errors),
            (RateLimitBackend::Local, None) => {}
        }
    }
}

impl RedisLimit {
    fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        if let Err(problem) = parse_redis_url(&self.url) {
            errors.push(spot.key("url").error(problem));
        }
        if let Some(prefix) = &self.prefix {
            if prefix.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                errors.push(spot.key("prefix").error(format!(
                    "invalid prefix {prefix:?}: no spaces or control characters"
                )));
            }
        }
        if self.timeout.is_zero() {
            errors.push(spot.key("timeout").error("timeout must be longer than 0s"));
        }
    }
}

/// Why a policy name cannot go in a `RateLimit` header (it is written as a quoted string),
/// if it cannot.
fn policy_name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    (!ok).then(|| {
        format!("invalid policy name {name:?}: use letters, digits and -_.:/ (it is sent in the `RateLimit` headers)")
    })
}

/// A Redis URL's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: u32,
}

/// Checks `redis://[user[:password]@]host[:port][/db]` (the form the runtime's client
/// reads), returning its host, port (default 6379) and database (default 0).
pub fn parse_redis_url(url: &str) -> Result<RedisUrl, String> {
    let form = "write `redis://[user:password@]host[:port][/db]`";
    let Some(rest) = url.strip_prefix("redis://") else {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        return Err(if scheme == "rediss" {
            format!("TLS to Redis (`rediss://`) is not supported; {form}")
        } else {
            format!("invalid Redis URL {url:?}: {form}")
        });
    };
    let bad = |why: &str| Err(format!("invalid Redis URL: {why}; {form}"));
    // The password may hold any character but `@` and `/` (the client reads up to the last
    // `@` before the path).
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => (h, p),
            _ => return bad("bad IPv6 address"),
        }
    } else {
        host_port.split_at(host_port.find(':').unwrap_or(host_port.len()))
    };
    let host_ok = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return bad("missing or invalid host");
    }
    let port = match port {
        "" => 6379,
        p => match p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
            Some(port) if port > 0 => port,
            _ => return bad("the port must be a number from 1 to 65535"),
        },
    };
    let db = match path {
        "" => 0,
        p => match p.parse::<u32>() {
            Ok(db) => db,
            Err(_) => return bad("the path must be a database number (`/0`)"),
        },
    };
    Ok(RedisUrl {
        host: host.to_string(),
        port,
        db,
    })
}

/// One part of a limit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client's address (after `ip_filter`'s `trusted_proxies`).
    ClientIp,
    /// A request header's first value; without the header, the client's address.
    Header(String),
    /// Who an authentication middleware said the request is from; without one, the
    /// client's address.
    Consumer,
    /// The matched route's name.
    Route,
}

impl KeyPart {
    /// Parses `client_ip`, `header:NAME`, `consumer` or `route`.
    pub fn parse(text: &str) -> Result<KeyPart, String> {
        let expecting = "expected `client_ip`, `header:NAME`, `consumer` or `route`";
        match text.split_once(':') {
            None => match text {
                "client_ip" => Ok(KeyPart::ClientIp),
                "consumer" => Ok(KeyPart::Consumer),
                "route" => Ok(KeyPart::Route),
                "header" => Err(format!(
                    "{expecting}, found \"header\" (name the header: \"header:X-API-Key\")"
                )),
                _ => Err(format!("{expecting}, found {text:?}")),
            },
            Some(("header", name)) => match header_name_problem(name) {
                None => Ok(KeyPart::Header(name.to_string())),
                Some(problem) => Err(problem),
            },
            Some(_) => Err(format!("{expecting}, found {text:?}")),
        }
    }
}

/// What a limit counts by: one key part, or a list of them combined (`[route, client_ip]`:
/// one bucket per client per route). Written as a string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitKey(pub Vec<String>);

impl Default for LimitKey {
    fn default() -> Self {
        LimitKey(vec!["client_ip".to_string()])
    }
}

impl LimitKey {
    fn is_default(&self) -> bool {
        *self == LimitKey::default()
    }

    /// The parts, parsed (valid once the config loaded).
    pub fn parts(&self) -> Result<Vec<KeyPart>, String> {
        self.0.iter().map(|p| KeyPart::parse(p)).collect()
    }

    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        // A single string is its own spot; a list's items are.
        let is_list = spot.node.is_some_and(|n| n.item(0).is_some()) || self.0.len() != 1;
        if self.0.is_empty() {
            errors.push(spot.error(
                "list at least one key part (`client_ip`, `header:NAME`, `consumer`, `route`)",
            ));
        }
        let mut seen = Vec::new();
        for (i, text) in self.0.iter().enumerate() {
            let at = if is_list { spot.item(i) } else { spot.clone() };
            match KeyPart::parse(text) {
                Err(problem) => errors.push(at.error(problem)),
                Ok(part) if seen.contains(&part) => {
                    errors.push(at.error(format!("{text:?} is listed twice")))
                }
                Ok(part) => seen.push(part),
            }
        }
    }
}

impl Serialize for LimitKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for LimitKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = LimitKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a key (`client_ip`, `header:NAME`, `consumer`, `route`) or a list of them",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitKey, E> {
                Ok(LimitKey(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LimitKey, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element::<String>()? {
                    parts.push(part);
                }
                Ok(LimitKey(parts))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

impl JsonSchema for LimitKey {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LimitKey".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let part = json_schema!({
            "type": "string",
            "pattern": "^(client_ip|consumer|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$|\\$\\{",
        });
        json_schema!({
            "description": "What a limit counts by: `client_ip`, `header:NAME`, `consumer`, `route`, or a list of them combined.",
            "anyOf": [part, { "type": "array", "items": part, "minItems": 1 }],
            "examples": ["client_ip", "header:X-API-Key", ["route", "client_ip"]]
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn errors(settings: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - rate_limit: {settings}\n"
        );
        super::super::load_errors(&text)
    }

    fn loaded(settings: &str) -> RateLimit {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nmiddlewares:\n  rl:\n    rate_limit: {settings}\nroutes: []\n"
        );
        let config =
            crate::load_str(&text, crate::Format::Yaml, std::path::Path::new("t.yaml")).unwrap();
        match &config.middlewares["rl"] {
            super::super::Middleware::RateLimit(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limit_defaults_and_full_form() {
        let r = loaded("{ average: 100 }");
        assert_eq!(r.period, Duration::from_secs(1));
        assert_eq!(r.burst(), 100, "burst defaults to average");
        assert_eq!(r.key.parts().unwrap(), vec![KeyPart::ClientIp]);
        assert_eq!(r.backend, RateLimitBackend::Local);
        assert!(!r.response_headers);
        let r = loaded(
            "{ average: 1000, period: 1m, burst: 100, key: [route, \"header:X-API-Key\", consumer], policy: fleet, backend: redis, redis: { url: \"redis://:pw@127.0.0.1:6380/2\", prefix: \"gw:\", timeout: 50ms, on_backend_error: deny }, max_keys: 5000, response_headers: true }",
        );
        assert_eq!(r.period, Duration::from_secs(60));
        assert_eq!(r.burst(), 100);
        assert!(r.response_headers);
        assert_eq!(
            r.key.parts().unwrap(),
            vec![
                KeyPart::Route,
                KeyPart::Header("X-API-Key".into()),
                KeyPart::Consumer
            ]
        );
        let redis = r.redis.unwrap();
        assert_eq!(redis.timeout, Duration::from_millis(50));
        assert_eq!(redis.on_backend_error, OnBackendError::Deny);
        assert_eq!(redis.prefix.as_deref(), Some("gw:"));
    }

    #[test]
    fn rate_limit_bad_values_are_located() {
        let e = errors("{ average: 0, period: 0s, burst: 0 }");
        assert!(e.contains("t.yaml:8:32: routes[0].middlewares[0].rate_limit.average: average must be at least 1"), "{e}");
        assert!(
            e.contains("rate_limit.period: period must be longer than 0s"),
            "{e}"
        );
        assert!(
            e.contains("rate_limit.burst: burst must be at least 1"),
            "{e}"
        );
        let e = errors("{ average: 10, period: fast }");
        assert!(e.contains("rate_limit.period"), "{e}");
        let e = errors("{ average: 2000000, period: 1s }");
        assert!(e.contains("more than one request per microsecond"), "{e}");
        let e = errors("{ average: 1, period: 1d, burst: 1000 }");
        assert!(
            e.contains("rate_limit.burst: burst × period / average"),
            "{e}"
        );
        let e = errors("{ average: 1, policy: \"a b\", max_keys: 10 }");
        assert!(
            e.contains("rate_limit.policy: invalid policy name \"a b\""),
            "{e}"
        );
        assert!(
            e.contains("rate_limit.max_keys: max_keys must be at least 1024, found 10"),
            "{e}"
        );
        let e = errors("{ average: 1, colour: red }");
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn keys_are_checked_at_their_item() {
        assert_eq!(errors("{ average: 1, key: \"header:X-API-Key\" }"), "");
        assert_eq!(errors("{ average: 1, key: [route, client_ip] }"), "");
        let e = errors("{ average: 1, key: ip }");
        assert!(e.contains("t.yaml:8:40: routes[0].middlewares[0].rate_limit.key: expected `client_ip`, `header:NAME`, `consumer` or `route`, found \"ip\""), "{e}");
        let e = errors("{ average: 1, key: [route, \"header:a b\", header, route] }");
        assert!(
            e.contains("rate_limit.key[1]: invalid header name \"a b\""),
            "{e}"
        );
        assert!(e.contains("rate_limit.key[2]: expected"), "{e}");
        assert!(
            e.contains("rate_limit.key[3]: \"route\" is listed twice"),
            "{e}"
        );
        let e = errors("{ average: 1, key: [] }");
        assert!(
            e.contains("rate_limit.key: list at least one key part"),
            "{e}"
        );
        assert!(KeyPart::parse("cookie:x").is_err());
    }

    #[test]
    fn redis_settings_must_be_coherent() {
        let e = errors("{ average: 1, backend: redis }");
        assert!(
            e.contains("rate_limit.backend: `backend: redis` needs `redis:"),
            "{e}"
        );
        let e = errors("{ average: 1, redis: { url: \"redis://127.0.0.1\" } }");
        assert!(
            e.contains("rate_limit.redis: `redis` settings are used only with `backend: redis`"),
            "{e}"
        );
        let e = errors("{ average: 1, backend: redis, redis: { url: \"http://x\", timeout: 0s, prefix: \"a b\" } }");
        assert!(
            e.contains("rate_limit.redis.url: invalid Redis URL \"http://x\""),
            "{e}"
        );
        assert!(
            e.contains("rate_limit.redis.timeout: timeout must be longer than 0s"),
            "{e}"
        );
        assert!(e.contains("rate_limit.redis.prefix: invalid prefix"), "{e}");
        let e = errors("{ average: 1, backend: redis, redis: {} }");
        assert!(e.contains("url"), "{e}");
        let e = errors("{ average: 1, backend: redis, redis: { url: \"redis://x\", on_backend_error: maybe } }");
        assert!(e.contains("on_backend_error"), "{e}");
        let e = errors("{ average: 1, backend: cloud }");
        assert!(e.contains("rate_limit.backend"), "{e}");
    }

    #[test]
    fn redis_urls() {
        let ok = |u: &str| parse_redis_url(u).unwrap();
        assert_eq!(
            ok("redis://127.0.0.1"),
            RedisUrl {
                host: "127.0.0.1".into(),
                port: 6379,
                db: 0
            }
        );
        assert_eq!(ok("redis://user:p@ss@cache.internal:6380/3").port, 6380);
        assert_eq!(ok("redis://user:p@ss@cache.internal:6380/3").db, 3);
        assert_eq!(ok("redis://[::1]:7000").host, "::1");
        for bad in [
            "",
            "127.0.0.1:6379",
            "rediss://x",
            "redis://",
            "redis://:6379",
            "redis://host:0",
            "redis://host:99999",
            "redis://host:port",
            "redis://host/db",
            "redis://[nope]:1",
            "redis://ho st",
        ] {
            assert!(parse_redis_url(bad).is_err(), "{bad}");
        }
        assert!(parse_redis_url("rediss://x").unwrap_err().contains("TLS"));
    }
}
