//! The `cors` middleware's settings.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::headers::check_header_name;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::{is_tchar, Spot};

/// Cross-origin resource sharing. Preflight requests (`OPTIONS` with
/// `Access-Control-Request-Method`) from an allowed origin are answered by Pylon itself;
/// other requests from an allowed origin get the `Access-Control-*` response headers.
/// Refused preflights get 403 without CORS headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Origins allowed: exact (`https://app.example.com`), a wildcard subdomain
    /// (`https://*.example.com`: one or more labels, same scheme and port) or `*` (any
    /// origin). At least one is required.
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
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        let origins = spot.key("allowed_origins");
        if self.allowed_origins.is_empty() {
            errors.push(origins.error(
                "list at least one origin (`https://app.example.com`, `https://*.example.com` or `*`)",
            ));
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            match OriginPattern::parse(origin) {
                Err(e) => errors.push(origins.item(i).error(e)),
                Ok(OriginPattern::Any) if self.allow_credentials => {
                    errors.push(origins.item(i).error(
                        "origin `*` cannot be used with `allow_credentials: true` (browsers refuse it); list the origins",
                    ));
                }
                Ok(_) => {}
            }
        }
        if let Some(methods) = &self.allowed_methods {
            let list = spot.key("allowed_methods");
            for (i, m) in methods.iter().enumerate() {
                if m.is_empty() || !m.bytes().all(is_tchar) {
                    errors.push(list.item(i).error(format!(
                        "invalid method {m:?}: use letters, digits and !#$%&'*+-.^_`|~"
                    )));
                }
            }
        }
        for (key, list) in [
            (
                "allowed_headers",
                self.allowed_headers.as_deref().unwrap_or(&[]),
            ),
            ("exposed_headers", self.exposed_headers.as_slice()),
        ] {
            let list_spot = spot.key(key);
            for (i, name) in list.iter().enumerate() {
                check_header_name(&list_spot.item(i), name, errors);
            }
        }
    }
}

/// One `allowed_origins` entry, parsed. The runtime matches with it too, so what validation
/// accepts is exactly what is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// `scheme://host[:port]`, lowercased.
    Exact(String),
    /// `scheme://*.domain[:port]`: one or more labels before `.domain`, same scheme and
    /// port.
    Subdomain {
        /// `https://`, lowercased.
        prefix: String,
        /// `.example.com` or `.example.com:8443`, lowercased.
        suffix: String,
    },
}

impl OriginPattern {
    /// Parses `*`, `scheme://host[:port]` or `scheme://*.host[:port]` (no path, no
    /// trailing slash; `*` only as the whole leftmost label).
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text == "*" {
            return Ok(OriginPattern::Any);
        }
        let lower = text.to_ascii_lowercase();
        let bad = |why: &str| {
            Err(format!(
                "invalid origin {text:?}: {why}; write `scheme://host[:port]` (`https://app.example.com`), `scheme://*.domain` or `*`"
            ))
        };
        let Some((scheme, rest)) = lower.split_once("://") else {
            return bad("no `scheme://`");
        };
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return bad("the scheme is not valid");
        }
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return bad("an origin has no path");
        }
        let (host, port) = split_port(rest);
        if let Some(port) = port {
            if port.parse::<u16>().is_err() {
                return bad("the port is not a number from 0 to 65535");
            }
        }
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, host),
        };
        if !is_host(host) {
            return bad(if host.contains('*') {
                "`*` may only be the whole leftmost label (`https://*.example.com`)"
            } else {
                "the host is not valid"
            });
        }
        Ok(if wildcard {
            OriginPattern::Subdomain {
                prefix: format!("{scheme}://"),
                suffix: format!(".{}", &rest[2..]),
            }
        } else {
            OriginPattern::Exact(lower)
        })
    }

    /// Whether the request's `Origin` value is allowed by this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            OriginPattern::Subdomain { prefix, suffix } => {
                let lower = origin.to_ascii_lowercase();
                let Some(rest) = lower.strip_prefix(prefix.as_str()) else {
                    return false;
                };
                let Some(labels) = rest.strip_suffix(suffix.as_str()) else {
                    return false;
                };
                // `labels` is what `*` stands for: one or more whole DNS labels, so
                // `https://example.com` and `https://evil-example.com` never match.
                !labels.is_empty()
                    && labels.split('.').all(|l| {
                        !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
            }
        }
    }
}

/// `host:port` → (`host`, `Some(port)`); a bracketed IPv6 host keeps its brackets.
pub(super) fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => match authority[end + 1..].strip_prefix(':') {
                Some(port) => (&authority[..=end], Some(port)),
                None => (authority, None),
            },
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// A DNS name (letters, digits, `-`, dot-separated non-empty labels) or a bracketed IPv6.
pub(super) fn is_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn errors(cors: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - cors: {cors}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn patterns_match_whole_labels_with_same_scheme_and_port() {
        let p = OriginPattern::parse("https://*.Example.com").unwrap();
        assert!(p.matches("https://a.example.com"));
        assert!(p.matches("https://a.b.example.com"));
        assert!(p.matches("HTTPS://A.EXAMPLE.COM"));
        assert!(!p.matches("https://example.com"));
        assert!(!p.matches("https://evil-example.com"));
        assert!(!p.matches("https://evilexample.com"));
        assert!(!p.matches("http://a.example.com"));
        assert!(!p.matches("https://a.example.com:8443"));
        assert!(!p.matches("https://a..example.com"));
        assert!(!p.matches("https://a/.example.com"));
        let p = OriginPattern::parse("https://*.example.com:8443").unwrap();
        assert!(p.matches("https://a.example.com:8443"));
        assert!(!p.matches("https://a.example.com"));
        let p = OriginPattern::parse("http://localhost:3000").unwrap();
        assert!(p.matches("http://localhost:3000"));
        assert!(!p.matches("http://localhost:3001"));
        assert!(OriginPattern::parse("http://[::1]:3000").is_ok());
    }

    #[test]
    fn bad_origins_star_with_credentials_and_tokens_are_located() {
        assert_eq!(
            errors("{ allowed_origins: [\"https://a.example.com\"], allowed_methods: [GET], allowed_headers: [\"*\", X-Token], exposed_headers: [X-Total], allow_credentials: true, max_age: 10m }"),
            ""
        );
        let e = errors("{ allowed_origins: [\"*\"], allow_credentials: true }");
        assert!(e.contains("t.yaml:8:35: routes[0].middlewares[0].cors.allowed_origins[0]: origin `*` cannot be used with `allow_credentials: true`"), "{e}");
        let e = errors("{ allowed_origins: [\"https://a.example.com/\", \"app.example.com\", \"https://a.*.example.com\", \"https://x.example.com:99999\"] }");
        assert!(e.contains("allowed_origins[0]: invalid origin \"https://a.example.com/\": an origin has no path"), "{e}");
        assert!(
            e.contains("allowed_origins[1]: invalid origin \"app.example.com\": no `scheme://`"),
            "{e}"
        );
        assert!(e.contains("allowed_origins[2]: invalid origin \"https://a.*.example.com\": `*` may only be the whole leftmost label"), "{e}");
        assert!(
            e.contains(
                "allowed_origins[3]: invalid origin \"https://x.example.com:99999\": the port"
            ),
            "{e}"
        );
        let e = errors("{ allowed_origins: [\"*\"], allowed_methods: [\"GE T\"], allowed_headers: [\"X Bad\"], exposed_headers: [\"a:b\"] }");
        assert!(
            e.contains("cors.allowed_methods[0]: invalid method \"GE T\""),
            "{e}"
        );
        assert!(
            e.contains("cors.allowed_headers[0]: invalid header name \"X Bad\""),
            "{e}"
        );
        assert!(
            e.contains("cors.exposed_headers[0]: invalid header name \"a:b\""),
            "{e}"
        );
        let e = errors("{}");
        assert!(
            e.contains("cors.allowed_origins: list at least one origin"),
            "{e}"
        );
    }
}
