//! Turning one finished request into one log line, text or JSON, into a reused buffer.
//!
//! Each variable yields a [`Val`]: missing (`-` in text, `null` in JSON), bytes (escaped
//! for the format), an integer, a duration in milliseconds or a time. Nothing here
//! allocates once the thread's buffers have grown to a line's size.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pingora::http::RequestHeader;
use pylon_config::middleware::TemplateVar;
use pylon_config::LogVar;

use crate::measured::Measured;
use crate::middleware::vars::{borrowed_var, push_var};
use crate::middleware::RequestState;

/// What the log knows of one finished request.
pub struct Entry<'a> {
    pub req: &'a RequestHeader,
    pub state: &'a RequestState,
    pub measured: &'a Measured,
    /// The status the client got (0: it went away before a response).
    pub status: u16,
    /// The route's upstream, when it has one.
    pub upstream: Option<&'a str>,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    /// From the request's arrival to now (the end of the response).
    pub duration: Duration,
}

/// One variable's value.
pub enum Val<'s> {
    Missing,
    Bytes(&'s [u8]),
    Int(u64),
    Millis(Duration),
    Time(SystemTime),
}

/// The value of `var` for `entry`; text that must be built goes to `scratch`.
pub fn value<'s>(var: &'s LogVar, e: &'s Entry<'_>, scratch: &'s mut String) -> Val<'s> {
    scratch.clear();
    let m = e.measured;
    match var {
        LogVar::Request(TemplateVar::Header(name)) => match e.req.headers.get(name.as_str()) {
            Some(v) if !v.is_empty() => Val::Bytes(v.as_bytes()),
            _ => Val::Missing,
        },
        // Borrowed where the request already holds the text; only the client address is
        // formatted into `scratch`.
        LogVar::Request(var) => match borrowed_var(var, e.req, e.state) {
            Some(value) => non_empty(value),
            None => {
                push_var(scratch, var, e.req, e.state);
                non_empty(scratch)
            }
        },
        LogVar::Time => Val::Time(m.received_at),
        LogVar::TimeUnixMs => Val::Int(unix_ms(m.received_at)),
        LogVar::PathAndQuery => e
            .req
            .uri
            .path_and_query()
            .map_or(Val::Bytes(e.req.uri.path().as_bytes()), |pq| {
                Val::Bytes(pq.as_str().as_bytes())
            }),
        LogVar::Status => Val::Int(u64::from(e.status)),
        LogVar::DurationMs => Val::Millis(e.duration),
        LogVar::Upstream => e
            .upstream
            .map_or(Val::Missing, |u| Val::Bytes(u.as_bytes())),
        LogVar::UpstreamAddr => match m.upstream_addr {
            Some(addr) => {
                push_addr(scratch, addr);
                Val::Bytes(scratch.as_bytes())
            }
            None => Val::Missing,
        },
        LogVar::UpstreamStatus => m
            .upstream_status
            .map_or(Val::Missing, |s| Val::Int(s.into())),
        LogVar::UpstreamConnectMs => m.upstream_connect.map_or(Val::Missing, Val::Millis),
        LogVar::UpstreamHeaderMs => m.upstream_header.map_or(Val::Missing, Val::Millis),
        LogVar::UpstreamError => m
            .upstream_error
            .map_or(Val::Missing, |k| Val::Bytes(k.as_bytes())),
        LogVar::Attempts => Val::Int(m.attempts.into()),
        LogVar::BytesSent => Val::Int(e.bytes_sent as u64),
        LogVar::BytesReceived => Val::Int(e.bytes_received as u64),
        LogVar::Protocol => Val::Bytes(protocol(e.req.version).as_bytes()),
        LogVar::UserAgent => header(e.req, http::header::USER_AGENT),
        LogVar::Referer => header(e.req, http::header::REFERER),
        LogVar::TraceId => match &e.state.trace_id {
            Some(id) => {
                let mut hex = [0u8; 32];
                crate::tracing::traceparent::hex_into(id, &mut hex);
                scratch.extend(hex.iter().map(|&b| char::from(b)));
                Val::Bytes(scratch.as_bytes())
            }
            None => Val::Missing,
        },
    }
}

fn non_empty(s: &str) -> Val<'_> {
    if s.is_empty() {
        Val::Missing
    } else {
        Val::Bytes(s.as_bytes())
    }
}

fn header(req: &RequestHeader, name: http::HeaderName) -> Val<'_> {
    match req.headers.get(name) {
        Some(v) if !v.is_empty() => Val::Bytes(v.as_bytes()),
        _ => Val::Missing,
    }
}

/// `ip:port`; IPv4 through `forwarded::push_ip` (no `core::fmt`, the common case), IPv6 in
/// brackets.
fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            crate::forwarded::push_ip(out, (*v4.ip()).into());
            out.push(':');
            out.push_str(itoa::Buffer::new().format(v4.port()));
        }
        SocketAddr::V6(_) => {
            let _ = write!(out, "{addr}");
        }
    }
}

/// `HTTP/1.1` and friends, as a request line writes them.
fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes `val` as text: bytes escaped (see [`text_escape`]), `-` when missing.
pub fn write_text(out: &mut Vec<u8>, val: &Val<'_>) {
    match val {
        Val::Missing => out.push(b'-'),
        Val::Bytes(b) => text_escape(out, b),
        Val::Int(n) => write_int(out, *n),
        Val::Millis(d) => write_millis(out, *d),
        Val::Time(t) => write_time(out, *t),
    }
}

/// Writes `val` as a JSON value: strings quoted and escaped, numbers bare, `null` when
/// missing.
pub fn write_json(out: &mut Vec<u8>, val: &Val<'_>) {
    match val {
        Val::Missing => out.extend_from_slice(b"null"),
        Val::Bytes(b) => json_string(out, b),
        Val::Int(n) => write_int(out, *n),
        Val::Millis(d) => write_millis(out, *d),
        Val::Time(t) => {
            out.push(b'"');
            write_time(out, *t);
            out.push(b'"');
        }
    }
}

fn write_int(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Milliseconds with three decimals (microsecond precision): `12.345`.
fn write_millis(out: &mut Vec<u8>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    write_int(out, micros / 1000);
    write_fraction(out, micros % 1000);
}

/// `.NNN` for `n` below 1000.
fn write_fraction(out: &mut Vec<u8>, n: u64) {
    let n = n.min(999);
    let digit = |d: u64| b'0' + (d % 10) as u8;
    out.extend_from_slice(&[b'.', digit(n / 100), digit(n / 10), digit(n)]);
}

/// Whether `b` may be copied as is into a text or JSON value (printable ASCII, not a quote
/// or backslash): the common case, checked over a whole value before escaping byte by byte.
fn plain(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

/// Text escaping, as nginx does: `"`, `\`, control characters and bytes that are not
/// UTF-8 become `\xHH`, so a line stays one line and a quoted field stays quoted.
pub fn text_escape(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().all(|&b| plain(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            if b < 0x20 || b == 0x7f || b == b'"' || b == b'\\' {
                let _ = write!(out, "\\x{b:02X}");
            } else {
                out.push(b);
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
}

/// A JSON string. Bytes that are not UTF-8 are written as the code point of the same
/// number (`\u00ff` for 0xFF), so the line stays valid JSON and no byte is lost.
pub fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    if bytes.iter().all(|&b| plain(b)) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    for chunk in bytes.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b if b < 0x20 => {
                    let _ = write!(out, "\\u{b:04x}");
                }
                b => out.push(b),
            }
        }
        for &b in chunk.invalid() {
            let _ = write!(out, "\\u{b:04x}");
        }
    }
    out.push(b'"');
}

thread_local! {
    /// The last second this thread formatted, and its `YYYY-MM-DDTHH:MM:SS`: most lines of
    /// a busy thread share their second, so the calendar arithmetic runs once per second.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC with milliseconds: `2026-11-22T05:40:21.123Z`.
pub fn write_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = format_second(secs);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    write_fraction(out, since.subsec_millis().into());
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (days to a civil date: Howard Hinnant's algorithm).
fn format_second(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = [0u8; 19];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let _ = write!(
        cursor,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(val: Val<'_>) -> String {
        let mut out = Vec::new();
        write_text(&mut out, &val);
        String::from_utf8(out).unwrap()
    }

    fn json(val: Val<'_>) -> String {
        let mut out = Vec::new();
        write_json(&mut out, &val);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_763_790_021_123);
        assert_eq!(text(Val::Time(t)), "2025-11-22T05:40:21.123Z");
        assert_eq!(text(Val::Time(UNIX_EPOCH)), "1970-01-01T00:00:00.000Z");
        // A leap day, and the cache giving way to the next second.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(text(Val::Time(leap)), "2000-02-29T00:00:00.000Z");
        let next = leap + Duration::from_millis(1_007);
        assert_eq!(json(Val::Time(next)), "\"2000-02-29T00:00:01.007Z\"");
    }

    #[test]
    fn addresses() {
        let mut out = String::new();
        push_addr(&mut out, "10.0.255.1:8080".parse().unwrap());
        out.push(' ');
        push_addr(&mut out, "[::1]:80".parse().unwrap());
        assert_eq!(out, "10.0.255.1:8080 [::1]:80");
    }

    #[test]
    fn missing_values_and_numbers() {
        assert_eq!(text(Val::Missing), "-");
        assert_eq!(json(Val::Missing), "null");
        assert_eq!(json(Val::Int(404)), "404");
        assert_eq!(text(Val::Millis(Duration::from_micros(12_345))), "12.345");
        assert_eq!(json(Val::Millis(Duration::from_micros(7))), "0.007");
    }

    #[test]
    fn escaping_keeps_one_line_and_valid_json() {
        let nasty = b"a\"b\\c\nd\x01\xffe\xc3\xa9";
        assert_eq!(
            text(Val::Bytes(nasty)),
            "a\\x22b\\x5Cc\\x0Ad\\x01\\xFFe\u{e9}"
        );
        let line = json(Val::Bytes(nasty));
        assert_eq!(line, "\"a\\\"b\\\\c\\nd\\u0001\\u00ffe\u{e9}\"");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}\u{ff}e\u{e9}");
    }
}
