//! The bytes a `hash` / `ip_hash` balancer hashes, taken from the request.
//!
//! A missing key (no such header, cookie or query parameter) yields `None`, and the balancer
//! then spreads such requests like round robin rather than piling them onto one server.

use pingora::http::RequestHeader;
use pylon_config::HashKey;
use std::borrow::Cow;
use std::net::IpAddr;

/// The key of this request, if it has one.
pub fn extract<'a>(
    key: &HashKey,
    req: &'a RequestHeader,
    client_ip: Option<IpAddr>,
) -> Option<Cow<'a, [u8]>> {
    match key {
        HashKey::ClientIp => client_ip.map(|ip| match ip {
            IpAddr::V4(v4) => Cow::Owned(v4.octets().to_vec()),
            IpAddr::V6(v6) => Cow::Owned(v6.octets().to_vec()),
        }),
        HashKey::Header(name) => req
            .headers
            .get(name.as_str())
            .map(|v| Cow::Borrowed(v.as_bytes())),
        HashKey::Cookie(name) => req
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .find_map(|pair| {
                let pair = pair.trim_ascii();
                let eq = pair.iter().position(|b| *b == b'=')?;
                (pair[..eq].trim_ascii() == name.as_bytes())
                    .then(|| Cow::Borrowed(pair[eq + 1..].trim_ascii()))
            }),
        HashKey::Path => Some(Cow::Borrowed(req.uri.path().as_bytes())),
        HashKey::Query(name) => req.uri.query().and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then_some(Cow::Borrowed(v.as_bytes()))
            })
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", uri.as_bytes(), None).unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn each_key_kind_reads_its_part_of_the_request() {
        let r = req(
            "/a/b?user=ann&x=1",
            &[("x-user", "bob"), ("cookie", "a=1; sid=xyz ; b=2")],
        );
        let get = |k: HashKey| extract(&k, &r, "10.0.0.1".parse().ok()).map(|c| c.into_owned());
        assert_eq!(get(HashKey::ClientIp), Some(vec![10, 0, 0, 1]));
        assert_eq!(get(HashKey::Header("X-User".into())), Some(b"bob".to_vec()));
        assert_eq!(get(HashKey::Cookie("sid".into())), Some(b"xyz".to_vec()));
        assert_eq!(get(HashKey::Path), Some(b"/a/b".to_vec()));
        assert_eq!(get(HashKey::Query("user".into())), Some(b"ann".to_vec()));
        assert_eq!(get(HashKey::Query("none".into())), None);
        assert_eq!(get(HashKey::Cookie("none".into())), None);
    }
}
