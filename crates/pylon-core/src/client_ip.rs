//! The client's address behind trusted proxies, read from `X-Forwarded-For` or `Forwarded`.
//!
//! Forwarding headers are written by whoever sent the request, so they are believed only
//! when the connection's peer is a trusted proxy. Then the list is read from the right
//! (the entry the trusted proxy itself appended) towards the left:
//! - with a `depth` N, the Nth entry from the right is the client (Traefik's `ipStrategy.depth`);
//!   when the list is shorter, or that entry is not an address, the peer is kept: the header
//!   is not what the configuration expects, and only the peer is certain;
//! - without one, trusted addresses are skipped and the first untrusted one is the client
//!   (nginx's `real_ip_recursive`); when every entry is trusted the leftmost is. An entry that
//!   is not an address ends the walk: what lies left of it cannot be trusted, so the last
//!   good (trusted) address is the client.
//!
//! `X-Forwarded-For` wins when present; `Forwarded` (RFC 7239) `for=` values are used only
//! without it. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are read as IPv4 throughout.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use pingora::http::RequestHeader;

/// Proxies whose forwarding headers are believed, and how to read them.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    depth: Option<usize>,
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; other addresses unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is in one of `nets` (compared as IPv4 when it is IPv4-mapped).
pub fn in_nets(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>, depth: Option<usize>) -> Self {
        TrustedProxies { nets, depth }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The client's address for a request that arrived from `peer`.
    pub fn resolve(&self, peer: IpAddr, header: &RequestHeader) -> IpAddr {
        let peer = canonical(peer);
        if !in_nets(&self.nets, peer) {
            return peer;
        }
        let entries = forwarded_for(header);
        let mut last_good = peer;
        for (i, entry) in entries.iter().rev().enumerate() {
            let Some(ip) = parse_entry(entry) else {
                return match self.depth {
                    Some(_) => peer,
                    None => last_good,
                };
            };
            match self.depth {
                Some(depth) if i + 1 == depth => return ip,
                Some(_) => {}
                None if !in_nets(&self.nets, ip) => return ip,
                None => last_good = ip,
            }
        }
        match self.depth {
            Some(_) => peer,
            None => last_good,
        }
    }
}

/// The forwarding chain, left to right: every `X-Forwarded-For` line's entries, or, when
/// there is none, every `Forwarded` element's `for=` value.
fn forwarded_for(header: &RequestHeader) -> Vec<&str> {
    let mut entries = Vec::new();
    for value in header.headers.get_all("x-forwarded-for") {
        // A value that is not text ends the chain there, as garbage does.
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            entries.push("");
            continue;
        };
        entries.extend(text.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    if !entries.is_empty() {
        return entries;
    }
    for value in header.headers.get_all("forwarded") {
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            entries.push("");
            continue;
        };
        for element in text.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"'))
            });
            // An element without `for=` says nothing about the client: skip it. An
            // `unknown` or obfuscated (`_hidden`) node is not an address and ends the walk.
            if let Some(node) = node {
                entries.push(node);
            }
        }
    }
    entries
}

/// An address from a forwarding entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::request_view::test_request as request;

    fn proxies(nets: &[&str], depth: Option<usize>) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), depth)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_sends() {
        let p = proxies(&["10.0.0.0/8"], None);
        let req = request(&[("X-Forwarded-For", "1.1.1.1")]);
        assert_eq!(p.resolve(ip("192.0.2.7"), &req), ip("192.0.2.7"));
    }

    #[test]
    fn walk_skips_trusted_entries_from_the_right() {
        let p = proxies(&["10.0.0.0/8"], None);
        let req = request(&[
            ("X-Forwarded-For", "6.6.6.6, 1.1.1.1"),
            ("X-Forwarded-For", "10.0.0.2"),
        ]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("1.1.1.1"));
        // All trusted: the leftmost.
        let req = request(&[("X-Forwarded-For", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.3"));
        // No header: the peer.
        assert_eq!(p.resolve(ip("10.0.0.1"), &request(&[])), ip("10.0.0.1"));
        // Garbage ends the walk at the last good (trusted) address.
        let req = request(&[("X-Forwarded-For", "1.1.1.1, not-an-ip, 10.0.0.2")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.2"));
        let req = request(&[("X-Forwarded-For", "1.1.1.1, ;;;")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.1"));
    }

    #[test]
    fn depth_takes_the_nth_from_the_right_or_keeps_the_peer() {
        let p = proxies(&["10.0.0.0/8"], Some(2));
        let req = request(&[("X-Forwarded-For", "6.6.6.6, 1.1.1.1, 2.2.2.2")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("1.1.1.1"));
        let req = request(&[("X-Forwarded-For", "2.2.2.2")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.1"));
        let req = request(&[("X-Forwarded-For", "1.1.1.1, junk, 2.2.2.2")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_is_read_without_x_forwarded_for() {
        let p = proxies(&["10.0.0.0/8", "2001:db8::/32"], None);
        let req = request(&[(
            "Forwarded",
            "for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.0.0.9;by=10.0.0.1",
        )]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("2001:db8:cafe::17"));
        let req = request(&[("Forwarded", "for=192.0.2.60:80;proto=http")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("192.0.2.60"));
        // An obfuscated node ends the walk.
        let req = request(&[("Forwarded", "for=1.1.1.1, for=_hidden, for=10.0.0.4")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.4"));
        let req = request(&[("Forwarded", "for=unknown")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("10.0.0.1"));
        // X-Forwarded-For wins.
        let req = request(&[("Forwarded", "for=3.3.3.3"), ("X-Forwarded-For", "4.4.4.4")]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &req), ip("4.4.4.4"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let p = proxies(&["10.0.0.0/8"], None);
        let req = request(&[("X-Forwarded-For", "::ffff:1.2.3.4")]);
        assert_eq!(p.resolve(ip("::ffff:10.0.0.1"), &req), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
    }
}
