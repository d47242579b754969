//! The `respond` middleware's settings: a mock response, always or under a condition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_readable_file;
use crate::error::ConfigError;
use crate::model::{MAX_STATUS, MIN_STATUS};
use crate::validate::{rule_error_pos, Spot};

/// Answers with a fixed response. With `when` (a rule in the routing language, such as
/// ``Header(`X-Mock`, `1`)``) only matching requests are answered; the others go on
/// through the chain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondMiddleware {
    /// HTTP status code, 100 to 599.
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    /// Response headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Response body. Default: empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A file whose content is the body, read when the config is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<PathBuf>,
    /// Answer only requests matching this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl RespondMiddleware {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        spot.within("status", self.status, (MIN_STATUS, MAX_STATUS), errors);
        crate::validate::headers(&spot.key("headers"), errors);
        if self.body.is_some() && self.body_file.is_some() {
            errors.push(spot.key_error("body_file", "write `body` or `body_file`, not both"));
        }
        if let Some(file) = &self.body_file {
            check_readable_file(&spot.key("body_file"), file, errors);
        }
        if let Some(when) = &self.when {
            if let Err(e) = pylon_rules::Rule::parse(when) {
                let when_spot = spot.key("when");
                let pos = spot
                    .node
                    .map_or(when_spot.pos, |n| rule_error_pos(n, "when", e.column));
                errors.push(ConfigError::new(
                    spot.file,
                    pos,
                    when_spot.path,
                    format!("invalid rule: {}", e.message),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn errors(respond: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    middlewares:\n      - respond: {respond}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn status_headers_body_and_when_are_checked() {
        assert_eq!(
            errors("{ status: 200, headers: { X-Mock: \"1\" }, body: hi }"),
            ""
        );
        let e = errors("{ status: 600, headers: { \"X Bad\": v }, body: a, body_file: /nonexistent/pylon-body }");
        assert!(e.contains("t.yaml:6:28: routes[0].middlewares[0].respond.status: status must be from 100 to 599"), "{e}");
        assert!(
            e.contains("respond.headers[\"X Bad\"]: invalid header name"),
            "{e}"
        );
        assert!(
            e.contains("respond.body_file: write `body` or `body_file`, not both"),
            "{e}"
        );
        assert!(
            e.contains("respond.body_file: cannot read /nonexistent/pylon-body"),
            "{e}"
        );
        // The column points into the rule, at the unknown matcher.
        let e = errors("{ status: 200, when: \"Path(`/a`) && Nope(`x`)\" }");
        assert!(e.contains("t.yaml:6:54: routes[0].middlewares[0].respond.when: invalid rule: unknown matcher `Nope`"), "{e}");
    }
}
