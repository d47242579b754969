//! Router lookup cost as the route table grows: 10, 1,000 and 10,000 routes.
//!
//! The table is a realistic mix: many virtual hosts (one per ten routes), several path
//! prefixes and exact paths per host, some routes refined by a header or a method, wildcard
//! hosts, a few `HostRegexp` routes and host-agnostic prefixes, and a catch-all. Priorities
//! are the default (rule length). Each iteration looks up one request from a fixed set of
//! 64 that mixes deep hits, shallow hits, wildcard hits, header-refined hits and misses.
//!
//! `indexed` is [`Router::find`]; `linear` is the naive baseline the index replaces (rank
//! the routes, try each rule in order), measured in the same run so the ratio is what to
//! read, not the absolute numbers.
//!
//! Run: `cargo bench -p pylon-rules --bench router -- --warm-up-time 1 --measurement-time 2`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pylon_rules::{RequestView, Router, Rule};
use std::hint::black_box;
use std::net::IpAddr;

struct Req {
    method: &'static str,
    host: String,
    path: String,
    query: String,
    headers: Vec<(&'static str, String)>,
}

impl RequestView for Req {
    fn method(&self) -> &str {
        self.method
    }
    fn host(&self) -> &str {
        &self.host
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn query(&self) -> &str {
        &self.query
    }
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| f(v.as_bytes()))
    }
    fn client_ip(&self) -> Option<IpAddr> {
        None
    }
}

/// The rule text of route `i` in a table of `n`.
fn rule_text(i: usize, n: usize) -> String {
    let hosts = (n / 10).max(1);
    let host = format!("svc{}.example.com", i % hosts);
    let k = i / hosts;
    match i % 20 {
        0 if i == 0 => "PathPrefix(`/`)".to_string(),
        0..=7 => format!("Host(`{host}`) && PathPrefix(`/api/v{}/res{k}`)", k % 3),
        8 | 9 => format!("Host(`{host}`) && Path(`/api/v1/res{k}/health`)"),
        10 | 11 => format!(
            "Host(`{host}`) && PathPrefix(`/api/v1/res{k}`) && Header(`X-Tenant`, `t{}`)",
            i % 7
        ),
        12 => format!("Host(`{host}`) && Method(`POST`) && Path(`/api/v2/res{k}/submit`)"),
        13 | 14 => format!(
            "Host(`*.tenant{}.example.net`) && PathPrefix(`/app{k}`)",
            i % 50
        ),
        15 => format!("(Host(`{host}`) || Host(`alt-{host}`)) && PathPrefix(`/shop{k}`)"),
        16 => format!(
            "HostRegexp(`^tenant{}\\.example\\.org$`) && PathPrefix(`/r{k}`)",
            i % 13
        ),
        17 => format!("PathPrefix(`/static{i}/`)"),
        18 => format!("Host(`{host}`) && Query(`debug`, `{k}`)"),
        _ => format!("Host(`{host}`) && !PathPrefix(`/internal`) && PathPrefix(`/web{k}`)"),
    }
}

fn table(n: usize) -> Vec<(Rule, i64, usize)> {
    (0..n)
        .map(|i| {
            let rule = Rule::parse(&rule_text(i, n)).expect("bench rules parse");
            let p = rule.default_priority();
            (rule, p, i)
        })
        .collect()
}

fn requests(n: usize) -> Vec<Req> {
    let hosts = (n / 10).max(1);
    let per_host = n.div_ceil(hosts);
    (0..64)
        .map(|j| {
            let h = (j * 7919) % hosts;
            let k = (j * 31) % per_host.max(1);
            let (host, path, headers, method) = match j % 8 {
                0 => (
                    format!("svc{h}.example.com"),
                    format!("/api/v{}/res{k}/items/42", k % 3),
                    vec![],
                    "GET",
                ),
                1 => (
                    format!("SVC{h}.example.com:443"),
                    format!("/api/v1/res{k}/health"),
                    vec![],
                    "GET",
                ),
                2 => (
                    format!("svc{h}.example.com"),
                    format!("/api/v1/res{k}/x"),
                    vec![("X-Tenant", format!("t{}", j % 7))],
                    "GET",
                ),
                3 => (
                    format!("a.tenant{}.example.net", j % 50),
                    format!("/app{k}/index.html"),
                    vec![],
                    "GET",
                ),
                4 => (
                    format!("svc{h}.example.com"),
                    format!("/api/v2/res{k}/submit"),
                    vec![],
                    "POST",
                ),
                5 => (
                    "unknown.example.com".to_string(),
                    "/nothing/here".to_string(),
                    vec![],
                    "GET",
                ),
                6 => (
                    format!("svc{h}.example.com"),
                    format!("/web{k}/page"),
                    vec![],
                    "GET",
                ),
                _ => (
                    format!("tenant{}.example.org", j % 13),
                    format!("/r{k}/x"),
                    vec![],
                    "GET",
                ),
            };
            Req {
                method,
                host,
                path,
                query: String::new(),
                headers,
            }
        })
        .collect()
}

fn linear<'a>(ranked: &'a [(Rule, i64, usize)], req: &Req) -> Option<&'a usize> {
    ranked
        .iter()
        .find(|(r, _, _)| r.matches(req))
        .map(|(_, _, v)| v)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("router_lookup");
    group.throughput(Throughput::Elements(1));
    for n in [10usize, 1_000, 10_000] {
        let routes = table(n);
        let router = Router::new(routes.clone());
        let mut ranked = routes;
        ranked.sort_by_key(|(_, p, i)| (std::cmp::Reverse(*p), *i));
        let reqs = requests(n);
        // The index must agree with the baseline on the benchmark's own requests.
        let mut hits = 0;
        for r in &reqs {
            let found = router.find(r);
            assert_eq!(found, linear(&ranked, r));
            hits += usize::from(found.is_some());
        }
        eprintln!(
            "{n} routes: {hits} of {} requests match a route",
            reqs.len()
        );

        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("indexed", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(router.find(black_box(&reqs[i])))
            })
        });
        let mut i = 0;
        group.bench_with_input(BenchmarkId::new("linear", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % reqs.len();
                black_box(linear(&ranked, black_box(&reqs[i])))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
