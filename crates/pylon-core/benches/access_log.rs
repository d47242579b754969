//! What one access log line costs the worker: formatting a finished request into the
//! thread's buffer and queueing it on the sink (the writer thread's disk write is not on the
//! request's path and not measured here, though it runs meanwhile).
//!
//! Cases: the default JSON line (24 fields), the default text line, and a short JSON
//! template of five fields with a header. The issue-7 bar is "metrics + JSON access log
//! cost at most 3% of throughput": at about 43k requests/s per core on the machine of
//! docs/benchmarks.md (~23 µs each), both together get about 0.7 µs.
//!
//! Run: `cargo bench -p pylon-core --bench access_log -- --warm-up-time 1 --measurement-time 5`

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pingora::http::RequestHeader;
use pylon_config::{AccessLogConfig, LogFormat, LogTemplate};
use pylon_core::access_log::{AccessLog, Entry};
use pylon_core::measured::Measured;
use pylon_core::middleware::RequestState;

fn bench(c: &mut Criterion) {
    let mut req = RequestHeader::build("GET", b"/api/items?page=2", None).expect("request");
    req.insert_header("host", "api.example.com")
        .expect("header");
    req.insert_header("user-agent", "bench/1.0")
        .expect("header");
    req.insert_header("x-tenant", "acme").expect("header");
    let state = RequestState {
        client_ip: Some("10.1.2.3".parse().expect("ip")),
        request_id: Some("6f1c0d2e9b8a4c7d8e9f0a1b2c3d4e5f".into()),
        route: Arc::from("api"),
        scheme: "http",
        ..RequestState::default()
    };
    let mut measured = Measured::start();
    measured.attempts = 1;
    measured.upstream_addr = Some("127.0.0.1:9000".parse().expect("addr"));
    measured.upstream_status = Some(200);
    measured.upstream_header = Some(Duration::from_micros(850));
    let entry = Entry {
        req: &req,
        state: &state,
        measured: &measured,
        status: 200,
        upstream: Some("app"),
        bytes_sent: 512,
        bytes_received: 0,
        duration: Duration::from_micros(1_234),
    };
    let cases = [
        ("json_default", LogFormat::Json, None),
        ("text_default", LogFormat::Text, None),
        (
            "json_five_fields",
            LogFormat::Json,
            Some("{status} {path} {duration_ms} {request_id} {header.X-Tenant}"),
        ),
    ];
    for (name, format, template) in cases {
        let config = AccessLogConfig {
            format,
            // Millions of lines: to /dev/null, not to a disk.
            path: "/dev/null".into(),
            template: template.map(|t| LogTemplate::parse(t).expect("template")),
        };
        let log = AccessLog::compile(&config).expect("access log");
        c.bench_function(name, |b| b.iter(|| log.write(&entry)));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
