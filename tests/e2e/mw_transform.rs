//! The `transform` middleware through the binary: what the origin received and what the
//! client received.

use crate::harness::configs::one_upstream;
use crate::harness::pylon::run_cli;
use crate::harness::tempdir::TempDir;
use crate::harness::{Origin, Pylon};

/// Every value the origin received for header `name`, in order.
fn origin_values(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
        })
        .filter_map(|pair| pair[1].as_str().map(str::to_string))
        .collect()
}

/// One upstream, one catch-all route `all` with `middlewares` (a YAML flow list).
fn with_middlewares(origin: &Origin, middlewares: &str) -> String {
    one_upstream(
        &format!("[\"{}\"]", origin.address()),
        "",
        &format!("    middlewares: {middlewares}"),
    )
}

#[test]
fn every_request_operation_in_the_compact_form() {
    let origin = Origin::start("app");
    let ops = "StripPrefix(`/api`); AddPrefix(`/v2`); ReplaceHeader(`X-Who`, `{client_ip}`); \
               AppendHeader(`X-Multi`, `two`); DeleteHeader(`X-Secret`); \
               ReplaceQuery(`page`, `{route}`); AppendQuery(`tag`, \"a b&c\"); \
               DeleteQuery(`debug`); SetMethod(`PUT`)";
    let pylon = Pylon::start(&with_middlewares(
        &origin,
        &format!("[{{ transform: {{ request: '{ops}' }} }}]"),
    ));
    let r = pylon.client().request(
        "GET",
        "/api/users?page=1&debug=1&keep=x%2Fy",
        &[("X-Multi", "one"), ("X-Secret", "s")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["method"], "PUT");
    assert_eq!(echo["path"], "/v2/users");
    // `page` replaced in place, `debug` gone, the untouched pair byte for byte, the
    // appended value percent-encoded.
    assert_eq!(echo["query"], "page=all&keep=x%2Fy&tag=a%20b%26c");
    assert_eq!(origin_values(&echo, "x-who"), ["127.0.0.1"]);
    assert_eq!(origin_values(&echo, "x-multi"), ["one", "two"]);
    assert!(origin_values(&echo, "x-secret").is_empty());
}

/// The cases Jokoway documents, plus what this gateway does with `/apix`.
#[test]
fn jokoway_path_cases() {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  app:
    servers: ["{}"]
routes:
  - name: strip
    rule: "PathPrefix(`/api/v1`)"
    priority: 30
    upstream: app
    middlewares: [{{ transform: {{ request: "StripPrefix(`/api/v1`)" }} }}]
  - name: rewrite
    rule: "PathPrefix(`/api/`)"
    priority: 20
    upstream: app
    middlewares: [{{ transform: {{ request: "RewritePath(`^/api/(.*)`, `/v2/$1`)" }} }}]
  - name: add
    rule: "Path(`/`)"
    priority: 10
    upstream: app
    middlewares: [{{ transform: {{ request: "AddPrefix(`/v2`)" }} }}]
  - name: strip-plain
    rule: "PathPrefix(`/svc`)"
    priority: 5
    upstream: app
    middlewares: [{{ transform: {{ request: "StripPrefix(`/svc`)" }} }}]
"#,
        origin.address()
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let seen = |target: &str| {
        let r = c.get(target);
        assert_eq!(r.status, 200, "{target}: {}", r.text());
        let echo = r.json();
        (
            echo["path"].as_str().unwrap().to_string(),
            echo["query"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(seen("/api/v1/users"), ("/users".into(), "".into()));
    assert_eq!(seen("/api/v1"), ("/".into(), "".into()));
    assert_eq!(
        seen("/api/v1/users?id=7&x"),
        ("/users".into(), "id=7&x".into())
    );
    assert_eq!(seen("/api/v1?id=7"), ("/".into(), "id=7".into()));
    assert_eq!(seen("/"), ("/v2/".into(), "".into()));
    assert_eq!(seen("/api/users?q=1"), ("/v2/users".into(), "q=1".into()));
    // A plain string prefix, as the route's PathPrefix matched it (Traefik's behaviour).
    assert_eq!(seen("/svcx/a"), ("/x/a".into(), "".into()));
}

#[test]
fn structured_form_named_captures_and_template_variables() {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  app:
    servers: ["{}"]
routes:
  - name: users
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares:
      - transform:
          request:
            - rewrite_path: {{ regex: "^/u/(?P<id>[0-9]+)", replacement: "/users/$id/profile" }}
            - replace_header: {{ name: X-Tenant-Copy, value: "t={{header.X-Tenant}} r={{route}} {{{{lit}}}}" }}
            - append_header: {{ name: X-Ip, value: "{{client_ip}}" }}
            - delete_header: X-Drop
            - replace_query: {{ name: who, value: "{{header.X-Tenant}}" }}
            - append_query: {{ name: n, value: 1 }}
            - delete_query: debug
            - set_method: POST
"#,
        origin.address()
    );
    let pylon = Pylon::start(&yaml);
    let r = pylon.client().request(
        "GET",
        "/u/42?debug=true&a=b",
        &[("X-Tenant", "acme corp"), ("X-Drop", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/users/42/profile");
    assert_eq!(echo["query"], "a=b&who=acme%20corp&n=1");
    assert_eq!(
        origin_values(&echo, "x-tenant-copy"),
        ["t=acme corp r=users {lit}"]
    );
    assert_eq!(origin_values(&echo, "x-ip"), ["127.0.0.1"]);
    assert!(origin_values(&echo, "x-drop").is_empty());
}

#[test]
fn response_operations_in_both_forms() {
    let origin = Origin::start("app");
    // The response side runs in reverse order: `headers` adds X-Extra, then each transform
    // sees it.
    let compact = "[{ transform: { response: 'ReplaceHeader(`Content-Type`, `text/x-test`); AppendHeader(`X-Route`, `{route}`); AppendHeader(`X-Route`, `{{2}}`); DeleteHeader(`X-Extra`)' } }, { headers: { response: { set: { X-Extra: \"1\" } } } }]";
    let pylon = Pylon::start(&with_middlewares(&origin, compact));
    let r = pylon.client().get("/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/x-test"));
    let routes: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-route"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(routes, ["all", "{2}"]);
    assert_eq!(r.header("x-extra"), None);

    let structured = "[{ transform: { response: [{ replace_header: { name: Content-Type, value: text/x-test } }, { delete_header: X-Extra }] } }, { headers: { response: { set: { X-Extra: \"1\" } } } }]";
    let pylon = Pylon::start(&with_middlewares(&origin, structured));
    let r = pylon.client().get("/x");
    assert_eq!(r.header("content-type"), Some("text/x-test"));
    assert_eq!(r.header("x-extra"), None);
}

#[test]
fn response_operations_also_reach_pylons_own_errors() {
    // The origin is gone: Pylon answers 502 itself, and the response side still runs.
    let mut origin = Origin::start("gone");
    let address = origin.address();
    origin.stop();
    let yaml = one_upstream(
        &format!("[\"{address}\"]"),
        "",
        "    middlewares: [{ transform: { response: 'ReplaceHeader(`X-Why`, `{path}`)' } }]",
    );
    let pylon = Pylon::start(&yaml);
    let r = pylon.client().get("/down");
    assert!(r.status >= 500, "{}", r.status);
    assert_eq!(r.header("x-why"), Some("/down"));
}

#[test]
fn check_refuses_a_bad_compact_string_at_its_character() {
    let dir = TempDir::new("transform-bad");
    let bad = r#"listeners:
  - name: web
    address: "127.0.0.1:18080"
upstreams:
  app:
    servers: ["127.0.0.1:3000"]
middlewares:
  api:
    transform: { request: "StripPrefix(`/api`); AddPrefx(`/v2`)" }
routes:
  - name: api
    rule: "PathPrefix(`/api`)"
    upstream: app
    middlewares: [api]
"#;
    let path = dir.write("pylon.yaml", bad);
    let out = run_cli(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The string's content starts at column 28; `AddPrefx` is its 22nd character.
    let expected = format!(
        "{}:9:49: middlewares.api.transform.request: unknown operation `AddPrefx`, did you mean `AddPrefix`?",
        path.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
