//! Prometheus metrics through the binary: known traffic, then a scrape of `/metrics` on the
//! admin listener (and on a listener of its own) must show exactly that traffic; upstream
//! failures, health, retries and ejections; connections; reloads; `enabled: false`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::harness::{Client, Origin, Pylon};

/// `GET /metrics` on `addr`: the body, after checking the status and content type.
fn scrape(addr: SocketAddr) -> String {
    let r = Client::new(addr).get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.text()
}

/// The value of the sample written exactly as `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    })
}

#[track_caller]
fn assert_value(text: &str, series: &str, expected: f64) {
    assert_eq!(
        value(text, series),
        Some(expected),
        "{series} in the scrape:\n{text}"
    );
}

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
fn known_traffic_shows_in_exact_counts_on_both_listeners() {
    let good = Origin::start("good");
    let bad = Origin::start("bad");
    bad.force_status(500);
    let pylon = Pylon::start(&format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
admin: {{ listen: "@listen1@" }}
metrics: {{ listener: "@listen2@", duration_buckets: [0.5, 5] }}
upstreams:
  good: {{ servers: ["{}"] }}
  bad: {{ servers: ["{}"] }}
routes:
  - {{ name: a, rule: "PathPrefix(`/a`)", upstream: good }}
  - {{ name: b, rule: "PathPrefix(`/b`)", upstream: bad }}
"#,
        good.address(),
        bad.address()
    ));
    let client = pylon.client();
    let mut response_bytes = 0;
    for _ in 0..3 {
        let r = client.get("/a/one");
        assert_eq!(r.status, 200);
        response_bytes += r.body.len();
    }
    for _ in 0..2 {
        let r = client.request_with_body("POST", "/b", &[("Host", "localhost")], b"hello");
        assert_eq!(r.status, 500);
    }
    // A unique path and no route: counted under route "", the path appears nowhere.
    assert_eq!(client.get("/unmatched-7f3a9c").status, 404);

    let text = scrape(pylon.listeners[1]);
    let a = r#"route="a",upstream="good""#;
    let b = r#"route="b",upstream="bad""#;
    assert_value(
        &text,
        &format!(r#"pylon_requests_total{{{a},method="GET",code="2xx"}}"#),
        3.0,
    );
    assert_value(
        &text,
        &format!(r#"pylon_requests_total{{{b},method="POST",code="5xx"}}"#),
        2.0,
    );
    assert_value(
        &text,
        r#"pylon_requests_total{route="",upstream="",method="GET",code="4xx"}"#,
        1.0,
    );
    // Histograms: counts equal the requests, +Inf is the count, configured buckets.
    assert_value(
        &text,
        &format!("pylon_request_duration_seconds_count{{{a}}}"),
        3.0,
    );
    assert_value(
        &text,
        &format!(r#"pylon_request_duration_seconds_bucket{{{a},le="+Inf"}}"#),
        3.0,
    );
    assert!(text.contains(&format!(
        r#"pylon_request_duration_seconds_bucket{{{a},le="0.5"}}"#
    )));
    assert!(
        !text.contains(r#"le="0.005""#),
        "the configured buckets replace the default"
    );
    assert_value(&text, &format!("pylon_request_body_bytes_sum{{{b}}}"), 10.0);
    assert_value(
        &text,
        &format!("pylon_request_body_bytes_count{{{b}}}"),
        2.0,
    );
    assert_value(
        &text,
        &format!("pylon_response_body_bytes_sum{{{a}}}"),
        response_bytes as f64,
    );
    // Upstream side: every request of `good` went up once; time to first byte each time.
    assert_value(
        &text,
        r#"pylon_upstream_header_duration_seconds_count{upstream="good"}"#,
        3.0,
    );
    let new = value(
        &text,
        r#"pylon_upstream_requests_total{upstream="good",connection="new"}"#,
    );
    let reused = value(
        &text,
        r#"pylon_upstream_requests_total{upstream="good",connection="reused"}"#,
    );
    assert_eq!(new.unwrap() + reused.unwrap(), 3.0, "{text}");
    assert!(new.unwrap() >= 1.0);
    assert_value(
        &text,
        r#"pylon_upstream_connect_duration_seconds_count{upstream="good"}"#,
        new.unwrap(),
    );
    assert_value(
        &text,
        r#"pylon_upstream_retries_total{upstream="bad"}"#,
        0.0,
    );
    assert_value(
        &text,
        &format!(
            r#"pylon_upstream_server_up{{upstream="good",server="{}"}}"#,
            good.address()
        ),
        1.0,
    );
    assert_value(&text, "pylon_config_generation", 1.0);
    assert_value(
        &text,
        &format!(
            r#"pylon_build_info{{version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        ),
        1.0,
    );
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    assert!(value(&text, "process_open_fds").unwrap() > 3.0);
    assert!(value(&text, "process_start_time_seconds").unwrap() > 1.6e9);

    // Bounded labels: no path, no client address.
    assert!(!text.contains("unmatched-7f3a9c") && !text.contains("/a/one"));
    assert!(
        !text.contains("\"127.0.0.1\""),
        "a client address is a label:\n{text}"
    );
    // Every sample's family is declared, and every family is one Pylon documents.
    let declared: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for family in &declared {
        assert!(
            pylon_core::metrics::FAMILIES.contains(family)
                || pylon_core::metrics::COLLECTED_FAMILIES.contains(family),
            "undocumented family {family}"
        );
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| declared.contains(b))
            .unwrap_or(name);
        assert!(declared.contains(base), "{name} has no # TYPE");
    }

    // The listener of its own serves the same counts, without the admin API.
    let own = scrape(pylon.listeners[2]);
    assert_value(
        &own,
        &format!(r#"pylon_requests_total{{{a},method="GET",code="2xx"}}"#),
        3.0,
    );
    assert_eq!(
        Client::new(pylon.listeners[2]).get("/api/v1/status").status,
        404
    );
}

#[test]
fn upstream_errors_retries_ejections_and_health_are_counted() {
    let live = Origin::start("live");
    let dead = crate::harness::closed_addr().to_string();
    let checked = crate::harness::closed_addr().to_string();
    let pylon = Pylon::start(&format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
admin: {{ listen: "@listen1@" }}
upstreams:
  flaky:
    servers: ["{dead}", "{live}"]
    passive_health: {{ consecutive_failures: 1, ejection_time: 1m }}
  checked:
    servers: ["{checked}"]
    health_check: {{ type: tcp, interval: 200ms, timeout: 100ms, unhealthy_threshold: 1 }}
routes:
  - {{ name: all, rule: "PathPrefix(`/`)", upstream: flaky }}
"#,
        live = live.address()
    ));
    // Round robin: one of the first two requests tries the dead server, fails to connect,
    // is retried on the live one (connect failures are retried by default), and the dead
    // server is ejected after that one failure; the rest go to the live one.
    for _ in 0..4 {
        assert_eq!(pylon.client().get("/x").status, 200);
    }
    let admin = pylon.listeners[1];
    let down = format!(r#"pylon_upstream_server_up{{upstream="checked",server="{checked}"}}"#);
    eventually("the active check marks the closed port down", || {
        value(&scrape(admin), &down) == Some(0.0)
    });
    let text = scrape(admin);
    assert_value(
        &text,
        r#"pylon_upstream_errors_total{upstream="flaky",kind="connect"}"#,
        1.0,
    );
    assert_value(
        &text,
        r#"pylon_upstream_errors_total{upstream="flaky",kind="timeout"}"#,
        0.0,
    );
    assert_value(
        &text,
        r#"pylon_upstream_retries_total{upstream="flaky"}"#,
        1.0,
    );
    assert_value(
        &text,
        &format!(r#"pylon_upstream_ejections_total{{upstream="flaky",server="{dead}"}}"#),
        1.0,
    );
    assert_value(
        &text,
        &format!(r#"pylon_upstream_server_up{{upstream="flaky",server="{dead}"}}"#),
        0.0,
    );
    assert_value(
        &text,
        &format!(
            r#"pylon_upstream_server_up{{upstream="flaky",server="{}"}}"#,
            live.address()
        ),
        1.0,
    );
    assert_value(
        &text,
        r#"pylon_requests_total{route="all",upstream="flaky",method="GET",code="2xx"}"#,
        4.0,
    );
}

/// Opens a keep-alive connection to `addr` and completes one request on it.
fn open_keep_alive(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /k HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    stream
}

#[test]
fn active_connections_follow_open_keep_alive_connections() {
    let pylon = Pylon::start(
        r#"
listeners: [{ name: web, address: "@listen0@" }]
admin: { listen: "@listen1@" }
routes:
  - { name: k, rule: "PathPrefix(`/`)", respond: { status: 200, body: "ok" } }
"#,
    );
    let admin = pylon.listeners[1];
    let active = || value(&scrape(admin), "pylon_downstream_connections_active").unwrap();
    let accepted = || {
        value(
            &scrape(admin),
            "pylon_downstream_connections_accepted_total",
        )
        .unwrap()
    };
    // The harness's own readiness probes may still be closing: start from a quiet listener.
    eventually("the start-up probes' connections close", || active() == 0.0);
    let before = accepted();
    let connections: Vec<TcpStream> = (0..5).map(|_| open_keep_alive(pylon.addr())).collect();
    assert_eq!(active(), 5.0);
    assert_eq!(accepted(), before + 5.0);
    drop(connections);
    eventually("closed connections leave the gauge", || active() == 0.0);
    assert_value(
        &scrape(admin),
        r#"pylon_requests_total{route="k",upstream="",method="GET",code="2xx"}"#,
        5.0,
    );
}

#[test]
fn auth_failures_and_rate_limit_rejections_are_counted_by_middleware() {
    let pylon = Pylon::start(
        r#"
listeners: [{ name: web, address: "@listen0@" }]
admin: { listen: "@listen1@", api_keys: ["admin-key-1"] }
middlewares:
  keys: { api_key: { keys: [{ key: secret-key, consumer: ci }] } }
routes:
  - { name: private, rule: "PathPrefix(`/private`)", respond: { status: 200 }, middlewares: [keys] }
  - name: limited
    rule: "PathPrefix(`/limited`)"
    respond: { status: 200 }
    middlewares: [{ rate_limit: { average: 1, period: 1h, burst: 1 } }]
"#,
    );
    let client = pylon.client();
    assert_eq!(client.get("/private").status, 401);
    assert_eq!(client.get("/private").status, 401);
    let ok = client.request(
        "GET",
        "/private",
        &[("Host", "x"), ("X-API-Key", "secret-key")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(client.get("/limited").status, 200);
    assert_eq!(client.get("/limited").status, 429);
    // The admin API wants its key; `/metrics` on the same listener does not.
    let admin = Client::new(pylon.listeners[1]);
    assert_eq!(admin.get("/api/v1/status").status, 401);
    let text = scrape(pylon.listeners[1]);
    assert_value(
        &text,
        r#"pylon_auth_failures_total{route="private",middleware="api_key"}"#,
        2.0,
    );
    assert_value(
        &text,
        r#"pylon_rate_limit_rejections_total{route="limited",middleware="rate_limit"}"#,
        1.0,
    );
    assert_value(
        &text,
        r#"pylon_requests_total{route="private",upstream="",method="GET",code="4xx"}"#,
        2.0,
    );
}

#[test]
fn reloads_are_counted_and_the_generation_follows() {
    let config = |body: &str| {
        format!(
            r#"
reload: {{ interval: 100ms }}
listeners: [{{ name: web, address: "@listen0@" }}]
admin: {{ listen: "@listen1@" }}
routes:
  - {{ name: r, rule: "PathPrefix(`/`)", respond: {{ status: 200, body: "{body}" }} }}
"#
        )
    };
    let pylon = Pylon::start(&config("one"));
    let admin = pylon.listeners[1];
    let text = scrape(admin);
    assert_value(&text, "pylon_config_generation", 1.0);
    assert_value(
        &text,
        r#"pylon_config_reloads_total{result="applied"}"#,
        0.0,
    );
    assert!(value(&text, "pylon_config_last_reload_success").is_none());

    let two = config("two");
    pylon.rewrite_config(&two);
    eventually("generation 2", || {
        value(&scrape(admin), "pylon_config_generation") == Some(2.0)
    });
    let text = scrape(admin);
    assert_value(
        &text,
        r#"pylon_config_reloads_total{result="applied"}"#,
        1.0,
    );
    assert_value(&text, "pylon_config_last_reload_success", 1.0);
    let applied_at = value(&text, "pylon_config_last_reload_timestamp_seconds").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - applied_at).abs() < 60.0, "{applied_at} vs {now}");

    pylon.rewrite_config(&two.replace("respond:", "respnd:"));
    eventually("the refused reload is counted", || {
        value(
            &scrape(admin),
            r#"pylon_config_reloads_total{result="rejected"}"#,
        ) == Some(1.0)
    });
    let text = scrape(admin);
    assert_value(&text, "pylon_config_last_reload_success", 0.0);
    assert_value(&text, "pylon_config_generation", 2.0);
}

#[test]
fn metrics_off_records_nothing_and_the_page_is_404() {
    let pylon = Pylon::start(
        r#"
listeners: [{ name: web, address: "@listen0@" }]
admin: { listen: "@listen1@" }
metrics: { enabled: false }
routes:
  - { name: r, rule: "PathPrefix(`/`)", respond: { status: 200 } }
"#,
    );
    assert_eq!(pylon.client().get("/").status, 200);
    let r = Client::new(pylon.listeners[1]).get("/metrics");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("metrics.enabled: false"), "{}", r.text());
}
