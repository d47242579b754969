//! How server host names are resolved: the hosts file, then DNS.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::DurationSchema;

/// Default hosts file.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";
/// Default time allowed for one DNS query.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of tries of a DNS query.
pub const DEFAULT_DNS_ATTEMPTS: u32 = 2;
/// Default number of names kept in the DNS cache.
pub const DEFAULT_DNS_CACHE_SIZE: usize = 256;
/// Port of a name server written without one.
pub const DEFAULT_NAMESERVER_PORT: u16 = 53;
/// Without a fixed `refresh`, names are re-resolved after their records' TTL, at least this…
pub const DNS_MIN_TTL: Duration = Duration::from_secs(1);
/// …and at most this.
pub const DNS_MAX_TTL: Duration = Duration::from_secs(300);

/// How server host names are resolved: first the hosts file, then DNS. Names are
/// re-resolved while running (after each record's TTL, or every `refresh`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers to ask, each an IP address with an optional port (53 when left out):
    /// `"1.1.1.1"`, `"10.0.0.2:5353"`, `"[2606:4700::1111]:53"`. Default: those of
    /// `/etc/resolv.conf`.
    #[serde(default, with = "nameservers")]
    #[schemars(with = "Vec<NameserverSchema>")]
    pub nameservers: Vec<SocketAddr>,
    /// Look names up in the hosts file before DNS. Default: true.
    #[serde(default = "default_true")]
    pub use_hosts_file: bool,
    /// The hosts file. Default: `/etc/hosts`.
    #[serde(default = "default_hosts_file")]
    pub hosts_file: PathBuf,
    /// Time allowed for one query. Default: 5s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// Tries of a query before it fails; at least 1. Default: 2.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// Which address families to look up, in which order. Default: `ipv4_then_ipv6`.
    #[serde(default)]
    pub strategy: LookupStrategy,
    /// Names kept in the cache. Default: 256.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Re-resolve every name at this fixed interval, at least 1s. Default: after each
    /// record's TTL, kept between 1s and 5m.
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub refresh: Option<Duration>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            use_hosts_file: true,
            hosts_file: default_hosts_file(),
            timeout: DEFAULT_DNS_TIMEOUT,
            attempts: DEFAULT_DNS_ATTEMPTS,
            strategy: LookupStrategy::default(),
            cache_size: DEFAULT_DNS_CACHE_SIZE,
            refresh: None,
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_hosts_file() -> PathBuf {
    PathBuf::from(DEFAULT_HOSTS_FILE)
}
fn default_timeout() -> Duration {
    DEFAULT_DNS_TIMEOUT
}
fn default_attempts() -> u32 {
    DEFAULT_DNS_ATTEMPTS
}
fn default_cache_size() -> usize {
    DEFAULT_DNS_CACHE_SIZE
}

/// Which address families a name is resolved to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LookupStrategy {
    /// IPv4 addresses, or IPv6 ones when there are none.
    #[default]
    Ipv4ThenIpv6,
    /// IPv6 addresses, or IPv4 ones when there are none.
    Ipv6ThenIpv4,
    /// IPv4 addresses only.
    Ipv4Only,
    /// IPv6 addresses only.
    Ipv6Only,
}

const NAMESERVER_EXPECTING: &str =
    r#"a name server's IP address like "1.1.1.1", "10.0.0.2:5353" or "[2606:4700::1111]:53""#;

/// Parses a name server: an IP address, with an optional port (53 when left out).
pub(crate) fn parse_nameserver(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, DEFAULT_NAMESERVER_PORT)),
        Err(_) => Err(format!(
            "expected {NAMESERVER_EXPECTING}, found {text:?} (name servers are given by IP address)"
        )),
    }
}

/// One name server, for typing each list item at its own position.
struct Nameserver(SocketAddr);

impl<'de> Deserialize<'de> for Nameserver {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NsVisitor;
        impl Visitor<'_> for NsVisitor {
            type Value = Nameserver;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(NAMESERVER_EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Nameserver, E> {
                parse_nameserver(v).map(Nameserver).map_err(E::custom)
            }
        }
        d.deserialize_str(NsVisitor)
    }
}

/// `#[serde(with = "…")]` for the name server list.
mod nameservers {
    use super::*;

    pub fn serialize<S: Serializer>(list: &[SocketAddr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(list.iter().map(ToString::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SocketAddr>, D::Error> {
        let list = Vec::<Nameserver>::deserialize(d)?;
        Ok(list.into_iter().map(|n| n.0).collect())
    }
}

/// The JSON Schema of a name server as users write it.
struct NameserverSchema;

impl JsonSchema for NameserverSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Nameserver".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A name server: IP address and optional port (default 53).",
            "type": "string",
            "examples": ["1.1.1.1", "10.0.0.2:5353", "[2606:4700::1111]:53"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_default_to_port_53() {
        let ok = |t: &str| parse_nameserver(t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ok("1.1.1.1"),
            "1.1.1.1:53".parse().unwrap_or_else(|_| panic!())
        );
        assert_eq!(ok("10.0.0.2:5353").port(), 5353);
        assert_eq!(ok("2606:4700::1111").port(), 53);
        assert_eq!(ok("[::1]").port(), 53);
        assert_eq!(ok("[::1]:5300").port(), 5300);
        assert!(parse_nameserver("dns.google").is_err());
    }
}
