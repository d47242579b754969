//! Balancing algorithms through the binary, load-balancer mode, `host_header`, DNS names.

use crate::harness::configs::one_upstream;
use crate::harness::tempdir::TempDir;
use crate::harness::{Client, Origin, Pylon};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn config(servers: &str, upstream_extra: &str) -> String {
    one_upstream(servers, upstream_extra, "")
}

fn weighted(origins: &[&Origin], weights: &[u32]) -> String {
    let items: Vec<String> = origins
        .iter()
        .zip(weights)
        .map(|(o, w)| format!("{{ address: \"{}\", weight: {w} }}", o.address()))
        .collect();
    format!("[{}]", items.join(", "))
}

fn counts(c: &Client, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in 0..n {
        let r = c.get(&format!("/n/{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
        *counts.entry(r.served_by()).or_default() += 1;
    }
    counts
}

fn assert_shares(
    counts: &HashMap<String, usize>,
    expected: &[(&str, f64)],
    total: usize,
    tolerance: f64,
) {
    for (id, share) in expected {
        let got = *counts.get(*id).unwrap_or(&0) as f64 / total as f64;
        assert!(
            (got - share).abs() <= tolerance,
            "{id}: share {got:.3}, expected {share:.3} ± {tolerance}; counts {counts:?}"
        );
    }
}

#[test]
fn round_robin_and_random_honour_weights_1_2_3_over_1000_requests() {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let expected = [("a", 1.0 / 6.0), ("b", 2.0 / 6.0), ("c", 3.0 / 6.0)];
    let servers = weighted(&[&a, &b, &c], &[1, 2, 3]);

    // Smooth round robin is exact: every window of six requests is a, b, b, c, c, c in
    // some order, so 1000 requests land within one of their share.
    let round_robin = Pylon::start(&config(&servers, "    balance: round_robin"));
    assert_shares(&counts(&round_robin.client(), 1000), &expected, 1000, 0.001);

    // Random is only right on average. Over 3000 draws the largest standard deviation of
    // a share is sqrt(0.25 / 3000) ≈ 0.009, so ± 0.05 is more than five of them: a
    // correct balancer fails this about once in a million runs, one that ignored weights
    // (a third each) always does.
    let random = Pylon::start(&config(&servers, "    balance: random"));
    assert_shares(&counts(&random.client(), 3000), &expected, 3000, 0.05);
}

#[test]
fn least_conn_sends_new_requests_to_the_idle_server() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let pylon = Pylon::start(&config(
        &weighted(&[&a, &b], &[1, 1]),
        "    balance: least_conn",
    ));
    let client = pylon.client();
    let slow_client = client.clone();
    let slow = std::thread::spawn(move || slow_client.get("/slow/1500").served_by());
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.hits() + b.hits() == 0 {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    let busy = if a.hits() == 1 { "a" } else { "b" };
    let idle = if busy == "a" { "b" } else { "a" };
    for _ in 0..10 {
        assert_eq!(client.get("/fast").served_by(), idle);
    }
    assert_eq!(slow.join().unwrap(), busy);
}

#[test]
fn least_time_prefers_the_faster_server() {
    let (fast, slow) = (Origin::start("fast"), Origin::start("slow"));
    let pylon = Pylon::start(&config(
        &weighted(&[&fast, &slow], &[1, 1]),
        "    balance: least_time",
    ));
    let client = pylon.client();
    // Both servers answer alike first, so each has a latency sample: a server without one
    // counts as fast as the other, which would make the first picks a coin toss each.
    counts(&client, 10);
    // Then one takes a second per answer. Least time tries it once or twice more (its
    // estimate is low until its first slow sample), then avoids it. A second is far beyond
    // a stall of the fast path on a busy machine; a stall beyond the slow server's latency
    // would make the fast one look slow for seconds (the estimate is a peak EWMA, τ = 10 s),
    // which is what failed this test with a 60 ms and then a 300 ms slow server.
    slow.set_delay(Duration::from_secs(1));
    let (mut to_fast, mut slowest_fast) = (0, Duration::ZERO);
    for i in 0..30 {
        let started = Instant::now();
        let r = client.get(&format!("/n/{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
        if r.served_by() == "fast" {
            to_fast += 1;
            slowest_fast = slowest_fast.max(started.elapsed());
        }
    }
    assert!(
        to_fast >= 27,
        "least_time sent {to_fast} of 30 requests to the fast server (its slowest answer took \
         {slowest_fast:?})"
    );
}

/// Which server each of `users` lands on with `balance: hash` on `header:X-User`.
fn placements(pylon: &Pylon, users: usize) -> Vec<String> {
    let c = pylon.client();
    (0..users)
        .map(|u| {
            let user = format!("user-{u}");
            c.request("GET", "/", &[("Host", "x"), ("X-User", &user)])
                .served_by()
        })
        .collect()
}

#[test]
fn hash_keys_are_sticky_and_removing_a_server_moves_only_its_keys() {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let extra = "    balance: hash\n    hash_key: \"header:X-User\"";
    let three = Pylon::start(&config(&weighted(&[&a, &b, &c], &[1, 1, 1]), extra));
    let before = placements(&three, 60);
    assert_eq!(
        placements(&three, 60),
        before,
        "the same key lands on the same server"
    );
    for id in ["a", "b", "c"] {
        assert!(
            before.iter().any(|s| s == id),
            "{id} got no key: {before:?}"
        );
    }
    drop(three);
    let two = Pylon::start(&config(&weighted(&[&a, &b], &[1, 1]), extra));
    let after = placements(&two, 60);
    for (user, (was, now)) in before.iter().zip(&after).enumerate() {
        if was != "c" {
            assert_eq!(
                was, now,
                "user-{user} moved from {was} to {now} though {was} stayed"
            );
        } else {
            assert_ne!(now, "c");
        }
    }
}

#[test]
fn ip_hash_keeps_a_client_address_on_one_server() {
    let (a, b, c) = (Origin::start("a"), Origin::start("b"), Origin::start("c"));
    let pylon = Pylon::start(&config(
        &weighted(&[&a, &b, &c], &[1, 1, 1]),
        "    balance: ip_hash",
    ));
    let mut seen = Vec::new();
    for last in 1..=12 {
        let client = Client::from_source(pylon.addr(), &format!("127.0.0.{last}"));
        let first = client.get("/").served_by();
        for _ in 0..3 {
            assert_eq!(client.get("/").served_by(), first);
        }
        seen.push(first);
    }
    seen.sort();
    seen.dedup();
    assert!(
        seen.len() >= 2,
        "12 addresses all hashed to one server: {seen:?}"
    );
}

#[test]
fn load_balancer_mode_proxies_every_request_to_the_top_level_upstream() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let yaml = format!(
        r#"
listeners:
  - name: web
    address: "@listen0@"
upstream:
  servers: ["{}", "{}"]
"#,
        a.address(),
        b.address()
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let got = counts(&c, 10);
    assert_eq!(got.get("a"), Some(&5));
    assert_eq!(got.get("b"), Some(&5));
    assert_eq!(
        c.get_host("any.host", "/any/path?q=1").json()["path"],
        "/any/path"
    );
}

#[test]
fn host_header_keep_server_or_custom() {
    let origin = Origin::start("app");
    let port = origin.addr.port();
    for (setting, expected) in [
        ("keep", "client.example".to_string()),
        ("server", format!("localhost:{port}")),
        ("internal.example", "internal.example".to_string()),
    ] {
        let pylon = Pylon::start(&config(
            &format!("[\"localhost:{port}\"]"),
            &format!("    host_header: {setting}"),
        ));
        let r = pylon.client().get_host("client.example", "/");
        assert_eq!(r.origin_header("host").as_deref(), Some(expected.as_str()));
    }
}

#[test]
fn servers_by_name_resolve_through_localhost_and_a_hosts_file() {
    let origin = Origin::start("named");
    let v6 = Origin::start_on("v6", "[::1]:0", None);
    let dir = TempDir::new("hosts");
    let hosts = dir.write(
        "hosts",
        "# test hosts file\n127.0.0.1   backend.test backend-alias.test\n",
    );
    let yaml = format!(
        r#"
dns:
  hosts_file: "{}"
listeners:
  - name: web
    address: "@listen0@"
upstreams:
  by-localhost:
    servers: ["localhost:{port}"]
  by-hosts-file:
    servers: ["backend-alias.test:{port}"]
  by-v6:
    servers: ["{v6}"]
routes:
  - {{ name: a, rule: "PathPrefix(`/localhost`)", upstream: by-localhost }}
  - {{ name: b, rule: "PathPrefix(`/hosts`)", upstream: by-hosts-file }}
  - {{ name: c, rule: "PathPrefix(`/v6`)", upstream: by-v6 }}
"#,
        hosts.display(),
        port = origin.addr.port(),
        v6 = v6.address(),
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    assert_eq!(c.get("/localhost").served_by(), "named");
    assert_eq!(c.get("/hosts").served_by(), "named");
    assert_eq!(c.get("/v6").served_by(), "v6");
}
