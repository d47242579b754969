//! The `ip_filter` middleware through the binary: allow and deny lists (IPv4, IPv6), the
//! client address read behind trusted proxies, and `{client_ip}` after it.

use crate::harness::{Client, Origin, Pylon};

struct Setup {
    pylon: Pylon,
    origin: Origin,
}

fn setup() -> Setup {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
listeners:
  - {{ name: v4, address: "@listen0@" }}
  - {{ name: v6, address: "@v6listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
middlewares:
  show-client:
    headers: {{ request: {{ set: {{ X-Client: "{{client_ip}}" }} }} }}
routes:
  - name: allow
    rule: "PathPrefix(`/allow`)"
    upstream: app
    middlewares: [{{ ip_filter: {{ allow: [127.0.0.1, "::1"] }} }}, show-client]
  - name: deny
    rule: "PathPrefix(`/deny`)"
    upstream: app
    middlewares: [{{ ip_filter: {{ deny: [127.0.0.2/32, "::1/128"] }} }}, show-client]
  - name: proxied
    rule: "PathPrefix(`/proxied`)"
    upstream: app
    middlewares:
      - ip_filter: {{ allow: [203.0.113.0/24], trusted_proxies: [127.0.0.1, 10.0.0.0/8] }}
      - show-client
  - name: depth
    rule: "PathPrefix(`/depth`)"
    upstream: app
    middlewares:
      - ip_filter: {{ allow: [203.0.113.0/24], trusted_proxies: [127.0.0.1], depth: 2 }}
      - show-client
"#,
        origin = origin.address()
    );
    Setup {
        pylon: Pylon::start(&yaml),
        origin,
    }
}

fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> crate::harness::client::Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", path, &h)
}

#[test]
fn allow_and_deny_by_ipv4() {
    let s = setup();
    let one = Client::from_source(s.pylon.addr(), "127.0.0.1");
    let two = Client::from_source(s.pylon.addr(), "127.0.0.2");
    let r = get(&one, "/allow", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("127.0.0.1"));
    let r = get(&two, "/allow", &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "client address not allowed");
    assert_eq!(s.origin.hits(), 1);
    assert_eq!(get(&one, "/deny", &[]).status, 200);
    assert_eq!(get(&two, "/deny", &[]).status, 403);
    assert_eq!(s.origin.hits(), 2);
}

#[test]
fn allow_and_deny_by_ipv6() {
    let s = setup();
    let v6 = Client::new(s.pylon.listeners[1]);
    let r = get(&v6, "/allow", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("::1"));
    assert_eq!(get(&v6, "/deny", &[]).status, 403);
    assert_eq!(s.origin.hits(), 1);
}

#[test]
fn trusted_proxy_forwarding_headers_name_the_client() {
    let s = setup();
    let proxy = Client::from_source(s.pylon.addr(), "127.0.0.1");
    let r = get(&proxy, "/proxied", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("203.0.113.9"));
    // Walking from the right past trusted proxies (10.0.0.0/8); the spoofed leftmost entry
    // is never reached.
    let r = get(
        &proxy,
        "/proxied",
        &[
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.5"),
            ("X-Forwarded-For", "10.1.1.1"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("203.0.113.5"));
    // Forwarded (RFC 7239) when there is no X-Forwarded-For.
    let r = get(
        &proxy,
        "/proxied",
        &[(
            "Forwarded",
            "for=\"203.0.113.7:4711\";proto=https, for=10.0.0.3",
        )],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("203.0.113.7"));
    // Garbage ends the walk: the last good address (the trusted peer) is refused.
    let r = get(
        &proxy,
        "/proxied",
        &[("X-Forwarded-For", "203.0.113.9, bogus")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(s.origin.hits(), 3);
}

#[test]
fn untrusted_peer_cannot_spoof_its_address() {
    let s = setup();
    let stranger = Client::from_source(s.pylon.addr(), "127.0.0.2");
    let r = get(&stranger, "/proxied", &[("X-Forwarded-For", "203.0.113.9")]);
    assert_eq!(r.status, 403);
    assert_eq!(s.origin.hits(), 0);
    // Without trusted proxies forwarding headers are never read.
    let r = get(&stranger, "/allow", &[("X-Forwarded-For", "127.0.0.1")]);
    assert_eq!(r.status, 403);
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn depth_takes_the_nth_entry_from_the_right() {
    let s = setup();
    let proxy = Client::from_source(s.pylon.addr(), "127.0.0.1");
    let r = get(
        &proxy,
        "/depth",
        &[("X-Forwarded-For", "198.51.100.1, 203.0.113.5, 192.0.2.44")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("203.0.113.5"));
    // Fewer entries than the depth: the peer is the client (and is refused here).
    let r = get(&proxy, "/depth", &[("X-Forwarded-For", "203.0.113.5")]);
    assert_eq!(r.status, 403);
    assert_eq!(s.origin.hits(), 1);
}

#[test]
fn bad_cidrs_and_depth_without_proxies_are_refused_by_check() {
    let text = crate::harness::pylon::check_refuses(
        "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares: [{ ip_filter: { allow: [10.0.0.0/8, 10.0.0.0/40], depth: 1 } }]\n",
    );
    assert!(text.contains("pylon.yaml:7:54: routes[0].middlewares[0].ip_filter.allow[1]: invalid CIDR \"10.0.0.0/40\""), "{text}");
    assert!(
        text.contains("ip_filter.depth: `depth` needs `trusted_proxies`"),
        "{text}"
    );
}
