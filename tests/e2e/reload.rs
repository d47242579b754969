//! Live reload through the binary: a changed config file or SIGHUP applies the new routes and
//! upstreams without dropping a request; a bad config is refused and the old one keeps
//! serving; unchanged upstreams keep their pools; in-flight requests finish.

use std::time::{Duration, Instant};

use crate::harness::load::Load;
use crate::harness::{Origin, Pylon};

/// A config whose `/v` route answers `version` and whose catch-all proxies to `origin`.
fn config(version: usize, origin: &str, interval: &str) -> String {
    format!(
        r#"
reload: {{ interval: {interval} }}
listeners: [{{ name: web, address: "@listen0@" }}]
upstreams:
  app: {{ servers: ["{origin}"] }}
routes:
  - {{ name: v{version}, rule: "Path(`/v{version}`)", priority: 100, respond: {{ status: 200, body: "version {version}" }} }}
  - {{ name: app, rule: "PathPrefix(`/`)", upstream: app }}
"#
    )
}

/// Polls `/vN` until version N's route answers (at most 10 s).
fn wait_version(pylon: &Pylon, version: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if pylon.client().get(&format!("/v{version}")).text() == format!("version {version}") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[test]
fn a_changed_file_applies_and_a_bad_one_is_refused_while_the_old_keeps_serving() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&config(1, &origin.address(), "100ms"));
    assert_eq!(pylon.client().get("/v1").text(), "version 1");

    pylon.rewrite_config(&config(2, &origin.address(), "100ms"));
    assert!(wait_version(&pylon, 2), "the new route never served");
    assert_eq!(pylon.client().get("/v2").text(), "version 2");
    // The old route is gone: its path falls through to the origin.
    assert_eq!(pylon.client().get("/v1").served_by(), "app");
    assert!(pylon.wait_for_log(
        "config reload (file change): generation 2 serving; routes: +1 ~0 -1; upstreams: app kept"
    ));

    // A config with an error: refused with its file:line:column, nothing changes.
    let bad = config(3, &origin.address(), "100ms").replace("respond:", "respnd:");
    pylon.rewrite_config(&bad);
    assert!(pylon.wait_for_log("refused, 1 error(s); still serving generation 2"));
    let log = pylon.log();
    assert!(
        log.contains("pylon.yaml:7:") && log.contains("respnd"),
        "the error names the place: {log}"
    );
    assert_eq!(pylon.client().get("/v2").text(), "version 2");
    assert_eq!(pylon.client().get("/v3").served_by(), "app");

    // Fixing the file applies it.
    pylon.rewrite_config(&config(3, &origin.address(), "100ms"));
    assert!(wait_version(&pylon, 3));
    assert!(pylon.wait_for_log("generation 3 serving"));
}

#[test]
fn sighup_reloads_when_watching_is_off() {
    let origin = Origin::start("app");
    let text = |v| {
        config(v, &origin.address(), "100ms")
            .replace("reload: { interval: 100ms }", "reload: { watch: false }")
    };
    let pylon = Pylon::start(&text(1));
    assert!(
        pylon.wait_for_log("config reload: SIGHUP reloads"),
        "SIGHUP is not handled yet"
    );
    pylon.rewrite_config(&text(2));
    // Not watched: a few intervals later the old config still serves.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(pylon.client().get("/v1").text(), "version 1");
    pylon.signal("HUP");
    assert!(wait_version(&pylon, 2), "SIGHUP did not reload");
    assert!(pylon.wait_for_log("config reload (SIGHUP): generation 2 serving"));
    // The same config again changes nothing: no new generation.
    pylon.signal("HUP");
    assert!(pylon.wait_for_log("config reload (SIGHUP): no change; generation 2 keeps serving"));
}

#[test]
fn node_local_sections_wait_for_a_restart() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&config(1, &origin.address(), "100ms"));
    let moved = config(2, &origin.address(), "100ms")
        .replace("[{ name: web,", "[{ name: web2,")
        .replace("\nroutes:", "\nserver: { threads: 2 }\nroutes:");
    pylon.rewrite_config(&moved);
    assert!(wait_version(&pylon, 2), "routes still apply");
    assert!(pylon
        .wait_for_log("`server`, `listeners` changed, which only a restart or `pylon -u` applies"));
}

#[test]
fn an_in_flight_request_finishes_on_the_config_it_started_with() {
    let slow = Origin::start("slow");
    slow.set_delay(Duration::from_millis(1500));
    let other = Origin::start("other");
    let pylon = Pylon::start(&config(1, &slow.address(), "100ms"));
    let client = pylon.client();
    let in_flight = std::thread::spawn(move || client.get("/slow"));
    std::thread::sleep(Duration::from_millis(300));
    // The route's upstream now points elsewhere; the request already on its way is not cut.
    pylon.rewrite_config(&config(2, &other.address(), "100ms"));
    assert!(wait_version(&pylon, 2));
    assert_eq!(pylon.client().get("/x").served_by(), "other");
    let answer = in_flight.join().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.served_by(), "slow");
    assert!(pylon.log().contains("upstreams: app rebuilt"));
}

#[test]
fn fifty_reloads_under_load_drop_no_request_and_each_takes_effect() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let pylon = Pylon::start(&config(0, &a.address(), "100ms"));
    let load = Load::start(pylon.addr(), 2, true);
    for version in 1..=50 {
        // Routes added and removed, the upstream's servers changed, every time.
        let origin = if version % 2 == 0 { &a } else { &b };
        pylon.rewrite_config(&config(version, &origin.address(), "100ms"));
        assert!(
            wait_version(&pylon, version),
            "version {version} never took effect"
        );
        assert_eq!(
            pylon.client().get("/").served_by(),
            if version % 2 == 0 { "a" } else { "b" }
        );
    }
    let (ok, failed) = load.finish();
    assert!(
        ok > 100,
        "the load loop made too few requests to mean anything: {ok}"
    );
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during reloads",
        ok + failed
    );
    assert!(pylon.log().contains("generation 51 serving"));
}
