//! The management API through the binary: every endpoint, credentials, optimistic
//! concurrency (ETag / If-Match), dry runs, validation errors, persistence across restarts
//! (config directory and single file), a refused reload shown in the status, the OpenAPI
//! document and Swagger UI served from the binary.

use std::time::{Duration, Instant};

use crate::harness::client::Response;
use crate::harness::pylon::run_cli;
use crate::harness::tempdir::TempDir;
use crate::harness::{Client, Origin, Pylon};

/// A bcrypt hash (cost 4) of `s3cret`, as `htpasswd -nbB -C 4 ops s3cret` writes one.
const OPS_HASH: &str = "$2b$04$FrvBsfRcGPwTFXGGyG6mVeY3ni/G4baB5S1LGOcMYAoYd2Ynfk9iO";

/// A config with a hand-written route `/hand` and the admin API on `@listen1@`.
fn base(origin: &str, admin_extra: &str) -> String {
    format!(
        r#"
reload: {{ interval: 100ms }}
listeners: [{{ name: web, address: "@listen0@" }}]
admin:
  listen: "@listen1@"
{admin_extra}
upstreams:
  hand: {{ servers: ["{origin}"] }}
routes:
  - {{ name: hand, rule: "PathPrefix(`/hand`)", upstream: hand }}
"#
    )
}

/// Pylon started with `-c DIR`, its config in `DIR/base.yaml`.
fn start_dir(origin: &str, admin_extra: &str) -> Pylon {
    Pylon::builder(&base(origin, admin_extra))
        .file_name("base.yaml")
        .config_dir("conf.d")
        .start()
}

fn admin(pylon: &Pylon) -> Client {
    Client::new(pylon.listeners[1])
}

/// A request to the admin API with `headers` (a Host is added) and a body.
fn call(pylon: &Pylon, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut all = vec![("Host", "admin")];
    all.extend_from_slice(headers);
    admin(pylon).request_with_body(method, path, &all, body.as_bytes())
}

fn json_call(pylon: &Pylon, method: &str, path: &str, body: &str) -> Response {
    call(
        pylon,
        method,
        path,
        &[("Content-Type", "application/json")],
        body,
    )
}

fn get(pylon: &Pylon, path: &str) -> Response {
    call(pylon, "GET", path, &[], "")
}

/// How many entries the array at `pointer` (a JSON pointer, `""` for the whole body) of
/// `GET path` has.
fn count(pylon: &Pylon, path: &str, pointer: &str) -> usize {
    let body = get(pylon, path).json();
    body.pointer(pointer)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("no array at `{pointer}` of {path}: {body}"))
        .len()
}

fn etag(r: &Response) -> String {
    r.header("etag")
        .unwrap_or_else(|| panic!("no ETag: {r:?}"))
        .to_string()
}

fn errors(r: &Response) -> String {
    r.json()["errors"].to_string()
}

/// Polls until `check` passes (at most 10 s).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("never happened: {what}");
}

#[test]
fn a_route_created_through_the_api_serves_at_once_and_stops_when_deleted() {
    let origin = Origin::start("hand");
    let api_origin = Origin::start("api");
    let pylon = start_dir(&origin.address(), "");
    assert_eq!(etag(&get(&pylon, "/api/v1/routes")), "\"1\"");
    assert_eq!(pylon.client().get("/new").status, 404);

    // JSON labelled as a form, as `curl -d` sends it.
    let up = call(
        &pylon,
        "POST",
        "/api/v1/upstreams",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!(
            r#"{{"name": "api", "servers": ["{}"]}}"#,
            api_origin.address()
        ),
    );
    assert_eq!(up.status, 201, "{}", up.text());
    assert_eq!(up.header("location"), Some("/api/v1/upstreams/api"));
    assert_eq!(etag(&up), "\"2\"");
    // YAML is accepted too.
    let route = call(
        &pylon,
        "POST",
        "/api/v1/routes",
        &[("Content-Type", "application/yaml")],
        "name: new\nrule: PathPrefix(`/new`)\nupstream: api\n",
    );
    assert_eq!(route.status, 201, "{}", route.text());
    assert_eq!(route.json()["rule"], "PathPrefix(`/new`)");
    assert_eq!(etag(&route), "\"3\"");
    assert_eq!(
        route.header("x-pylon-changes"),
        Some("routes: +1 ~0 -0; upstreams: api kept, hand kept")
    );
    // Served right after the 2xx, without waiting for anything.
    assert_eq!(pylon.client().get("/new/x").served_by(), "api");

    let list = get(&pylon, "/api/v1/routes").json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // `api.yaml` merges in file-name order, like any file of the directory.
    assert_eq!(names, ["new", "hand"]);
    assert_eq!(get(&pylon, "/api/v1/routes/new").json()["upstream"], "api");
    assert_eq!(get(&pylon, "/api/v1/routes/nope").status, 404);

    // PATCH: a merge patch on the route; PUT: the whole route.
    let patched = json_call(
        &pylon,
        "PATCH",
        "/api/v1/routes/new",
        r#"{"rule": "PathPrefix(`/newer`)"}"#,
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["upstream"], "api", "other fields kept");
    assert_eq!(pylon.client().get("/newer").served_by(), "api");
    assert_eq!(pylon.client().get("/new").status, 404);
    let replaced = json_call(
        &pylon,
        "PUT",
        "/api/v1/routes/new",
        r#"{"rule": "Path(`/put`)", "respond": {"status": 202, "body": "put"}}"#,
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(pylon.client().get("/put").text(), "put");
    // PUT of a new name creates it.
    let created = json_call(
        &pylon,
        "PUT",
        "/api/v1/routes/other",
        r#"{"rule": "Path(`/o`)", "upstream": "api"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());

    let deleted = call(&pylon, "DELETE", "/api/v1/routes/new", &[], "");
    assert_eq!(deleted.status, 204);
    assert_eq!(pylon.client().get("/put").status, 404);
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/routes/new", &[], "").status,
        404
    );
    // The hand-written route never moved.
    assert_eq!(pylon.client().get("/hand").served_by(), "hand");
}

#[test]
fn upstreams_and_middlewares_are_listed_patched_and_deleted_and_health_says_why() {
    let origin = Origin::start("hand");
    let a = Origin::start("a");
    let b = Origin::start("b");
    b.set_health(500);
    let pylon = start_dir(&origin.address(), "");
    let up = json_call(
        &pylon,
        "POST",
        "/api/v1/upstreams",
        &format!(
            r#"{{"name": "pool", "servers": ["{}", "{}"], "health_check": {{"path": "/health", "interval": "1s", "timeout": "800ms", "unhealthy_threshold": 1}}}}"#,
            a.address(),
            b.address()
        ),
    );
    assert_eq!(up.status, 201, "{}", up.text());
    let mw = json_call(
        &pylon,
        "POST",
        "/api/v1/middlewares",
        r#"{"name": "tag", "headers": {"response": {"set": {"X-Tag": "one"}}}}"#,
    );
    assert_eq!(mw.status, 201, "{}", mw.text());
    let route = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "p", "rule": "PathPrefix(`/p`)", "upstream": "pool", "middlewares": ["tag"]}"#,
    );
    assert_eq!(route.status, 201, "{}", route.text());
    assert_eq!(pylon.client().get("/p").header("x-tag"), Some("one"));

    let upstreams = get(&pylon, "/api/v1/upstreams").json();
    let names: Vec<&str> = upstreams
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hand", "pool"]);
    assert_eq!(get(&pylon, "/api/v1/middlewares").json()[0]["name"], "tag");
    assert_eq!(
        get(&pylon, "/api/v1/middlewares/tag").json()["headers"]["response"]["set"]["X-Tag"],
        "one"
    );

    // Health: `b` fails its check and says so; `a` passes.
    let mut h = serde_json::Value::Null;
    eventually("b is marked down, a is up", || {
        h = get(&pylon, "/api/v1/upstreams/pool/health").json();
        h["healthy"] == 1 && h["servers"].as_array().unwrap().len() == 2
    });
    let servers = h["servers"].as_array().unwrap();
    let down = servers
        .iter()
        .find(|s| s["server"] == b.address().as_str())
        .unwrap();
    assert_eq!(down["state"], "unhealthy");
    assert!(
        down["reason"]
            .as_str()
            .unwrap()
            .contains("active health check failed"),
        "{down}"
    );
    let up = servers
        .iter()
        .find(|s| s["server"] == a.address().as_str())
        .unwrap();
    assert_eq!(up["state"], "healthy");
    assert_eq!(up["reason"], "the active health check passes");
    assert_eq!(get(&pylon, "/api/v1/upstreams/nope/health").status, 404);

    let patched = json_call(
        &pylon,
        "PATCH",
        "/api/v1/middlewares/tag",
        r#"{"headers": {"response": {"set": {"X-Tag": "two"}}}}"#,
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(pylon.client().get("/p").header("x-tag"), Some("two"));
    let patched = json_call(
        &pylon,
        "PATCH",
        "/api/v1/upstreams/pool",
        r#"{"health_check": null}"#,
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert!(
        patched.json().get("health_check").is_none(),
        "{}",
        patched.text()
    );
    assert_eq!(count(&pylon, "/api/v1/upstreams/pool", "/servers"), 2);
    // PUT replaces the whole upstream, and the whole middleware.
    let replaced = json_call(
        &pylon,
        "PUT",
        "/api/v1/upstreams/pool",
        &format!(r#"{{"servers": ["{}"]}}"#, a.address()),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(
        count(&pylon, "/api/v1/upstreams/pool/health", "/servers"),
        1
    );
    let replaced = json_call(
        &pylon,
        "PUT",
        "/api/v1/middlewares/tag",
        r#"{"name": "tag", "headers": {"response": {"set": {"X-Tag": "three"}}}}"#,
    );
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    assert_eq!(pylon.client().get("/p").header("x-tag"), Some("three"));

    // Still used by the route: refused with the reason, nothing changes.
    let refused = call(&pylon, "DELETE", "/api/v1/upstreams/pool", &[], "");
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        errors(&refused).contains("unknown upstream `pool`"),
        "{}",
        refused.text()
    );
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/routes/p", &[], "").status,
        204
    );
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/upstreams/pool", &[], "").status,
        204
    );
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/middlewares/tag", &[], "").status,
        204
    );
    assert_eq!(
        get(&pylon, "/api/v1/middlewares").json(),
        serde_json::json!([])
    );
}

#[test]
fn credentials_are_required_when_configured_in_every_accepted_form() {
    let origin = Origin::start("hand");
    let pylon = Pylon::builder(&base(
        &origin.address(),
        &format!("  api_keys: [\"${{ADMIN_KEY}}\"]\n  basic_auth: [\"ops:{OPS_HASH}\"]"),
    ))
    .env("ADMIN_KEY", "k-0123456789")
    .start();
    let without = get(&pylon, "/api/v1/status");
    assert_eq!(without.status, 401);
    assert_eq!(without.json()["error"], "authentication required");
    assert!(without
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(
        call(
            &pylon,
            "GET",
            "/api/v1/routes",
            &[("X-API-Key", "wrong")],
            ""
        )
        .status,
        401
    );
    assert_eq!(
        call(&pylon, "POST", "/api/v1/routes", &[], "{}").status,
        401,
        "writes too"
    );
    assert_eq!(
        call(
            &pylon,
            "GET",
            "/api/v1/routes",
            &[("X-API-Key", "k-0123456789")],
            ""
        )
        .status,
        200
    );
    assert_eq!(
        call(
            &pylon,
            "GET",
            "/api/v1/routes",
            &[("Authorization", "Bearer k-0123456789")],
            ""
        )
        .status,
        200
    );
    // ops:s3cret
    assert_eq!(
        call(
            &pylon,
            "GET",
            "/api/v1/status",
            &[("Authorization", "Basic b3BzOnMzY3JldA==")],
            ""
        )
        .status,
        200
    );
    // ops:wrong
    assert_eq!(
        call(
            &pylon,
            "GET",
            "/api/v1/status",
            &[("Authorization", "Basic b3BzOndyb25n")],
            ""
        )
        .status,
        401
    );
    // The API's description and its UI need none: they hold no configuration.
    assert_eq!(get(&pylon, "/api/v1/openapi.json").status, 200);
    assert_eq!(get(&pylon, "/docs/").status, 200);
}

#[test]
fn a_stale_if_match_is_refused_with_412_so_no_change_is_overwritten() {
    let origin = Origin::start("hand");
    let pylon = start_dir(&origin.address(), "");
    let seen = etag(&get(&pylon, "/api/v1/routes/hand"));
    assert_eq!(seen, "\"1\"");
    // Operator A writes, sending back what they read.
    let a = call(
        &pylon,
        "POST",
        "/api/v1/routes",
        &[("Content-Type", "application/json"), ("If-Match", &seen)],
        r#"{"name": "a", "rule": "Path(`/a`)", "respond": {"status": 200, "body": "a"}}"#,
    );
    assert_eq!(a.status, 201, "{}", a.text());
    assert_eq!(etag(&a), "\"2\"");
    // Operator B read generation 1 too: refused, told the current generation.
    let b = call(
        &pylon,
        "PUT",
        "/api/v1/routes/a",
        &[("Content-Type", "application/json"), ("If-Match", &seen)],
        r#"{"rule": "Path(`/a`)", "respond": {"status": 200, "body": "b"}}"#,
    );
    assert_eq!(b.status, 412, "{}", b.text());
    assert_eq!(etag(&b), "\"2\"");
    assert!(b.json()["error"].as_str().unwrap().contains("generation 2"));
    assert_eq!(pylon.client().get("/a").text(), "a", "A's change stands");
    assert_eq!(
        call(
            &pylon,
            "DELETE",
            "/api/v1/routes/a",
            &[("If-Match", "\"1\"")],
            ""
        )
        .status,
        412
    );
    // With the current generation (or `*`), it goes through.
    let b = call(
        &pylon,
        "PUT",
        "/api/v1/routes/a",
        &[("Content-Type", "application/json"), ("If-Match", "\"2\"")],
        r#"{"rule": "Path(`/a`)", "respond": {"status": 200, "body": "b"}}"#,
    );
    assert_eq!(b.status, 200, "{}", b.text());
    assert_eq!(pylon.client().get("/a").text(), "b");
    assert_eq!(
        call(
            &pylon,
            "DELETE",
            "/api/v1/routes/a",
            &[("If-Match", "*")],
            ""
        )
        .status,
        204
    );
}

#[test]
fn dry_run_reports_the_diff_and_changes_nothing() {
    let origin = Origin::start("hand");
    let pylon = start_dir(&origin.address(), "");
    let dry = json_call(
        &pylon,
        "POST",
        "/api/v1/routes?dry_run=true",
        r#"{"name": "d", "rule": "Path(`/d`)", "upstream": "hand"}"#,
    );
    assert_eq!(dry.status, 200, "{}", dry.text());
    let report = dry.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["changes"]["routes_added"], 1);
    assert_eq!(
        report["changes"]["summary"],
        "routes: +1 ~0 -0; upstreams: hand kept"
    );
    assert_eq!(etag(&dry), "\"1\"");
    assert_eq!(get(&pylon, "/api/v1/routes/d").status, 404);
    assert_eq!(pylon.client().get("/d").status, 404);
    assert!(
        !pylon.config_arg.join("api.yaml").exists(),
        "nothing written"
    );

    // The whole config, dry: valid → the diff; invalid → the errors, and still nothing.
    let mut config = get(&pylon, "/api/v1/config").json();
    config["routes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"name": "e", "rule": "Path(`/e`)", "respond": {"status": 204}}
        ));
    let dry = json_call(
        &pylon,
        "PUT",
        "/api/v1/config?dry_run=true",
        &config.to_string(),
    );
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(dry.json()["changes"]["routes_added"], 1);
    config["routes"][1]["upstream"] = "nope".into();
    let dry = json_call(
        &pylon,
        "PUT",
        "/api/v1/config?dry_run=true",
        &config.to_string(),
    );
    assert_eq!(dry.status, 422, "{}", dry.text());
    assert_eq!(count(&pylon, "/api/v1/routes", ""), 1);
    assert_eq!(etag(&get(&pylon, "/api/v1/status")), "\"1\"");
}

#[test]
fn validation_errors_are_all_listed_and_nothing_changes() {
    let origin = Origin::start("hand");
    let pylon = start_dir(&origin.address(), "");
    let bad = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "x", "rule": "Path(`/x`", "upstream": "nope", "priorty": 3}"#,
    );
    assert_eq!(bad.status, 422, "{}", bad.text());
    let body = bad.json();
    assert_eq!(body["status"], 422);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid config"),
        "{body}"
    );
    let listed = errors(&bad);
    assert!(
        listed.contains("priorty: unknown key `priorty`"),
        "{listed}"
    );
    assert!(listed.contains("did you mean `priority`?"), "{listed}");
    // Typed first: the rule and the reference are checked once the route types.
    let bad = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "x", "rule": "Path(`/x`", "upstream": "nope"}"#,
    );
    let listed = errors(&bad);
    assert!(listed.contains("rule: invalid rule"), "{listed}");
    assert!(
        listed.contains("upstream: unknown upstream `nope`"),
        "{listed}"
    );
    // A body that does not parse: 400, with the place.
    let bad = json_call(&pylon, "POST", "/api/v1/routes", r#"{"name": "x",}"#);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(errors(&bad).contains("body:1:"), "{}", bad.text());
    let missing = json_call(&pylon, "POST", "/api/v1/upstreams", r#"{"servers": []}"#);
    assert_eq!(missing.status, 422);
    assert!(errors(&missing).contains("name: a non-empty string is required"));
    assert_eq!(
        etag(&get(&pylon, "/api/v1/status")),
        "\"1\"",
        "nothing applied"
    );
}

#[test]
fn a_resource_from_a_hand_written_file_is_not_changed_through_the_api() {
    let origin = Origin::start("hand");
    let pylon = start_dir(&origin.address(), "");
    let put = json_call(
        &pylon,
        "PUT",
        "/api/v1/routes/hand",
        r#"{"rule": "Path(`/x`)", "upstream": "hand"}"#,
    );
    assert_eq!(put.status, 409, "{}", put.text());
    let message = put.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("route `hand` is defined in") && message.contains("base.yaml:10:"),
        "{message}"
    );
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/upstreams/hand", &[], "").status,
        409
    );
    let dup = json_call(
        &pylon,
        "POST",
        "/api/v1/upstreams",
        r#"{"name": "hand", "servers": []}"#,
    );
    assert_eq!(dup.status, 409);
    // PUT /api/v1/config: the hand-written part must stay as it is.
    let mut config = get(&pylon, "/api/v1/config").json();
    config["listeners"][0]["name"] = "renamed".into();
    let refused = json_call(&pylon, "PUT", "/api/v1/config", &config.to_string());
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(
        errors(&refused).contains("listeners: differs from the running config"),
        "{}",
        refused.text()
    );
}

#[test]
fn the_config_endpoint_reads_json_or_yaml_and_a_put_of_what_was_read_changes_nothing() {
    let origin = Origin::start("hand");
    let pylon = start_dir(&origin.address(), "");
    let json = get(&pylon, "/api/v1/config");
    assert_eq!(json.status, 200);
    let config = json.json();
    assert_eq!(config["routes"][0]["name"], "hand");
    assert!(config.get("admin").is_none(), "credentials are not shown");
    let yaml = get(&pylon, "/api/v1/config?format=yaml");
    assert_eq!(yaml.header("content-type"), Some("application/yaml"));
    assert!(
        yaml.text().contains("routes:\n  - name: \"hand\"\n"),
        "{}",
        yaml.text()
    );
    let yaml2 = call(
        &pylon,
        "GET",
        "/api/v1/config",
        &[("Accept", "application/yaml")],
        "",
    );
    assert_eq!(yaml2.text(), yaml.text());

    // What was read goes back unchanged, in JSON or YAML.
    let same = json_call(&pylon, "PUT", "/api/v1/config", &config.to_string());
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(same.json()["unchanged"], true);
    let same = call(
        &pylon,
        "PUT",
        "/api/v1/config",
        &[("Content-Type", "application/yaml")],
        &yaml.text(),
    );
    assert_eq!(same.status, 200, "{}", same.text());
    // A route added in the document is applied and saved in api.yaml.
    let added = yaml.text()
        + "  - name: \"added\"\n    rule: \"Path(`/added`)\"\n    respond: { status: 200, body: \"added\" }\n";
    let put = call(
        &pylon,
        "PUT",
        "/api/v1/config",
        &[("Content-Type", "application/yaml")],
        &added,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["changes"]["routes_added"], 1);
    assert_eq!(pylon.client().get("/added").text(), "added");
    let saved = std::fs::read_to_string(pylon.config_arg.join("api.yaml")).unwrap();
    assert!(
        saved.contains("name: \"added\"") && !saved.contains("hand"),
        "{saved}"
    );
    let refused = json_call(&pylon, "PUT", "/api/v1/config", r#"{"admin": {}}"#);
    assert_eq!(refused.status, 422);
}

#[test]
fn after_a_restart_pylon_serves_exactly_what_the_api_acknowledged() {
    let origin = Origin::start("hand");
    let api_origin = Origin::start("api");
    let mut pylon = start_dir(&origin.address(), "");
    for (path, body) in [
        ("/api/v1/upstreams", format!(r#"{{"name": "api", "servers": ["{}"]}}"#, api_origin.address())),
        ("/api/v1/middlewares", r#"{"name": "tag", "headers": {"response": {"set": {"X-Tag": "kept"}}}}"#.to_string()),
        ("/api/v1/routes", r#"{"name": "one", "rule": "PathPrefix(`/one`)", "upstream": "api", "middlewares": ["tag"]}"#.to_string()),
        ("/api/v1/routes", r#"{"name": "two", "rule": "PathRegexp(`^/two$`)", "respond": {"status": 200, "body": "${HOME} $$ literal"}}"#.to_string()),
        ("/api/v1/routes", r#"{"name": "gone", "rule": "Path(`/gone`)", "upstream": "api"}"#.to_string()),
    ] {
        let r = json_call(&pylon, "POST", path, &body);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    assert_eq!(
        json_call(
            &pylon,
            "PATCH",
            "/api/v1/routes/one",
            r#"{"priority": 500}"#
        )
        .status,
        200
    );
    assert_eq!(
        call(&pylon, "DELETE", "/api/v1/routes/gone", &[], "").status,
        204
    );
    let before = get(&pylon, "/api/v1/config").json();
    let api_file = pylon.config_arg.join("api.yaml");
    assert!(api_file.exists() && pylon.config_arg.join("api.yaml.bak").exists());
    // The watcher sees the API's own write and finds nothing new to apply.
    assert!(pylon.wait_for_log("config reload (file change): no change"));

    pylon.restart();
    assert_eq!(get(&pylon, "/api/v1/config").json(), before);
    assert_eq!(
        etag(&get(&pylon, "/api/v1/status")),
        "\"1\"",
        "a fresh process"
    );
    let one = pylon.client().get("/one/x");
    assert_eq!(one.served_by(), "api");
    assert_eq!(one.header("x-tag"), Some("kept"));
    assert_eq!(
        pylon.client().get("/two").text(),
        "${HOME} $$ literal",
        "taken literally"
    );
    assert_eq!(pylon.client().get("/gone").status, 404);
    assert_eq!(get(&pylon, "/api/v1/routes/one").json()["priority"], 500);
}

#[test]
fn with_a_single_file_the_api_writes_it_back_whole_and_a_restart_keeps_it() {
    let origin = Origin::start("hand");
    let text = base(&origin.address(), "") + "# a comment the first write drops\n";
    let mut pylon = Pylon::start(&text);
    let r = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "f", "rule": "Path(`/f`)", "respond": {"status": 200, "body": "from the file"}}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let written = std::fs::read_to_string(&pylon.config_path).unwrap();
    assert!(
        written.contains("name: \"f\"") && written.contains("admin:"),
        "{written}"
    );
    let backup = pylon.config_path.with_file_name("pylon.yaml.bak");
    assert!(std::fs::read_to_string(backup)
        .unwrap()
        .contains("a comment the first write drops"));
    let status = get(&pylon, "/api/v1/status").json();
    assert_eq!(status["config"]["mode"], "file");
    assert_eq!(status["config"]["writable"], true);

    pylon.restart();
    assert_eq!(pylon.client().get("/f").text(), "from the file");
    assert_eq!(pylon.client().get("/hand").served_by(), "hand");
    assert_eq!(count(&pylon, "/api/v1/routes", ""), 2);
}

#[test]
fn a_file_using_env_substitution_is_never_written_back() {
    let origin = Origin::start("hand");
    let text =
        base(&origin.address(), "") + "error_pages: { \"404\": { body: \"${SECRET_PAGE}\" } }\n";
    let pylon = Pylon::builder(&text)
        .env("SECRET_PAGE", "s3cret-value")
        .start();
    let before = std::fs::read_to_string(&pylon.config_path).unwrap();
    let r = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "f", "rule": "Path(`/f`)", "upstream": "hand"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("uses ${VAR} substitution"),
        "{}",
        r.text()
    );
    assert_eq!(std::fs::read_to_string(&pylon.config_path).unwrap(), before);
    let status = get(&pylon, "/api/v1/status").json();
    assert_eq!(status["config"]["writable"], false);
    assert!(status["config"]["read_only_reason"]
        .as_str()
        .unwrap()
        .contains("plain text"));
    // Reading still works.
    assert_eq!(get(&pylon, "/api/v1/routes").status, 200);
}

#[test]
fn a_bad_file_on_disk_shows_in_the_status_while_the_old_config_serves() {
    let origin = Origin::start("hand");
    let pylon = Pylon::start(&base(&origin.address(), ""));
    let status = get(&pylon, "/api/v1/status").json();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["generation"], 1);
    assert_eq!(status["listeners"][0]["name"], "web");
    assert_eq!(
        status["listeners"][0]["address"],
        pylon.listeners[0].to_string()
    );
    assert_eq!(status["admin_listen"], pylon.listeners[1].to_string());
    assert!(status["uptime_seconds"].is_u64());
    assert!(status["last_reload"].is_null());

    assert!(pylon.wait_for_log("config reload: SIGHUP reloads"));
    let bad = base(&origin.address(), "").replace("upstream: hand }", "upstrem: hand }");
    pylon.rewrite_config(&bad);
    eventually("the refused reload shows in the status", || {
        get(&pylon, "/api/v1/status").json()["last_reload"]["ok"] == false
    });
    let reload = get(&pylon, "/api/v1/status").json()["last_reload"].clone();
    assert_eq!(reload["trigger"], "file change");
    assert_eq!(reload["generation"], 1);
    let first = reload["errors"][0].as_str().unwrap();
    assert!(
        first.contains("pylon.yaml:10:") && first.contains("upstrem"),
        "{reload}"
    );
    assert_eq!(
        pylon.client().get("/hand").served_by(),
        "hand",
        "the old config serves"
    );
    // A write needs the stored config to load.
    let r = json_call(
        &pylon,
        "POST",
        "/api/v1/routes",
        r#"{"name": "x", "rule": "Path(`/x`)", "upstream": "hand"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(errors(&r).contains("upstrem"), "{}", r.text());

    pylon.rewrite_config(&base(&origin.address(), ""));
    eventually("the fixed file applies", || {
        get(&pylon, "/api/v1/status").json()["last_reload"]["ok"] == true
    });
}

#[test]
fn an_admin_listener_open_to_the_network_without_credentials_is_refused_at_start() {
    let dir = TempDir::new("admin");
    let path = dir.write(
        "pylon.yaml",
        "listeners: [{ name: web, address: \"127.0.0.1:0\" }]\nadmin: { listen: \"0.0.0.0:9180\" }\n",
    );
    let out = run_cli(&["-c", path.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pylon.yaml:2:18: admin.listen: the admin API on 0.0.0.0:9180 would let anyone who can reach it change the config"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
}

#[test]
fn the_rate_limit_answers_429_with_retry_after() {
    let origin = Origin::start("hand");
    let pylon = Pylon::start(&base(
        &origin.address(),
        "  rate_limit: { average: 1, period: 1m, burst: 2 }",
    ));
    assert_eq!(get(&pylon, "/api/v1/status").status, 200);
    assert_eq!(get(&pylon, "/api/v1/status").status, 200);
    let limited = get(&pylon, "/api/v1/status");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert!(limited.header("etag").is_some());
}

#[test]
fn the_openapi_document_lists_every_path_and_swagger_ui_is_served_from_the_binary() {
    let origin = Origin::start("hand");
    let pylon = Pylon::start(&base(&origin.address(), ""));
    let doc = get(&pylon, "/api/v1/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/routes",
        "/api/v1/routes/{name}",
        "/api/v1/upstreams",
        "/api/v1/upstreams/{name}",
        "/api/v1/upstreams/{name}/health",
        "/api/v1/middlewares",
        "/api/v1/middlewares/{name}",
        "/api/v1/config",
        "/api/v1/status",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    for method in ["get", "put", "patch", "delete"] {
        assert!(
            doc["paths"]["/api/v1/routes/{name}"].get(method).is_some(),
            "{method}"
        );
    }
    // Resource bodies are the config model's own schemas.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["Route"]["properties"].get("rule").is_some(),
        "{}",
        schemas["Route"]
    );
    assert!(schemas["UpstreamResource"]["properties"]
        .get("servers")
        .is_some());
    assert!(schemas["UpstreamResource"]["properties"]
        .get("name")
        .is_some());

    // Unknown endpoints and methods answer in the shared error format too.
    let nope = get(&pylon, "/api/v1/nope");
    assert_eq!(
        (nope.status, nope.json()["status"].as_u64()),
        (404, Some(404))
    );
    let wrong = call(&pylon, "POST", "/api/v1/status", &[], "");
    assert_eq!(
        (wrong.status, wrong.json()["status"].as_u64()),
        (405, Some(405))
    );

    let page = get(&pylon, "/docs/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let html = page.text();
    let mut assets = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().unwrap();
            assert!(!url.contains("//"), "an asset from elsewhere: {url}");
            assets.push(url.trim_start_matches("./").to_string());
        }
    }
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{html}");
    for asset in assets {
        assert_eq!(
            get(&pylon, &format!("/docs/{asset}")).status,
            200,
            "/docs/{asset}"
        );
    }
    let init = get(&pylon, "/docs/swagger-initializer.js").text();
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
}
