//! The `headers` middleware's settings: set, add and remove request and response headers,
//! security headers (with a `recommended` preset), and the `Server` header.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::template::Template;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::{is_header_value, is_tchar, Spot};

/// Headers to change on the request (before it goes upstream) and on the response (before
/// it goes to the client), security headers, and the `Server` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Headers {
    /// Changes to the request sent upstream.
    #[serde(default, skip_serializing_if = "HeaderChanges::is_empty")]
    pub request: HeaderChanges,
    /// Changes to the response sent to the client.
    #[serde(default, skip_serializing_if = "HeaderChanges::is_empty")]
    pub response: HeaderChanges,
    /// Security headers added to responses that do not already carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityHeaders>,
    /// The `Server` response header: `keep` (the upstream's, the default), `off` (removed),
    /// `on` (`Pylon/VERSION`) or any other text to send as is.
    #[serde(default, skip_serializing_if = "ServerHeader::is_keep")]
    pub server: ServerHeader,
}

/// Header changes, applied in this order: remove, set (replacing), add (appending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderChanges {
    /// Headers to remove, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Headers to set, replacing any value already there. Values may use request
    /// variables: `{client_ip}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, Template>,
    /// Headers to add beside any value already there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub add: BTreeMap<String, Template>,
}

impl HeaderChanges {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }
}

/// Security headers. `preset: recommended` stands for HSTS for a year with subdomains,
/// `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and `Referrer-Policy:
/// strict-origin-when-cross-origin`; any field written beside it overrides that part.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeaders {
    /// A set of defaults: `recommended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<SecurityPreset>,
    /// `Strict-Transport-Security`. Sent on every response (browsers ignore it over plain
    /// HTTP, so it takes effect once clients use HTTPS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsts: Option<Hsts>,
    /// `X-Content-Type-Options: nosniff` when true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type_options: Option<bool>,
    /// `X-Frame-Options`: `DENY` or `SAMEORIGIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_options: Option<FrameOptions>,
    /// `Referrer-Policy`, e.g. `no-referrer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_policy: Option<String>,
    /// `Content-Security-Policy`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_security_policy: Option<String>,
    /// `Permissions-Policy`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_policy: Option<String>,
}

/// Named sets of security headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecurityPreset {
    /// HSTS a year with subdomains, nosniff, `DENY`, `strict-origin-when-cross-origin`.
    Recommended,
}

/// `Strict-Transport-Security` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hsts {
    /// `max-age`. Default: 365 days.
    #[serde(default = "default_hsts_max_age", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub max_age: Duration,
    /// Adds `includeSubDomains`. Default: true.
    #[serde(default = "yes")]
    pub include_subdomains: bool,
    /// Adds `preload`. Default: false.
    #[serde(default)]
    pub preload: bool,
}

impl Default for Hsts {
    fn default() -> Self {
        Hsts {
            max_age: default_hsts_max_age(),
            include_subdomains: true,
            preload: false,
        }
    }
}

/// Default HSTS `max-age`: 365 days.
pub const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(365 * 24 * 3600);

fn default_hsts_max_age() -> Duration {
    DEFAULT_HSTS_MAX_AGE
}

fn yes() -> bool {
    true
}

/// `X-Frame-Options` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum FrameOptions {
    #[serde(rename = "DENY", alias = "deny")]
    Deny,
    #[serde(rename = "SAMEORIGIN", alias = "sameorigin")]
    SameOrigin,
}

impl SecurityHeaders {
    /// The headers to add, name and value, with the preset's defaults filled in.
    pub fn resolved(&self) -> Vec<(&'static str, String)> {
        let recommended = self.preset == Some(SecurityPreset::Recommended);
        let mut out = Vec::new();
        let hsts = self
            .hsts
            .clone()
            .or_else(|| recommended.then(Hsts::default));
        if let Some(h) = hsts {
            let mut v = format!("max-age={}", h.max_age.as_secs());
            if h.include_subdomains {
                v.push_str("; includeSubDomains");
            }
            if h.preload {
                v.push_str("; preload");
            }
            out.push(("strict-transport-security", v));
        }
        if self.content_type_options.unwrap_or(recommended) {
            out.push(("x-content-type-options", "nosniff".into()));
        }
        let frame = self
            .frame_options
            .or_else(|| recommended.then_some(FrameOptions::Deny));
        if let Some(f) = frame {
            let v = match f {
                FrameOptions::Deny => "DENY",
                FrameOptions::SameOrigin => "SAMEORIGIN",
            };
            out.push(("x-frame-options", v.into()));
        }
        let referrer = self
            .referrer_policy
            .clone()
            .or_else(|| recommended.then(|| "strict-origin-when-cross-origin".into()));
        if let Some(r) = referrer {
            out.push(("referrer-policy", r));
        }
        if let Some(c) = &self.content_security_policy {
            out.push(("content-security-policy", c.clone()));
        }
        if let Some(p) = &self.permissions_policy {
            out.push(("permissions-policy", p.clone()));
        }
        out
    }
}

/// What to do with the `Server` response header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ServerHeader {
    /// Pass the upstream's on (Pylon adds none).
    #[default]
    Keep,
    /// Remove it.
    Off,
    /// `Pylon/VERSION`.
    On,
    /// This text.
    Custom(String),
}

impl ServerHeader {
    pub fn is_keep(&self) -> bool {
        *self == ServerHeader::Keep
    }
}

impl Serialize for ServerHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            ServerHeader::Keep => "keep",
            ServerHeader::Off => "off",
            ServerHeader::On => "on",
            ServerHeader::Custom(text) => text,
        })
    }
}

impl<'de> Deserialize<'de> for ServerHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ServerHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`keep`, `off`, `on` or the text to send")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ServerHeader, E> {
                Ok(if v {
                    ServerHeader::On
                } else {
                    ServerHeader::Off
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ServerHeader, E> {
                Ok(match v {
                    "keep" => ServerHeader::Keep,
                    "off" => ServerHeader::Off,
                    "on" => ServerHeader::On,
                    "" => {
                        return Err(E::custom(
                            "an empty `server` header: write `off` to remove it",
                        ))
                    }
                    text => ServerHeader::Custom(text.to_string()),
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ServerHeader {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ServerHeader".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`keep` (default), `off`, `on` (Pylon/VERSION) or the text to send.",
            "type": ["string", "boolean"]
        })
    }
}

impl Headers {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        for (side, changes) in [("request", &self.request), ("response", &self.response)] {
            changes.validate(&spot.key(side), errors);
        }
        if let Some(sec) = &self.security {
            let spot = spot.key("security");
            for (key, value) in [
                ("referrer_policy", &sec.referrer_policy),
                ("content_security_policy", &sec.content_security_policy),
                ("permissions_policy", &sec.permissions_policy),
            ] {
                if let Some(v) = value {
                    check_header_value(&spot.key(key), v, errors);
                }
            }
        }
        if let ServerHeader::Custom(text) = &self.server {
            check_header_value(&spot.key("server"), text, errors);
        }
    }
}

impl HeaderChanges {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        let remove = spot.key("remove");
        for (i, name) in self.remove.iter().enumerate() {
            check_header_name(&remove.item(i), name, errors);
        }
        for (key, map) in [("set", &self.set), ("add", &self.add)] {
            let map_spot = spot.key(key);
            for (name, value) in map {
                let entry = map_spot.key(name);
                check_header_name(&entry, name, errors);
                check_template_header_value(&entry, value, errors);
            }
        }
    }
}

/// Why `name` cannot be a header name (it must be an HTTP token), if it cannot.
pub(crate) fn header_name_problem(name: &str) -> Option<String> {
    (name.is_empty() || !name.bytes().all(is_tchar))
        .then(|| format!("invalid header name {name:?}: use letters, digits and !#$%&'*+-.^_`|~"))
}

/// Why a templated header value is refused (its fixed parts must be printable ASCII), if
/// it is.
pub(crate) fn template_value_problem(value: &Template) -> Option<String> {
    value
        .literals()
        .find(|l| !is_header_value(l))
        .map(|bad| format!("invalid header value {bad:?}: use printable ASCII only"))
}

/// A header name must be an HTTP token.
pub(crate) fn check_header_name(spot: &Spot<'_>, name: &str, errors: &mut Vec<ConfigError>) {
    if let Some(problem) = header_name_problem(name) {
        errors.push(spot.error(problem));
    }
}

/// A fixed header value must be printable ASCII.
pub(crate) fn check_header_value(spot: &Spot<'_>, value: &str, errors: &mut Vec<ConfigError>) {
    if !is_header_value(value) {
        errors.push(spot.error(format!(
            "invalid header value {value:?}: use printable ASCII only"
        )));
    }
}

/// The fixed parts of a templated header value must be printable ASCII.
pub(crate) fn check_template_header_value(
    spot: &Spot<'_>,
    value: &Template,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(problem) = template_value_problem(value) {
        errors.push(spot.error(problem));
    }
}
