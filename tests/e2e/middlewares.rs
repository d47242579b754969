//! The middleware pipeline through the binary: named and inline instances, the order of
//! the request and response sides, answers that end the request side, `request_id`,
//! `headers`, and the shared error format.

use crate::harness::{Origin, Pylon};

/// One listener, upstream `app` at `origin`, `middlewares_yaml` at the top level and a
/// catch-all route using `route_list`.
fn config(origin: &Origin, middlewares_yaml: &str, route_list: &str) -> String {
    format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  app:
    servers: ["{}"]
middlewares:
{middlewares_yaml}
routes:
  - name: all
    rule: "PathPrefix(`/`)"
    upstream: app
    middlewares: {route_list}
"#,
        origin.address()
    )
}

#[test]
fn request_id_is_generated_sent_upstream_and_back() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&config(&origin, "  ids:\n    request_id:", "[ids]"));
    let c = pylon.client();
    let a = c.get("/");
    let b = c.get("/");
    let id_a = a.header("x-request-id").unwrap().to_string();
    assert_eq!(id_a.len(), 32, "{id_a}");
    assert_eq!(
        a.origin_header("x-request-id").as_deref(),
        Some(id_a.as_str())
    );
    assert_ne!(b.header("x-request-id"), Some(id_a.as_str()));
    // A sane incoming id is kept, both ways.
    let r = c.request("GET", "/", &[("X-Request-ID", "trace-42")]);
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    assert_eq!(r.origin_header("x-request-id").as_deref(), Some("trace-42"));
}

#[test]
fn request_id_custom_header_fresh_ids_and_error_bodies() {
    let origin = Origin::start("app");
    let yaml = config(
        &origin,
        "  ids:\n    request_id: { header: X-Trace-Id, keep_incoming: false, upstream: false }",
        "[ids]",
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let r = c.request("GET", "/", &[("X-Trace-Id", "from-client")]);
    let id = r.header("x-trace-id").unwrap().to_string();
    assert_ne!(id, "from-client");
    assert_eq!(id.len(), 32);
    // `upstream: false`: the origin sees the client's header, not the id.
    assert_eq!(
        r.origin_header("x-trace-id").as_deref(),
        Some("from-client")
    );
    // A Pylon-generated error carries the same id in its body and header.
    let mut origin = origin;
    origin.stop();
    let e = c.get("/");
    assert_eq!(e.status, 502);
    let body = e.json();
    assert_eq!(body["status"], 502);
    assert_eq!(body["request_id"].as_str(), e.header("x-trace-id"));
}

#[test]
fn headers_change_request_and_response_with_variables() {
    let origin = Origin::start("app");
    let mws = r#"  shape:
    headers:
      request:
        remove: [X-Debug]
        set: { X-Client: "{client_ip}", X-Route: "{route}", X-Brace: "{{literal}}" }
        add: { X-Tenant: "t-{header.X-Org}" }
      response:
        remove: [X-Powered-By]
        set: { X-Served-By: pylon }
        add: { Vary: Accept-Language }"#;
    let pylon = Pylon::start(&config(&origin, mws, "[shape]"));
    let c = pylon.client();
    let r = c.request(
        "GET",
        "/p?set_header=X-Powered-By%3Aphp&set_header=Vary%3AAccept",
        &[("X-Debug", "1"), ("X-Org", "acme"), ("X-Client", "spoofed")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-debug"), None);
    assert_eq!(r.origin_header("x-client").as_deref(), Some("127.0.0.1"));
    assert_eq!(r.origin_header("x-route").as_deref(), Some("all"));
    assert_eq!(r.origin_header("x-brace").as_deref(), Some("{literal}"));
    assert_eq!(r.origin_header("x-tenant").as_deref(), Some("t-acme"));
    assert_eq!(r.header("x-powered-by"), None);
    assert_eq!(r.header("x-served-by"), Some("pylon"));
    let vary: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("vary"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(vary, ["Accept", "Accept-Language"]);
}

#[test]
fn security_preset_and_server_header() {
    let origin = Origin::start("app");
    let mws = r#"  secure:
    headers:
      security: { preset: recommended, frame_options: SAMEORIGIN }
      server: on
  quiet:
    headers: { server: off }
  named:
    headers: { server: "edge/1" }"#;
    let yaml = config(&origin, mws, "[secure]")
        + "  - name: quiet\n    rule: \"PathPrefix(`/quiet`)\"\n    upstream: app\n    middlewares: [quiet]\n"
        + "  - name: named\n    rule: \"PathPrefix(`/named`)\"\n    upstream: app\n    middlewares: [named]\n";
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let r = c.get("/?set_header=X-Frame-Options%3Aupstream-choice&set_header=Server%3Aorigin");
    assert_eq!(
        r.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        r.header("referrer-policy"),
        Some("strict-origin-when-cross-origin")
    );
    // A header the upstream set is kept, not overwritten by the preset.
    assert_eq!(r.header("x-frame-options"), Some("upstream-choice"));
    assert!(
        r.header("server").unwrap().starts_with("Pylon/"),
        "{:?}",
        r.header("server")
    );
    let r = c.get("/?set_header=X-Frame-Options%3Ax");
    assert_eq!(r.header("x-frame-options"), Some("x"));
    let r = c.get("/");
    assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(
        c.get("/quiet?set_header=Server%3Aorigin").header("server"),
        None
    );
    assert_eq!(
        c.get("/named?set_header=Server%3Aorigin").header("server"),
        Some("edge/1")
    );
}

#[test]
fn request_side_runs_in_order_response_side_in_reverse() {
    let origin = Origin::start("app");
    let mws = r#"  first:
    headers:
      request: { set: { X-Order: first } }
      response: { set: { X-Order: first } }
  second:
    headers:
      request: { set: { X-Order: second } }
      response: { set: { X-Order: second } }"#;
    let pylon = Pylon::start(&config(&origin, mws, "[first, second]"));
    let r = pylon.client().get("/");
    // Upstream request: `second` runs after `first`, so its value is what leaves.
    assert_eq!(r.origin_header("x-order").as_deref(), Some("second"));
    // Response: reverse order, `first` runs last, so its value reaches the client.
    assert_eq!(r.header("x-order"), Some("first"));
}

#[test]
fn errors_are_json_html_or_text_as_the_client_accepts() {
    let origin = Origin::start("app");
    let yaml = config(&origin, "  ids:\n    request_id:", "[ids]")
        .replace("rule: \"PathPrefix(`/`)\"", "rule: \"PathPrefix(`/api`)\"");
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let json = c.get("/nowhere");
    assert_eq!(json.status, 404);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let body = json.json();
    assert_eq!(body["error"], "no route");
    assert_eq!(body["status"], 404);
    assert_eq!(body["request_id"].as_str(), json.header("x-request-id"));
    let html = c.request(
        "GET",
        "/nowhere",
        &[("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
    );
    assert_eq!(
        html.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        html.text().contains("<h1>404 Not Found</h1>"),
        "{}",
        html.text()
    );
    let text = c.request("GET", "/nowhere", &[("Accept", "text/plain")]);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(text.text().starts_with("404 no route\n"), "{}", text.text());
}

#[test]
fn error_pages_replace_the_default_body() {
    let mut origin = Origin::start("app");
    let dir = crate::harness::tempdir::TempDir::new("error-pages");
    let page = dir.write("down.html", "<p>down: {status} {error} ({request_id})</p>");
    let yaml = config(&origin, "  ids:\n    request_id:", "[ids]")
        + &format!(
            "error_pages:\n  \"404\": {{ body: \"nothing at all\", content_type: text/plain }}\n  5xx: {{ body_file: \"{}\" }}\n",
            page.display()
        );
    let yaml = yaml.replace("rule: \"PathPrefix(`/`)\"", "rule: \"PathPrefix(`/api`)\"");
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let r = c.get("/x");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.text(), "nothing at all");
    origin.stop();
    let r = c.request("GET", "/api", &[("X-Request-ID", "rid-7")]);
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.text(),
        "<p>down: 502 upstream unreachable or failed (rid-7)</p>"
    );
}

#[test]
fn an_answer_ends_the_request_side_and_earlier_middlewares_see_the_response() {
    let origin = Origin::start("app");
    let mws = r#"  before:
    headers: { response: { set: { X-Before: seen } } }
  mock:
    respond: { status: 418, body: "teapot", when: "Header(`X-Mock`, `1`)" }
  after:
    headers:
      request: { set: { X-After: ran } }
      response: { set: { X-After: seen } }"#;
    let pylon = Pylon::start(&config(&origin, mws, "[before, mock, after]"));
    let c = pylon.client();
    let mocked = c.request("GET", "/", &[("X-Mock", "1")]);
    assert_eq!(mocked.status, 418);
    assert_eq!(mocked.text(), "teapot");
    // The middleware before the answer sees the response; the one after never runs.
    assert_eq!(mocked.header("x-before"), Some("seen"));
    assert_eq!(mocked.header("x-after"), None);
    assert_eq!(origin.hits(), 0);
    // Without the condition the request goes on through `after` to the upstream.
    let passed = c.get("/");
    assert_eq!(passed.status, 200);
    assert_eq!(passed.origin_header("x-after").as_deref(), Some("ran"));
    assert_eq!(passed.header("x-after"), Some("seen"));
    assert_eq!(passed.header("x-before"), Some("seen"));
    assert_eq!(origin.hits(), 1);
}

#[test]
fn error_log_lines_name_the_route_and_the_request_id_the_client_saw() {
    let mut origin = Origin::start("app");
    let pylon = Pylon::start(&config(&origin, "  ids:\n    request_id:", "[ids]"));
    origin.stop();
    let r = pylon.client().get("/gone");
    assert_eq!(r.status, 502);
    let id = r.json()["request_id"].as_str().unwrap().to_string();
    let wanted = format!("route: all, request_id: {id}");
    // Pingora writes the line after the response; poll the log for it, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pylon.log().contains(&wanted) {
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {wanted:?}:\n{}",
            pylon.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
