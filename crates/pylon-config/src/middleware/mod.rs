//! Middlewares as users write them: top-level `middlewares:` defines named instances, and a
//! route's `middlewares:` list names them or writes one inline. Every instance is a map with
//! exactly one key, its type (`cors: { … }`), so configs stay typed and serde-friendly.
//!
//! One module per middleware type holds its settings and their checks; the runtime
//! (`pylon-core`'s `middleware` module) compiles each into a typed value once per snapshot.

mod api_key;
mod basic_auth;
mod buffering;
mod concurrency_limit;
mod cors;
mod forward_auth;
mod headers;
mod htpasswd;
mod ip_filter;
mod jwt;
mod limits;
mod rate_limit;
mod redirect;
mod request_id;
mod respond;
mod static_files;
pub mod template;
pub mod transform;

use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ConfigError;
use crate::validate::Spot;

pub use api_key::*;
pub use basic_auth::*;
pub use buffering::*;
pub use concurrency_limit::*;
pub use cors::*;
pub use forward_auth::*;
pub use headers::*;
pub use htpasswd::{
    parse_entry, parse_file, parse_hash, parse_hashed_entry, HtpasswdEntry, StoredHash,
};
pub use ip_filter::*;
pub use jwt::*;
pub use limits::*;
pub use rate_limit::*;
pub use redirect::*;
pub use request_id::*;
pub use respond::*;
pub use static_files::*;
pub use template::{Template, TemplateVar};
pub use transform::{RequestOp, ResponseOp, Transform};

/// One middleware instance: its type and that type's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Middleware {
    /// Rewrite the request (path, query, headers, method) and the response headers.
    Transform(Transform),
    /// Give every request an id, sent upstream and back.
    RequestId(RequestId),
    /// Set, add and remove request and response headers; security headers; `Server`.
    Headers(Headers),
    /// Cross-origin resource sharing: answer preflights, add `Access-Control-*` headers.
    Cors(Cors),
    /// Allow or deny clients by address.
    IpFilter(IpFilter),
    /// Redirect to HTTPS or to a rewritten URL.
    Redirect(Redirect),
    /// Answer with a fixed response, always or when a condition matches.
    Respond(RespondMiddleware),
    /// Serve files from a directory.
    Static(StaticFiles),
    /// Refuse requests that are too large: body (413), headers (431), URI (414).
    Limits(Limits),
    /// Read the whole request body before forwarding it.
    Buffering(Buffering),
    /// HTTP Basic authentication against htpasswd users (bcrypt, argon2, SHA-crypt).
    BasicAuth(BasicAuth),
    /// API keys in a header or query parameter, each with an optional consumer name.
    ApiKey(ApiKey),
    /// JSON Web Tokens: signature, time and audience checks, claims forwarded as headers.
    Jwt(Jwt),
    /// Ask an external service whether the request may pass (Traefik's ForwardAuth).
    ForwardAuth(ForwardAuth),
    /// Token-bucket rate limiting by client, header, consumer or route; local or on Redis.
    RateLimit(RateLimit),
    /// At most N requests in flight per key; the excess waits, then 503.
    ConcurrencyLimit(ConcurrencyLimit),
}

impl Middleware {
    /// The type name as written in configs (`ip_filter`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Middleware::Transform(_) => "transform",
            Middleware::RequestId(_) => "request_id",
            Middleware::Headers(_) => "headers",
            Middleware::Cors(_) => "cors",
            Middleware::IpFilter(_) => "ip_filter",
            Middleware::Redirect(_) => "redirect",
            Middleware::Respond(_) => "respond",
            Middleware::Static(_) => "static",
            Middleware::Limits(_) => "limits",
            Middleware::Buffering(_) => "buffering",
            Middleware::BasicAuth(_) => "basic_auth",
            Middleware::ApiKey(_) => "api_key",
            Middleware::Jwt(_) => "jwt",
            Middleware::ForwardAuth(_) => "forward_auth",
            Middleware::RateLimit(_) => "rate_limit",
            Middleware::ConcurrencyLimit(_) => "concurrency_limit",
        }
    }

    /// Whether this middleware can answer requests itself, so a route using it needs no
    /// upstream.
    pub fn can_answer_all(&self) -> bool {
        match self {
            Middleware::Static(s) => !s.try_upstream,
            Middleware::Respond(r) => r.when.is_none(),
            Middleware::Redirect(_) => true,
            _ => false,
        }
    }

    /// Checks what typing could not (ranges, regexes, references); `spot` is the settings
    /// map (the value under the type key).
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        match self {
            Middleware::Transform(m) => m.validate(spot, errors),
            Middleware::RequestId(m) => m.validate(spot, errors),
            Middleware::Headers(m) => m.validate(spot, errors),
            Middleware::Cors(m) => m.validate(spot, errors),
            Middleware::IpFilter(m) => m.validate(spot, errors),
            Middleware::Redirect(m) => m.validate(spot, errors),
            Middleware::Respond(m) => m.validate(spot, errors),
            Middleware::Static(m) => m.validate(spot, errors),
            Middleware::Limits(m) => m.validate(spot, errors),
            Middleware::Buffering(m) => m.validate(spot, errors),
            Middleware::BasicAuth(m) => m.validate(spot, errors),
            Middleware::ApiKey(m) => m.validate(spot, errors),
            Middleware::Jwt(m) => m.validate(spot, errors),
            Middleware::ForwardAuth(m) => m.validate(spot, errors),
            Middleware::RateLimit(m) => m.validate(spot, errors),
            Middleware::ConcurrencyLimit(m) => m.validate(spot, errors),
        }
    }
}

/// Loads YAML `text` as `t.yaml`: its errors, one per line, or `""` when it is valid. For
/// the middleware modules' tests.
#[cfg(test)]
pub(crate) fn load_errors(text: &str) -> String {
    match crate::load_str(text, crate::Format::Yaml, std::path::Path::new("t.yaml")) {
        Ok(_) => String::new(),
        Err(e) => {
            e.0.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

/// Reads an `error_pages` key: a status from 400 to 599 (`"404"`) or a class (`"4xx"`,
/// `"5xx"`), as (first, last) status covered.
pub fn parse_status_key(key: &str) -> Option<(u16, u16)> {
    match key.as_bytes() {
        [c @ (b'4' | b'5'), b'x' | b'X', b'x' | b'X'] => {
            let base = u16::from(c - b'0') * 100;
            Some((base, base + 99))
        }
        _ => key
            .parse::<u16>()
            .ok()
            .filter(|s| (400..=599).contains(s))
            .map(|s| (s, s)),
    }
}

/// A file named in the config must exist and be readable now, not at the first request.
pub(crate) fn check_readable_file(
    spot: &Spot<'_>,
    path: &std::path::Path,
    errors: &mut Vec<ConfigError>,
) {
    if let Err(e) = std::fs::File::open(path) {
        errors.push(spot.error(format!("cannot read {}: {e}", path.display())));
    }
}

pub(crate) use headers::{check_header_value, header_name_problem};

/// An entry of a route's `middlewares:` list: the name of a top-level instance, or an
/// instance written in place (`{ request_id: {} }`).
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum MiddlewareRef {
    /// A middleware defined under top-level `middlewares:`.
    Named(String),
    /// A middleware written in the route.
    Inline(Box<Middleware>),
}

impl Serialize for MiddlewareRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MiddlewareRef::Named(name) => s.serialize_str(name),
            MiddlewareRef::Inline(m) => m.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MiddlewareRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefVisitor)
    }
}

struct RefVisitor;

impl<'de> Visitor<'de> for RefVisitor {
    type Value = MiddlewareRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a middleware name, or a map with one key, the middleware type")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MiddlewareRef, E> {
        Ok(MiddlewareRef::Named(v.to_string()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MiddlewareRef, A::Error> {
        Middleware::deserialize(MapAsEnum(map)).map(|m| MiddlewareRef::Inline(Box::new(m)))
    }
}

/// Reads a one-key map as an externally tagged enum (the key is the variant).
struct MapAsEnum<A>(A);

impl<'de, A: MapAccess<'de>> Deserializer<'de> for MapAsEnum<A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for MapAsEnum<A> {
    type Error = A::Error;
    type Variant = OneValue<A>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        mut self,
        seed: V,
    ) -> Result<(V::Value, OneValue<A>), A::Error> {
        match self.0.next_key_seed(seed)? {
            Some(variant) => Ok((variant, OneValue(self.0))),
            None => Err(de::Error::custom(
                "expected a map with one key, the middleware type (`cors: { … }`), found an empty map",
            )),
        }
    }
}

/// The value of the one key, then a check that no other key follows.
struct OneValue<A>(A);

impl<'de, A: MapAccess<'de>> OneValue<A> {
    fn only<T>(mut self, value: T) -> Result<T, A::Error> {
        match self.0.next_key::<String>()? {
            None => Ok(value),
            Some(extra) => Err(de::Error::custom(format_args!(
                "a middleware is a map with exactly one key, its type; found another key `{extra}` (write each middleware as its own list item)"
            ))),
        }
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for OneValue<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        self.0.next_value::<de::IgnoredAny>()?;
        self.only(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        mut self,
        seed: T,
    ) -> Result<T::Value, A::Error> {
        let value = self.0.next_value_seed(seed)?;
        self.only(value)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("unexpected tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("unexpected struct variant"))
    }
}
