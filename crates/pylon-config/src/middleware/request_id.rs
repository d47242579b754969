//! The `request_id` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Default header carrying the request id.
pub const DEFAULT_REQUEST_ID_HEADER: &str = "X-Request-ID";

/// Gives every request an id: the client's, when it sent a sane one and `keep_incoming`
/// is on, else a fresh one (32 hex digits, unique). The id goes upstream and back to the
/// client in `header`, and appears in logs and error bodies as `{request_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestId {
    /// Header carrying the id, both ways. Default: `X-Request-ID`.
    #[serde(default = "default_header")]
    pub header: String,
    /// Keep an id the client sent (printable ASCII, at most 128 characters). Default: true.
    #[serde(default = "yes")]
    pub keep_incoming: bool,
    /// Send the id to the upstream. Default: true.
    #[serde(default = "yes")]
    pub upstream: bool,
    /// Send the id back to the client. Default: true.
    #[serde(default = "yes")]
    pub response: bool,
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            header: default_header(),
            keep_incoming: true,
            upstream: true,
            response: true,
        }
    }
}

fn default_header() -> String {
    DEFAULT_REQUEST_ID_HEADER.to_string()
}

fn yes() -> bool {
    true
}

impl RequestId {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        super::headers::check_header_name(&spot.key("header"), &self.header, errors);
    }
}
