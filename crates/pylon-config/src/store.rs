//! The `config:` section: where a node's routes, upstreams, middlewares and error pages come
//! from. The default is the config file itself; `store: etcd` makes a fleet of nodes share
//! them through etcd, while each node's file keeps its node-local settings (`server`,
//! `listeners`, `dns`, this section).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;

/// The key prefix used when `prefix` is not set.
pub const DEFAULT_PREFIX: &str = "/pylon";
/// How long a connection attempt or one request to etcd may take by default.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a starting node waits for etcd by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the shared part of the config lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// This file (the default without a `config` section).
    File,
    /// etcd: routes, upstreams, middlewares and error pages are keys under `prefix`, shared
    /// by every node that names the same endpoints and prefix; each node watches them.
    Etcd,
}

/// Where routes, upstreams, middlewares and error pages come from. With `store: etcd` this
/// file keeps only node-local settings (`server`, `listeners`, `dns`, `config`), the rest
/// lives in etcd under `prefix`, and every change there reaches the node through a watch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `file` (this file, the default) or `etcd`.
    pub store: StoreKind,
    /// etcd client URLs, `http://HOST:PORT`; requests go to any that answers. Required with
    /// `store: etcd`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// The key prefix the fleet's resources live under: `/pylon/routes/NAME`,
    /// `/pylon/upstreams/NAME`, … Default: `/pylon`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// How long connecting to etcd and each request to it may take. Default: 2s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// How long a starting node retries an unreachable etcd before it gives up (and exits
    /// without serving). Default: 10s.
    #[serde(default = "default_start_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub start_timeout: Duration,
}

fn default_prefix() -> String {
    DEFAULT_PREFIX.to_string()
}

fn default_timeout() -> Duration {
    DEFAULT_STORE_TIMEOUT
}

fn default_start_timeout() -> Duration {
    DEFAULT_START_TIMEOUT
}

impl StoreConfig {
    /// Whether the shared part of the config lives in etcd.
    pub fn is_etcd(&self) -> bool {
        self.store == StoreKind::Etcd
    }
}

/// What a stored resource is: the first segment of its key under the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceKind {
    /// `routes/NAME`: one route, as an entry of `routes:` (its `name` may be left out).
    Route,
    /// `upstreams/NAME`: one upstream, as a value of `upstreams:`.
    Upstream,
    /// `middlewares/NAME`: one middleware, as a value of `middlewares:`.
    Middleware,
    /// `error_pages`: the whole `error_pages:` map.
    ErrorPages,
}

impl ResourceKind {
    /// The key segment (and config file key) of this kind.
    pub fn segment(self) -> &'static str {
        match self {
            ResourceKind::Route => "routes",
            ResourceKind::Upstream => "upstreams",
            ResourceKind::Middleware => "middlewares",
            ResourceKind::ErrorPages => "error_pages",
        }
    }

    /// Whether keys of this kind carry a name (`routes/NAME`), or are one key
    /// (`error_pages`).
    pub fn is_named(self) -> bool {
        self != ResourceKind::ErrorPages
    }
}

/// One resource read from a store, as text (JSON or YAML, the shape it has in a config
/// file), with its name and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    /// Where it is, for messages: `etcd:/pylon/routes/api`.
    pub origin: String,
    pub kind: ResourceKind,
    /// Its name (empty for `error_pages`).
    pub name: String,
    /// Its value: JSON when it starts with `{`, else YAML.
    pub text: String,
}
