//! Zero-downtime binary upgrade and graceful shutdown through the binary: `pylon -u` takes
//! the listening sockets over from a running Pylon that got SIGQUIT, under load, and SIGTERM
//! lets in-flight requests finish.

use std::time::Duration;

use crate::harness::load::Load;
use crate::harness::{Origin, Pylon};

/// `version`'s marker route, a catch-all to `origin`, quick grace periods, and the upgrade
/// socket in the test's directory. Watching is off so the first process does not pick up
/// the successor's config.
fn config(version: usize, origin: &str, dir: &str) -> String {
    config_with_grace(version, origin, dir, "1s")
}

fn config_with_grace(version: usize, origin: &str, dir: &str, grace: &str) -> String {
    format!(
        r#"
server: {{ grace_period: {grace}, graceful_shutdown_timeout: 2s, upgrade_sock: "{dir}/upgrade.sock", pid_file: "{dir}/pylon.pid" }}
reload: {{ watch: false }}
listeners: [{{ name: web, address: "@listen0@" }}]
upstreams:
  app: {{ servers: ["{origin}"] }}
routes:
  - {{ name: marker, rule: "Path(`/version`)", priority: 100, respond: {{ status: 200, body: "version {version}" }} }}
  - {{ name: app, rule: "PathPrefix(`/`)", upstream: app }}
"#
    )
}

#[test]
fn upgrade_hands_the_sockets_over_under_load_without_a_failed_request() {
    let origin = Origin::start("app");
    let dir = crate::harness::tempdir::TempDir::new("upgrade");
    let dir_text = dir.path().display().to_string();
    let mut old = Pylon::start(&config(1, &origin.address(), &dir_text));
    assert_eq!(old.client().get("/version").text(), "version 1");

    // Connection per request: the successor must accept on the same sockets as the old one
    // stops, so a failed connect would show.
    let load = Load::start(old.addr(), 2, false);
    std::thread::sleep(Duration::from_millis(300));

    // The new binary reads the config anew (here: a new marker), then waits for the sockets.
    old.rewrite_config(&config(2, &origin.address(), &dir_text));
    let mut new = old.start_successor();
    std::thread::sleep(Duration::from_millis(300));
    old.signal("QUIT");
    let exited = old.wait_exit(Duration::from_secs(15));
    assert!(
        exited.is_some(),
        "the old process did not exit after its grace period"
    );
    assert!(new.running(), "the successor stopped:\n{}", new.log());
    // Traffic after the old process is gone is the successor's.
    std::thread::sleep(Duration::from_millis(300));
    let served = crate::harness::Client::new(old.addr())
        .get("/version")
        .text();
    let (ok, failed) = load.finish();
    assert_eq!(served, "version 2", "the successor serves its config");
    assert!(ok > 100, "too few requests to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed during the upgrade",
        ok + failed
    );
    assert!(old.log().contains("SIGQUIT received, sending socks"));
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits() {
    let origin = Origin::start("slow");
    origin.set_delay(Duration::from_millis(1000));
    let tmp = crate::harness::tempdir::TempDir::new("drain");
    let dir = tmp.path().display().to_string();
    // The grace period is what a request in flight gets: this one needs about 0.7 s of it.
    let mut pylon = Pylon::start(&config_with_grace(1, &origin.address(), &dir, "3s"));
    let client = pylon.client();
    let in_flight = std::thread::spawn(move || client.get("/slow"));
    std::thread::sleep(Duration::from_millis(300));
    pylon.signal("TERM");
    let answer = in_flight.join().unwrap();
    assert_eq!(answer.status, 200, "the request in flight was cut");
    assert_eq!(answer.served_by(), "slow");
    let exited = pylon.wait_exit(Duration::from_secs(15));
    assert!(exited.is_some(), "pylon did not exit after SIGTERM");
    assert!(pylon.log().contains("SIGTERM received, gracefully exiting"));
}
