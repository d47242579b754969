//! `concurrency_limit` through the binary: at most N requests in flight per key; the excess
//! waits up to `queue_timeout`, then 503; slots come back however a request ends.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::client::Response;
use crate::harness::{Client, Origin, Pylon};

fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One catch-all route on `origin` with `concurrency_limit: settings`.
fn one_limit(origin: &Origin, settings: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
routes:
  - name: all
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares: [{{ concurrency_limit: {settings} }}]
"#,
        origin = origin.address()
    )
}

fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", path, &h)
}

/// Starts `n` requests for `path` in the background and waits until the origin has them.
fn in_flight(
    c: &Client,
    origin: &Origin,
    path: &str,
    headers: &[(&'static str, &'static str)],
    n: usize,
) -> Vec<std::thread::JoinHandle<u16>> {
    let before = origin.hits();
    let threads = (0..n)
        .map(|_| {
            let c = c.clone();
            let path = path.to_string();
            let headers = headers.to_vec();
            std::thread::spawn(move || get(&c, &path, &headers).status)
        })
        .collect();
    eventually(Duration::from_secs(10), "requests reach the origin", || {
        origin.hits() == before + n
    });
    threads
}

#[test]
fn a_third_request_waits_for_the_queue_timeout_then_gets_503() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(&origin, "{ max: 2, queue_timeout: 300ms }"));
    let c = pylon.client();
    let slow = in_flight(&c, &origin, "/slow/2000", &[], 2);
    let started = Instant::now();
    let refused = get(&c, "/fast", &[]);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "too many requests in flight");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "did not wait in the queue"
    );
    assert_eq!(
        origin.hits(),
        2,
        "the refused request never reached the origin"
    );
    for t in slow {
        assert_eq!(t.join().unwrap(), 200);
    }
    // Both slots are free again.
    assert_eq!(get(&c, "/fast", &[]).status, 200);
}

#[test]
fn a_waiting_request_gets_a_slot_freed_in_time() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(&origin, "{ max: 2, queue_timeout: 10s }"));
    let c = pylon.client();
    let slow = in_flight(&c, &origin, "/slow/700", &[], 2);
    let started = Instant::now();
    assert_eq!(get(&c, "/fast", &[]).status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "went through while both slots were taken"
    );
    for t in slow {
        assert_eq!(t.join().unwrap(), 200);
    }
}

#[test]
fn each_key_has_its_own_slots() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(
        &origin,
        "{ max: 1, key: \"header:X-Tenant\", queue_timeout: 0s }",
    ));
    let c = pylon.client();
    let slow = in_flight(&c, &origin, "/slow/1500", &[("X-Tenant", "a")], 1);
    assert_eq!(get(&c, "/", &[("X-Tenant", "a")]).status, 503);
    assert_eq!(get(&c, "/", &[("X-Tenant", "b")]).status, 200);
    // Without the header, the client's address is the key: not tenant a's slot.
    assert_eq!(get(&c, "/", &[]).status, 200);
    assert_eq!(slow.into_iter().next().unwrap().join().unwrap(), 200);
}

#[test]
fn slots_come_back_after_upstream_errors_refusals_and_client_disconnects() {
    let origin = Origin::start("app");
    let dead = crate::harness::closed_addr();
    let yaml = format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
  dead: {{ servers: ["{dead}"] }}
routes:
  - name: down
    rule: "PathPrefix(`/down`)"
    upstream: dead
    middlewares: [{{ concurrency_limit: {{ max: 1, queue_timeout: 0s }} }}]
  - name: limited
    rule: "PathPrefix(`/limited`)"
    upstream: app
    middlewares:
      - concurrency_limit: {{ max: 1, queue_timeout: 0s }}
      - rate_limit: {{ average: 1, period: 1h, burst: 1 }}
  - name: all
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares: [{{ concurrency_limit: {{ max: 1, queue_timeout: 10s }} }}]
"#,
        origin = origin.address()
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();

    // A failed upstream request gives its slot back: never 503.
    for _ in 0..4 {
        assert_eq!(get(&c, "/down", &[]).status, 502);
    }
    // So does a request a later middleware refused.
    assert_eq!(get(&c, "/limited", &[]).status, 200);
    assert_eq!(get(&c, "/limited", &[]).status, 429);
    assert_eq!(get(&c, "/limited", &[]).status, 429);

    // A client that hangs up while its request is at the origin gives its slot back.
    let before = origin.hits();
    let mut gone = TcpStream::connect(pylon.addr()).unwrap();
    gone.write_all(b"GET /slow/1000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the request reaches the origin",
        || origin.hits() == before + 1,
    );
    drop(gone);
    // Waits for the slot (queue_timeout 10s): a leaked slot would make this a 503.
    assert_eq!(get(&c, "/fast", &[]).status, 200);
    assert_eq!(get(&c, "/fast", &[]).status, 200);
}

#[test]
fn check_refuses_bad_concurrency_limit_settings_with_their_place() {
    let text = crate::harness::pylon::check_refuses(
        r#"listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams: { app: { servers: ["127.0.0.1:9000"] } }
middlewares:
  zero: { concurrency_limit: { max: 0, key: tenant } }
routes: []
"#,
    );
    for expected in [
        "pylon.yaml:4:37: middlewares.zero.concurrency_limit.max: max must be at least 1, found 0",
        "pylon.yaml:4:45: middlewares.zero.concurrency_limit.key: expected `client_ip`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
