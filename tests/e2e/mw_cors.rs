//! The `cors` middleware through the binary: what the origin received and what the
//! client received.

use crate::harness::{Client, Origin, Pylon};

struct Setup {
    pylon: Pylon,
    origin: Origin,
}

/// Routes: `/strict` (listed origins, credentials, everything set), `/any` (`*`),
/// `/missing` (a later `respond` answers 404), `/down` (502), `/varied` (an upstream that
/// answers with its own `Vary`: Pylon's second listener).
fn setup() -> Setup {
    let origin = Origin::start("app");
    let dead = crate::harness::closed_addr();
    let yaml = format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
  - {{ name: inner, address: "@listen1@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
  dead: {{ servers: ["{dead}"] }}
  varying: {{ servers: ["@listen1@"] }}
middlewares:
  strict:
    cors:
      allowed_origins: ["https://app.example.com", "https://*.example.org"]
      allowed_methods: [GET, POST, PUT]
      allowed_headers: [X-Token, Content-Type]
      exposed_headers: [X-Total, X-Page]
      allow_credentials: true
      max_age: 10m
routes:
  - name: strict
    rule: "PathPrefix(`/strict`)"
    upstream: app
    listeners: [web]
    middlewares: [strict]
  - name: any
    rule: "PathPrefix(`/any`)"
    upstream: app
    listeners: [web]
    middlewares: [{{ cors: {{ allowed_origins: ["*"], exposed_headers: [X-Total] }} }}]
  - name: any-credentials
    rule: "PathPrefix(`/anycred`)"
    upstream: app
    listeners: [web]
    middlewares: [{{ cors: {{ allowed_origins: ["*", "https://app.example.com"], allow_credentials: false }} }}]
  - name: missing
    rule: "PathPrefix(`/missing`)"
    listeners: [web]
    middlewares: [strict, {{ respond: {{ status: 404, body: nope }} }}]
  - name: down
    rule: "PathPrefix(`/down`)"
    upstream: dead
    listeners: [web]
    middlewares: [strict]
  - name: varied
    rule: "PathPrefix(`/varied`)"
    upstream: varying
    listeners: [web]
    middlewares: [strict]
  - name: varying-upstream
    rule: "PathPrefix(`/`)"
    listeners: [inner]
    respond: {{ status: 200, headers: {{ Vary: Accept-Encoding }}, body: varied }}
"#,
        origin = origin.address()
    );
    Setup {
        pylon: Pylon::start(&yaml),
        origin,
    }
}

fn preflight(
    c: &Client,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> crate::harness::client::Response {
    let mut h = vec![
        ("Host", "api.example.com"),
        ("Origin", origin),
        ("Access-Control-Request-Method", method),
    ];
    if !headers.is_empty() {
        h.push(("Access-Control-Request-Headers", headers));
    }
    c.request("OPTIONS", path, &h)
}

fn get_from(c: &Client, path: &str, origin: &str) -> crate::harness::client::Response {
    c.request(
        "GET",
        path,
        &[("Host", "api.example.com"), ("Origin", origin)],
    )
}

#[test]
fn allowed_preflight_is_answered_by_pylon_with_every_header() {
    let s = setup();
    let c = s.pylon.client();
    let r = preflight(
        &c,
        "/strict/items",
        "https://app.example.com",
        "PUT",
        "x-token, Content-Type",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, PUT")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("x-token, content-type")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(
        r.header("vary").unwrap().starts_with("Origin"),
        "{:?}",
        r.headers
    );
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(s.origin.hits(), 0, "the upstream never sees a preflight");
}

#[test]
fn refused_preflights_get_403_without_cors_headers() {
    let s = setup();
    let c = s.pylon.client();
    for (origin, method, headers) in [
        ("https://evil.test", "GET", ""),
        ("https://app.example.com", "DELETE", ""),
        ("https://app.example.com", "GET", "X-Token, X-Secret"),
    ] {
        let r = preflight(&c, "/strict/items", origin, method, headers);
        assert_eq!(r.status, 403, "{origin} {method} {headers}");
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("access-control-allow-methods"), None);
        assert!(r.json()["error"]
            .as_str()
            .unwrap()
            .contains("CORS preflight refused"));
    }
    assert_eq!(s.origin.hits(), 0);
    // An OPTIONS without Access-Control-Request-Method is not a preflight: it goes upstream.
    let r = c.request(
        "OPTIONS",
        "/strict/x",
        &[("Host", "a"), ("Origin", "https://app.example.com")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(s.origin.hits(), 1);
}

#[test]
fn actual_requests_get_origin_credentials_exposed_and_vary() {
    let s = setup();
    let c = s.pylon.client();
    let r = get_from(&c, "/strict/items", "https://app.example.com");
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by(), "app");
    assert_eq!(
        r.origin_header("origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total, X-Page")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    // A disallowed origin is still served (the browser enforces CORS), without CORS
    // headers, but with Vary so caches keep the two apart.
    let r = get_from(&c, "/strict/items", "https://evil.test");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.header("access-control-expose-headers"), None);
    assert_eq!(r.header("vary"), Some("Origin"));
}

#[test]
fn wildcard_subdomain_matches_whole_labels_with_the_same_scheme() {
    let s = setup();
    let c = s.pylon.client();
    for ok in ["https://a.example.org", "https://deep.a.example.org"] {
        let r = get_from(&c, "/strict/x", ok);
        assert_eq!(r.header("access-control-allow-origin"), Some(ok), "{ok}");
        let p = preflight(&c, "/strict/x", ok, "POST", "");
        assert_eq!(p.status, 204, "{ok}");
        assert_eq!(p.header("access-control-allow-origin"), Some(ok));
    }
    for bad in [
        "https://example.org",
        "https://evilexample.org",
        "https://evil-example.org",
        "http://a.example.org",
        "https://a.example.org:8443",
        "https://a.example.org.evil.test",
    ] {
        let r = get_from(&c, "/strict/x", bad);
        assert_eq!(r.header("access-control-allow-origin"), None, "{bad}");
        assert_eq!(
            preflight(&c, "/strict/x", bad, "GET", "").status,
            403,
            "{bad}"
        );
    }
}

#[test]
fn star_without_credentials_answers_star_and_does_not_vary() {
    let s = setup();
    let c = s.pylon.client();
    let r = get_from(&c, "/any/x", "https://whoever.test");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Total"));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    assert_eq!(r.header("vary"), None);
    let p = preflight(&c, "/any/x", "https://whoever.test", "PATCH", "X-Anything");
    assert_eq!(p.status, 204);
    assert_eq!(p.header("access-control-allow-origin"), Some("*"));
    assert_eq!(p.header("access-control-allow-headers"), Some("x-anything"));
    assert_eq!(p.header("access-control-allow-credentials"), None);
    // No Origin: no CORS headers at all.
    let r = c.get("/any/x");
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(s.origin.hits(), 2);
}

#[test]
fn star_with_credentials_is_refused_by_the_config() {
    let text = crate::harness::pylon::check_refuses(
        "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares: [{ cors: { allowed_origins: [\"*\"], allow_credentials: true } }]\n",
    );
    assert!(text.contains("routes[0].middlewares[0].cors.allowed_origins[0]: origin `*` cannot be used with `allow_credentials: true`"), "{text}");
}

#[test]
fn star_beside_listed_origins_without_credentials_still_answers_star() {
    let s = setup();
    let r = get_from(&s.pylon.client(), "/anycred/x", "https://app.example.com");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn vary_is_appended_to_the_upstreams_own() {
    let s = setup();
    let r = get_from(&s.pylon.client(), "/varied/x", "https://app.example.com");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "varied");
    assert_eq!(r.header("vary"), Some("Accept-Encoding, Origin"));
    assert_eq!(
        r.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("vary"))
            .count(),
        1
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}

#[test]
fn generated_errors_carry_cors_headers() {
    let s = setup();
    let c = s.pylon.client();
    let r = get_from(&c, "/missing/x", "https://app.example.com");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "nope");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = get_from(&c, "/down/x", "https://app.example.com");
    assert_eq!(r.status, 502);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("X-Total, X-Page")
    );
}
