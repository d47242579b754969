//! Socket addresses as users write them (`"127.0.0.1:8080"`, `"[::1]:8080"`), with an error
//! that says what was expected instead of the standard library's terse one.

use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// What an address looks like, for error messages.
pub(crate) const EXPECTING: &str =
    r#"an IP address and port like "127.0.0.1:8080" or "[::1]:8080""#;

/// Parses an address; the error names what was expected and what was found.
pub(crate) fn parse(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        let mut message = format!("expected {EXPECTING}, found {text:?}");
        match text.rsplit_once(':') {
            None => message.push_str(" (the port is missing)"),
            Some((host, _)) if host.contains(':') && !host.starts_with('[') => {
                message.push_str(" (an IPv6 address goes in brackets: \"[::1]:8080\")");
            }
            Some((host, _))
                if host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[') =>
            {
                message.push_str(" (host names are not resolved here: use an IP address)");
            }
            _ => {}
        }
        message
    })
}

struct AddrVisitor;

impl<'de> Visitor<'de> for AddrVisitor {
    type Value = SocketAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SocketAddr, E> {
        parse(v).map_err(E::custom)
    }
}

pub(crate) fn serialize<S: Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(addr)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    d.deserialize_str(AddrVisitor)
}

/// An optional address (`#[serde(default, with = "crate::addr::optional")]`).
pub(crate) mod optional {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        addr: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match addr {
            Some(addr) => super::serialize(addr, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::parse(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}
