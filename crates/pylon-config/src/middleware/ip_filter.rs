//! The `ip_filter` middleware's settings.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
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
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        for (key, list) in [
            ("allow", &self.allow),
            ("deny", &self.deny),
            ("trusted_proxies", &self.trusted_proxies),
        ] {
            let list_spot = spot.key(key);
            for (i, text) in list.iter().enumerate() {
                if let Err(e) = parse_cidr(text) {
                    errors.push(list_spot.item(i).error(e));
                }
            }
        }
        if let Some(depth) = self.depth {
            if depth < 1 {
                errors.push(
                    spot.key("depth").error(
                        "depth must be at least 1 (1 = the rightmost `X-Forwarded-For` entry)",
                    ),
                );
            }
            if self.trusted_proxies.is_empty() {
                errors.push(spot.key_error(
                    "depth",
                    "`depth` needs `trusted_proxies`: forwarding headers are read only from trusted peers",
                ));
            }
        }
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a /32 or /128). An
/// IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is read as the IPv4 network it maps, as
/// peers are compared as IPv4 too.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let net = if text.contains('/') {
        text.parse::<IpNet>().map_err(|_| {
            format!("invalid CIDR {text:?}: write an address (`10.0.0.1`, `::1`) or a network (`10.0.0.0/8`, `fd00::/8`)")
        })?
    } else {
        text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            format!("invalid address {text:?}: write an address (`10.0.0.1`, `::1`) or a network (`10.0.0.0/8`, `fd00::/8`)")
        })?
    };
    Ok(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::V4(
                Ipv4Net::new(v4, v6.prefix_len() - 96)
                    .map_err(|e| format!("invalid CIDR {text:?}: {e}"))?,
            ),
            None => net,
        },
        _ => net,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn errors(filter: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - ip_filter: {filter}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn cidrs_and_bare_addresses() {
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(parse_cidr("::1").unwrap().to_string(), "::1/128");
        assert_eq!(parse_cidr("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(
            parse_cidr("::ffff:10.0.0.0/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("example.com").is_err());
    }

    #[test]
    fn bad_lists_and_depth_are_located() {
        assert_eq!(
            errors("{ allow: [10.0.0.0/8, \"::1\"], deny: [10.0.0.9], trusted_proxies: [127.0.0.1], depth: 2 }"),
            ""
        );
        let e = errors(
            "{ allow: [10.0.0.0/8, 300.1.1.1], deny: [\"fd00::/200\"], trusted_proxies: [x] }",
        );
        assert!(e.contains("t.yaml:8:42: routes[0].middlewares[0].ip_filter.allow[1]: invalid address \"300.1.1.1\""), "{e}");
        assert!(
            e.contains("ip_filter.deny[0]: invalid CIDR \"fd00::/200\""),
            "{e}"
        );
        assert!(
            e.contains("ip_filter.trusted_proxies[0]: invalid address \"x\""),
            "{e}"
        );
        let e = errors("{ depth: 0 }");
        assert!(
            e.contains("ip_filter.depth: depth must be at least 1"),
            "{e}"
        );
        assert!(
            e.contains("ip_filter.depth: `depth` needs `trusted_proxies`"),
            "{e}"
        );
    }
}
