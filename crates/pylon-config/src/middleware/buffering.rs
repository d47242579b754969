//! The `buffering` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Reads the whole request body before connecting upstream (nginx's
/// `proxy_request_buffering`), so slow clients do not hold upstream connections and
/// failed attempts can be retried with the body. Without it (the default) bodies stream
/// both ways as they arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Buffering {
    /// Largest body buffered, in bytes; a larger one gets 413. Default: 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body: Option<u64>,
}

impl Buffering {
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
