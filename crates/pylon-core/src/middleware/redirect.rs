//! The `redirect` middleware: answers with a redirect, to another scheme or to a URL built
//! from a regex, or lets the request through.
//!
//! - `scheme`: requests already on that scheme pass through; others go to
//!   `scheme://host[:port]/path?query` (the host from the request, without its port; the
//!   port only when set and not the scheme's default).
//! - `regex`: matched against `scheme://host/path` (host as the client sent it, port
//!   included; no query). On a match every match is replaced (Go's `ReplaceAllString`, as
//!   Traefik's `RedirectRegex`), and the request's query is appended unless the result
//!   has its own `?`. No match: the request passes through.
//!
//! The status is 301/308 (`permanent`) or 302/307: the 307/308 pair, which keeps the
//! method and body, for methods other than GET and HEAD.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{self, HeaderValue};
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::Redirect as Config;
use regex::Regex;

use super::{Flow, GeneratedResponse, Hooks, Middleware, RequestState};
use crate::request_view::request_host;

#[derive(Debug)]
enum Target {
    Scheme {
        scheme: &'static str,
        port: Option<u16>,
    },
    Regex {
        regex: Regex,
        replacement: String,
    },
}

#[derive(Debug)]
struct Redirect {
    target: Target,
    permanent: bool,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(build(def)?))
}

fn build(def: &Config) -> Result<Redirect, String> {
    let target = match (&def.scheme, &def.regex, &def.replacement) {
        (Some(scheme), None, _) => Target::Scheme {
            scheme: match scheme.as_str() {
                "http" => "http",
                "https" => "https",
                other => return Err(format!("unknown scheme {other:?}")),
            },
            port: def.port,
        },
        (None, Some(regex), Some(replacement)) => Target::Regex {
            regex: Regex::new(regex).map_err(|e| format!("invalid regex: {e}"))?,
            replacement: replacement.clone(),
        },
        _ => return Err("write `scheme`, or `regex` with `replacement`".into()),
    };
    Ok(Redirect {
        target,
        permanent: def.permanent,
    })
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

impl Redirect {
    /// Where to send this request, or `None` to let it through; `Some("")` when a scheme
    /// redirect has no host to send the client to.
    fn location(&self, req: &RequestHeader, state: &RequestState) -> Option<String> {
        let host = request_host(req);
        let path = req.uri.path();
        let path = if path.is_empty() { "/" } else { path };
        match &self.target {
            Target::Scheme { scheme, port } => {
                if *scheme == state.scheme {
                    return None;
                }
                let host = crate::request_view::host_without_port(host);
                if host.is_empty() {
                    return Some(String::new());
                }
                let mut url = format!("{scheme}://{host}");
                if let Some(port) = port.filter(|p| *p != default_port(scheme)) {
                    url.push_str(&format!(":{port}"));
                }
                url.push_str(path);
                if let Some(query) = req.uri.query() {
                    url.push('?');
                    url.push_str(query);
                }
                Some(url)
            }
            Target::Regex { regex, replacement } => {
                let url = format!("{}://{host}{path}", state.scheme);
                if !regex.is_match(&url) {
                    return None;
                }
                let mut target = regex.replace_all(&url, replacement.as_str()).into_owned();
                if let Some(query) = req.uri.query().filter(|_| !target.contains('?')) {
                    target.push('?');
                    target.push_str(query);
                }
                Some(target)
            }
        }
    }

    fn status(&self, method: &http::Method) -> u16 {
        let keeps_method = !(method == http::Method::GET || method == http::Method::HEAD);
        match (self.permanent, keeps_method) {
            (true, false) => 301,
            (true, true) => 308,
            (false, false) => 302,
            (false, true) => 307,
        }
    }
}

#[async_trait]
impl Middleware for Redirect {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let req = session.req_header();
        let Some(location) = self.location(req, state) else {
            return Ok(Flow::Continue);
        };
        // The host comes from the client: a target that is not a valid header value (or a
        // scheme redirect without a host) cannot be sent.
        let value = match HeaderValue::from_str(&location) {
            Ok(v) if !location.is_empty() => v,
            _ => return Ok(Flow::Reject(400, "cannot build the redirect target".into())),
        };
        let mut response = GeneratedResponse::empty(self.status(&req.method))?;
        response.header.insert_header(header::LOCATION, value)?;
        Ok(Flow::respond(response))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn location(def: &Config, method: &str, target: &str, host: &str) -> Option<String> {
        let r = build(def).unwrap();
        let mut req = RequestHeader::build(method, target.as_bytes(), None).unwrap();
        req.insert_header("Host", host).unwrap();
        let state = RequestState {
            scheme: "http",
            ..RequestState::default()
        };
        r.location(&req, &state)
    }

    #[test]
    fn scheme_keeps_path_and_query_and_drops_default_ports() {
        let https = Config {
            scheme: Some("https".into()),
            ..Config::default()
        };
        assert_eq!(
            location(&https, "GET", "/a/b?x=1&y", "example.com:8080").as_deref(),
            Some("https://example.com/a/b?x=1&y")
        );
        assert_eq!(
            location(&https, "GET", "/", "[::1]:8080").as_deref(),
            Some("https://[::1]/")
        );
        let port = Config {
            port: Some(8443),
            ..https.clone()
        };
        assert_eq!(
            location(&port, "GET", "/p", "example.com").as_deref(),
            Some("https://example.com:8443/p")
        );
        let http = Config {
            scheme: Some("http".into()),
            ..Config::default()
        };
        assert_eq!(location(&http, "GET", "/p", "example.com"), None);
        assert_eq!(location(&https, "GET", "/p", "").as_deref(), Some(""));
    }

    #[test]
    fn regex_expands_captures_and_keeps_the_query() {
        let def = Config {
            regex: Some("^http://([^/:]+)(:\\d+)?/old/(?P<rest>.*)$".into()),
            replacement: Some("https://$1/new/${rest}".into()),
            ..Config::default()
        };
        assert_eq!(
            location(&def, "GET", "/old/x/y?q=1", "a.test:8080").as_deref(),
            Some("https://a.test/new/x/y?q=1")
        );
        assert_eq!(location(&def, "GET", "/other", "a.test"), None);
        let sets_query = Config {
            replacement: Some("https://$1/new?from=${rest}".into()),
            ..def
        };
        assert_eq!(
            location(&sets_query, "GET", "/old/z?q=1", "a.test").as_deref(),
            Some("https://a.test/new?from=z")
        );
    }

    #[test]
    fn statuses() {
        let r = |permanent| Redirect {
            permanent,
            target: Target::Scheme {
                scheme: "https",
                port: None,
            },
        };
        assert_eq!(r(true).status(&http::Method::GET), 301);
        assert_eq!(r(true).status(&http::Method::HEAD), 301);
        assert_eq!(r(true).status(&http::Method::POST), 308);
        assert_eq!(r(false).status(&http::Method::GET), 302);
        assert_eq!(r(false).status(&http::Method::PUT), 307);
    }
}
