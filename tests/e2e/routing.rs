//! Routing through the binary: every matcher, priorities, listeners, 404.

use crate::harness::{Client, Origin, Pylon};

/// One origin per route, so the answer says which route matched.
struct Setup {
    pylon: Pylon,
    _origins: Vec<Origin>,
}

fn setup(routes: &[(&str, &str, Option<i64>)]) -> Setup {
    let origins: Vec<Origin> = routes
        .iter()
        .map(|(name, _, _)| Origin::start(name))
        .collect();
    let mut yaml =
        String::from("listeners:\n  - name: web\n    address: \"@listen0@\"\nupstreams:\n");
    for origin in &origins {
        yaml.push_str(&format!(
            "  {}:\n    servers: [\"{}\"]\n",
            origin.id,
            origin.address()
        ));
    }
    yaml.push_str("routes:\n");
    for (name, rule, priority) in routes {
        yaml.push_str(&format!(
            "  - name: {name}\n    rule: '{rule}'\n    upstream: {name}\n"
        ));
        if let Some(p) = priority {
            yaml.push_str(&format!("    priority: {p}\n"));
        }
    }
    Setup {
        pylon: Pylon::start(&yaml),
        _origins: origins,
    }
}

#[test]
fn routes_by_host_ignoring_case_and_port_with_wildcards() {
    let s = setup(&[
        ("api", "Host(`api.example.com`)", None),
        ("wild", "Host(`*.example.com`)", None),
        ("apex", "Host(`example.com`)", None),
    ]);
    let c = s.pylon.client();
    assert_eq!(c.get_host("api.example.com", "/").served_by(), "api");
    assert_eq!(c.get_host("API.Example.COM:8080", "/").served_by(), "api");
    assert_eq!(c.get_host("a.b.example.com", "/").served_by(), "wild");
    assert_eq!(c.get_host("example.com", "/").served_by(), "apex");
    let miss = c.get_host("example.org", "/");
    assert_eq!(miss.status, 404);
}

#[test]
fn absolute_form_target_routes_on_its_authority() {
    let s = setup(&[
        ("api", "Host(`api.example.com`) && Path(`/x`)", None),
        ("other", "Host(`other.example.com`)", None),
    ]);
    let c = s.pylon.client();
    let r = c.request(
        "GET",
        "http://api.example.com/x",
        &[("Host", "api.example.com")],
    );
    assert_eq!(r.served_by(), "api");
    assert_eq!(r.json()["path"], "/x");
    // A Host header that contradicts the target is refused (Pingora's request smuggling
    // guard), never routed by either value.
    let r = c.request(
        "GET",
        "http://api.example.com/x",
        &[("Host", "other.example.com")],
    );
    assert_eq!(r.status, 400);
}

#[test]
fn routes_by_path_and_prefix_and_regexp() {
    let s = setup(&[
        ("exact", "Path(`/health`)", None),
        ("prefix", "PathPrefix(`/api`)", None),
        ("regexp", "PathRegexp(`^/users/[0-9]+$`)", None),
    ]);
    let c = s.pylon.client();
    assert_eq!(c.get("/health").served_by(), "exact");
    assert_eq!(c.get("/health/x").status, 404);
    assert_eq!(c.get("/api").served_by(), "prefix");
    assert_eq!(c.get("/apix/y?q=1").served_by(), "prefix");
    let users = c.get("/users/42");
    assert_eq!(users.served_by(), "regexp");
    assert_eq!(users.json()["path"], "/users/42");
    assert_eq!(c.get("/users/abc").status, 404);
}

#[test]
fn routes_by_method_header_and_query() {
    let s = setup(&[
        ("post", "Method(`POST`) && Path(`/m`)", None),
        ("get", "Method(`GET`) && Path(`/m`)", None),
        ("hdr", "Header(`X-Tenant`, `blue`)", None),
        ("hdrre", "HeaderRegexp(`X-Version`, `^v[0-9]+$`)", None),
        ("q", "Query(`debug`, `1`)", None),
        ("qre", "QueryRegexp(`lang`, `^(en|fr)$`)", None),
    ]);
    let c = s.pylon.client();
    let h = [("Host", "localhost")];
    assert_eq!(c.request("POST", "/m", &h).served_by(), "post");
    assert_eq!(c.request("GET", "/m", &h).served_by(), "get");
    assert_eq!(c.request("DELETE", "/m", &h).status, 404);
    assert_eq!(
        c.request("GET", "/", &[("Host", "x"), ("x-tenant", "blue")])
            .served_by(),
        "hdr"
    );
    assert_eq!(
        c.request("GET", "/", &[("Host", "x"), ("X-Tenant", "red")])
            .status,
        404
    );
    assert_eq!(
        c.request("GET", "/", &[("Host", "x"), ("X-Version", "v2")])
            .served_by(),
        "hdrre"
    );
    assert_eq!(c.get("/?debug=1").served_by(), "q");
    assert_eq!(c.get("/?debug=0").status, 404);
    assert_eq!(c.get("/?a=b&lang=fr").served_by(), "qre");
    assert_eq!(c.get("/?lang=de").status, 404);
}

#[test]
fn routes_by_client_ip_v4_cidrs() {
    let s = setup(&[
        ("local1", "ClientIP(`127.0.0.1`)", Some(2)),
        (
            "other",
            "ClientIP(`127.0.0.0/8`) || ClientIP(`::1/128`)",
            Some(1),
        ),
    ]);
    let addr = s.pylon.addr();
    assert_eq!(Client::new(addr).get("/").served_by(), "local1");
    assert_eq!(
        Client::from_source(addr, "127.0.0.2").get("/").served_by(),
        "other"
    );
}

#[test]
fn boolean_operators_and_precedence() {
    // `&&` binds tighter than `||`: (Host a && Path /x) || Path /y
    let s = setup(&[(
        "combo",
        "Host(`a.test`) && Path(`/x`) || Path(`/y`) && !Method(`DELETE`)",
        None,
    )]);
    let c = s.pylon.client();
    assert_eq!(c.get_host("a.test", "/x").served_by(), "combo");
    assert_eq!(c.get_host("b.test", "/y").served_by(), "combo");
    assert_eq!(c.get_host("b.test", "/x").status, 404);
    assert_eq!(c.request("DELETE", "/y", &[("Host", "b.test")]).status, 404);
}

#[test]
fn priority_explicit_beats_rule_length_and_longer_rule_wins_by_default() {
    let s = setup(&[
        ("short", "PathPrefix(`/a`)", None),
        ("long", "PathPrefix(`/a/b`)", None),
        ("boosted", "PathPrefix(`/a/b/c`)", Some(1)),
        ("top", "PathPrefix(`/z`)", Some(1000)),
        ("zlong", "PathPrefix(`/z/very/long/prefix`)", None),
    ]);
    let c = s.pylon.client();
    assert_eq!(c.get("/a/x").served_by(), "short");
    assert_eq!(c.get("/a/b/x").served_by(), "long");
    // `boosted` has priority 1, lower than `long`'s default (its rule length).
    assert_eq!(c.get("/a/b/c").served_by(), "long");
    assert_eq!(c.get("/z/very/long/prefix").served_by(), "top");
}

#[test]
fn no_route_is_404_with_json_body_and_request_id() {
    let s = setup(&[("only", "Path(`/only`)", None)]);
    let c = s.pylon.client();
    let r = c.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["error"], "no route");
    let id = body["request_id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(r.header("x-request-id"), Some(id));
    // A client-sent id is echoed.
    let r = c.request(
        "GET",
        "/nope",
        &[("Host", "x"), ("X-Request-ID", "trace-me-1")],
    );
    assert_eq!(r.json()["request_id"], "trace-me-1");
}

#[test]
fn routes_can_be_restricted_to_listeners() {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
listeners:
  - name: public
    address: "@listen0@"
  - name: internal
    address: "@listen1@"
upstreams:
  app:
    servers: ["{}"]
routes:
  - name: admin
    rule: "PathPrefix(`/admin`)"
    upstream: app
    listeners: [internal]
  - name: hello
    rule: "Path(`/hello`)"
    respond: {{ status: 200, body: "hello" }}
"#,
        origin.address()
    );
    let pylon = Pylon::start(&yaml);
    let public = Client::new(pylon.listeners[0]);
    let internal = Client::new(pylon.listeners[1]);
    assert_eq!(public.get("/admin/x").status, 404);
    assert_eq!(internal.get("/admin/x").served_by(), "app");
    assert_eq!(public.get("/hello").text(), "hello");
    assert_eq!(internal.get("/hello").text(), "hello");
}
