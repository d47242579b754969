//! Peer options: how Pylon connects to a server (TLS, ALPN, TCP settings, connection limit,
//! `Host` header). They can be written on an upstream (the default for its servers) and on
//! each server (overriding the upstream), flat among the other keys.
//!
//! Serde's `flatten` does not work with `deny_unknown_fields`, so the file form of an
//! upstream and of a server declares the peer fields directly; the [`peer_fields!`] macro
//! holds the one list of them and generates [`PeerOptions`], those file forms and the
//! conversions, so the three can never drift apart.

use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::DurationSchema;

/// Default idle time before the first TCP keep-alive probe.
pub const DEFAULT_TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Default time between two TCP keep-alive probes.
pub const DEFAULT_TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default number of unanswered TCP keep-alive probes before the connection is dropped.
pub const DEFAULT_TCP_KEEPALIVE_COUNT: u32 = 3;
/// Highest DSCP value (6 bits).
pub const MAX_DSCP: u8 = 63;

/// The peer fields, once. Arms:
/// - `peer_fields!(options)` defines [`PeerOptions`] and [`PeerOptions::or`];
/// - `peer_fields!(model #[…] pub struct Model; #[…] struct Map { fields })` defines the
///   model struct (the fields plus `pub peer: PeerOptions`, serialised flat), the file form
///   `Map` (the fields plus every peer field, flat) and `From<Map> for Model`.
macro_rules! peer_fields {
    (@with [$( $(#[$pm:meta])* $pf:ident : $pty:ty, )*] options) => {
        /// How Pylon connects to a server. Every field is optional: `None` inherits (from the
        /// upstream, for a server's options), then falls back to the default its
        /// documentation names.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct PeerOptions {
            $( $(#[$pm])* pub $pf: $pty, )*
        }

        impl PeerOptions {
            /// These options, each unset one taken from `fallback`: a server's options
            /// `.or(&upstream.peer)` are the ones its connections use.
            pub fn or(&self, fallback: &PeerOptions) -> PeerOptions {
                PeerOptions {
                    $( $pf: self.$pf.clone().or_else(|| fallback.$pf.clone()), )*
                }
            }
        }
    };
    (@with [$( $(#[$pm:meta])* $pf:ident : $pty:ty, )*] model
        $(#[$model_meta:meta])* pub struct $model:ident;
        $(#[$map_meta:meta])* struct $map:ident {
            $( $(#[$fm:meta])* pub $f:ident : $fty:ty, )*
        }
    ) => {
        $(#[$model_meta])*
        pub struct $model {
            $( $(#[$fm])* pub $f: $fty, )*
            /// How Pylon connects: TLS, ALPN, TCP options, connection limit, `Host` header.
            /// Written flat among the other keys.
            #[serde(flatten)]
            pub peer: $crate::peer::PeerOptions,
        }

        $(#[$map_meta])*
        struct $map {
            $( $(#[$fm])* $f: $fty, )*
            $( $(#[$pm])* $pf: $pty, )*
        }

        impl From<$map> for $model {
            fn from(m: $map) -> $model {
                $model {
                    $( $f: m.$f, )*
                    peer: $crate::peer::PeerOptions { $( $pf: m.$pf, )* },
                }
            }
        }
    };
    ($($input:tt)*) => {
        peer_fields! { @with [
            /// Connect with TLS. Default: false.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            tls: Option<bool>,
            /// TLS only: the server name sent in the handshake (SNI) and checked against the
            /// certificate. Default: the server's host name (none for an IP address).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            sni: Option<String>,
            /// TLS only: verify the server's certificate chain. Default: true.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            verify_cert: Option<bool>,
            /// TLS only: check that the certificate names `sni` (or the server's host name).
            /// Default: true.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            verify_hostname: Option<bool>,
            /// TLS only: PEM file of the CA certificates to trust instead of the system's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            ca_file: Option<::std::path::PathBuf>,
            /// TLS only: PEM certificate (chain) presented to the server, for mutual TLS.
            /// Needs `client_key`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            client_cert: Option<::std::path::PathBuf>,
            /// TLS only: PEM private key of `client_cert`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            client_key: Option<::std::path::PathBuf>,
            /// HTTP versions to speak: `h1`, `h2` (over cleartext: HTTP/2 with prior
            /// knowledge) or `h1h2` (negotiated by ALPN; TLS only). Default: `h1`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            alpn: Option<$crate::peer::Alpn>,
            /// TCP keep-alive probes on idle connections. Default: off.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            tcp_keepalive: Option<$crate::peer::TcpKeepalive>,
            /// Use TCP Fast Open (the kernel must allow it). Default: false.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            tcp_fast_open: Option<bool>,
            /// Socket receive buffer size in bytes. Default: the kernel's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            tcp_recv_buf: Option<usize>,
            /// DSCP value (0 to 63) set on outgoing packets. Default: none.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(max = 63))]
            dscp: Option<u8>,
            /// Interval of HTTP/2 PING frames that keep connections alive and detect dead
            /// ones. Default: no pings.
            #[serde(
                default,
                with = "crate::duration::optional",
                skip_serializing_if = "Option::is_none"
            )]
            #[schemars(with = "Option<crate::duration::DurationSchema>")]
            h2_ping_interval: Option<::std::time::Duration>,
            /// Most concurrent HTTP/2 streams on one connection. Default: 1.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            max_h2_streams: Option<usize>,
            /// Most connections open to one server at once (for HTTP/1.1, one per request in
            /// flight). More requests wait up to the upstream's `queue_timeout`, then get
            /// 503. Default: no limit.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            max_connections: Option<u32>,
            /// The `Host` header sent: `keep` the client's, `server` (the server's address,
            /// without a default port), or any other text to send as is. Default: `keep`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            host_header: Option<$crate::peer::HostHeader>,
        ] $($input)* }
    };
}

pub(crate) use peer_fields;

peer_fields!(options);

/// The HTTP versions spoken to a server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alpn {
    /// HTTP/1.1 only.
    #[default]
    H1,
    /// HTTP/2 only; over cleartext, HTTP/2 with prior knowledge (h2c).
    H2,
    /// HTTP/2 if the server offers it in the TLS handshake, else HTTP/1.1. TLS only.
    H1h2,
}

/// TCP keep-alive settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Idle time before the first probe; at least 1s. Default: 60s.
    #[serde(default = "default_keepalive_idle", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub idle: Duration,
    /// Time between probes; at least 1s. Default: 10s.
    #[serde(
        default = "default_keepalive_interval",
        with = "crate::duration::required"
    )]
    #[schemars(with = "DurationSchema")]
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped; at least 1. Default: 3.
    #[serde(default = "default_keepalive_count")]
    #[schemars(range(min = 1))]
    pub count: u32,
}

impl Default for TcpKeepalive {
    fn default() -> Self {
        TcpKeepalive {
            idle: DEFAULT_TCP_KEEPALIVE_IDLE,
            interval: DEFAULT_TCP_KEEPALIVE_INTERVAL,
            count: DEFAULT_TCP_KEEPALIVE_COUNT,
        }
    }
}

fn default_keepalive_idle() -> Duration {
    DEFAULT_TCP_KEEPALIVE_IDLE
}
fn default_keepalive_interval() -> Duration {
    DEFAULT_TCP_KEEPALIVE_INTERVAL
}
fn default_keepalive_count() -> u32 {
    DEFAULT_TCP_KEEPALIVE_COUNT
}

/// The `Host` header sent to a server. Written `"keep"`, `"server"`, or any other text,
/// which is sent as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostHeader {
    /// The client's `Host` header, unchanged.
    Keep,
    /// The server's address as written (`api.internal:8080`), without the port when it is
    /// the scheme's default (80, or 443 with TLS).
    Server,
    /// This value.
    Custom(String),
}

impl HostHeader {
    /// Parses `"keep"`, `"server"` or a header value.
    pub fn parse(text: &str) -> Result<HostHeader, String> {
        match text {
            "keep" => Ok(HostHeader::Keep),
            "server" => Ok(HostHeader::Server),
            _ if !text.is_empty() && crate::validate::is_header_value(text) => {
                Ok(HostHeader::Custom(text.to_string()))
            }
            _ => Err(format!(
                "expected \"keep\", \"server\" or a host like \"api.example.com\", found {text:?} \
                 (a Host header must be non-empty printable ASCII)"
            )),
        }
    }
}

impl fmt::Display for HostHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostHeader::Keep => f.write_str("keep"),
            HostHeader::Server => f.write_str("server"),
            HostHeader::Custom(value) => f.write_str(value),
        }
    }
}

impl Serialize for HostHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HostVisitor;
        impl Visitor<'_> for HostVisitor {
            type Value = HostHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""keep", "server" or a host like "api.example.com""#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HostHeader, E> {
                HostHeader::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(HostVisitor)
    }
}

impl JsonSchema for HostHeader {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HostHeader".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`keep` the client's Host header, `server` for the server's address, \
                or the value to send.",
            "type": "string",
            "minLength": 1,
            "examples": ["keep", "server", "api.example.com"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn or_takes_each_unset_field_from_the_fallback() {
        let server = PeerOptions {
            tls: Some(false),
            sni: Some("a.example".into()),
            ..PeerOptions::default()
        };
        let upstream = PeerOptions {
            tls: Some(true),
            max_connections: Some(10),
            host_header: Some(HostHeader::Server),
            ..PeerOptions::default()
        };
        let merged = server.or(&upstream);
        assert_eq!(merged.tls, Some(false));
        assert_eq!(merged.sni.as_deref(), Some("a.example"));
        assert_eq!(merged.max_connections, Some(10));
        assert_eq!(merged.host_header, Some(HostHeader::Server));
        assert_eq!(merged.alpn, None);
        assert_eq!(PeerOptions::default().or(&upstream), upstream);
    }

    #[test]
    fn host_header_forms() {
        assert_eq!(HostHeader::parse("keep"), Ok(HostHeader::Keep));
        assert_eq!(HostHeader::parse("server"), Ok(HostHeader::Server));
        assert_eq!(
            HostHeader::parse("api.example.com:8443"),
            Ok(HostHeader::Custom("api.example.com:8443".into()))
        );
        assert!(HostHeader::parse("").is_err());
        assert!(HostHeader::parse("a\nb").is_err());
        assert_eq!(HostHeader::Custom("x".into()).to_string(), "x");
    }
}
