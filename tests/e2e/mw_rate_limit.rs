//! `rate_limit` through the binary: token-bucket rate limiting by client, header or route;
//! local or on a real Redis shared by two Pylons.
//!
//! Exact counts use a long period (`average: 1, period: 1h`), so no token comes back during
//! a test; the one test that waits for a token uses a 2s period.

use std::time::Duration;

use crate::harness::client::Response;
use crate::harness::redis::Redis;
use crate::harness::{Client, Origin, Pylon};

fn config(origin: &Origin, middlewares: &str, routes: &str) -> String {
    format!(
        r#"
listeners:
  - {{ name: web, address: "@listen0@" }}
upstreams:
  app: {{ servers: ["{origin}"] }}
middlewares:
{middlewares}
routes:
{routes}
"#,
        origin = origin.address()
    )
}

/// A catch-all route using the named middleware `limit`.
fn one_limit(origin: &Origin, settings: &str) -> String {
    config(
        origin,
        &format!("  limit: {{ rate_limit: {settings} }}"),
        "  - { name: all, rule: \"PathPrefix(`/`)\", upstream: app, middlewares: [limit] }",
    )
}

fn get(c: &Client, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut h = vec![("Host", "localhost")];
    h.extend_from_slice(headers);
    c.request("GET", path, &h)
}

/// The statuses of `n` requests.
fn statuses(c: &Client, path: &str, headers: &[(&str, &str)], n: usize) -> Vec<u16> {
    (0..n).map(|_| get(c, path, headers).status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[test]
fn local_burst_admits_exactly_burst_then_429_with_headers_and_json() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(
        &origin,
        "{ average: 1, period: 1h, burst: 5, response_headers: true }",
    ));
    let c = pylon.client();
    let answers: Vec<Response> = (0..8).map(|_| get(&c, "/x", &[])).collect();
    let codes: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert_eq!(
        origin.hits(),
        5,
        "refused requests never reach the upstream"
    );

    // Passing answers say how many tokens are left: the bucket holds 5, refilled one an hour.
    for (i, r) in answers[..5].iter().enumerate() {
        assert_eq!(
            r.header("ratelimit-policy"),
            Some("\"default\";q=5;w=18000")
        );
        let remaining = 4 - i;
        let limit = r.header("ratelimit").unwrap();
        assert!(
            limit.starts_with(&format!("\"default\";r={remaining};t=")),
            "{limit}"
        );
    }

    let refused = &answers[5];
    assert_eq!(refused.json()["error"], "rate limit exceeded");
    assert_eq!(refused.json()["status"], 429);
    assert!(refused.json()["request_id"].is_string());
    // One token comes back an hour after the first request, rounded up to the second.
    assert_eq!(refused.header("retry-after"), Some("3600"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"default\";q=5;w=18000")
    );
    assert_eq!(refused.header("ratelimit"), Some("\"default\";r=0;t=18000"));
}

#[test]
fn retry_after_is_honest_waiting_it_then_succeeds() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(&origin, "{ average: 1, period: 2s, burst: 1 }"));
    let c = pylon.client();
    assert_eq!(get(&c, "/", &[]).status, 200);
    let refused = get(&c, "/", &[]);
    assert_eq!(refused.status, 429);
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    std::thread::sleep(Duration::from_secs(wait));
    let after = get(&c, "/", &[]);
    assert_eq!(
        after.status, 200,
        "waited Retry-After ({wait}s) and was still refused"
    );
    // That took the token back: the next one is refused again.
    assert_eq!(get(&c, "/", &[]).status, 429);
}

#[test]
fn client_addresses_and_header_values_get_separate_buckets() {
    let origin = Origin::start("app");
    let yaml = config(
        &origin,
        r#"  by-ip: { rate_limit: { average: 1, period: 1h, burst: 2 } }
  by-key: { rate_limit: { average: 1, period: 1h, burst: 2, key: "header:X-API-Key" } }"#,
        r#"  - { name: ip, rule: "PathPrefix(`/ip`)", upstream: app, middlewares: [by-ip] }
  - { name: key, rule: "PathPrefix(`/key`)", upstream: app, middlewares: [by-key] }"#,
    );
    let pylon = Pylon::start(&yaml);
    let one = Client::from_source(pylon.addr(), "127.0.0.1");
    let two = Client::from_source(pylon.addr(), "127.0.0.2");

    assert_eq!(statuses(&one, "/ip", &[], 3), [200, 200, 429]);
    let passed = get(&two, "/ip", &[]);
    assert_eq!(passed.status, 200);
    // Without `response_headers`, only refusals carry the `RateLimit` headers.
    assert_eq!(passed.header("ratelimit"), None);
    assert_eq!(passed.header("ratelimit-policy"), None);
    let refused = statuses(&two, "/ip", &[], 2);
    assert_eq!(refused, [200, 429]);

    let a = [("X-API-Key", "key-a")];
    let b = [("X-API-Key", "key-b")];
    assert_eq!(statuses(&one, "/key", &a, 3), [200, 200, 429]);
    assert_eq!(statuses(&one, "/key", &b, 2), [200, 200]);
    // The header alone decides: key-a from another address is still out of tokens.
    assert_eq!(get(&two, "/key", &a).status, 429);
    // Without the header, each address has its own bucket.
    assert_eq!(statuses(&one, "/key", &[], 3), [200, 200, 429]);
    assert_eq!(statuses(&two, "/key", &[], 3), [200, 200, 429]);
}

/// `key: consumer` counts per authenticated consumer (`api_key` before it sets one), whatever
/// address the requests come from; the key itself never reaches the limiter's key.
#[test]
fn the_consumer_key_limits_each_authenticated_consumer_across_addresses() {
    let origin = Origin::start("app");
    let yaml = config(
        &origin,
        r#"  keys: { api_key: { keys: [{ key: key-for-ann-0123, consumer: ann }, { key: key-for-bob-0123, consumer: bob }] } }
  per-consumer: { rate_limit: { average: 1, period: 1h, burst: 2, key: consumer } }"#,
        r#"  - { name: api, rule: "PathPrefix(`/`)", upstream: app, middlewares: [keys, per-consumer] }"#,
    );
    let pylon = Pylon::start(&yaml);
    let one = Client::from_source(pylon.addr(), "127.0.0.1");
    let two = Client::from_source(pylon.addr(), "127.0.0.2");
    let ann = [("X-API-Key", "key-for-ann-0123")];
    let bob = [("X-API-Key", "key-for-bob-0123")];
    assert_eq!(statuses(&one, "/", &ann, 2), [200, 200]);
    // Ann's bucket is empty from any address; Bob's is his own.
    assert_eq!(get(&two, "/", &ann).status, 429);
    assert_eq!(statuses(&two, "/", &bob, 3), [200, 200, 429]);
    // No key: refused by `api_key` before the limiter counts anything.
    assert_eq!(get(&one, "/", &[]).status, 401);
}

#[test]
fn a_shared_instance_limits_its_routes_together_and_the_route_key_separates_them() {
    let origin = Origin::start("app");
    let yaml = config(
        &origin,
        r#"  shared: { rate_limit: { average: 1, period: 1h, burst: 3 } }
  per-route: { rate_limit: { average: 1, period: 1h, burst: 3, key: [route, client_ip] } }"#,
        r#"  - { name: a, rule: "PathPrefix(`/a`)", upstream: app, middlewares: [shared] }
  - { name: b, rule: "PathPrefix(`/b`)", upstream: app, middlewares: [shared] }
  - { name: c, rule: "PathPrefix(`/c`)", upstream: app, middlewares: [per-route] }
  - { name: d, rule: "PathPrefix(`/d`)", upstream: app, middlewares: [per-route] }"#,
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    assert_eq!(statuses(&c, "/a", &[], 2), [200, 200]);
    assert_eq!(
        statuses(&c, "/b", &[], 2),
        [200, 429],
        "one bucket for a and b"
    );
    assert_eq!(get(&c, "/a", &[]).status, 429);

    assert_eq!(statuses(&c, "/c", &[], 4), [200, 200, 200, 429]);
    assert_eq!(
        statuses(&c, "/d", &[], 4),
        [200, 200, 200, 429],
        "route d has its own bucket"
    );
}

fn redis_limit(origin: &Origin, redis: &Redis, settings: &str) -> String {
    one_limit(
        origin,
        &format!(
            "{{ average: 1, period: 1h, {settings}, backend: redis, redis: {{ url: \"{}\", timeout: 1s }} }}",
            redis.url()
        ),
    )
}

#[test]
fn two_pylons_sharing_one_redis_admit_the_limit_together() {
    let redis = Redis::start();
    let origin = Origin::start("app");
    let yaml = redis_limit(&origin, &redis, "burst: 10");
    let first = Pylon::start(&yaml);
    let second = Pylon::start(&yaml);
    let clients = [first.client(), second.client()];
    let codes: Vec<u16> = (0..30)
        .map(|i| get(&clients[i % 2], "/", &[]).status)
        .collect();
    assert_eq!(count(&codes, 200), 10, "{codes:?}");
    assert_eq!(count(&codes, 429), 20, "{codes:?}");
    assert_eq!(origin.hits(), 10);
    // One bucket for the client, under the default prefix and policy, expiring when full.
    assert_eq!(
        redis.command(&["KEYS", "pylon:rl:*"]),
        "pylon:rl:default:i:127.0.0.1"
    );
    let ttl: i64 = redis
        .command(&["PTTL", "pylon:rl:default:i:127.0.0.1"])
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 10 * 3_600_000, "TTL {ttl}ms");
    for p in [&first, &second] {
        assert!(!p.log().contains("rate_limit: Redis"), "{}", p.log());
    }
}

#[test]
fn redis_down_with_allow_falls_back_to_local_buckets_and_logs_once() {
    let mut redis = Redis::start();
    let origin = Origin::start("app");
    let pylon = Pylon::start(&redis_limit(&origin, &redis, "burst: 3"));
    let c = pylon.client();
    assert_eq!(statuses(&c, "/", &[], 2), [200, 200]);
    redis.stop();
    // The in-memory fallback has the same settings and starts full: a flood stays bounded.
    let codes = statuses(&c, "/", &[], 10);
    assert_eq!(count(&codes, 200), 3, "{codes:?}");
    assert_eq!(count(&codes, 429), 7, "{codes:?}");
    let log = pylon.log();
    let warnings = log.matches("rate_limit: Redis at 127.0.0.1").count();
    assert_eq!(warnings, 1, "{log}");
    assert!(log.contains("on_backend_error: allow"), "{log}");
}

#[test]
fn redis_down_with_deny_answers_503_until_redis_is_back() {
    let mut redis = Redis::start();
    let port = redis.port;
    redis.stop();
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_limit(
        &origin,
        &format!(
            "{{ average: 1, period: 1h, burst: 3, backend: redis, redis: {{ url: \"redis://127.0.0.1:{port}\", timeout: 1s, on_backend_error: deny }} }}"
        ),
    ));
    let c = pylon.client();
    let refused = get(&c, "/", &[]);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "rate limit backend unavailable");
    assert_eq!(origin.hits(), 0);

    let _redis = Redis::start_on(port).expect("restart redis on its port");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut last = 503;
    while std::time::Instant::now() < deadline && last != 200 {
        std::thread::sleep(Duration::from_millis(200));
        last = get(&c, "/", &[]).status;
    }
    assert_eq!(last, 200, "requests pass again once Redis answers");
    assert!(pylon.log().contains("answers again"), "{}", pylon.log());
}

#[test]
fn check_refuses_bad_rate_limit_settings_with_their_place() {
    let text = crate::harness::pylon::check_refuses(
        r#"listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams: { app: { servers: ["127.0.0.1:9000"] } }
middlewares:
  zero: { rate_limit: { average: 0 } }
  badkey: { rate_limit: { average: 1, key: [route, "cookie:x"] } }
  badheader: { rate_limit: { average: 1, key: "header:X Key" } }
  nourl: { rate_limit: { average: 1, backend: redis } }
  badurl: { rate_limit: { average: 1, backend: redis, redis: { url: "localhost:6379" } } }
  badperiod: { rate_limit: { average: 1, period: soon } }
routes: []
"#,
    );
    for expected in [
        "pylon.yaml:4:34: middlewares.zero.rate_limit.average: average must be at least 1",
        "pylon.yaml:5:52: middlewares.badkey.rate_limit.key[1]: expected `client_ip`, `header:NAME`, `consumer` or `route`, found \"cookie:x\"",
        "pylon.yaml:6:47: middlewares.badheader.rate_limit.key: invalid header name \"X Key\"",
        "pylon.yaml:7:38: middlewares.nourl.rate_limit.backend: `backend: redis` needs `redis:",
        "pylon.yaml:8:69: middlewares.badurl.rate_limit.redis.url: invalid Redis URL \"localhost:6379\"",
        "pylon.yaml:9:50: middlewares.badperiod.rate_limit.period: expected a duration",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}
