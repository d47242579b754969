//! Whether a request carries any field Pingora's upstream sanitising would touch.
//!
//! Before `upstream_request_filter`, Pingora strips hop-by-hop fields (`Connection` and what
//! it nominates, `Keep-Alive`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`,
//! `HTTP2-Settings`) from the copy sent upstream, and normalises WebSocket upgrades. It does
//! so with one hashed removal per name, about 3k instructions a request, even when none is
//! present — which is nearly always for plain requests. When [`has_hop_by_hop`] is false,
//! that pass would change nothing, so the proxy gives the attempt's peer Pingora's
//! `preserve` policy and skips it; when true, Pingora's standard policy runs in full.

use http::header::{self, HeaderName};
use pingora::http::RequestHeader;

/// The fields Pingora's standard policy removes or rewrites (`strip_standard_hop_by_hop_headers`
/// and the upgrade handling in `pingora_proxy::proxy_common`). Every other field it can remove
/// is nominated by `Connection`, itself in this list.
const STANDARD: [HeaderName; 7] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];
const OTHERS: [&str; 3] = ["keep-alive", "proxy-connection", "http2-settings"];

/// True when `req` has a field the upstream sanitising could remove or rewrite. One pass over
/// the names: standard names compare as enum tags, the rest by bytes.
pub fn has_hop_by_hop(req: &RequestHeader) -> bool {
    req.headers
        .keys()
        .any(|name| STANDARD.contains(name) || OTHERS.contains(&name.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::request_view::test_request as request;

    #[test]
    fn plain_requests_have_none() {
        let req = request(&[
            ("Host", "example.com"),
            ("Origin", "https://app.example.com"),
            ("Accept", "*/*"),
            ("X-Keep-Alive-Hint", "no"),
            ("Authorization", "Bearer x"),
            ("Content-Length", "3"),
        ]);
        assert!(!has_hop_by_hop(&req));
        assert!(!has_hop_by_hop(&request(&[])));
    }

    #[test]
    fn every_field_pingora_sanitises_is_seen_in_any_case() {
        for name in [
            "Connection",
            "keep-alive",
            "Proxy-Connection",
            "Proxy-Authenticate",
            "PROXY-AUTHORIZATION",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "HTTP2-Settings",
        ] {
            let req = request(&[("Host", "example.com"), (name, "x")]);
            assert!(has_hop_by_hop(&req), "{name}");
        }
    }
}
