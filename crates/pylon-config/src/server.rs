//! One server of an upstream: its address (an IP address or a host name, with a port), its
//! weight and its peer options. Written as the address alone or as a map.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::peer::{peer_fields, PeerOptions};

/// Default load-balancing weight of a server.
pub const DEFAULT_WEIGHT: u32 = 1;

/// What a server address looks like, for error messages.
pub(crate) const EXPECTING: &str =
    r#"an address like "10.0.0.1:80", "[::1]:80" or "api.internal:8080""#;

peer_fields! {
    model
    /// One server of an upstream. Written either as its address alone (`"10.0.0.1:3000"`,
    /// weight 1) or as a map `{ address, weight, …peer options }`; serialises as the map.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
    #[schemars(with = "ServerSchema")]
    pub struct Server;

    /// A server written as a map.
    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[schemars(rename = "ServerMap")]
    struct ServerMap {
        /// Address of the server: `"10.0.0.1:3000"`, `"[::1]:3000"` or
        /// `"api.internal:3000"` (a host name is resolved, and re-resolved, by Pylon).
        pub address: ServerAddress,
        /// Share of traffic relative to the other servers of the upstream. Default: 1.
        #[serde(default = "default_weight")]
        #[schemars(range(min = 1))]
        pub weight: u32,
    }
}

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

impl Server {
    /// A server at `address` with weight 1 and no peer options of its own.
    pub fn new(address: ServerAddress) -> Server {
        Server {
            address,
            weight: DEFAULT_WEIGHT,
            peer: PeerOptions::default(),
        }
    }
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ServerVisitor;
        impl<'de> Visitor<'de> for ServerVisitor {
            type Value = Server;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{EXPECTING} or a map with `address` and `weight`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Server, E> {
                ServerAddress::parse(v).map(Server::new).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Server, A::Error> {
                ServerMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(Server::from)
            }
        }
        d.deserialize_any(ServerVisitor)
    }
}

/// The JSON Schema of a server: an address, or the map.
struct ServerSchema;

impl JsonSchema for ServerSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Server".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<ServerMap>();
        let addr = generator.subschema_for::<ServerAddress>();
        json_schema!({
            "description": "A server: its address (weight 1), or `{ address, weight, …peer options }`.",
            "anyOf": [addr, map]
        })
    }
}

/// Where a server is: an IP address, or a host name that Pylon resolves (hosts file, then
/// DNS) and re-resolves while running. The port is required.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerAddress {
    /// `"10.0.0.1:80"`, `"[::1]:80"`.
    Ip(SocketAddr),
    /// `"api.internal:8080"`, `"localhost:3000"`.
    Name {
        /// The host name, as written.
        host: String,
        /// The port.
        port: u16,
    },
}

impl ServerAddress {
    /// Parses `"10.0.0.1:80"`, `"[::1]:80"` or `"api.internal:8080"`; the error says what
    /// was expected and what is wrong.
    pub fn parse(text: &str) -> Result<ServerAddress, String> {
        let fail = |why: &str| {
            let mut message = format!("expected {EXPECTING}, found {text:?}");
            if !why.is_empty() {
                message.push_str(&format!(" ({why})"));
            }
            message
        };
        let trimmed = text.trim();
        if let Ok(addr) = trimmed.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(fail("the port must be from 1 to 65535"));
            }
            return Ok(ServerAddress::Ip(addr));
        }
        if trimmed.contains("://") {
            return Err(fail(
                "write the address without a scheme, like \"api.internal:8080\"; `tls: true` selects HTTPS",
            ));
        }
        match trimmed.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => return Err(fail("the port is missing")),
            Ok(IpAddr::V6(_)) => {
                return Err(fail(
                    "an IPv6 address goes in brackets, followed by the port: \"[::1]:8080\"",
                ))
            }
            Err(_) => {}
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            let why = match rest.split_once(']') {
                Some((ip, after)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                    if after.is_empty() || after == ":" {
                        "the port is missing"
                    } else {
                        "the port must be from 1 to 65535"
                    }
                }
                _ => "not a valid IPv6 address",
            };
            return Err(fail(why));
        }
        let Some((host, port)) = trimmed.rsplit_once(':') else {
            return Err(fail("the port is missing"));
        };
        if host.contains(':') {
            return Err(fail("an IPv6 address goes in brackets: \"[::1]:8080\""));
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ if port.is_empty() => return Err(fail("the port is missing")),
            _ => return Err(fail("the port must be from 1 to 65535")),
        };
        if let Err(why) = check_host_name(host) {
            return Err(fail(&why));
        }
        Ok(ServerAddress::Name {
            host: host.to_string(),
            port,
        })
    }

    /// The host: the IP address (without brackets) or the host name.
    pub fn host(&self) -> String {
        match self {
            ServerAddress::Ip(addr) => addr.ip().to_string(),
            ServerAddress::Name { host, .. } => host.clone(),
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        match self {
            ServerAddress::Ip(addr) => addr.port(),
            ServerAddress::Name { port, .. } => *port,
        }
    }
}

/// Checks a host name: dot-separated labels of letters, digits, `-` (not first or last) and
/// `_`, 1 to 63 characters each, at most 253 in all; one trailing dot allowed. RFC 1123,
/// plus `_`, which container platforms use in service names.
pub(crate) fn check_host_name(host: &str) -> Result<(), String> {
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err("the host is missing".into());
    }
    if name.len() > 253 {
        return Err("a host name has at most 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "invalid host name {host:?}: each dot-separated part has 1 to 63 characters"
            ));
        }
        let ok = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok || label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "invalid host name {host:?}: use letters, digits, `-` and `_`, not starting or ending a part with `-`"
            ));
        }
    }
    if name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("{host:?} is not a valid IP address"));
    }
    Ok(())
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Ip(addr) => write!(f, "{addr}"),
            ServerAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for ServerAddress {
    fn from(addr: SocketAddr) -> Self {
        ServerAddress::Ip(addr)
    }
}

impl Serialize for ServerAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ServerAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AddressVisitor;
        impl Visitor<'_> for AddressVisitor {
            type Value = ServerAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ServerAddress, E> {
                ServerAddress::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(AddressVisitor)
    }
}

impl JsonSchema for ServerAddress {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ServerAddress".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "IP address or host name, and port: \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\".",
            "type": "string",
            "examples": ["10.0.0.1:80", "[::1]:80", "api.internal:8080"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ips_and_names() {
        let ip = |s: &str| ServerAddress::Ip(s.parse().unwrap_or_else(|_| panic!("{s}")));
        assert_eq!(ServerAddress::parse("10.0.0.1:80"), Ok(ip("10.0.0.1:80")));
        assert_eq!(ServerAddress::parse("[::1]:80"), Ok(ip("[::1]:80")));
        let name = ServerAddress::parse("api.internal:8080");
        assert_eq!(
            name,
            Ok(ServerAddress::Name {
                host: "api.internal".into(),
                port: 8080
            })
        );
        let local = ServerAddress::parse("localhost:3000").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((local.host(), local.port()), ("localhost".into(), 3000));
        assert_eq!(local.to_string(), "localhost:3000");
        assert_eq!(ip("[::1]:80").host(), "::1");
        assert_eq!(ip("[::1]:80").to_string(), "[::1]:80");
        assert!(ServerAddress::parse("my_app.internal.:80").is_ok());
    }

    #[test]
    fn explains_bad_addresses() {
        for (text, why) in [
            ("10.0.0.1", "the port is missing"),
            ("api.internal", "the port is missing"),
            ("api.internal:", "the port is missing"),
            ("[::1]", "the port is missing"),
            ("::1:80", "an IPv6 address goes in brackets"),
            ("[::zz]:80", "not a valid IPv6 address"),
            ("api:0", "the port must be from 1 to 65535"),
            ("10.0.0.1:0", "the port must be from 1 to 65535"),
            ("api:99999", "the port must be from 1 to 65535"),
            ("[::1]:x", "the port must be from 1 to 65535"),
            ("10.0.0.300:80", "is not a valid IP address"),
            ("-api:80", "invalid host name"),
            ("a..b:80", "invalid host name"),
            ("http://a:80", "without a scheme"),
            ("2001:db8::1", "an IPv6 address goes in brackets"),
            ("a b:80", "invalid host name"),
            (":80", "the host is missing"),
        ] {
            let e = match ServerAddress::parse(text) {
                Ok(a) => panic!("{text} parsed as {a}"),
                Err(e) => e,
            };
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
