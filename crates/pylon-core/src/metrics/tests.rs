//! The exposition against the list of families, and the Grafana dashboard against both.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use super::*;
use crate::snapshot::Snapshot;
use pylon_upstream::dns::{DnsSettings, Resolver};

fn snapshot(route: &str) -> Snapshot {
    let text = r#"
listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams:
  api: { servers: ["127.0.0.1:9001"] }
routes:
  - name: ROUTE
    rule: "PathPrefix(`/`)"
    upstream: api
    middlewares: [{ api_key: { keys: [{ key: k, consumer: c }] } }, { rate_limit: { average: 1 } }]
"#
    .replace("ROUTE", route);
    let config = pylon_config::load_str(
        &text,
        pylon_config::Format::Yaml,
        std::path::Path::new("t.yaml"),
    )
    .unwrap();
    let resolver = Resolver::new(DnsSettings::default()).unwrap();
    Snapshot::compile(&config, 1, &resolver).unwrap()
}

/// The `# TYPE` names of an exposition.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_exposition_writes_exactly_the_listed_families() {
    let snapshot = snapshot("api");
    reload_recorded(true, std::time::SystemTime::now());
    let route = &snapshot.routes["api"];
    let mut measured = crate::measured::Measured::start();
    measured.attempt("127.0.0.1:9001".parse().unwrap(), std::time::Instant::now());
    measured.connected(false);
    measured.upstream_answered(200);
    record(Some(&route.metrics), "GET", 200, &measured, 5, 7);
    route.metrics.answered(0);
    route.metrics.answered(1);
    let text = render(&snapshot);
    let expected: BTreeSet<String> = FAMILIES.iter().map(|f| f.to_string()).collect();
    assert_eq!(families(&text), expected, "{text}");
    assert!(text.contains(
        "pylon_requests_total{route=\"api\",upstream=\"api\",method=\"GET\",code=\"2xx\"} 1\n"
    ));
    assert!(text.contains("pylon_auth_failures_total{route=\"api\",middleware=\"api_key\"} 1\n"));
    assert!(text.contains(
        "pylon_rate_limit_rejections_total{route=\"api\",middleware=\"rate_limit\"} 1\n"
    ));
    assert!(
        text.contains("pylon_upstream_server_up{upstream=\"api\",server=\"127.0.0.1:9001\"} 1\n")
    );
    assert!(text.contains("pylon_request_body_bytes_sum{route=\"api\",upstream=\"api\"} 5\n"));
    for reserved in RESERVED {
        assert!(
            !text.contains(reserved),
            "{reserved} is reserved, not exported"
        );
    }
}

#[test]
fn series_of_routes_no_longer_compiled_are_pruned() {
    let has = |name: &str| {
        registry::registry()
            .routes
            .lock()
            .unwrap()
            .keys()
            .any(|(route, _)| &**route == name)
    };
    let snapshot = Arc::new(snapshot("gone_soon"));
    registry::registry().prune();
    assert!(has("gone_soon"), "a compiled route keeps its series");
    drop(snapshot);
    // Another test's scrape may hold a clone of the series list for a moment (the registry
    // is process-wide): prune again until that clone is gone, a bounded number of times.
    let pruned = (0..200).any(|_| {
        registry::registry().prune();
        let gone = !has("gone_soon");
        if !gone {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        gone
    });
    assert!(pruned, "a route no snapshot holds loses its series");
}

/// Metric names in a PromQL expression: identifiers starting `pylon_` or `process_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain([' ']) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("pylon_") || word.starts_with("process_") {
                out.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    out
}

#[test]
fn the_grafana_dashboard_queries_only_exported_metrics() {
    let text = include_str!("../../../../docs/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(dashboard["schemaVersion"], 39);
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut used = BTreeSet::new();
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            exprs += 1;
            for name in metric_names(expr) {
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| FAMILIES.contains(base))
                    .unwrap_or(&name)
                    .to_string();
                assert!(
                    FAMILIES.contains(&family.as_str())
                        || COLLECTED_FAMILIES.contains(&family.as_str()),
                    "the dashboard queries `{name}`, which Pylon does not export: {expr}"
                );
                used.insert(family);
            }
        }
    }
    assert!(exprs >= 20, "{exprs} queries");
    // The panels the docs promise.
    for family in [
        "pylon_requests_total",
        "pylon_request_duration_seconds",
        "pylon_upstream_header_duration_seconds",
        "pylon_upstream_connect_duration_seconds",
        "pylon_upstream_errors_total",
        "pylon_upstream_retries_total",
        "pylon_upstream_server_up",
        "pylon_upstream_ejections_total",
        "pylon_downstream_connections_active",
        "pylon_auth_failures_total",
        "pylon_rate_limit_rejections_total",
        "pylon_config_generation",
        "pylon_config_reloads_total",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(used.contains(family), "no panel shows {family}");
    }
}
