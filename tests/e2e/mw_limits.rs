//! The `limits` middleware through the binary: what the origin received and what the
//! client received. Also: without `buffering`, bodies stream both ways.

use std::io::Write;
use std::net::TcpStream;

use crate::harness::client::parse_response;
use crate::harness::configs::one_upstream;
use crate::harness::stream_origin::{read_until, Seen, StreamOrigin};
use crate::harness::{Origin, Pylon};

/// One upstream route with `middlewares:` written as a YAML flow list.
fn with_middlewares(origin: &str, middlewares: &str) -> String {
    one_upstream(
        &format!("[\"{origin}\"]"),
        "",
        &format!("    middlewares: {middlewares}"),
    )
}

fn limits(origin: &Origin, settings: &str) -> Pylon {
    Pylon::start(&with_middlewares(
        &origin.address(),
        &format!("[{{ limits: {{ {settings} }} }}]"),
    ))
}

#[test]
fn limits_refuse_a_declared_body_over_the_limit_before_the_upstream() {
    let origin = Origin::start("app");
    let pylon = limits(&origin, "max_body_size: 10");
    let c = pylon.client();
    let r = c.request_with_body("POST", "/up", &[("Host", "localhost")], b"12345678901");
    assert_eq!(r.status, 413);
    assert_eq!(origin.hits(), 0);
    // At the limit: passes unchanged.
    let ok = c.request_with_body("POST", "/up", &[("Host", "localhost")], b"1234567890");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["body"], "1234567890");
    assert_eq!(ok.origin_header("content-length").as_deref(), Some("10"));
    assert_eq!(origin.hits(), 1);
}

#[test]
fn limits_count_chunked_bodies_while_they_stream() {
    let origin = Origin::start("app");
    let pylon = limits(&origin, "max_body_size: 10");
    let c = pylon.client();
    let chunked = |chunks: &[&str]| c.raw_lenient(&chunked_post(chunks), false);
    let over = chunked(&["123456", "789012"]);
    assert_eq!(over.status, 413);
    assert!(over.text().contains("413") || over.text().to_lowercase().contains("large"));
    let under = chunked(&["12345", "67890"]);
    assert_eq!(under.status, 200);
    assert_eq!(under.json()["body"], "1234567890");
}

#[test]
fn limits_refuse_long_uris_with_414() {
    let origin = Origin::start("app");
    let pylon = limits(&origin, "max_uri_length: 20");
    let c = pylon.client();
    let r = c.get("/aaaaaaaaaa/bbbbbbbbbb?c=1");
    assert_eq!(r.status, 414);
    assert_eq!(origin.hits(), 0);
    let ok = c.get("/short?q=1");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["query"], "q=1");
}

#[test]
fn limits_refuse_too_many_or_too_large_headers_with_431() {
    let origin = Origin::start("app");
    let pylon = limits(&origin, "max_header_count: 5, max_header_size: 200");
    let c = pylon.client();
    let many: Vec<(String, String)> = (0..6).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let mut headers: Vec<(&str, &str)> = vec![("Host", "localhost")];
    headers.extend(many.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(c.request("GET", "/", &headers).status, 431);
    let big = "x".repeat(200);
    let r = c.request("GET", "/", &[("Host", "localhost"), ("X-Big", &big)]);
    assert_eq!(r.status, 431);
    assert_eq!(origin.hits(), 0);
    // Under both limits (Host, X-Small, Connection): passes unchanged.
    let ok = c.request("GET", "/", &[("Host", "localhost"), ("X-Small", "kept")]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.origin_header("x-small").as_deref(), Some("kept"));
}

/// Without `buffering`, the origin gets the request header and the first body piece
/// while the client still holds the rest.
#[test]
fn without_buffering_request_bodies_stream() {
    let origin = StreamOrigin::start();
    let pylon = Pylon::start(&one_upstream(
        &format!("[\"{}\"]", origin.address()),
        "",
        "",
    ));
    let mut s = TcpStream::connect(pylon.addr()).unwrap();
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nfirst\r\n")
        .unwrap();
    let Seen::Head(head) = origin.next() else {
        panic!("expected the request header first");
    };
    assert!(head
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked"));
    assert_eq!(origin.next(), Seen::Piece("first".into()));
    // The client has not sent the rest: the origin cannot have it.
    assert!(origin.saw_nothing());
    s.write_all(b"6\r\nsecond\r\n0\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    loop {
        match origin.next() {
            Seen::Piece(p) => rest.extend_from_slice(&p),
            Seen::End => break,
            Seen::Head(_) => panic!("a second request"),
        }
    }
    assert_eq!(rest, b"second");
    origin.release();
    let answer = read_until(&mut s, b"0\r\n\r\n");
    let r = parse_response(&answer, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "first-piecerest");
}

/// Without `buffering`, the client gets the first response piece while the origin still
/// holds the rest.
#[test]
fn without_buffering_responses_stream() {
    let origin = StreamOrigin::start();
    let pylon = Pylon::start(&one_upstream(
        &format!("[\"{}\"]", origin.address()),
        "",
        "",
    ));
    let mut s = TcpStream::connect(pylon.addr()).unwrap();
    s.write_all(b"GET /download HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let first = read_until(&mut s, b"first-piece");
    // The origin holds `rest` until released: it cannot have reached the client.
    assert!(!String::from_utf8_lossy(&first).contains("rest"));
    assert!(first.starts_with(b"HTTP/1.1 200"));
    origin.release();
    let mut all = first;
    all.extend(read_until(&mut s, b"0\r\n\r\n"));
    assert_eq!(parse_response(&all, false).text(), "first-piecerest");
}

fn chunked_post(chunks: &[&str]) -> Vec<u8> {
    let mut raw = String::from(
        "POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for chunk in chunks {
        raw.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    raw.push_str("0\r\n\r\n");
    raw.into_bytes()
}

#[test]
fn buffering_sends_a_chunked_upload_with_a_content_length() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&with_middlewares(
        &origin.address(),
        "[{ buffering: { max_request_body: 20 } }]",
    ));
    let c = pylon.client();
    let r = c.raw(&chunked_post(&["hello ", "buffered ", "world"]), false);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["body"], "hello buffered world");
    assert_eq!(r.origin_header("content-length").as_deref(), Some("20"));
    assert_eq!(r.origin_header("transfer-encoding"), None);
    // Bodies without framing problems pass as they are; an empty one too.
    let plain = c.request_with_body("POST", "/up", &[("Host", "localhost")], b"abc");
    assert_eq!(plain.json()["body"], "abc");
    assert_eq!(plain.origin_header("content-length").as_deref(), Some("3"));
    assert_eq!(c.get("/").status, 200);
    assert_eq!(origin.hits(), 3);
}

#[test]
fn buffering_refuses_bodies_over_its_max_before_the_upstream() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&with_middlewares(
        &origin.address(),
        "[{ buffering: { max_request_body: 20 } }]",
    ));
    let c = pylon.client();
    let chunked = c.raw_lenient(&chunked_post(&["0123456789", "0123456789", "x"]), false);
    assert_eq!(chunked.status, 413);
    let declared = c.request_with_body("POST", "/up", &[("Host", "localhost")], &[b'x'; 21]);
    assert_eq!(declared.status, 413);
    assert_eq!(origin.hits(), 0);
}

#[test]
fn buffering_holds_up_to_64_kib_by_default() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&with_middlewares(&origin.address(), "[{ buffering: {} }]"));
    let c = pylon.client();
    let piece = "abcdefgh".repeat(1024);
    let full: Vec<&str> = std::iter::repeat_n(piece.as_str(), 8).collect();
    let r = c.raw(&chunked_post(&full), false);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("content-length").as_deref(), Some("65536"));
    assert_eq!(r.json()["body"].as_str().map(str::len), Some(65536));
    assert_eq!(r.json()["body"], piece.repeat(8));
    let mut over = full.clone();
    over.push("x");
    assert_eq!(c.raw_lenient(&chunked_post(&over), false).status, 413);
    assert_eq!(origin.hits(), 1);
}

/// Pingora's own limits, checked before any middleware (documented under `limits`).
#[test]
fn pingora_refuses_more_than_256_header_fields_with_400() {
    let origin = Origin::start("app");
    let pylon = limits(&origin, "max_header_count: 1000");
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..300 {
        raw.push_str(&format!("X-H{i}: v\r\n"));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let r = pylon.client().raw_lenient(raw.as_bytes(), false);
    assert_eq!(r.status, 400);
    assert_eq!(origin.hits(), 0);
}
