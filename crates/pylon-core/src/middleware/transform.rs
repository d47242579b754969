//! The `transform` middleware at run time: the config's operations compiled once (header
//! names, regexes, methods, prepared values), then applied in order to each attempt's
//! upstream request (`upstream_request` hook) and to the response header (`response` hook).
//!
//! Semantics, also in `docs/middlewares.md`:
//! - path operations keep the query; query operations keep the path;
//! - `StripPrefix` is a plain string prefix, as in Traefik and as `PathPrefix` matches
//!   (`/api` strips `/apix` to `/x`); an emptied path becomes `/`; a path without the
//!   prefix is left alone;
//! - `AddPrefix` joins without doubling a slash (`/v2` on `/` gives `/v2/`);
//! - `RewritePath` replaces every match (Traefik's `ReplacePathRegex`); no match, no change;
//! - `Replace*` sets one value (added when absent), `Append*` adds one more;
//! - values render against the request as the client sent it (`{path}` is the original
//!   path). A rendered value that cannot be sent (a header value with control characters,
//!   a path that is not a valid URI) skips that operation instead of failing the request.

use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderName, Method};

use crate::header_names::{prepare, PreparedHeaderName};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use pylon_config::middleware::transform::{NameValue, RewritePathOp};
use pylon_config::middleware::{RequestOp, ResponseOp, Transform as Config};
use regex::Regex;

use super::vars::{render, Value};
use super::{Hooks, Middleware, RequestState};

/// Characters percent-encoded in query names and values: all but RFC 3986 unreserved ones,
/// so a value can never add a parameter (`&`), a fragment (`#`) or a space.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A request operation, compiled.
#[derive(Debug)]
enum ReqOp {
    ReplaceHeader(PreparedHeaderName, Value),
    AppendHeader(PreparedHeaderName, Value),
    DeleteHeader(HeaderName),
    ReplaceQuery(String, pylon_config::middleware::Template),
    AppendQuery(String, pylon_config::middleware::Template),
    DeleteQuery(String),
    StripPrefix(String),
    AddPrefix(String),
    RewritePath(Regex, String),
    SetMethod(Method),
}

/// A response operation, compiled (all are header operations).
#[derive(Debug)]
enum RespOp {
    Replace(PreparedHeaderName, Value),
    Append(PreparedHeaderName, Value),
    Delete(HeaderName),
}

#[derive(Debug)]
struct Transform {
    request: Vec<ReqOp>,
    response: Vec<RespOp>,
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("invalid header name {name:?}"))
}

/// A name to set or add: parsed once, sent in the case it is written in.
fn header_pair(nv: &NameValue) -> Result<(PreparedHeaderName, Value), String> {
    Ok((prepare(&nv.name)?, Value::header(&nv.value)?))
}

fn compile_request(op: &RequestOp) -> Result<ReqOp, String> {
    Ok(match op {
        RequestOp::ReplaceHeader(nv) => {
            let (n, v) = header_pair(nv)?;
            ReqOp::ReplaceHeader(n, v)
        }
        RequestOp::AppendHeader(nv) => {
            let (n, v) = header_pair(nv)?;
            ReqOp::AppendHeader(n, v)
        }
        RequestOp::DeleteHeader(n) => ReqOp::DeleteHeader(header_name(n)?),
        RequestOp::ReplaceQuery(nv) => ReqOp::ReplaceQuery(nv.name.clone(), nv.value.clone()),
        RequestOp::AppendQuery(nv) => ReqOp::AppendQuery(nv.name.clone(), nv.value.clone()),
        RequestOp::DeleteQuery(n) => ReqOp::DeleteQuery(n.clone()),
        RequestOp::StripPrefix(p) => ReqOp::StripPrefix(p.clone()),
        RequestOp::AddPrefix(p) => ReqOp::AddPrefix(p.clone()),
        RequestOp::RewritePath(RewritePathOp { regex, replacement }) => ReqOp::RewritePath(
            Regex::new(regex).map_err(|e| format!("invalid regex {regex:?}: {e}"))?,
            replacement.clone(),
        ),
        RequestOp::SetMethod(m) => ReqOp::SetMethod(
            Method::from_bytes(m.as_bytes()).map_err(|_| format!("invalid method {m:?}"))?,
        ),
    })
}

fn compile_response(op: &ResponseOp) -> Result<RespOp, String> {
    Ok(match op {
        ResponseOp::ReplaceHeader(nv) => {
            let (n, v) = header_pair(nv)?;
            RespOp::Replace(n, v)
        }
        ResponseOp::AppendHeader(nv) => {
            let (n, v) = header_pair(nv)?;
            RespOp::Append(n, v)
        }
        ResponseOp::DeleteHeader(n) => RespOp::Delete(header_name(n)?),
    })
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(Transform {
        request: def
            .request
            .iter()
            .map(compile_request)
            .collect::<Result<_, _>>()?,
        response: def
            .response
            .iter()
            .map(compile_response)
            .collect::<Result<_, _>>()?,
    }))
}

/// `prefix` stripped from `path` as a plain string prefix; `/` when nothing is left; a
/// leading `/` added when the rest lacks one (`/apix` − `/api` = `/x`). `None`: no prefix.
pub(crate) fn strip_prefix(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    Some(if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    })
}

/// `prefix` put before `path`, one slash at the joint: `/v2` + `/` = `/v2/`,
/// `/v2/` + `/users` = `/v2/users`.
pub(crate) fn add_prefix(path: &str, prefix: &str) -> String {
    let head = prefix.strip_suffix('/').unwrap_or(prefix);
    if path.starts_with('/') {
        format!("{head}{path}")
    } else {
        format!("{head}/{path}")
    }
}

/// Every match of `regex` in `path` replaced; `None` when nothing matches. The result
/// starts with `/`.
pub(crate) fn rewrite_path(path: &str, regex: &Regex, replacement: &str) -> Option<String> {
    if !regex.is_match(path) {
        return None;
    }
    let out = regex.replace_all(path, replacement);
    Some(if out.starts_with('/') {
        out.into_owned()
    } else {
        format!("/{out}")
    })
}

/// What a query operation does to the pairs.
pub(crate) enum QueryEdit<'a> {
    Replace(&'a str, &'a str),
    Append(&'a str, &'a str),
    Delete(&'a str),
}

/// The query after `edit`: pairs are compared by their decoded name and kept byte for
/// byte otherwise; new names and values are percent-encoded. `None` when no pair is left.
pub(crate) fn edit_query(query: Option<&str>, edit: QueryEdit<'_>) -> Option<String> {
    let pairs: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    let name_of = |pair: &str| -> String {
        let raw = pair.split_once('=').map_or(pair, |(n, _)| n);
        percent_decode_str(&raw.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let encoded = |name: &str, value: &str| {
        format!(
            "{}={}",
            utf8_percent_encode(name, QUERY),
            utf8_percent_encode(value, QUERY)
        )
    };
    let mut out: Vec<String> = Vec::with_capacity(pairs.len() + 1);
    match edit {
        QueryEdit::Delete(name) => {
            out.extend(
                pairs
                    .iter()
                    .filter(|p| name_of(p) != name)
                    .map(|p| p.to_string()),
            );
        }
        QueryEdit::Append(name, value) => {
            out.extend(pairs.iter().map(|p| p.to_string()));
            out.push(encoded(name, value));
        }
        QueryEdit::Replace(name, value) => {
            // The new pair takes the place of the first old one, so order is kept.
            let mut placed = false;
            for p in pairs {
                if name_of(p) == name {
                    if !placed {
                        out.push(encoded(name, value));
                        placed = true;
                    }
                } else {
                    out.push(p.to_string());
                }
            }
            if !placed {
                out.push(encoded(name, value));
            }
        }
    }
    (!out.is_empty()).then(|| out.join("&"))
}

/// Sets the path and query of `req`, keeping scheme and authority; `false` (unchanged)
/// when the result is not a valid request target.
pub(crate) fn set_target(req: &mut RequestHeader, path: &str, query: Option<&str>) -> bool {
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let Ok(pq) = http::uri::PathAndQuery::try_from(target) else {
        return false;
    };
    let mut parts = req.uri.clone().into_parts();
    parts.path_and_query = Some(pq);
    match http::Uri::from_parts(parts) {
        Ok(uri) => {
            req.set_uri(uri);
            true
        }
        Err(_) => false,
    }
}

impl Transform {
    fn apply_request(
        &self,
        op: &ReqOp,
        downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        let path = upstream.uri.path().to_string();
        let query = upstream.uri.query().map(str::to_string);
        let skipped = |what: &str| {
            log::debug!("transform: {what} skipped: the result is not a valid request target");
        };
        match op {
            ReqOp::ReplaceHeader(name, value) => {
                if let Some(v) = value.to_header(downstream, state) {
                    upstream.insert_header(name, v)?;
                }
            }
            ReqOp::AppendHeader(name, value) => {
                if let Some(v) = value.to_header(downstream, state) {
                    upstream.append_header(name, v)?;
                }
            }
            ReqOp::DeleteHeader(name) => {
                upstream.remove_header(name);
            }
            ReqOp::ReplaceQuery(name, value) | ReqOp::AppendQuery(name, value) => {
                let value = render(value, downstream, state);
                let edit = match op {
                    ReqOp::ReplaceQuery(..) => QueryEdit::Replace(name, &value),
                    _ => QueryEdit::Append(name, &value),
                };
                let q = edit_query(query.as_deref(), edit);
                if !set_target(upstream, &path, q.as_deref()) {
                    skipped("a query operation");
                }
            }
            ReqOp::DeleteQuery(name) => {
                let q = edit_query(query.as_deref(), QueryEdit::Delete(name));
                if !set_target(upstream, &path, q.as_deref()) {
                    skipped("DeleteQuery");
                }
            }
            ReqOp::StripPrefix(prefix) => {
                if let Some(p) = strip_prefix(&path, prefix) {
                    if !set_target(upstream, &p, query.as_deref()) {
                        skipped("StripPrefix");
                    }
                }
            }
            ReqOp::AddPrefix(prefix) => {
                if !set_target(upstream, &add_prefix(&path, prefix), query.as_deref()) {
                    skipped("AddPrefix");
                }
            }
            ReqOp::RewritePath(regex, replacement) => {
                if let Some(p) = rewrite_path(&path, regex, replacement) {
                    if !set_target(upstream, &p, query.as_deref()) {
                        skipped("RewritePath");
                    }
                }
            }
            ReqOp::SetMethod(method) => upstream.set_method(method.clone()),
        }
        Ok(())
    }
}

#[async_trait]
impl Middleware for Transform {
    fn hooks(&self) -> Hooks {
        Hooks {
            upstream_request: !self.request.is_empty(),
            response: !self.response.is_empty(),
            ..Hooks::default()
        }
    }

    fn upstream_request(
        &self,
        downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        for op in &self.request {
            self.apply_request(op, downstream, upstream, state)?;
        }
        Ok(())
    }

    fn response(
        &self,
        downstream: &RequestHeader,
        response: &mut ResponseHeader,
        state: &mut RequestState,
    ) -> Result<()> {
        for op in &self.response {
            match op {
                RespOp::Replace(name, value) => {
                    if let Some(v) = value.to_header(downstream, state) {
                        response.insert_header(name, v)?;
                    }
                }
                RespOp::Append(name, value) => {
                    if let Some(v) = value.to_header(downstream, state) {
                        response.append_header(name, v)?;
                    }
                }
                RespOp::Delete(name) => {
                    response.remove_header(name);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pylon_config::middleware::transform::parse_request_ops;

    #[test]
    fn path_helpers() {
        assert_eq!(strip_prefix("/api/v1/users", "/api/v1").unwrap(), "/users");
        assert_eq!(strip_prefix("/api/v1", "/api/v1").unwrap(), "/");
        assert_eq!(strip_prefix("/apix", "/api").unwrap(), "/x");
        assert_eq!(strip_prefix("/api/users", "/api/").unwrap(), "/users");
        assert_eq!(strip_prefix("/other", "/api"), None);
        assert_eq!(add_prefix("/", "/v2"), "/v2/");
        assert_eq!(add_prefix("/users", "/v2/"), "/v2/users");
        assert_eq!(add_prefix("/users", "/"), "/users");
        let re = Regex::new("^/api/(.*)").unwrap();
        assert_eq!(
            rewrite_path("/api/users", &re, "/v2/$1").unwrap(),
            "/v2/users"
        );
        assert_eq!(rewrite_path("/web", &re, "/v2/$1"), None);
        let named = Regex::new("^/u/(?P<id>[0-9]+)").unwrap();
        assert_eq!(
            rewrite_path("/u/42", &named, "/users/${id}").unwrap(),
            "/users/42"
        );
        assert_eq!(
            rewrite_path("/x", &Regex::new("/x").unwrap(), "y").unwrap(),
            "/y"
        );
    }

    #[test]
    fn query_helper() {
        use QueryEdit::*;
        assert_eq!(
            edit_query(Some("a=1&b=2&a=3"), Replace("a", "x y")).unwrap(),
            "a=x%20y&b=2"
        );
        assert_eq!(edit_query(None, Replace("a", "&#")).unwrap(), "a=%26%23");
        assert_eq!(
            edit_query(Some("a=1"), Append("a", "2")).unwrap(),
            "a=1&a=2"
        );
        assert_eq!(
            edit_query(Some("debug=1&x=2&debug"), Delete("debug")).unwrap(),
            "x=2"
        );
        assert_eq!(edit_query(Some("debug=1"), Delete("debug")), None);
        // Names compare decoded; other pairs stay byte for byte.
        assert_eq!(
            edit_query(Some("my%20key=1&k=%2F"), Delete("my key")).unwrap(),
            "k=%2F"
        );
    }

    fn run(ops: &str, target: &str) -> RequestHeader {
        let config = Config {
            request: parse_request_ops(ops).unwrap(),
            response: vec![],
        };
        let mw = compile(&config).unwrap();
        let down = RequestHeader::build("GET", target.as_bytes(), None).unwrap();
        let mut up = down.clone();
        mw.upstream_request(&down, &mut up, &RequestState::default())
            .unwrap();
        up
    }

    #[test]
    fn operations_chain_and_keep_the_query() {
        let up = run(
            "StripPrefix(`/api`); AddPrefix(`/v2`); ReplaceQuery(`page`, `2`); SetMethod(`POST`)",
            "/api/users?page=1&q=a",
        );
        assert_eq!(up.uri.to_string(), "/v2/users?page=2&q=a");
        assert_eq!(up.method, Method::POST);
        let up = run("DeleteQuery(`q`)", "/a?q=1");
        assert_eq!(up.uri.to_string(), "/a");
    }

    #[test]
    fn an_invalid_result_is_skipped() {
        // A replacement that produces a space cannot be a request target: left as it was.
        let up = run("RewritePath(`^/a`, `/a b`)", "/a?x=1");
        assert_eq!(up.uri.to_string(), "/a?x=1");
    }
}
