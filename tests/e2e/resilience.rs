//! When servers fail: active health checks, passive outlier detection, retries and their
//! budget, timeouts, `max_connections`, and no healthy server.

use crate::harness::configs::{one_upstream, servers};
use crate::harness::{Client, Origin, Pylon};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(addresses: &[&str], upstream_extra: &str, route_extra: &str) -> String {
    one_upstream(&servers(addresses), upstream_extra, route_extra)
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the next `n` requests all go to `id`.
fn all_served_by(c: &Client, id: &str, n: usize) -> bool {
    (0..n).all(|_| c.get("/").served_by() == id)
}

#[test]
fn active_http_check_takes_a_failing_server_out_and_brings_it_back() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let extra = r#"    health_check:
      type: http
      path: /health
      interval: 200ms
      timeout: 100ms
      unhealthy_threshold: 2
      healthy_threshold: 1"#;
    let pylon = Pylon::start(&config(&[&a.address(), &b.address()], extra, ""));
    let c = pylon.client();
    a.set_health(500);
    eventually(Duration::from_secs(10), "a leaves rotation", || {
        all_served_by(&c, "b", 6)
    });
    assert!(pylon.log().contains("is down"), "{}", pylon.log());
    a.set_health(200);
    eventually(Duration::from_secs(10), "a returns", || {
        (0..4).any(|_| c.get("/").served_by() == "a")
    });
}

#[test]
fn active_tcp_check_marks_a_closed_port_down() {
    let live = Origin::start("live");
    let closed = crate::harness::closed_addr();
    // No retries: only the health check can keep requests off the closed port.
    let extra = r#"    retries: { attempts: 0 }
    health_check: { type: tcp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 1 }"#;
    let pylon = Pylon::start(&config(&[&live.address(), &closed.to_string()], extra, ""));
    let c = pylon.client();
    eventually(
        Duration::from_secs(10),
        "the closed port leaves rotation",
        || (0..6).all(|_| c.get("/").status == 200),
    );
    assert!(pylon.log().contains(&closed.to_string()), "{}", pylon.log());
}

#[test]
fn no_healthy_server_is_503_with_json() {
    let a = Origin::start("a");
    a.set_health(503);
    let extra = r#"    health_check: { path: /health, interval: 200ms, timeout: 100ms, unhealthy_threshold: 1 }"#;
    let pylon = Pylon::start(&config(&[&a.address()], extra, ""));
    let c = pylon.client();
    eventually(Duration::from_secs(10), "503", || c.get("/").status == 503);
    let r = c.get("/");
    assert_eq!(r.json()["error"], "no healthy server");
}

#[test]
fn passive_health_ejects_a_dying_server_under_load_without_failed_requests() {
    let mut a = Origin::start("a");
    let b = Origin::start("b");
    let a_addr = a.address();
    let extra = r#"    passive_health: { consecutive_failures: 2, ejection_time: 1s }"#;
    let pylon = Pylon::start(&config(&[&a_addr, &b.address()], extra, ""));
    let client = pylon.client();

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (c, stop, failures, served) = (
                client.clone(),
                stop.clone(),
                failures.clone(),
                served.clone(),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) && n < 2_000 {
                    let r = c.get("/load");
                    if r.status != 200 {
                        failures.fetch_add(1, Ordering::SeqCst);
                        eprintln!("failed: {} {}", r.status, r.text());
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(10), "warm-up load", || {
        served.load(Ordering::SeqCst) >= 40
    });
    a.stop();
    let at_stop = served.load(Ordering::SeqCst);
    eventually(Duration::from_secs(10), "load after the failure", || {
        served.load(Ordering::SeqCst) >= at_stop + 100
    });
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "idempotent requests failed"
    );
    assert!(pylon.log().contains("ejected"), "{}", pylon.log());

    // The server comes back on the same port; after the ejection it gets traffic again.
    let back = Origin::start_on("a", &a_addr, None);
    let c = pylon.client();
    eventually(Duration::from_secs(15), "a is back in rotation", || {
        (0..4).any(|_| c.get("/").served_by() == "a")
    });
    drop(back);
}

#[test]
fn retries_on_listed_statuses_go_to_another_server() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    a.force_status(503);
    let extra = r#"    retries: { attempts: 2, on: [connect_failure, 503] }"#;
    let pylon = Pylon::start(&config(&[&a.address(), &b.address()], extra, ""));
    let c = pylon.client();
    for _ in 0..10 {
        let r = c.get("/");
        assert_eq!(r.status, 200);
        assert_eq!(r.served_by(), "b");
    }
    assert!(a.hits() >= 4, "a was never tried: {}", a.hits());
    // A POST is not idempotent: its 503 is passed through, not retried.
    let statuses: Vec<u16> = (0..4)
        .map(|_| {
            c.request_with_body("POST", "/", &[("Host", "x")], b"x")
                .status
        })
        .collect();
    assert!(statuses.contains(&503), "{statuses:?}");
}

#[test]
fn without_status_retries_the_503_reaches_the_client() {
    let a = Origin::start("a");
    a.force_status(503);
    let pylon = Pylon::start(&config(&[&a.address()], "", ""));
    assert_eq!(pylon.client().get("/").status, 503);
}

#[test]
fn retry_budget_stops_retries_when_every_server_fails() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    a.force_status(502);
    b.force_status(502);
    // 10% of requests and no floor: 50 requests may earn at most 5 retries.
    let extra =
        r#"    retries: { attempts: 3, on: [502], budget: { ratio: 0.1, min_per_sec: 0 } }"#;
    let pylon = Pylon::start(&config(&[&a.address(), &b.address()], extra, ""));
    let c = pylon.client();
    for _ in 0..50 {
        assert_eq!(c.get("/").status, 502);
    }
    let tries = a.hits() + b.hits();
    assert!(
        (50..=55).contains(&tries),
        "50 requests made {tries} tries: the budget allows at most 5 retries"
    );
}

#[test]
fn route_total_timeout_and_timeout_overrides_give_504() {
    let a = Origin::start("a");
    let yaml = format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  app:
    servers: ["{}"]
    read_timeout: 10s
routes:
  - name: total
    rule: "PathPrefix(`/total`)"
    upstream: app
    timeout: 300ms
  - name: read
    rule: "PathPrefix(`/read`)"
    upstream: app
    read_timeout: 300ms
  - name: default
    rule: "PathPrefix(`/`)"
    upstream: app
"#,
        a.address()
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let r = c.get("/total/x");
    assert_eq!(r.status, 200);
    a.set_delay(Duration::from_millis(1500));
    assert_eq!(c.get("/total/x").status, 504);
    assert_eq!(c.get("/read/x").status, 504);
    // The upstream's own 10s read timeout lets the same request through.
    assert_eq!(c.get("/default/x").status, 200);
}

#[test]
fn max_connections_answers_503_after_the_queue_timeout() {
    let a = Origin::start("a");
    let extra = r#"    max_connections: 1
    queue_timeout: 200ms"#;
    let pylon = Pylon::start(&config(&[&a.address()], extra, ""));
    let c = pylon.client();
    let slow_client = c.clone();
    let slow = std::thread::spawn(move || slow_client.get("/slow/1500").status);
    eventually(
        Duration::from_secs(10),
        "the slow request holds the slot",
        || a.hits() == 1,
    );
    let started = Instant::now();
    let r = c.get("/fast");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "upstream busy");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "did not wait in the queue"
    );
    assert_eq!(slow.join().unwrap(), 200);
    // The slot is free again.
    assert_eq!(c.get("/fast").status, 200);
}

#[test]
fn panic_threshold_spreads_over_all_servers_when_too_few_are_healthy() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    a.set_health(500);
    b.set_health(500);
    let check = "    health_check: { path: /health, interval: 200ms, timeout: 100ms, unhealthy_threshold: 1 }";
    let servers = [a.address(), b.address()];
    let servers: Vec<&str> = servers.iter().map(String::as_str).collect();
    let strict = Pylon::start(&config(&servers, check, ""));
    let panicking = Pylon::start(&config(
        &servers,
        &format!("{check}\n    panic_threshold: 50"),
        "",
    ));
    let c = strict.client();
    eventually(Duration::from_secs(10), "both servers down", || {
        c.get("/").status == 503
    });
    // Same health, but with panic mode every request is still served, by both servers.
    let c = panicking.client();
    eventually(Duration::from_secs(10), "both servers marked down", || {
        panicking.log().matches("is down").count() >= 2
    });
    let served: Vec<String> = (0..6).map(|_| c.get("/").served_by()).collect();
    assert!(
        served.contains(&"a".to_string()) && served.contains(&"b".to_string()),
        "{served:?}"
    );
}
