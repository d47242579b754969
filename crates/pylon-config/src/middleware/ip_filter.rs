//! The `ip_filter` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Allows or denies clients by address (CIDR lists, IPv4 and IPv6; a bare address is a
/// /32 or /128). A client in `deny` is refused; when `allow` is set, a client outside it is
/// refused too. Refused clients get 403.
///
/// The client address is the connection's peer, unless the peer is in `trusted_proxies`:
/// then it is read from `X-Forwarded-For` (or `Forwarded`), walking from the right past
/// trusted proxies, or taking the entry `depth` places from the right.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpFilter {
    /// Only these clients are let through (when set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// These clients are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` headers are believed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// Take the client address this many entries from the right of `X-Forwarded-For`
    /// (1 = the last entry) instead of skipping trusted proxies. Only used when the peer is
    /// trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

impl IpFilter {
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
