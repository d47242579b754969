//! The `redirect` middleware's settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Redirects the client. Either to another scheme (`scheme: https`, optionally with a
/// `port`), or to a URL built from a regex over the request URL (`regex` + `replacement`,
/// with `$1` and `$${name}` captures). The query is kept. Requests already on the scheme,
/// or not matching the regex, pass through.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Redirect to this scheme (`https`); requests already on it pass through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// With `scheme`: the port to redirect to. Default: the scheme's default port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A regex over the request URL without its query (`http://host:port/path`, host as
    /// sent); requests that do not match pass through. Every match is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// With `regex`: the target URL, with `$1` or `$${name}` captures (`${…}` alone is
    /// environment substitution). The request's query is appended unless it has a `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// 301/308 when true, 302/307 when false (the 30x that keep the method are used for
    /// methods other than GET and HEAD). Default: false.
    #[serde(default)]
    pub permanent: bool,
}

impl Redirect {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        match (&self.scheme, &self.regex) {
            (None, None) => errors.push(spot.error(
                "write `scheme: https` (to another scheme) or `regex` with `replacement` (to a rewritten URL)",
            )),
            (Some(_), Some(_)) => errors.push(spot.key_error(
                "regex",
                "write `scheme` or `regex`, not both",
            )),
            _ => {}
        }
        if let Some(scheme) = &self.scheme {
            if scheme != "http" && scheme != "https" {
                errors.push(spot.key("scheme").error(format!(
                    "scheme must be `http` or `https`, found {scheme:?}"
                )));
            }
        }
        if self.port.is_some() && self.scheme.is_none() {
            errors.push(spot.key_error("port", "`port` only applies with `scheme`"));
        }
        if let Some(regex) = &self.regex {
            if let Err(e) = regex::Regex::new(regex) {
                errors.push(spot.key("regex").error(format!("invalid regex: {e}")));
            } else if let Some(problem) = self
                .replacement
                .as_deref()
                .and_then(|r| super::transform::replacement_problem(regex, r))
            {
                errors.push(spot.key("replacement").error(problem));
            }
            if self.replacement.is_none() {
                errors.push(spot.key_error(
                    "regex",
                    "`regex` needs a `replacement` (the target URL, with `$1` or `${name}`)",
                ));
            }
        }
        if self.replacement.is_some() && self.regex.is_none() {
            errors.push(spot.key_error("replacement", "`replacement` only applies with `regex`"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn errors(redirect: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    middlewares:\n      - redirect: {redirect}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn one_mode_with_its_own_settings() {
        assert_eq!(errors("{ scheme: https, port: 8443, permanent: true }"), "");
        assert_eq!(
            errors("{ regex: \"^http://([^/]+)/old/(?P<rest>.*)\", replacement: \"https://$1/new/$${rest}\" }"),
            ""
        );
        let e = errors("{}");
        assert!(
            e.contains("t.yaml:6:19: routes[0].middlewares[0].redirect: write `scheme: https`"),
            "{e}"
        );
        let e = errors("{ scheme: https, regex: x, replacement: y }");
        assert!(
            e.contains("redirect.regex: write `scheme` or `regex`, not both"),
            "{e}"
        );
        let e = errors("{ regex: \"^http://([^/]+)/\", replacement: \"https://$2/\" }");
        assert!(
            e.contains("redirect.replacement: `$2` is not a group of the regex (1 numbered)"),
            "{e}"
        );
        let e = errors("{ scheme: ftp }");
        assert!(
            e.contains("redirect.scheme: scheme must be `http` or `https`, found \"ftp\""),
            "{e}"
        );
        let e = errors("{ regex: \"(unclosed\", port: 80 }");
        assert!(
            e.contains("t.yaml:6:28: routes[0].middlewares[0].redirect.regex: invalid regex"),
            "{e}"
        );
        assert!(
            e.contains("redirect.regex: `regex` needs a `replacement`"),
            "{e}"
        );
        assert!(
            e.contains("redirect.port: `port` only applies with `scheme`"),
            "{e}"
        );
        let e = errors("{ scheme: https, replacement: y }");
        assert!(
            e.contains("redirect.replacement: `replacement` only applies with `regex`"),
            "{e}"
        );
    }
}
