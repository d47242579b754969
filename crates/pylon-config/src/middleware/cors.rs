//! The `cors` middleware's settings.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::Spot;

/// Cross-origin resource sharing. Preflight requests (`OPTIONS` with
/// `Access-Control-Request-Method`) from an allowed origin are answered by Pylon itself;
/// other requests from an allowed origin get the `Access-Control-*` response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed: exact (`https://app.example.com`), a wildcard subdomain
    /// (`https://*.example.com`) or `*` (any origin).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Methods allowed in preflights. Default: GET, HEAD, POST, PUT, PATCH, DELETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    /// Request headers allowed in preflights; `*` allows any. Default: whatever the
    /// preflight asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_headers: Option<Vec<String>>,
    /// Response headers the browser may read (`Access-Control-Expose-Headers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_headers: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`. Not allowed with origin `*`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`).
    #[serde(
        default,
        with = "crate::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<DurationSchema>")]
    pub max_age: Option<Duration>,
}

impl Cors {
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
