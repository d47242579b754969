//! What a limit counts by, read from the request: shared by `rate_limit` and
//! `concurrency_limit`.
//!
//! Two forms of the same key:
//! - [`RequestKey::hash`], a 64-bit hash for the in-memory maps, computed without
//!   allocating (the address's bytes, the header's bytes…). The hasher is SipHash with a
//!   random key per limiter, so clients cannot aim collisions at someone else's bucket;
//!   two distinct keys share a bucket with odds of 2⁻⁶⁴.
//! - [`RequestKey::redis_key`], the bytes of a Redis key name, the same in every process.
//!   Header values are hashed (SHA-1) so that API keys never sit in Redis in the clear.
//!
//! A `header:NAME` without that header, or `consumer` without an authenticated consumer,
//! falls back to the client's address, tagged differently from a real header value or
//! consumer name: anonymous clients are limited one by one instead of sharing one bucket
//! (which one client could exhaust for all) or escaping the limit.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::Write;
use std::net::IpAddr;

use http::HeaderName;
use pingora::http::RequestHeader;
use pylon_config::middleware::{KeyPart, LimitKey};

use crate::client_ip::canonical;
use crate::middleware::RequestState;

#[derive(Debug)]
enum Part {
    ClientIp,
    Header(HeaderName),
    Consumer,
    Route,
}

/// A compiled `key:` setting.
#[derive(Debug)]
pub struct RequestKey {
    parts: Vec<Part>,
    hasher: RandomState,
}

impl RequestKey {
    pub fn compile(key: &LimitKey) -> Result<RequestKey, String> {
        let parts = key
            .parts()?
            .into_iter()
            .map(|part| {
                Ok(match part {
                    KeyPart::ClientIp => Part::ClientIp,
                    KeyPart::Header(name) => Part::Header(
                        HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| format!("invalid header name {name:?}"))?,
                    ),
                    KeyPart::Consumer => Part::Consumer,
                    KeyPart::Route => Part::Route,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(RequestKey {
            parts,
            hasher: RandomState::new(),
        })
    }

    /// The request's key as a hash, for in-memory maps.
    pub fn hash(&self, req: &RequestHeader, state: &RequestState) -> u64 {
        let mut h = self.hasher.build_hasher();
        for part in &self.parts {
            // Each part starts with a tag and variable parts carry their length, so
            // different keys never feed the hasher the same bytes.
            match part {
                Part::ClientIp => hash_ip(&mut h, state.client_ip),
                Part::Header(name) => match req.headers.get(name) {
                    Some(value) => hash_bytes(&mut h, b'h', value.as_bytes()),
                    None => hash_ip(&mut h, state.client_ip),
                },
                Part::Consumer => match &state.consumer {
                    Some(consumer) => hash_bytes(&mut h, b'c', consumer.as_bytes()),
                    None => hash_ip(&mut h, state.client_ip),
                },
                Part::Route => hash_bytes(&mut h, b'r', state.route.as_bytes()),
            }
        }
        h.finish()
    }

    /// Appends the request's key to `out` (after the caller's prefix), for Redis:
    /// `i:ADDR`, `h:SHA1` (a header value), `c:LEN:NAME` (a consumer), `r:LEN:NAME` (a
    /// route), joined by `|`.
    pub fn redis_key(&self, req: &RequestHeader, state: &RequestState, out: &mut Vec<u8>) {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(b'|');
            }
            match part {
                Part::ClientIp => text_ip(out, state.client_ip),
                Part::Header(name) => match req.headers.get(name) {
                    Some(value) => {
                        let digest = sha1_smol::Sha1::from(value.as_bytes()).digest().to_string();
                        out.extend_from_slice(b"h:");
                        out.extend_from_slice(digest.as_bytes());
                    }
                    None => text_ip(out, state.client_ip),
                },
                Part::Consumer => match &state.consumer {
                    Some(consumer) => text_named(out, b'c', consumer),
                    None => text_ip(out, state.client_ip),
                },
                Part::Route => text_named(out, b'r', &state.route),
            }
        }
    }
}

fn hash_ip(h: &mut impl Hasher, ip: Option<IpAddr>) {
    match ip.map(canonical) {
        Some(IpAddr::V4(v4)) => {
            h.write_u8(b'4');
            h.write(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            h.write_u8(b'6');
            h.write(&v6.octets());
        }
        None => h.write_u8(b'-'),
    }
}

fn hash_bytes(h: &mut impl Hasher, tag: u8, bytes: &[u8]) {
    h.write_u8(tag);
    h.write_usize(bytes.len());
    h.write(bytes);
}

fn text_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    out.extend_from_slice(b"i:");
    match ip.map(canonical) {
        // By hand: `Display` for addresses goes through `fmt` padding logic and costs more
        // than the rest of the key.
        Some(IpAddr::V4(v4)) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        // Writing into a Vec cannot fail.
        Some(ip) => drop(write!(out, "{ip}")),
        None => out.push(b'-'),
    }
}

fn text_named(out: &mut Vec<u8>, tag: u8, name: &str) {
    out.push(tag);
    drop(write!(out, ":{}:", name.len()));
    out.extend_from_slice(name.as_bytes());
}

/// A hasher for maps keyed by a [`RequestKey::hash`]: the key is already a good hash.
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `u64` keys; fold anything else in for completeness.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// `HashMap<u64, V, PrehashedState>`: keyed by request-key hashes.
pub type PrehashedState = BuildHasherDefault<Prehashed>;

/// How many shards the in-memory maps are split into (a power of two).
pub const SHARDS: usize = 64;

/// The shard of a key hash. It reads bits 32–37: the map inside a shard places entries by
/// the low bits and tags them with the top seven, so the shard's choice must use neither,
/// or every key of a shard would crowd into the same slots.
pub fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize & (SHARDS - 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    fn key(parts: &[&str]) -> RequestKey {
        RequestKey::compile(&LimitKey(parts.iter().map(|p| p.to_string()).collect())).unwrap()
    }

    use crate::request_view::test_request as req;

    fn state(ip: &str, route: &str, consumer: Option<&str>) -> RequestState {
        RequestState {
            client_ip: ip.parse().ok(),
            route: route.into(),
            consumer: consumer.map(Arc::from),
            ..RequestState::default()
        }
    }

    fn redis(k: &RequestKey, r: &RequestHeader, s: &RequestState) -> String {
        let mut out = Vec::new();
        k.redis_key(r, s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_part_reads_its_part_of_the_request() {
        let k = key(&["route", "client_ip"]);
        let plain = req(&[]);
        let a = state("10.0.0.1", "api", None);
        assert_eq!(redis(&k, &plain, &a), "r:3:api|i:10.0.0.1");
        assert_eq!(
            k.hash(&plain, &a),
            k.hash(&plain, &state("10.0.0.1", "api", None))
        );
        assert_ne!(
            k.hash(&plain, &a),
            k.hash(&plain, &state("10.0.0.2", "api", None))
        );
        assert_ne!(
            k.hash(&plain, &a),
            k.hash(&plain, &state("10.0.0.1", "web", None))
        );
        // IPv4-mapped IPv6 is the IPv4 client.
        let mapped = state("::ffff:10.0.0.1", "api", None);
        assert_eq!(k.hash(&plain, &a), k.hash(&plain, &mapped));
        assert_eq!(redis(&k, &plain, &mapped), "r:3:api|i:10.0.0.1");
        let ip = key(&["client_ip"]);
        for text in ["0.0.0.0", "255.255.255.255", "100.20.3.109", "2001:db8::7"] {
            assert_eq!(
                redis(&ip, &plain, &state(text, "api", None)),
                format!("i:{text}")
            );
        }
        assert_eq!(redis(&ip, &plain, &RequestState::default()), "i:-");
    }

    #[test]
    fn a_missing_header_or_consumer_falls_back_to_the_client_address() {
        let h = key(&["header:X-API-Key"]);
        let s = state("10.0.0.1", "api", None);
        let with = req(&[("x-api-key", "secret")]);
        let other = req(&[("x-api-key", "other")]);
        let without = req(&[]);
        assert_ne!(h.hash(&with, &s), h.hash(&other, &s));
        assert_eq!(
            h.hash(&with, &s),
            h.hash(&with, &state("10.9.9.9", "web", None)),
            "the header alone decides"
        );
        assert_eq!(redis(&h, &without, &s), "i:10.0.0.1");
        let text = redis(&h, &with, &s);
        assert!(text.starts_with("h:") && text.len() == 42, "{text}");
        assert!(!text.contains("secret"));

        let c = key(&["consumer"]);
        let ann = state("10.0.0.1", "api", Some("ann"));
        assert_eq!(redis(&c, &without, &ann), "c:3:ann");
        assert_eq!(redis(&c, &without, &s), "i:10.0.0.1");
        assert_ne!(c.hash(&without, &ann), c.hash(&without, &s));
        assert_eq!(
            c.hash(&without, &ann),
            c.hash(&without, &state("10.0.0.7", "api", Some("ann")))
        );
        // A consumer named like an address is not that address's anonymous bucket.
        let named_ip = state("10.0.0.1", "api", Some("10.0.0.1"));
        assert_ne!(c.hash(&without, &named_ip), c.hash(&without, &s));
    }

    #[test]
    fn shards_use_bits_the_map_does_not() {
        assert_eq!(shard_of(0x0000_0000_ffff_ffff), 0);
        assert_eq!(shard_of(0xff00_0000_0000_0000), 0);
        assert_eq!(shard_of(0x0000_0005_0000_0000), 5);
        assert_eq!(shard_of(0x0000_0045_0000_0000), 5);
    }
}
