//! The `forward_auth` middleware's settings: the auth service's URL, what is sent to it,
//! what is taken from its answer, and how long it may take.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::headers::check_header_name;
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::Spot;

/// Asks an external service whether the request may pass (Traefik's ForwardAuth, Envoy's
/// `ext_authz`). Pylon sends `GET url` with `X-Forwarded-Method`, `-Uri`, `-Host`,
/// `-Proto`, `-For` and the `request_headers`; a 2xx answer lets the request through with
/// the `response_headers` copied onto it; any other answer goes back to the client as it
/// is. An auth service that cannot be reached or answers badly gets the client a 502, one
/// that takes longer than `timeout` a 504: the request never passes unchecked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardAuth {
    /// The auth service, `http://host[:port]/path[?query]`.
    pub url: String,
    /// How long the auth service may take to answer, connecting included. Default: 5s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// Request headers copied to the auth request. Default: `Authorization`, `Cookie`.
    #[serde(default = "default_request_headers")]
    pub request_headers: Vec<String>,
    /// Headers of a 2xx auth answer copied onto the request sent upstream (`X-User`). A
    /// value the client sent under one of these names is always removed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// Largest body of an auth answer, in bytes; a larger one fails the request (502).
    /// Default: 65536.
    #[serde(default = "default_max_response_body")]
    pub max_response_body: usize,
}

/// Default time the auth service has to answer.
pub const DEFAULT_FORWARD_AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default largest auth answer body.
pub const DEFAULT_FORWARD_AUTH_MAX_BODY: usize = 64 * 1024;

fn default_timeout() -> Duration {
    DEFAULT_FORWARD_AUTH_TIMEOUT
}

fn default_request_headers() -> Vec<String> {
    vec!["Authorization".into(), "Cookie".into()]
}

fn default_max_response_body() -> usize {
    DEFAULT_FORWARD_AUTH_MAX_BODY
}

impl Default for ForwardAuth {
    fn default() -> Self {
        ForwardAuth {
            url: String::new(),
            timeout: DEFAULT_FORWARD_AUTH_TIMEOUT,
            request_headers: default_request_headers(),
            response_headers: Vec::new(),
            max_response_body: DEFAULT_FORWARD_AUTH_MAX_BODY,
        }
    }
}

impl ForwardAuth {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        if let Err(e) = AuthUrl::parse(&self.url) {
            errors.push(spot.key("url").error(e));
        }
        if self.timeout.is_zero() {
            errors.push(
                spot.key("timeout")
                    .error("timeout must be more than 0s: the auth service needs time to answer"),
            );
        }
        for key in ["request_headers", "response_headers"] {
            let list = if key == "request_headers" {
                &self.request_headers
            } else {
                &self.response_headers
            };
            let list_spot = spot.key(key);
            for (i, name) in list.iter().enumerate() {
                let item = list_spot.item(i);
                check_header_name(&item, name, errors);
                if NOT_COPIED.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                    errors.push(item.error(format!(
                        "`{name}` describes a connection or a message's framing and is never copied (the host is sent as `X-Forwarded-Host`)"
                    )));
                }
            }
        }
    }
}

/// Headers about a connection or a message's framing: copying them between requests would
/// corrupt the one that receives them.
const NOT_COPIED: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// A checked auth service URL, in the parts the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    /// `host` or `host:port`, as written (lowercased), for the `Host` header.
    pub authority: String,
    /// The path and query, `/` when none was written.
    pub path_and_query: String,
}

impl AuthUrl {
    /// Reads `http://host[:port][/path][?query]`. No user info (credentials do not belong
    /// in a config URL), no fragment.
    pub fn parse(text: &str) -> Result<AuthUrl, String> {
        Self::parse_like(text, "http://127.0.0.1:9000/auth")
    }

    /// [`AuthUrl::parse`], with `example` as the URL its errors show (another use of a
    /// plain-HTTP URL: the OTLP endpoint).
    pub fn parse_like(text: &str, example: &str) -> Result<AuthUrl, String> {
        let bad = |why: &str| {
            Err(format!(
                "invalid url {text:?}: {why}; write `http://host[:port]/path` (`{example}`)"
            ))
        };
        let lower_scheme = text.get(..8).map(str::to_ascii_lowercase);
        if lower_scheme.as_deref() == Some("https://") {
            return bad(
                "https is not supported yet: reach the auth service over http on a trusted network",
            );
        }
        let Some(rest) = text
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &text[7..])
        else {
            return bad("the scheme must be `http://`");
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return bad("user info (`user@`) is not allowed");
        }
        if path.contains('#') {
            return bad("a fragment (`#…`) is never sent");
        }
        if !authority_ok(authority) {
            return bad("the host or port is not valid");
        }
        if !path.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
                )
        }) {
            return bad("the path has characters that must be percent-encoded");
        }
        let path_and_query = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".to_string(),
            None => path.to_string(),
        };
        Ok(AuthUrl {
            authority: authority.to_ascii_lowercase(),
            path_and_query,
        })
    }
}

/// `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port from
/// 1 to 65535. Shares the host and port splitting with `cors` origins.
fn authority_ok(authority: &str) -> bool {
    let (host, port) = super::cors::split_port(authority);
    port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0)) && super::cors::is_host(host)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn errors(settings: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - forward_auth: {settings}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn urls() {
        let u = AuthUrl::parse("http://Auth.internal:9000/check?x=1").unwrap();
        assert_eq!(u.authority, "auth.internal:9000");
        assert_eq!(u.path_and_query, "/check?x=1");
        assert_eq!(
            AuthUrl::parse("HTTP://127.0.0.1").unwrap().path_and_query,
            "/"
        );
        assert_eq!(
            AuthUrl::parse("http://[::1]:80?a").unwrap().path_and_query,
            "/?a"
        );
        for (url, why) in [
            ("https://auth/", "https is not supported yet"),
            ("ftp://auth/", "the scheme must be"),
            ("auth:9000/x", "the scheme must be"),
            ("http://user:pw@auth/", "user info"),
            ("http://auth/x#y", "fragment"),
            ("http://auth:0/", "host or port"),
            ("http://auth:99999/", "host or port"),
            ("http:///x", "host or port"),
            ("http://a b/", "host or port"),
            ("http://auth/a b", "percent-encoded"),
        ] {
            let e = AuthUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn settings_are_checked_and_located() {
        assert_eq!(
            errors("{ url: \"http://127.0.0.1:9000/auth\", timeout: 2s, request_headers: [Authorization], response_headers: [X-User] }"),
            ""
        );
        let def = ForwardAuth::default();
        assert_eq!(def.request_headers, ["Authorization", "Cookie"]);
        assert_eq!(def.timeout, Duration::from_secs(5));
        let e = errors("{ url: \"https://auth/\", timeout: 0s, request_headers: [\"a b\", Host], response_headers: [\"\", Content-Length] }");
        assert!(
            e.contains("t.yaml:8:30: routes[0].middlewares[0].forward_auth.url: invalid url \"https://auth/\": https is not supported yet"),
            "{e}"
        );
        assert!(
            e.contains("forward_auth.timeout: timeout must be more than 0s"),
            "{e}"
        );
        assert!(
            e.contains("forward_auth.request_headers[0]: invalid header name \"a b\""),
            "{e}"
        );
        assert!(
            e.contains("forward_auth.response_headers[0]: invalid header name \"\""),
            "{e}"
        );
        assert!(
            e.contains("forward_auth.request_headers[1]: `Host` describes a connection"),
            "{e}"
        );
        assert!(
            e.contains("forward_auth.response_headers[1]: `Content-Length` describes"),
            "{e}"
        );
        let e = errors("{ timeout: 1s }");
        assert!(
            e.contains("forward_auth: missing required key `url`"),
            "{e}"
        );
    }
}
