//! What the matchers read of a request, computed once per lookup.
//!
//! - The **canonical host**: the [`RequestView::host`] without its port (and without the
//!   brackets of an IPv6 literal), trimmed and lowercased, exactly as Traefik's request
//!   decorator computes it (Go's `net.SplitHostPort` rules included).
//! - The **routing path**: the raw path with every percent-encoded *unreserved* character
//!   decoded (`/foo%20bar` → `/foo bar`, `/%7Bx%7D` → `/{x}`) and every percent-encoded
//!   *reserved* character (RFC 3986 gen-delims and sub-delims, plus `%` itself) kept encoded,
//!   in upper-case hex (`/a%2fb` → `/a%2Fb`), so that `PathPrefix(`/a/`)` never matches
//!   `/a%2Fb`. This is Traefik's routing path.
//! - **Query values**, decoded as Go's `url.ParseQuery` does, read on demand.
//!
//! Both borrow from the request in the common case (already-lowercase host, path without
//! `%`), so preparing a request allocates nothing.

use crate::RequestView;
use std::borrow::Cow;

/// A request with its canonical host and routing path.
pub(crate) struct Prepared<'a, R: RequestView + ?Sized> {
    pub req: &'a R,
    pub host: Cow<'a, str>,
    pub path: Cow<'a, [u8]>,
}

impl<'a, R: RequestView + ?Sized> Prepared<'a, R> {
    pub(crate) fn new(req: &'a R) -> Self {
        Prepared {
            req,
            host: canonical_host(req.host()),
            path: routing_path(req.path()),
        }
    }
}

/// Traefik's canonical host: port stripped, trimmed, lowercased.
pub(crate) fn canonical_host(raw: &str) -> Cow<'_, str> {
    let host = strip_port(raw).trim();
    if host.bytes().any(|b| b.is_ascii_uppercase()) || !host.is_ascii() {
        Cow::Owned(host.to_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// Traefik's `parseHost`: `net.SplitHostPort` when there is a colon, falling back to
/// stripping the brackets of a bare `[v6]`, else the input unchanged.
fn strip_port(addr: &str) -> &str {
    if !addr.contains(':') {
        return addr;
    }
    match split_host_port(addr) {
        Some(host) => host,
        None => {
            if addr.len() >= 2 && addr.starts_with('[') && addr.ends_with(']') {
                &addr[1..addr.len() - 1]
            } else {
                addr
            }
        }
    }
}

/// The host part of Go's `net.SplitHostPort`, or `None` where Go returns an error.
fn split_host_port(hostport: &str) -> Option<&str> {
    let b = hostport.as_bytes();
    let last_colon = hostport.rfind(':')?;
    let (host, j, k) = if b.first() == Some(&b'[') {
        let end = hostport.find(']')?;
        if end + 1 != last_colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some(host)
}

/// Whether `b` is reserved in RFC 3986 (gen-delims and sub-delims) or is `%`: its
/// percent-encoded form is kept in the routing path.
fn is_reserved(b: u8) -> bool {
    matches!(
        b,
        b':' | b'/'
            | b'?'
            | b'#'
            | b'['
            | b']'
            | b'@'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b'%'
    )
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The `%XX` byte at `i`, if `raw[i..]` starts with a valid escape.
fn escaped_byte(raw: &[u8], i: usize) -> Option<u8> {
    if raw.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex(*raw.get(i + 1)?)? << 4 | hex(*raw.get(i + 2)?)?)
}

/// Traefik's routing path (see the module doc). A `%` that does not start a valid escape
/// (which Go's server would refuse with 400) is kept as it is.
pub(crate) fn routing_path(raw: &str) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escaped_byte(bytes, i) {
            Some(b) if is_reserved(b) => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
                i += 3;
            }
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Go's `QueryUnescape`: `+` is a space, `%XX` a byte; `None` for a malformed escape.
pub(crate) fn query_unescape(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' => {
                out.push(escaped_byte(raw, i)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(out))
}

/// Whether `raw`, query-unescaped, equals `expected`, without allocating; `None` when `raw`
/// holds a malformed escape.
fn query_unescape_eq(raw: &[u8], expected: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut k = 0;
    let mut equal = true;
    while i < raw.len() {
        let (b, step) = match raw[i] {
            b'%' => (escaped_byte(raw, i)?, 3),
            b'+' => (b' ', 1),
            b => (b, 1),
        };
        if equal && expected.get(k) != Some(&b) {
            equal = false;
        }
        k += 1;
        i += step;
    }
    Some(equal && k == expected.len())
}

/// Calls `f` with each value of `key` in the raw query, decoded, until `f` returns true.
///
/// Go's `url.ParseQuery` rules: pairs are separated by `&`; a pair containing `;` is
/// dropped; a pair without `=` has the empty value; a pair whose key or value holds a
/// malformed escape is dropped; keys are compared after decoding, case-sensitively.
pub(crate) fn any_query_value(query: &str, key: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
    for pair in query.as_bytes().split(|&b| b == b'&') {
        if pair.is_empty() || pair.contains(&b';') {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if query_unescape_eq(k, key.as_bytes()) != Some(true) {
            continue;
        }
        if let Some(value) = query_unescape(v) {
            if f(&value) {
                return true;
            }
        }
    }
    false
}

/// Whether the raw query has `key` with exactly `value`, without allocating.
pub(crate) fn has_query_value(query: &str, key: &str, value: &str) -> bool {
    for pair in query.as_bytes().split(|&b| b == b'&') {
        if pair.is_empty() || pair.contains(&b';') {
            continue;
        }
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        if query_unescape_eq(k, key.as_bytes()) == Some(true)
            && query_unescape_eq(v, value.as_bytes()) == Some(true)
        {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn canonical_hosts() {
        for (raw, want) in [
            ("example.com", "example.com"),
            ("EXAMPLE.com:8080", "example.com"),
            ("example.com:", "example.com"),
            ("[10::10]", "10::10"),
            ("[10::10]:443", "10::10"),
            ("10::10", "10::10"),
            ("127.0.0.1:80", "127.0.0.1"),
            (" Example.COM ", "example.com"),
            ("", ""),
            ("a:b:c", "a:b:c"),
            ("[::1]x:80", "[::1]x:80"),
        ] {
            assert_eq!(canonical_host(raw), want, "{raw:?}");
        }
        assert!(matches!(canonical_host("example.com:80"), Cow::Borrowed(_)));
    }

    #[test]
    fn routing_paths() {
        for (raw, want) in [
            ("/css", "/css"),
            ("/%7Bpath:css%7D", "/{path:css}"),
            ("/foo%20bar", "/foo bar"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2fb", "/a%2Fb"),
            ("/%25", "/%25"),
            ("/%41%3a", "/A%3A"),
            ("/bad%zz%", "/bad%zz%"),
            ("/%c3%a9", "/é"),
        ] {
            assert_eq!(routing_path(raw).as_ref(), want.as_bytes(), "{raw:?}");
        }
        assert_eq!(routing_path("/%ff").as_ref(), b"/\xff");
    }

    #[test]
    fn query_parsing_as_go() {
        let values = |q: &str, k: &str| {
            let mut v = Vec::new();
            any_query_value(q, k, &mut |x| {
                v.push(String::from_utf8_lossy(x).into_owned());
                false
            });
            v
        };
        assert_eq!(values("q=a&q=b&r=c", "q"), vec!["a", "b"]);
        assert_eq!(values("mobile", "mobile"), vec![""]);
        assert_eq!(values("a+b=c%20d", "a b"), vec!["c d"]);
        assert_eq!(values("q=1;x=2&q=3", "q"), vec!["3"]);
        assert_eq!(values("q=%zz&q=ok", "q"), vec!["ok"]);
        assert_eq!(values("%71=x", "q"), vec!["x"]);
        assert_eq!(values("Q=x", "q"), Vec::<String>::new());
        assert_eq!(values("q=a=b", "q"), vec!["a=b"]);
        assert!(has_query_value("rel=ddg&q=traefik", "q", "traefik"));
        assert!(has_query_value("q=tra%65fik", "q", "traefik"));
        assert!(!has_query_value("q=traefikx", "q", "traefik"));
        assert!(!has_query_value("q=trae", "q", "traefik"));
        assert!(has_query_value("mobile", "mobile", ""));
        assert!(!has_query_value("mobile=true", "mobile", ""));
    }
}
