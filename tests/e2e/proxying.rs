//! Proxying through the binary: balancing, forwarding headers, errors, keep-alive, `respond`.

use crate::harness::configs::one_upstream;
use crate::harness::{raw_server, Client, Origin, Pylon};
use std::collections::HashMap;

fn single_upstream(servers: &str, extra_upstream: &str) -> String {
    one_upstream(servers, extra_upstream, "")
}

#[test]
fn weighted_round_robin_honours_weights_smoothly() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let yaml = single_upstream(
        &format!(
            "[\"{}\", {{ address: \"{}\", weight: 3 }}]",
            a.address(),
            b.address()
        ),
        "",
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let picks: Vec<String> = (0..8).map(|_| c.get("/").served_by()).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in &picks {
        *counts.entry(p.as_str()).or_default() += 1;
    }
    assert_eq!(counts.get("a"), Some(&2), "picks: {picks:?}");
    assert_eq!(counts.get("b"), Some(&6), "picks: {picks:?}");
    // Smooth: `a` never gets two turns in a row, `b` never gets four.
    assert!(
        !picks.windows(2).any(|w| w[0] == "a" && w[1] == "a"),
        "{picks:?}"
    );
    assert!(
        !picks.windows(4).any(|w| w.iter().all(|p| p == "b")),
        "{picks:?}"
    );
}

#[test]
fn forwards_method_path_query_body_and_sets_x_forwarded_headers() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&single_upstream(&format!("[\"{}\"]", origin.address()), ""));
    let c = pylon.client();
    let r = c.request_with_body(
        "POST",
        "/submit/form?x=1&y=two",
        &[
            ("Host", "shop.example.com"),
            ("X-Forwarded-For", "203.0.113.7"),
            ("X-Custom", "kept"),
        ],
        b"hello=world",
    );
    assert_eq!(r.status, 200);
    let echo = r.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/submit/form");
    assert_eq!(echo["query"], "x=1&y=two");
    assert_eq!(echo["body"], "hello=world");
    assert_eq!(r.origin_header("host").as_deref(), Some("shop.example.com"));
    assert_eq!(r.origin_header("x-custom").as_deref(), Some("kept"));
    assert_eq!(
        r.origin_header("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(
        r.origin_header("x-forwarded-proto").as_deref(),
        Some("http")
    );
    assert_eq!(
        r.origin_header("x-forwarded-host").as_deref(),
        Some("shop.example.com")
    );
    // The origin's own status comes back unchanged.
    assert_eq!(c.get("/status/418").status, 418);
}

#[test]
fn reuses_upstream_connections() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&single_upstream(&format!("[\"{}\"]", origin.address()), ""));
    let c = pylon.client();
    let first = c.get("/one").json()["conn"].as_u64();
    let second = c.get("/two").json()["conn"].as_u64();
    assert!(first.is_some());
    assert_eq!(
        first, second,
        "the second request should reuse the pooled connection"
    );
}

#[test]
fn unreachable_upstream_is_502_with_json_body() {
    // A port that was free a moment ago: nothing listens there.
    let dead = crate::harness::closed_addr();
    let pylon = Pylon::start(&single_upstream(&format!("[\"{dead}\"]"), ""));
    let r = pylon.client().get("/x");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert!(
        body["error"].as_str().unwrap().contains("upstream"),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str().unwrap().len(), 32);
}

#[test]
fn slow_upstream_is_504_after_read_timeout() {
    let origin = Origin::start("slow");
    let yaml = single_upstream(
        &format!("[\"{}\"]", origin.address()),
        "    read_timeout: 300ms",
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let r = c.get("/slow/3000");
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "upstream timed out");
    // A fast request on the same upstream still works.
    assert_eq!(c.get("/slow/10").status, 200);
}

#[test]
fn respond_routes_answer_directly_with_status_headers_and_body() {
    let yaml = r#"
listeners:
  - name: web
    address: "@listen0@"
routes:
  - name: hello
    rule: "Path(`/hello`)"
    respond: { status: 200, body: "hi\n", headers: { content-type: text/plain, x-from: pylon } }
  - name: gone
    rule: "Path(`/gone`)"
    respond: { status: 410 }
"#;
    let pylon = Pylon::start(yaml);
    let c = pylon.client();
    let r = c.get("/hello");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hi\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-from"), Some("pylon"));
    let head = c.request("HEAD", "/hello", &[("Host", "x")]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("3"));
    let gone = c.get("/gone");
    assert_eq!(gone.status, 410);
    assert!(gone.body.is_empty());
}

#[test]
fn ipv6_listener_and_upstream() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    }
    let origin = Origin::start("v4origin");
    // Client -> v6 listener -> v4 origin, and client -> v4 listener -> v6 upstream (Pylon's
    // own v6 listener) -> v4 origin.
    let yaml = format!(
        r#"
listeners:
  - name: hop
    address: "@listen0@"
  - name: v6
    address: "@v6listen0@"
upstreams:
  v4:
    servers: ["{}"]
  v6:
    servers: ["@v6listen0@"]
routes:
  - name: via-v6
    rule: "PathPrefix(`/hop`)"
    upstream: v6
    listeners: [hop]
  - name: direct
    rule: "PathPrefix(`/`)"
    upstream: v4
    listeners: [v6]
"#,
        origin.address()
    );
    let pylon = Pylon::start(&yaml);
    let r = Client::new(pylon.listeners[1]).get("/x");
    assert_eq!(r.served_by(), "v4origin");
    assert_eq!(r.origin_header("x-forwarded-for").as_deref(), Some("::1"));
    let hop = Client::new(pylon.addr()).get("/hop/y");
    assert_eq!(hop.served_by(), "v4origin");
    assert_eq!(hop.json()["path"], "/hop/y");
    assert_eq!(
        hop.origin_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1, ::1")
    );
}

/// An origin that answers every request on one connection with a fixed response carrying a
/// mixed-case header, and sends the raw request heads it read (names as written) back to the
/// test: hyper-based origins lower-case names as they parse, so they cannot show case.
fn raw_case_origin() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let addr = raw_server(move |stream| {
        let mut writer = stream.try_clone().expect("clone stream");
        let mut reader = BufReader::new(stream);
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.lock().expect("origin channel").send(head);
            let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
                          X-Origin-Mixed: yes\r\nContent-Length: 2\r\n\r\nok";
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    });
    (addr.to_string(), rx)
}

/// The names of a raw header block, as written.
fn header_names(head: &str) -> Vec<&str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn header_names_are_normalised_unless_preserve_header_case_is_on() {
    for (server, preserved) in [
        ("", false),
        ("server: { preserve_header_case: true }", true),
    ] {
        let (origin, heads) = raw_case_origin();
        let yaml = format!(
            "{server}\n{}",
            single_upstream(&format!("[\"{origin}\"]"), "")
        );
        let pylon = Pylon::start(&yaml);
        let r = pylon.client().request(
            "GET",
            "/",
            &[
                ("Host", "example.com"),
                ("X-Mixed-Case", "1"),
                ("User-Agent", "test"),
            ],
        );
        assert_eq!(r.status, 200, "{server}: {}", r.text());
        let head = heads
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the origin saw the request");
        let sent = header_names(&head);
        let received: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        if preserved {
            assert!(sent.contains(&"X-Mixed-Case"), "{sent:?}");
            assert!(sent.contains(&"User-Agent"), "{sent:?}");
            assert!(received.contains(&"X-Origin-Mixed"), "{received:?}");
        } else {
            // Names lower-cased both ways, but for the common few Pingora title-cases.
            assert!(sent.contains(&"x-mixed-case"), "{sent:?}");
            assert!(sent.contains(&"user-agent"), "{sent:?}");
            assert!(sent.contains(&"Host"), "{sent:?}");
            assert!(sent.contains(&"x-forwarded-for"), "{sent:?}");
            assert!(received.contains(&"x-origin-mixed"), "{received:?}");
        }
        // `Content-Type` is one of those few: title-cased either way.
        assert!(received.contains(&"Content-Type"), "{received:?}");
    }
}

#[test]
fn hop_by_hop_fields_and_what_connection_names_never_reach_the_origin() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&single_upstream(&format!("[\"{}\"]", origin.address()), ""));
    let c = pylon.client();
    let hop = [
        ("Host", "example.com"),
        ("Connection", "close, X-Secret"),
        ("X-Secret", "nominated"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Proxy-Connection", "keep-alive"),
        ("X-Kept", "yes"),
    ];
    let r = c.request("GET", "/", &hop);
    assert_eq!(r.status, 200, "{}", r.text());
    for gone in [
        "x-secret",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert_eq!(r.origin_header(gone), None, "{gone} reached the origin");
    }
    assert_eq!(r.origin_header("x-kept").as_deref(), Some("yes"));
    // A request without any of them (the fast path) still forwards its own fields.
    let r = c.request("GET", "/", &[("Host", "example.com"), ("X-Kept", "yes")]);
    assert_eq!(r.origin_header("x-kept").as_deref(), Some("yes"));
    assert_eq!(r.origin_header("host").as_deref(), Some("example.com"));
}
