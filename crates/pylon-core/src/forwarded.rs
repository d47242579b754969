//! `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` on the upstream request.
//!
//! `X-Forwarded-For` is appended to (the client's address after any the client sent), as
//! nginx's `$proxy_add_x_forwarded_for` does; whether earlier hops are trusted is decided
//! by the `ip_filter`/trusted-proxies work, not here. `Proto` and `Host` describe the
//! request as Pylon received it. The `Host` header itself is kept.

use http::HeaderValue;
use pingora::http::RequestHeader;
use pingora::Result;
use std::net::IpAddr;

use crate::header_names::{X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};

/// Sets the forwarding headers on the request about to go upstream.
pub fn apply(
    upstream: &mut RequestHeader,
    client_ip: Option<IpAddr>,
    scheme: &'static str,
    host: Option<&str>,
) -> Result<()> {
    if let Some(ip) = client_ip {
        // One allocation, sized for the common case (no earlier hop, an IPv4 client).
        let mut value = String::with_capacity(16);
        for prior in upstream.headers.get_all(X_FORWARDED_FOR.name()) {
            if let Ok(s) = prior.to_str() {
                if !s.trim().is_empty() {
                    value.push_str(s.trim());
                    value.push_str(", ");
                }
            }
        }
        push_ip(&mut value, ip);
        upstream.insert_header(&*X_FORWARDED_FOR, value)?;
    }
    // A static value is shared, not copied.
    upstream.insert_header(&*X_FORWARDED_PROTO, HeaderValue::from_static(scheme))?;
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        upstream.insert_header(&*X_FORWARDED_HOST, host)?;
    }
    Ok(())
}

/// Appends `ip` in its usual text form. IPv4 is written by hand: `Display` goes through the
/// formatting machinery, several times the cost, on every request.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Written into a stack buffer and appended once: one capacity check, not fifteen.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.push_str(std::str::from_utf8(&text[..len]).unwrap_or_default());
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn appends_to_existing_forwarded_for() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("x-forwarded-for", "10.0.0.1").unwrap();
        req.append_header("x-forwarded-for", "10.0.0.2").unwrap();
        apply(&mut req, "127.0.0.1".parse().ok(), "http", Some("a.test")).unwrap();
        let xff: Vec<_> = req.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(xff.len(), 1);
        assert_eq!(xff[0], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(req.headers["x-forwarded-proto"], "http");
        assert_eq!(req.headers["x-forwarded-host"], "a.test");
    }

    #[test]
    fn ip_text_matches_display() {
        for text in [
            "0.0.0.0",
            "1.2.3.4",
            "10.20.30.40",
            "100.200.255.9",
            "::1",
            "fe80::1:2",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }
}
