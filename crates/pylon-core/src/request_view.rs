//! The adapter that lets the rule engine read a Pingora request.
//!
//! The host is the URI authority when the client sent an absolute-form target
//! (`GET http://a.example/x HTTP/1.1`), else the `Host` header, as Traefik does.

use pingora::http::RequestHeader;
use pylon_rules::RequestView;
use std::net::IpAddr;

/// A borrowed view of one request for rule matching.
pub struct PingoraRequest<'a> {
    pub header: &'a RequestHeader,
    pub client_ip: Option<IpAddr>,
}

impl<'a> PingoraRequest<'a> {
    pub fn new(header: &'a RequestHeader, client_ip: Option<IpAddr>) -> Self {
        PingoraRequest { header, client_ip }
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `[::1]` (brackets kept); a suffix
/// that is not a port number is left alone.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The host the request is for: the authority of an absolute-form target, else `Host`.
pub fn request_host(header: &RequestHeader) -> &str {
    if let Some(authority) = header.uri.authority() {
        // `http://user@host/` — the userinfo is not part of the host; `http://@/` has no
        // host at all, and Go (hence Traefik) falls back to the Host header then.
        let host = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        if !host.is_empty() {
            return host;
        }
    }
    header
        .headers
        .get(http::header::HOST)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .unwrap_or("")
}

impl RequestView for PingoraRequest<'_> {
    fn method(&self) -> &str {
        self.header.method.as_str()
    }

    fn host(&self) -> &str {
        request_host(self.header)
    }

    fn path(&self) -> &str {
        self.header.uri.path()
    }

    fn query(&self) -> &str {
        self.header.uri.query().unwrap_or("")
    }

    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.header
            .headers
            .get_all(name)
            .iter()
            .any(|v| f(v.as_bytes()))
    }

    fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

/// A `GET /` request with `headers` appended in order, for unit tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_request(headers: &[(&str, &str)]) -> RequestHeader {
    let mut req = RequestHeader::build("GET", b"/", None).unwrap();
    for (k, v) in headers {
        req.append_header(k.to_string(), *v).unwrap();
    }
    req
}
