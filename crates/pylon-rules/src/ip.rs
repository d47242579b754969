//! `ClientIP` values: one address or a CIDR range, IPv4 or IPv6.
//!
//! As in Go's `net` package (which Traefik uses), an IPv4-mapped IPv6 address
//! (`::ffff:192.0.2.1`) is the same address as its IPv4 form, on both sides of the comparison.

use std::net::{IpAddr, Ipv4Addr};

/// An address or a network, already in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpMatch {
    Addr(IpAddr),
    V4Net { bits: u32, prefix: u8 },
    V6Net { bits: u128, prefix: u8 },
}

impl IpMatch {
    /// Parses `192.0.2.1`, `2001:db8::1`, `192.0.2.0/24` or `2001:db8::/32`.
    pub(crate) fn parse(s: &str) -> Result<IpMatch, String> {
        let Some((addr, prefix)) = s.split_once('/') else {
            return s
                .parse::<IpAddr>()
                .map(|ip| IpMatch::Addr(canonical(ip)))
                .map_err(|_| format!("`{s}` is not an IP address or a CIDR range"));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` in `{s}` is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = (!prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()))
            .then(|| prefix.parse::<u8>().ok())
            .flatten()
            .filter(|p| *p <= max)
            .ok_or_else(|| {
                format!("`/{prefix}` in `{s}` is not a prefix length from 0 to {max}")
            })?;
        Ok(match ip {
            IpAddr::V4(v4) => v4_net(v4, prefix),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // Go treats a v4-mapped network as the IPv4 network under the last 32 bits.
                Some(v4) => v4_net(v4, prefix.saturating_sub(96)),
                None => IpMatch::V6Net {
                    bits: u128::from(v6) & mask128(prefix),
                    prefix,
                },
            },
        })
    }

    /// Whether `ip` is this address or inside this network.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (*self, ip) {
            (IpMatch::Addr(a), ip) => a == ip,
            (IpMatch::V4Net { bits, prefix }, IpAddr::V4(v4)) => {
                u32::from(v4) & mask32(prefix) == bits
            }
            (IpMatch::V6Net { bits, prefix }, IpAddr::V6(v6)) => {
                u128::from(v6) & mask128(prefix) == bits
            }
            _ => false,
        }
    }
}

fn v4_net(v4: Ipv4Addr, prefix: u8) -> IpMatch {
    IpMatch::V4Net {
        bits: u32::from(v4) & mask32(prefix),
        prefix,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_networks() {
        let m = IpMatch::parse("192.168.1.0/24").unwrap();
        assert!(m.contains(ip("192.168.1.1")));
        assert!(m.contains(ip("192.168.1.255")));
        assert!(!m.contains(ip("192.168.2.1")));
        assert!(m.contains(ip("::ffff:192.168.1.7")));
        assert!(!m.contains(ip("2001:db8::1")));

        let m = IpMatch::parse("2001:db8::/32").unwrap();
        assert!(m.contains(ip("2001:db8:1::1")));
        assert!(!m.contains(ip("2001:db9::1")));
        assert!(!m.contains(ip("10.0.0.1")));

        let m = IpMatch::parse("::ffff:10.0.0.1").unwrap();
        assert!(m.contains(ip("10.0.0.1")));
        let m = IpMatch::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(m.contains(ip("10.1.2.3")));
        assert!(!m.contains(ip("11.1.2.3")));

        assert!(IpMatch::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpMatch::parse("::/0").unwrap().contains(ip("::1")));
        assert!(IpMatch::parse("10.0.0.1/32")
            .unwrap()
            .contains(ip("10.0.0.1")));
    }

    #[test]
    fn refusals() {
        for bad in [
            "1",
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "a/8",
            "10.0.0.256",
            "fe80::1%eth0",
        ] {
            assert!(IpMatch::parse(bad).is_err(), "{bad:?}");
        }
    }
}
