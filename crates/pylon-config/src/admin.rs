//! The `admin:` section: where the management API listens, who may use it, and how fast.
//!
//! Node-local like `server` and `listeners`: read at start, never changed by a reload (the
//! API cannot change its own credentials either). A listener that is not loopback without
//! credentials is refused here, at load, so `pylon check` catches it too.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::loader::Piece;
use crate::model::AddrSchema;
use crate::validate::Spot;

/// Where the management API listens when `admin:` gives no `listen`.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9180);
/// The rate limit's period when none is given.
pub const DEFAULT_ADMIN_RATE_PERIOD: Duration = Duration::from_secs(1);

/// The management API (`/api/v1/…`, OpenAPI at `/api/v1/openapi.json`, Swagger UI at
/// `/docs`). Off when the section is absent. Read at start only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// IP address and port of the API. An address that is not loopback requires `api_keys`
    /// or `basic_auth`. Default: `127.0.0.1:9180`.
    #[serde(default = "default_listen", with = "crate::addr")]
    #[schemars(with = "AddrSchema")]
    pub listen: SocketAddr,
    /// Users allowed in with HTTP Basic authentication, as htpasswd lines with a bcrypt
    /// (`htpasswd -nbB admin PASSWORD`: `"admin:$2y$05$…"`), argon2 or SHA-crypt hash — the
    /// formats the `basic_auth` middleware takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub basic_auth: Vec<String>,
    /// Keys accepted as `Authorization: Bearer KEY` or `X-API-Key: KEY`. Write
    /// `"${PYLON_ADMIN_KEY}"` to keep a key out of the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// Requests allowed per client address (a token bucket); the excess gets 429.
    /// Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<AdminRateLimit>,
    /// What `/ready` requires besides listeners up and a config applied.
    #[serde(default, skip_serializing_if = "ReadyConfig::is_default")]
    pub ready: ReadyConfig,
}

/// What the readiness endpoint (`/ready`) checks about upstreams.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyConfig {
    /// The upstreams that need at least one healthy server for Pylon to be ready: a list of
    /// names, `[]` for none. Default: every upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstreams: Option<Vec<String>>,
}

impl ReadyConfig {
    fn is_default(&self) -> bool {
        self == &ReadyConfig::default()
    }
}

/// A token bucket per client address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminRateLimit {
    /// Requests allowed per `period`, sustained.
    pub average: u32,
    /// The period `average` counts over. Default: 1s.
    #[serde(default = "default_period", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub period: Duration,
    /// Requests allowed at once (the bucket's size). Default: `average`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

fn default_listen() -> SocketAddr {
    DEFAULT_ADMIN_LISTEN
}

fn default_period() -> Duration {
    DEFAULT_ADMIN_RATE_PERIOD
}

impl AdminConfig {
    /// Whether requests must authenticate.
    pub fn requires_auth(&self) -> bool {
        !self.basic_auth.is_empty() || !self.api_keys.is_empty()
    }
}

/// Checks the `admin` section.
pub(crate) fn validate(
    piece: &Piece<'_, AdminConfig>,
    upstream_names: &BTreeSet<&str>,
    errors: &mut Vec<ConfigError>,
) {
    let admin = &piece.value;
    let spot = Spot::new(&piece.doc.file, piece.node, piece.path.clone());
    let ready = spot.key("ready").key("upstreams");
    for (i, name) in admin.ready.upstreams.iter().flatten().enumerate() {
        if !upstream_names.contains(name.as_str()) {
            let hint = crate::de::did_you_mean(name, upstream_names.iter().copied())
                .map(|h| format!("; did you mean `{h}`?"))
                .unwrap_or_default();
            errors.push(ready.item(i).error(format!("no upstream `{name}`{hint}")));
        }
    }
    let mut users = BTreeSet::new();
    for (i, line) in admin.basic_auth.iter().enumerate() {
        let item = spot.key("basic_auth").item(i);
        match crate::middleware::parse_hashed_entry(line) {
            Ok(entry) if !users.insert(entry.user.clone()) => {
                errors.push(item.error(format!("user `{}` is listed twice", entry.user)));
            }
            Ok(_) => {}
            Err(message) => errors.push(item.error(message)),
        }
    }
    for (i, key) in admin.api_keys.iter().enumerate() {
        let item = spot.key("api_keys").item(i);
        if key.is_empty() {
            errors.push(item.error("an API key must not be empty (is its variable set?)"));
        } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(item.error(
                "an API key must not contain spaces or control characters (it is sent in a header)",
            ));
        }
    }
    if !admin.listen.ip().is_loopback() && !admin.requires_auth() {
        errors.push(spot.key("listen").error(format!(
            "the admin API on {} would let anyone who can reach it change the config: \
             set `api_keys` or `basic_auth`, or listen on a loopback address (127.0.0.1)",
            admin.listen
        )));
    }
    if let Some(limit) = &admin.rate_limit {
        let rl = spot.key("rate_limit");
        rl.at_least("average", limit.average, 1, errors);
        if let Some(burst) = limit.burst {
            rl.at_least("burst", burst, 1, errors);
        }
        if limit.period.is_zero() {
            errors.push(rl.key("period").error("period must be more than 0s"));
        }
    }
}
