//! The `respond` middleware's settings: a mock response, always or under a condition.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

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
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
