//! The `limits` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Refuses requests that are too large: a body over `max_body_size` gets 413 (chunked
/// bodies are counted while they stream), headers over `max_header_size` bytes or
/// `max_header_count` fields get 431, a URI over `max_uri_length` gets 414.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<u64>,
    /// Largest total size of the request headers (names and values), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_size: Option<usize>,
    /// Most request header fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_count: Option<usize>,
    /// Longest request target (path and query), in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uri_length: Option<usize>,
}

impl Limits {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        if let Some(v) = self.max_header_size {
            spot.at_least("max_header_size", v, 1, errors);
        }
        if let Some(v) = self.max_header_count {
            spot.at_least("max_header_count", v, 1, errors);
        }
        if let Some(v) = self.max_uri_length {
            spot.at_least("max_uri_length", v, 1, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use crate::{load_str, Format};

    #[test]
    fn limits_are_positive() {
        let text = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9000\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares: [{ limits: { max_body_size: 0, max_uri_length: 0 } }]\n";
        let errs = load_str(text, Format::Yaml, Path::new("t.yaml")).unwrap_err();
        let all = errs.to_string();
        assert!(
            all.contains("limits.max_uri_length: max_uri_length must be at least 1, found 0"),
            "{all}"
        );
        // A zero body size is allowed: it refuses every body.
        assert_eq!(errs.0.len(), 1, "{all}");
    }
}
