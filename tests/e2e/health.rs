//! `/health` and `/ready` on the admin listener, and upstream health in `/api/v1/status`:
//! probes need no credentials, readiness follows the upstreams' health (all of them, or
//! those `admin.ready.upstreams` lists), and a bad list is refused at its place.

use std::time::{Duration, Instant};

use crate::harness::client::Response;
use crate::harness::pylon::check_refuses;
use crate::harness::{Client, Origin, Pylon};

const KEY: &str = "probe-test-key";

fn config(good: &str, extra_upstream: &str, ready: &str) -> String {
    format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
admin:
  listen: "@listen1@"
  api_keys: ["{KEY}"]
{ready}
upstreams:
  api:
    servers: ["{good}"]
    health_check: {{ path: /health, interval: 200ms, timeout: 150ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
{extra_upstream}
routes:
  - {{ name: api, rule: "PathPrefix(`/`)", upstream: api }}
"#
    )
}

fn probe(pylon: &Pylon, path: &str) -> Response {
    Client::new(pylon.listeners[1]).request("GET", path, &[("Host", "admin")])
}

/// Polls `path` until its status is `status`; returns the last answer.
fn wait_status(pylon: &Pylon, path: &str, status: u16) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = probe(pylon, path);
        if r.status == status || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn probes_need_no_credentials_and_readiness_follows_upstream_health() {
    let origin = Origin::start("a");
    let pylon = Pylon::start(&config(&origin.address(), "", ""));
    // The API itself wants the key; the probes do not.
    assert_eq!(probe(&pylon, "/api/v1/status").status, 401);
    let health = probe(&pylon, "/health");
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    let ready = wait_status(&pylon, "/ready", 200);
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["ready"], true);
    assert_eq!(ready.json()["generation"], 1);

    // The only server fails its health check: not ready, and the answer says which.
    origin.set_health(500);
    let down = wait_status(&pylon, "/ready", 503);
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.json()["ready"], false);
    assert_eq!(down.json()["upstreams_down"], serde_json::json!(["api"]));
    assert_eq!(down.json()["listeners_down"], serde_json::json!([]));
    // Liveness does not follow upstreams.
    assert_eq!(probe(&pylon, "/health").status, 200);

    // The status shows the server's state and why.
    let status = Client::new(pylon.listeners[1]).request(
        "GET",
        "/api/v1/status",
        &[("Host", "admin"), ("X-API-Key", KEY)],
    );
    assert_eq!(status.status, 200, "{}", status.text());
    let upstreams = status.json()["upstream_health"].clone();
    assert_eq!(upstreams[0]["upstream"], "api", "{upstreams}");
    assert_eq!(upstreams[0]["healthy"], 0, "{upstreams}");
    assert_eq!(
        upstreams[0]["servers"][0]["state"], "unhealthy",
        "{upstreams}"
    );

    origin.set_health(200);
    assert_eq!(wait_status(&pylon, "/ready", 200).status, 200);
}

#[test]
fn readiness_counts_only_the_listed_upstreams() {
    let origin = Origin::start("a");
    // A server nobody listens on: its health check fails at once.
    let dead = crate::harness::closed_addr();
    let spare = format!(
        r#"  spare:
    servers: ["{dead}"]
    health_check: {{ type: tcp, interval: 200ms, timeout: 150ms, unhealthy_threshold: 1 }}"#
    );
    let only_api = Pylon::start(&config(
        &origin.address(),
        &spare,
        "  ready: { upstreams: [api] }",
    ));
    let all = Pylon::start(&config(&origin.address(), &spare, ""));
    // Positive control: counting every upstream, the dead one makes the node unready.
    let down = wait_status(&all, "/ready", 503);
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.json()["upstreams_down"], serde_json::json!(["spare"]));
    // Counting `api` only, the same state is ready.
    let ready = probe(&only_api, "/ready");
    assert_eq!(ready.status, 200, "{}", ready.text());
}

#[test]
fn a_ready_list_naming_an_unknown_upstream_is_refused_at_its_place() {
    let out = check_refuses(
        r#"listeners: [{ name: web, address: "127.0.0.1:0" }]
admin:
  ready: { upstreams: [apj] }
upstreams:
  api: { servers: ["127.0.0.1:1"] }
routes:
  - { name: r, rule: "PathPrefix(`/`)", upstream: api }
"#,
    );
    assert!(
        out.contains("pylon.yaml:3:24")
            && out.contains("no upstream `apj`")
            && out.contains("`api`"),
        "{out}"
    );
}
