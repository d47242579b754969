//! The `transform` middleware's language (Jokoway's set): request operations
//! (`ReplaceHeader`, `AppendHeader`, `DeleteHeader`, `ReplaceQuery`, `AppendQuery`,
//! `DeleteQuery`, `StripPrefix`, `AddPrefix`, `RewritePath`, `SetMethod`) and response
//! operations (`ReplaceHeader`, `AppendHeader`, `DeleteHeader`).
//!
//! PLACEHOLDER: structured form only; the compact string form, its parser and the checks
//! come with the transform work.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::template::Template;
use crate::error::ConfigError;
use crate::validate::Spot;

/// Request and response rewrites, applied in the order written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Operations on the request before it goes upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request: Vec<RequestOp>,
    /// Operations on the response headers before they go to the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response: Vec<ResponseOp>,
}

/// One request operation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestOp {
    ReplaceHeader(HeaderValueOp),
    AppendHeader(HeaderValueOp),
    DeleteHeader(String),
    ReplaceQuery(HeaderValueOp),
    AppendQuery(HeaderValueOp),
    DeleteQuery(String),
    StripPrefix(String),
    AddPrefix(String),
    RewritePath(RewritePathOp),
    SetMethod(String),
}

/// One response operation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseOp {
    ReplaceHeader(HeaderValueOp),
    AppendHeader(HeaderValueOp),
    DeleteHeader(String),
}

/// A name and a value (header or query parameter).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderValueOp {
    /// Header or query parameter name.
    pub name: String,
    /// The value; may use request variables (`{client_ip}`).
    pub value: Template,
}

/// `RewritePath(regex, replacement)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewritePathOp {
    /// A regex over the path.
    pub regex: String,
    /// The new path, with `$1` or `${name}` captures.
    pub replacement: String,
}

impl Transform {
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
