//! Rendering templates (`"{client_ip}"`, `"{header.X-Tenant}"`) against a request. The
//! template was parsed at load time; rendering only concatenates.

use pingora::http::RequestHeader;
use pylon_config::middleware::template::TemplatePart;
use pylon_config::middleware::{Template, TemplateVar};

use super::RequestState;
use crate::request_view::{host_without_port, request_host};

/// Appends the value of `var` for this request to `out`.
pub fn push_var(out: &mut String, var: &TemplateVar, req: &RequestHeader, state: &RequestState) {
    match borrowed_var(var, req, state) {
        Some(value) => out.push_str(value),
        None => {
            if let Some(ip) = state.client_ip {
                crate::forwarded::push_ip(out, ip);
            }
        }
    }
}

/// The value of `var` as it already sits in the request or its state, without a copy:
/// every variable but `client_ip` (an address to format), for which it is `None`. An
/// absent value is `""`.
pub fn borrowed_var<'a>(
    var: &TemplateVar,
    req: &'a RequestHeader,
    state: &'a RequestState,
) -> Option<&'a str> {
    Some(match var {
        TemplateVar::ClientIp => return None,
        TemplateVar::RequestId => state.request_id.as_deref().unwrap_or(""),
        TemplateVar::Host => host_without_port(request_host(req)),
        TemplateVar::Path => req.uri.path(),
        TemplateVar::Query => req.uri.query().unwrap_or(""),
        TemplateVar::Method => req.method.as_str(),
        TemplateVar::Scheme => state.scheme,
        TemplateVar::Route => &state.route,
        TemplateVar::Consumer => state.consumer.as_deref().unwrap_or(""),
        TemplateVar::Header(name) => req
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    })
}

/// The template's value for this request.
pub fn render(template: &Template, req: &RequestHeader, state: &RequestState) -> String {
    // Room for a typical value (an address, an id, a host) so it is allocated once.
    let mut out = String::with_capacity(64);
    for part in template.parts() {
        match part {
            TemplatePart::Literal(l) => out.push_str(l),
            TemplatePart::Var(v) => push_var(&mut out, v, req, state),
        }
    }
    out
}

/// A template ready for the hot path: its text when it has no variables (no rendering),
/// else the template.
#[derive(Debug, Clone)]
pub enum Value {
    Fixed(http::HeaderValue),
    Dynamic(Template),
}

impl Value {
    /// Prepares `template` as a header value. Fails only on values validation refuses.
    pub fn header(template: &Template) -> Result<Value, String> {
        match template.as_literal() {
            Some(text) => crate::header_names::configured_value(&text).map(Value::Fixed),
            None => Ok(Value::Dynamic(template.clone())),
        }
    }

    /// The header value for this request; `None` when the rendered text cannot be a header
    /// value (a client-controlled variable with control characters), so it is skipped.
    pub fn to_header(
        &self,
        req: &RequestHeader,
        state: &RequestState,
    ) -> Option<http::HeaderValue> {
        match self {
            Value::Fixed(v) => Some(v.clone()),
            // The rendered text becomes the value's buffer (checked, not copied).
            Value::Dynamic(t) => {
                http::HeaderValue::from_maybe_shared(bytes::Bytes::from(render(t, req, state))).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_every_variable() {
        let mut req = RequestHeader::build("GET", b"/a/b?x=1", None).unwrap();
        req.insert_header("host", "example.com:8080").unwrap();
        req.insert_header("x-tenant", "acme").unwrap();
        let state = RequestState {
            client_ip: Some("10.0.0.1".parse().unwrap()),
            request_id: Some("rid".into()),
            route: Arc::from("api"),
            scheme: "http",
            ..RequestState::default()
        };
        let t = Template::parse(
            "{client_ip} {request_id} {host} {path} {query} {method} {scheme} {route} {header.X-Tenant} {header.absent}.",
        )
        .unwrap();
        assert_eq!(
            render(&t, &req, &state),
            "10.0.0.1 rid example.com /a/b x=1 GET http api acme ."
        );
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("host"), "host");
    }
}
