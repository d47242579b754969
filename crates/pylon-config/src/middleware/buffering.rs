//! The `buffering` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// The most `buffering` holds: the proxy sends a body read ahead from Pingora's retry
/// buffer, which has this fixed size.
pub const MAX_BUFFERED_BODY: u64 = 64 * 1024;

/// Reads the whole request body before connecting upstream (nginx's
/// `proxy_request_buffering`), so slow clients do not hold upstream connections and
/// failed attempts can be retried with the body. Without it (the default) bodies stream
/// both ways as they arrive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Buffering {
    /// Largest body buffered, in bytes, at most 65536 (Pingora's 64 KiB retry buffer); a
    /// larger body gets 413. Default: 65536.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body: Option<u64>,
}

impl Buffering {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        if let Some(max) = self.max_request_body {
            spot.within("max_request_body", max, (1, MAX_BUFFERED_BODY), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use crate::{load_str, Format};

    #[test]
    fn max_request_body_is_at_most_the_retry_buffer() {
        let text = |max: u64| {
            format!(
                "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nmiddlewares:\n  buf:\n    buffering: {{ max_request_body: {max} }}\nroutes: [{{ name: r, rule: \"PathPrefix(`/`)\", upstream: app, middlewares: [buf] }}]\n"
            )
        };
        assert!(load_str(&text(65536), Format::Yaml, Path::new("t.yaml")).is_ok());
        let errs = load_str(&text(65537), Format::Yaml, Path::new("t.yaml")).unwrap_err();
        assert!(
            errs.0[0].to_string().starts_with(
                "t.yaml:5:36: middlewares.buf.buffering.max_request_body: max_request_body must be from 1 to 65536, found 65537"
            ),
            "{errs}"
        );
    }
}
