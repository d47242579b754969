//! What one `rate_limit` decision costs: the work its request hook does per request, local
//! and on a real Redis, beside what it adds to the response.
//!
//! - `local/hot_key`: one client address over and over (one shard, one entry): read the
//!   key (hash the address bytes) and decide — all a passing request costs by default.
//! - `local/100k_keys`: the same over 100,000 addresses in turn, so every lookup misses the
//!   CPU caches and the map holds its full default size (`max_keys` 100,000).
//! - `local/header_key`: keyed by `header:X-API-Key` instead.
//! - `response_headers`: what `response_headers: true` adds: formatting the `RateLimit`
//!   value and appending it and `RateLimit-Policy` to a response header (`without` is the
//!   clone of the same header the measurement starts from).
//! - `redis/decision`: one decision against a local `redis-server` this bench starts (one
//!   round trip over loopback: the Lua script, EVALSHA). Skipped, with a message, when
//!   `redis-server` is not installed.
//!
//! Run: `cargo bench -p pylon-core --bench rate_limit -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pingora::http::{RequestHeader, ResponseHeader};
use pylon_config::middleware::{LimitKey, OnBackendError, RedisLimit};
use pylon_core::middleware::rate_limit::{
    LocalBuckets, Outcome, Policy, Rate, RedisBuckets, RequestKey,
};
use pylon_core::middleware::RequestState;

const PERIOD: Duration = Duration::from_secs(1);
/// High enough that the benchmark's loop never empties a bucket: the allowed path.
const AVERAGE: u64 = 1_000_000;

fn state(ip: IpAddr) -> RequestState {
    RequestState {
        client_ip: Some(ip),
        route: "default".into(),
        ..RequestState::default()
    }
}

fn key(text: &str) -> RequestKey {
    RequestKey::compile(&LimitKey(vec![text.to_string()])).expect("key")
}

fn local(c: &mut Criterion) {
    let req = RequestHeader::build("GET", b"/", None).expect("request");
    let policy = Policy::new("default", PERIOD, AVERAGE, AVERAGE).expect("policy");
    let rate = Rate::new(PERIOD, AVERAGE, AVERAGE);
    let by_ip = key("client_ip");
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

    let mut s = state(ip);
    let mut g = c.benchmark_group("local");
    let buckets = LocalBuckets::new(rate, 100_000);
    g.bench_function("hot_key", |b| {
        b.iter(|| {
            s.client_ip = Some(black_box(ip));
            let report = buckets.decide(by_ip.hash(&req, &s));
            black_box(report)
        });
    });
    let buckets = LocalBuckets::new(rate, 100_000);
    let addresses: Vec<IpAddr> = (0..100_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let mut next = 0;
    g.bench_function("100k_keys", |b| {
        b.iter(|| {
            next = (next + 1) % addresses.len();
            s.client_ip = Some(addresses[next]);
            let report = buckets.decide(by_ip.hash(&req, &s));
            black_box(report)
        });
    });
    let buckets = LocalBuckets::new(rate, 100_000);
    let by_header = key("header:X-API-Key");
    let mut keyed = req.clone();
    keyed
        .append_header("X-API-Key", "k-5f0c9a1e7b3d4c2a9e8f")
        .expect("header");
    g.bench_function("header_key", |b| {
        b.iter(|| {
            let report = buckets.decide(by_header.hash(black_box(&keyed), &s));
            black_box(report)
        });
    });
    g.finish();

    // The response hook: two more headers on whatever the client gets.
    let mut response = ResponseHeader::build(200, Some(8)).expect("response");
    for (name, value) in [
        ("Content-Type", "application/json"),
        ("Content-Length", "42"),
        ("Date", "Sun, 22 Nov 2026 10:00:00 GMT"),
        ("Server", "nginx"),
    ] {
        response.append_header(name, value).expect("header");
    }
    let report = LocalBuckets::new(rate, 1024).decide(1);
    let mut g = c.benchmark_group("response_headers");
    g.bench_function("without", |b| b.iter(|| black_box(response.clone())));
    g.bench_function("with_ratelimit", |b| {
        b.iter(|| {
            let mut r = response.clone();
            r.append_header("RateLimit-Policy", policy.policy())
                .expect("header");
            r.append_header("RateLimit", policy.limit(black_box(&report)))
                .expect("header");
            black_box(r)
        })
    });
    g.finish();
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<Server> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("pylon-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child, port);
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn redis(c: &mut Criterion) {
    let Some(server) = start_redis() else {
        eprintln!("redis/decision skipped: redis-server is not installed or did not start");
        return;
    };
    let settings = RedisLimit {
        url: format!("redis://127.0.0.1:{}", server.1),
        prefix: None,
        timeout: Duration::from_secs(1),
        on_backend_error: OnBackendError::Deny,
    };
    let rate = Rate::new(PERIOD, AVERAGE, AVERAGE);
    let buckets = RedisBuckets::new(&settings, "default", rate, 100_000).expect("redis buckets");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut name = buckets.prefix().to_vec();
    name.extend_from_slice(b"i:203.0.113.7");
    // Connect and load the script before measuring.
    assert!(matches!(
        rt.block_on(buckets.decide(&name, 1)),
        Outcome::Decided(_)
    ));
    c.bench_function("redis/decision", |b| {
        b.iter(|| match rt.block_on(buckets.decide(&name, 1)) {
            Outcome::Decided(report) => black_box(report),
            Outcome::Unavailable => panic!("redis failed during the benchmark"),
        })
    });
    drop(server);
}

criterion_group!(benches, local, redis);
criterion_main!(benches);
