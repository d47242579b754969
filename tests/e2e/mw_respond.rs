//! The `respond` middleware through the binary: an unconditional mock (headers, body,
//! body file, HEAD), and a conditional one (`when`) that lets other requests through.

use crate::harness::tempdir::TempDir;
use crate::harness::{Client, Origin, Pylon};

struct Setup {
    pylon: Pylon,
    origin: Origin,
    _files: TempDir,
}

fn setup() -> Setup {
    let origin = Origin::start("app");
    let files = TempDir::new("respond-body");
    let body_file = files.write("mock.json", "{\"users\": []}\n");
    let yaml = format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
routes:
  - name: teapot
    rule: "PathPrefix(`/teapot`)"
    upstream: app
    middlewares:
      - headers: {{ response: {{ add: {{ X-Before: seen }} }} }}
      - respond:
          status: 418
          headers: {{ Content-Type: text/plain, X-Mock: "yes" }}
          body: short and stout
      - headers: {{ response: {{ add: {{ X-After: seen }} }} }}
  - name: file
    rule: "PathPrefix(`/users`)"
    middlewares: [{{ respond: {{ status: 200, headers: {{ Content-Type: application/json }}, body_file: "{body_file}" }} }}]
  - name: conditional
    rule: "PathPrefix(`/api`)"
    upstream: app
    middlewares:
      - ip_filter: {{ trusted_proxies: [127.0.0.1] }}
      - respond: {{ status: 503, body: maintenance, when: "Header(`X-Mock`, `1`) || ClientIP(`203.0.113.0/24`)" }}
"#,
        origin = origin.address(),
        body_file = body_file.display()
    );
    Setup {
        pylon: Pylon::start(&yaml),
        origin,
        _files: files,
    }
}

#[test]
fn unconditional_mock_with_status_headers_and_body() {
    let s = setup();
    let r = s.pylon.client().get("/teapot/x");
    assert_eq!(r.status, 418);
    assert_eq!(r.text(), "short and stout");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-mock"), Some("yes"));
    assert_eq!(r.header("content-length"), Some("15"));
    // The response side of the middlewares before it runs; the ones after never ran.
    assert_eq!(r.header("x-before"), Some("seen"));
    assert_eq!(r.header("x-after"), None);
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn head_gets_the_header_without_the_body() {
    let s = setup();
    let r = s
        .pylon
        .client()
        .request("HEAD", "/teapot", &[("Host", "localhost")]);
    assert_eq!(r.status, 418);
    assert_eq!(r.header("content-length"), Some("15"));
    assert!(r.body.is_empty());
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn body_file_is_served() {
    let s = setup();
    let r = s.pylon.client().get("/users");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), "{\"users\": []}\n");
}

#[test]
fn when_matching_answers_and_otherwise_the_upstream_does() {
    let s = setup();
    let c = s.pylon.client();
    let r = c.request("GET", "/api/x", &[("Host", "localhost"), ("X-Mock", "1")]);
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "maintenance");
    assert_eq!(s.origin.hits(), 0);
    let r = c.request("GET", "/api/x", &[("Host", "localhost"), ("X-Mock", "0")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by(), "app");
    assert_eq!(s.origin.hits(), 1);
    // `ClientIP` sees the address an earlier ip_filter read behind a trusted proxy.
    let proxy = Client::from_source(s.pylon.addr(), "127.0.0.1");
    let r = proxy.request(
        "GET",
        "/api/y",
        &[("Host", "localhost"), ("X-Forwarded-For", "203.0.113.8")],
    );
    assert_eq!(r.status, 503);
    let r = proxy.request(
        "GET",
        "/api/y",
        &[("Host", "localhost"), ("X-Forwarded-For", "198.51.100.8")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(s.origin.hits(), 2);
}

#[test]
fn bad_when_and_unreadable_body_file_are_refused_by_check() {
    let text = crate::harness::pylon::check_refuses(
        "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    middlewares:\n      - respond: { status: 200, body_file: /nonexistent/pylon-mock }\n      - respond: { status: 200, when: \"Header(`X`\" }\n",
    );
    assert!(
        text.contains(
            "routes[0].middlewares[0].respond.body_file: cannot read /nonexistent/pylon-mock"
        ),
        "{text}"
    );
    assert!(
        text.contains("routes[0].middlewares[1].respond.when: invalid rule"),
        "{text}"
    );
}
