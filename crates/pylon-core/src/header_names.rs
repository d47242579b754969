//! Header names Pylon adds to requests and responses, parsed once.
//!
//! Adding a header by a [`PreparedHeaderName`] (from Pylon's patched `pingora-http`, see
//! `vendor/pingora-http/PYLON-PATCH.md`) neither parses nor copies the name per request;
//! a `&str` name is parsed and, outside the `http` crate's standard set, copied on every
//! insert. The names are written in their usual case on the wire.

use std::sync::LazyLock;

use http::HeaderValue;

pub use pingora::http::PreparedHeaderName;

macro_rules! prepared {
    ($($(#[$doc:meta])* $ident:ident = $name:literal;)*) => {$(
        $(#[$doc])*
        pub static $ident: LazyLock<PreparedHeaderName> =
            LazyLock::new(|| PreparedHeaderName::from_static($name));
    )*};
}

prepared! {
    X_FORWARDED_FOR = "X-Forwarded-For";
    X_FORWARDED_PROTO = "X-Forwarded-Proto";
    X_FORWARDED_HOST = "X-Forwarded-Host";
    ACCESS_CONTROL_ALLOW_ORIGIN = "Access-Control-Allow-Origin";
    ACCESS_CONTROL_ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials";
    ACCESS_CONTROL_ALLOW_METHODS = "Access-Control-Allow-Methods";
    ACCESS_CONTROL_ALLOW_HEADERS = "Access-Control-Allow-Headers";
    ACCESS_CONTROL_EXPOSE_HEADERS = "Access-Control-Expose-Headers";
    ACCESS_CONTROL_MAX_AGE = "Access-Control-Max-Age";
    VARY = "Vary";
    /// W3C Trace Context, written lowercase as the spec shows it.
    TRACEPARENT = "traceparent";
}

/// Parses a configured header name, keeping the case it is written in for the wire.
pub fn prepare(name: &str) -> Result<PreparedHeaderName, String> {
    PreparedHeaderName::new(name).map_err(|_| format!("invalid header name {name:?}"))
}

/// A configured header value (a fixed `headers` value, a `cors` list), checked, and static
/// when it can be — visible ASCII, what `HeaderValue::from_static` takes: adding it to a
/// request then copies a pointer, where a shared value took and gave back a reference count
/// (an atomic operation each way). Each distinct text is kept once for the life of the
/// process (`pingora::http::intern`), like prepared names.
pub fn configured_value(text: &str) -> Result<HeaderValue, String> {
    // Exactly the bytes `from_static` accepts, so it cannot panic on them.
    if text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) || b == b'\t')
    {
        return Ok(HeaderValue::from_static(pingora::http::intern(text)));
    }
    HeaderValue::from_str(text).map_err(|_| format!("invalid header value {text:?}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pingora::http::RequestHeader;

    #[test]
    fn prepared_names_keep_their_case_on_the_wire_and_find_lowercase_lookups() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header(&*X_FORWARDED_FOR, "10.0.0.1").unwrap();
        req.append_header(&prepare("x-Custom").unwrap(), "a")
            .unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "10.0.0.1");
        assert_eq!(req.headers["x-custom"], "a");
        let mut wire = Vec::new();
        req.header_to_h1_wire(&mut wire);
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("X-Forwarded-For: 10.0.0.1\r\n"), "{wire}");
        assert!(wire.contains("x-Custom: a\r\n"), "{wire}");
        assert!(prepare("bad name").is_err());
    }

    #[test]
    fn configured_values_are_checked_and_static_when_visible_ascii() {
        let value = configured_value("max-age=63072000; includeSubDomains").unwrap();
        assert_eq!(value, "max-age=63072000; includeSubDomains");
        // Interned: a second config with the same text shares the first's bytes.
        let again = configured_value("max-age=63072000; includeSubDomains").unwrap();
        assert_eq!(value.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        // Text `from_static` would refuse (beyond ASCII) is kept as a checked value.
        assert_eq!(
            configured_value("café").unwrap().as_bytes(),
            "café".as_bytes()
        );
        assert!(configured_value("a\r\nb").is_err());
    }
}
