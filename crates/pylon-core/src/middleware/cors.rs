//! The `cors` middleware: answers preflights itself and adds `Access-Control-*` headers to
//! responses for allowed origins.
//!
//! - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   here with 204 when the origin, the method and every requested header are allowed, and
//!   refused with 403 (no CORS headers, so the browser blocks the real request) otherwise.
//!   The upstream never sees it.
//! - Any other response (the upstream's, or one generated later in the chain) to a request
//!   from an allowed origin gets `Allow-Origin`, `Allow-Credentials` and `Expose-Headers`.
//! - `Vary: Origin` is merged into the response's `Vary` whenever the answer depends on the
//!   origin, that is unless the only setting is a credential-less `*`: also on responses to
//!   requests without an allowed origin, so a cache does not hand an answer without CORS
//!   headers to an allowed origin (what the Fetch standard asks of servers).

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{self, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{Cors as Config, OriginPattern};

use super::{Flow, GeneratedResponse, Hooks, Middleware, RequestState};
use crate::header_names::{self as names, configured_value};

/// Methods allowed in preflights when `allowed_methods` is not set.
const DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Which request headers a preflight may ask for.
#[derive(Debug)]
enum AllowedHeaders {
    /// Any (`*`, or the setting left out): the requested ones are echoed.
    Any,
    /// These names, lowercased.
    Listed(Vec<String>),
}

#[derive(Debug)]
struct Cors {
    origins: Vec<OriginPattern>,
    /// `*` without credentials: `Access-Control-Allow-Origin: *`, independent of the origin.
    any_origin: bool,
    methods: Vec<String>,
    /// `Access-Control-Allow-Methods`, prepared.
    methods_value: HeaderValue,
    headers: AllowedHeaders,
    exposed: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let origins = def
        .allowed_origins
        .iter()
        .map(|o| OriginPattern::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let any_origin = !def.allow_credentials && origins.contains(&OriginPattern::Any);
    let methods: Vec<String> = match &def.allowed_methods {
        Some(list) => list.clone(),
        None => DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
    };
    let headers = match &def.allowed_headers {
        Some(list) if !list.iter().any(|h| h == "*") => {
            AllowedHeaders::Listed(list.iter().map(|h| h.to_ascii_lowercase()).collect())
        }
        _ => AllowedHeaders::Any,
    };
    Ok(Arc::new(Cors {
        origins,
        any_origin,
        methods_value: configured_value(&methods.join(", "))?,
        methods,
        headers,
        exposed: (!def.exposed_headers.is_empty())
            .then(|| configured_value(&def.exposed_headers.join(", ")))
            .transpose()?,
        credentials: def.allow_credentials,
        max_age: def
            .max_age
            .map(|d| configured_value(&d.as_secs().to_string()))
            .transpose()?,
    }))
}

impl Cors {
    /// The request's `Origin` when it is allowed (one value, as text).
    fn allowed_origin<'r>(&self, req: &'r RequestHeader) -> Option<&'r HeaderValue> {
        let mut values = req.headers.get_all(header::ORIGIN).iter();
        let origin = values.next()?;
        // Several `Origin` values are not a browser's doing: no CORS for them.
        if values.next().is_some() {
            return None;
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|p| p.matches(text))
            .then_some(origin)
    }

    /// `Access-Control-Allow-Origin` for an allowed origin.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// The requested headers of a preflight, lowercased, when all are allowed.
    fn requested_headers(&self, req: &RequestHeader) -> Option<Vec<String>> {
        let mut requested = Vec::new();
        for value in req.headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let text = value.to_str().ok()?;
            requested.extend(
                text.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty()),
            );
        }
        let allowed = match &self.headers {
            AllowedHeaders::Any => true,
            AllowedHeaders::Listed(list) => requested.iter().all(|h| list.contains(h)),
        };
        allowed.then_some(requested)
    }

    fn preflight(&self, req: &RequestHeader) -> Result<Flow> {
        let Some(origin) = self.allowed_origin(req) else {
            return Ok(refuse("CORS preflight refused: origin not allowed"));
        };
        let method = req
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        if !self
            .methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.trim()))
        {
            return Ok(refuse("CORS preflight refused: method not allowed"));
        }
        let Some(requested) = self.requested_headers(req) else {
            return Ok(refuse("CORS preflight refused: header not allowed"));
        };
        let mut response = GeneratedResponse::empty(204)?;
        let h = &mut response.header;
        // A 204 carries no body and must not announce a length (RFC 9110, 8.6).
        h.remove_header(&header::CONTENT_LENGTH);
        h.insert_header(
            &*names::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin_value(origin),
        )?;
        h.insert_header(
            &*names::ACCESS_CONTROL_ALLOW_METHODS,
            self.methods_value.clone(),
        )?;
        if !requested.is_empty() {
            h.insert_header(&*names::ACCESS_CONTROL_ALLOW_HEADERS, requested.join(", "))?;
        }
        if let Some(age) = &self.max_age {
            h.insert_header(&*names::ACCESS_CONTROL_MAX_AGE, age.clone())?;
        }
        if self.credentials {
            h.insert_header(&*names::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
        }
        // The answer echoes the requested headers; with a listed origin it echoes that too.
        let mut vary = vec![
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
        ];
        if !self.any_origin {
            vary.insert(0, "Origin");
        }
        h.insert_header(&*names::VARY, vary.join(", "))?;
        Ok(Flow::respond(response))
    }
}

fn refuse(message: &'static str) -> Flow {
    Flow::Reject(403, message.into())
}

/// Merges `Origin` into the response's `Vary` (kept as one line), unless already there or
/// the response varies on everything (`*`).
fn vary_origin(response: &mut ResponseHeader) -> Result<()> {
    if !response.headers.contains_key(header::VARY) {
        // The common case: nothing to merge with, and a static value costs no copy.
        return response.insert_header(&*names::VARY, HeaderValue::from_static("Origin"));
    }
    let mut parts: Vec<String> = Vec::new();
    for value in response.headers.get_all(header::VARY) {
        let text = String::from_utf8_lossy(value.as_bytes());
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "*" || part.eq_ignore_ascii_case("origin") {
                return Ok(());
            }
            parts.push(part.to_string());
        }
    }
    parts.push("Origin".to_string());
    response.insert_header(&*names::VARY, parts.join(", "))
}

#[async_trait]
impl Middleware for Cors {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            response: true,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, _state: &mut RequestState) -> Result<Flow> {
        let req = session.req_header();
        let is_preflight = req.method == http::Method::OPTIONS
            && req.headers.contains_key(header::ORIGIN)
            && req
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if is_preflight {
            self.preflight(req)
        } else {
            Ok(Flow::Continue)
        }
    }

    fn response(
        &self,
        downstream: &RequestHeader,
        response: &mut ResponseHeader,
        _state: &mut RequestState,
    ) -> Result<()> {
        if let Some(origin) = self.allowed_origin(downstream) {
            response.insert_header(
                &*names::ACCESS_CONTROL_ALLOW_ORIGIN,
                self.allow_origin_value(origin),
            )?;
            if self.credentials {
                response.insert_header(&*names::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
            }
            if let Some(exposed) = &self.exposed {
                response.insert_header(&*names::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone())?;
            }
        }
        if !self.any_origin {
            vary_origin(response)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn vary_is_merged_not_clobbered() {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.append_header("Vary", "Accept-Encoding").unwrap();
        r.append_header("Vary", "Accept-Language").unwrap();
        vary_origin(&mut r).unwrap();
        let all: Vec<_> = r.headers.get_all("vary").iter().collect();
        assert_eq!(all, ["Accept-Encoding, Accept-Language, Origin"]);
        vary_origin(&mut r).unwrap();
        assert_eq!(
            r.headers["vary"],
            "Accept-Encoding, Accept-Language, Origin"
        );
        let mut star = ResponseHeader::build(200, None).unwrap();
        star.append_header("Vary", "*").unwrap();
        vary_origin(&mut star).unwrap();
        assert_eq!(star.headers["vary"], "*");
    }
}
