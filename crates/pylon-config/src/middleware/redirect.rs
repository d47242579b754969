//! The `redirect` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Redirects the client. Either to another scheme (`scheme: https`, optionally with a
/// `port`), or to a URL built from a regex over the request URL (`regex` + `replacement`,
/// with `$1` and `${name}` captures). The query is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Redirect to this scheme (`https`); requests already on it pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// With `scheme`: the port to redirect to. Default: the scheme's default port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A regex over the full request URL (`http://host/path?query`); requests that do not
    /// match pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// With `regex`: the target URL, with `$1` or `${name}` captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// 301/308 when true, 302/307 when false (the 30x that keep the method are used for
    /// methods other than GET and HEAD). Default: false.
    #[serde(default)]
    pub permanent: bool,
}

impl Redirect {
    pub(crate) fn validate(&self, _spot: &Spot<'_>, _errors: &mut Vec<ConfigError>) {}
}
