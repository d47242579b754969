//! The `redirect` middleware through the binary: to HTTPS (query kept, port), by regex
//! (captures, named captures), statuses, and requests that pass through.

use crate::harness::{Origin, Pylon};

struct Setup {
    pylon: Pylon,
    origin: Origin,
}

fn setup() -> Setup {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
routes:
  - name: to-https
    rule: "PathPrefix(`/secure`)"
    middlewares: [{{ redirect: {{ scheme: https }} }}]
  - name: to-https-port
    rule: "PathPrefix(`/port`)"
    middlewares: [{{ redirect: {{ scheme: https, port: 8443, permanent: true }} }}]
  - name: moved
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares:
      - redirect:
          regex: "^http://([^/:]+)(:[0-9]+)?/old/(?P<rest>.*)$"
          replacement: "https://$1/new/$${{rest}}"
          permanent: true
  - name: regex-only
    rule: "PathPrefix(`/only`)"
    middlewares: [{{ redirect: {{ regex: "^http://[^/]+/only/go$", replacement: "/only/gone?via=redirect" }} }}]
"#,
        origin = origin.address()
    );
    Setup {
        pylon: Pylon::start(&yaml),
        origin,
    }
}

#[test]
fn http_to_https_keeps_host_path_and_query() {
    let s = setup();
    let c = s.pylon.client();
    let r = c.request(
        "GET",
        "/secure/a%20b?x=1&y=two",
        &[("Host", "shop.example.com:8080")],
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com/secure/a%20b?x=1&y=two")
    );
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
    let r = c.request("POST", "/secure/form", &[("Host", "shop.example.com")]);
    assert_eq!(r.status, 307);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com/secure/form")
    );
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn port_and_permanent_statuses() {
    let s = setup();
    let c = s.pylon.client();
    let r = c.request("GET", "/port/x?q", &[("Host", "shop.example.com:80")]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com:8443/port/x?q")
    );
    let r = c.request("HEAD", "/port/x", &[("Host", "shop.example.com")]);
    assert_eq!(r.status, 301);
    let r = c.request("PUT", "/port/x", &[("Host", "shop.example.com")]);
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com:8443/port/x")
    );
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn regex_expands_numbered_and_named_captures_and_keeps_the_query() {
    let s = setup();
    let c = s.pylon.client();
    let r = c.request(
        "GET",
        "/old/docs/intro?lang=en",
        &[("Host", "docs.test:8080")],
    );
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("https://docs.test/new/docs/intro?lang=en")
    );
    let r = c.request("DELETE", "/old/x", &[("Host", "docs.test")]);
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("https://docs.test/new/x"));
    // A replacement with its own query replaces the request's.
    let r = c.request("GET", "/only/go?drop=me", &[("Host", "docs.test")]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/only/gone?via=redirect"));
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn requests_that_do_not_match_pass_through() {
    let s = setup();
    let c = s.pylon.client();
    let r = c.request("GET", "/current/page?a=1", &[("Host", "docs.test")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by(), "app");
    assert_eq!(r.json()["path"], "/current/page");
    assert_eq!(s.origin.hits(), 1);
    // A redirect-only route whose redirect lets the request through answers 404.
    let r = c.request("GET", "/only/stay", &[("Host", "docs.test")]);
    assert_eq!(r.status, 404);
    assert_eq!(s.origin.hits(), 1);
}

#[test]
fn scheme_and_regex_together_are_refused_by_check() {
    let text = crate::harness::pylon::check_refuses(
        "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    middlewares: [{ redirect: { scheme: https, regex: \"(\", replacement: x } }]\n",
    );
    assert!(
        text.contains("redirect.regex: write `scheme` or `regex`, not both"),
        "{text}"
    );
    assert!(text.contains("redirect.regex: invalid regex"), "{text}");
}
