//! Upstream options parse to the right values: balancing, hash keys, timeouts, health,
//! retries, peer options (on the upstream and on servers), server names, route overrides.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pylon_config::{
    load_str, Alpn, Balance, CheckType, Config, Format, HashKey, HealthCheck, HostHeader,
    PassiveHealth, PeerOptions, Retries, RetryBudget, RetryMethods, RetryOn, Server, ServerAddress,
    StatusMatch, TcpKeepalive, Upstream, DEFAULT_QUEUE_TIMEOUT,
};

use crate::{yaml, TempDir, BASE};

const LISTENER: &str = "listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\n";

/// `LISTENER` plus an upstream `app` with these extra lines (indented 4 spaces).
fn app(extra: &str) -> Upstream {
    let c = yaml(&format!(
        "{LISTENER}upstreams:\n  app:\n    servers: [\"127.0.0.1:3000\"]\n{extra}"
    ));
    c.upstreams["app"].clone()
}

/// Three PEM-named files in a temp dir (their contents are not read by the loader).
fn cert_files(dir: &TempDir) -> (PathBuf, PathBuf, PathBuf) {
    (
        dir.write("ca.pem", "ca"),
        dir.write("client.pem", "cert"),
        dir.write("client.key", "key"),
    )
}

#[test]
fn every_upstream_key() {
    let dir = TempDir::create();
    let (ca, cert, key) = cert_files(&dir);
    let text = format!(
        "{LISTENER}upstreams:
  app:
    servers:
      - \"10.0.0.1:443\"
      - address: \"api.internal:8443\"
        weight: 3
        sni: other.internal
        max_connections: 5
        tls: true
    balance: hash
    hash_key: \"header:X-User\"
    connect_timeout: 1s
    read_timeout: 2s
    write_timeout: 3s
    idle_timeout: 90s
    panic_threshold: 30
    queue_timeout: 250ms
    tls: true
    sni: api.example.com
    verify_cert: false
    verify_hostname: false
    ca_file: {ca}
    client_cert: {cert}
    client_key: {key}
    alpn: h1h2
    tcp_keepalive: {{ idle: 30s, interval: 5s, count: 4 }}
    tcp_fast_open: true
    tcp_recv_buf: 65536
    dscp: 46
    h2_ping_interval: 20s
    max_h2_streams: 100
    max_connections: 64
    host_header: server
    retries:
      attempts: 3
      on: [connect_failure, timeout, reset, 502, 503]
      methods: [GET, POST]
      budget: {{ ratio: 0.5, min_per_sec: 10 }}
    health_check:
      type: https
      interval: 5s
      timeout: 1s
      healthy_threshold: 1
      unhealthy_threshold: 4
      path: /healthz?full=1
      method: HEAD
      host: health.internal
      expected_status: [200, \"3xx\"]
      headers: {{ x-probe: pylon }}
      port: 9000
    passive_health:
      consecutive_failures: 2
      failure_statuses: [500, 503]
      ejection_time: 10s
      max_ejection_time: 1m
      max_ejected_percent: 100
",
        ca = ca.display(),
        cert = cert.display(),
        key = key.display()
    );
    let c = yaml(&text);
    let u = &c.upstreams["app"];
    assert_eq!(u.balance, Balance::Hash);
    assert_eq!(u.hash_key, Some(HashKey::Header("X-User".into())));
    assert_eq!(u.connect_timeout, Duration::from_secs(1));
    assert_eq!(u.read_timeout, Duration::from_secs(2));
    assert_eq!(u.write_timeout, Duration::from_secs(3));
    assert_eq!(u.idle_timeout, Some(Duration::from_secs(90)));
    assert_eq!(u.panic_threshold, 30);
    assert_eq!(u.queue_timeout, Duration::from_millis(250));
    assert_eq!(
        u.peer,
        PeerOptions {
            tls: Some(true),
            sni: Some("api.example.com".into()),
            verify_cert: Some(false),
            verify_hostname: Some(false),
            ca_file: Some(ca),
            client_cert: Some(cert),
            client_key: Some(key),
            alpn: Some(Alpn::H1h2),
            tcp_keepalive: Some(TcpKeepalive {
                idle: Duration::from_secs(30),
                interval: Duration::from_secs(5),
                count: 4
            }),
            tcp_fast_open: Some(true),
            tcp_recv_buf: Some(65536),
            dscp: Some(46),
            h2_ping_interval: Some(Duration::from_secs(20)),
            max_h2_streams: Some(100),
            max_connections: Some(64),
            host_header: Some(HostHeader::Server),
        }
    );
    assert_eq!(
        u.retries,
        Some(Retries {
            attempts: 3,
            on: vec![
                RetryOn::ConnectFailure,
                RetryOn::Timeout,
                RetryOn::Reset,
                RetryOn::Status(502),
                RetryOn::Status(503)
            ],
            methods: RetryMethods::List(vec!["GET".into(), "POST".into()]),
            budget: RetryBudget {
                ratio: 0.5,
                min_per_sec: 10
            },
        })
    );
    let h = u.health_check.as_ref().unwrap();
    assert_eq!(h.kind, CheckType::Https);
    assert_eq!(h.interval, Duration::from_secs(5));
    assert_eq!(h.timeout, Duration::from_secs(1));
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (1, 4));
    assert_eq!(h.path, "/healthz?full=1");
    assert_eq!(h.method, "HEAD");
    assert_eq!(h.host.as_deref(), Some("health.internal"));
    assert_eq!(
        h.expected_status,
        [StatusMatch::Code(200), StatusMatch::Class(3)]
    );
    assert_eq!(h.headers["x-probe"], "pylon");
    assert_eq!(h.port, Some(9000));
    assert_eq!(
        u.passive_health,
        Some(PassiveHealth {
            consecutive_failures: 2,
            failure_statuses: vec![500, 503],
            ejection_time: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(60),
            max_ejected_percent: 100,
        })
    );

    // Servers: the shorthand inherits everything; the map sets its own options.
    assert_eq!(
        u.servers[0],
        Server::new(ServerAddress::Ip("10.0.0.1:443".parse().unwrap()))
    );
    let s = &u.servers[1];
    assert_eq!(
        s.address,
        ServerAddress::Name {
            host: "api.internal".into(),
            port: 8443
        }
    );
    assert_eq!(s.weight, 3);
    assert_eq!(s.peer.sni.as_deref(), Some("other.internal"));
    assert_eq!(s.peer.max_connections, Some(5));
    let effective = s.peer.or(&u.peer);
    assert_eq!(effective.sni.as_deref(), Some("other.internal"));
    assert_eq!(effective.max_connections, Some(5));
    assert_eq!(effective.dscp, Some(46));

    // Printed back and loaded again, the config is the same.
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert!(json.contains("\"hash_key\": \"header:X-User\""), "{json}");
    assert!(json.contains("\"type\": \"https\""), "{json}");
    let back = load_str(&json, Format::Json, Path::new("back.json")).unwrap();
    assert_eq!(back, c);
}

#[test]
fn defaults() {
    let c = yaml(BASE);
    let u = &c.upstreams["app"];
    assert_eq!(u.balance, Balance::RoundRobin);
    assert_eq!(u.hash_key, None);
    assert_eq!(u.idle_timeout, None);
    assert_eq!(u.retries, None);
    assert_eq!(u.health_check, None);
    assert_eq!(u.passive_health, None);
    assert_eq!(u.panic_threshold, 0);
    assert_eq!(u.queue_timeout, DEFAULT_QUEUE_TIMEOUT);
    assert_eq!(u.queue_timeout, Duration::from_secs(1));
    assert_eq!(u.peer, PeerOptions::default());
    assert_eq!(u.servers[0].peer, PeerOptions::default());
    assert_eq!(*u, Upstream::new(u.servers.clone()));
    assert_eq!(c.upstream, None);

    let u = app("    health_check: {}\n    passive_health: {}\n    retries: {}\n");
    let h = u.health_check.unwrap();
    assert_eq!(h, HealthCheck::default());
    assert_eq!(h.kind, CheckType::Http);
    assert_eq!(h.interval, Duration::from_secs(10));
    assert_eq!(h.timeout, Duration::from_secs(2));
    assert_eq!((h.healthy_threshold, h.unhealthy_threshold), (2, 3));
    assert_eq!((h.path.as_str(), h.method.as_str()), ("/", "GET"));
    assert_eq!(h.host, None);
    assert_eq!(
        h.expected_status,
        [StatusMatch::Class(2), StatusMatch::Class(3)]
    );
    assert!(h.headers.is_empty());
    assert_eq!(h.port, None);
    let p = u.passive_health.unwrap();
    assert_eq!(p, PassiveHealth::default());
    assert_eq!(p.consecutive_failures, 5);
    assert_eq!(p.failure_statuses, [502, 503, 504]);
    assert_eq!(p.ejection_time, Duration::from_secs(30));
    assert_eq!(p.max_ejection_time, Duration::from_secs(300));
    assert_eq!(p.max_ejected_percent, 50);
    let r = u.retries.unwrap();
    assert_eq!(r, Retries::default());
    assert_eq!(r.attempts, 2);
    assert_eq!(r.on, [RetryOn::ConnectFailure]);
    assert_eq!(r.methods, RetryMethods::Idempotent);
    assert_eq!(r.budget.ratio, 0.2);
    assert_eq!(r.budget.min_per_sec, 3);

    let k = app("    tcp_keepalive: {}\n").peer.tcp_keepalive.unwrap();
    assert_eq!(k, TcpKeepalive::default());
    assert_eq!(
        (k.idle, k.interval, k.count),
        (Duration::from_secs(60), Duration::from_secs(10), 3)
    );
}

#[test]
fn balance_algorithms() {
    for (text, want) in [
        ("round_robin", Balance::RoundRobin),
        ("random", Balance::Random),
        ("least_conn", Balance::LeastConn),
        ("ip_hash", Balance::IpHash),
        ("least_time", Balance::LeastTime),
    ] {
        assert_eq!(app(&format!("    balance: {text}\n")).balance, want);
    }
    for (text, want) in [
        ("client_ip", HashKey::ClientIp),
        ("\"header:X-User\"", HashKey::Header("X-User".into())),
        ("\"cookie:sid\"", HashKey::Cookie("sid".into())),
        ("path", HashKey::Path),
        ("\"query:user\"", HashKey::Query("user".into())),
    ] {
        let u = app(&format!("    balance: hash\n    hash_key: {text}\n"));
        assert_eq!(u.hash_key, Some(want));
    }
}

#[test]
fn peer_option_values() {
    for (text, want) in [("h1", Alpn::H1), ("h2", Alpn::H2)] {
        assert_eq!(app(&format!("    alpn: {text}\n")).peer.alpn, Some(want));
    }
    for (text, want) in [
        ("keep", HostHeader::Keep),
        ("server", HostHeader::Server),
        (
            "api.example.com",
            HostHeader::Custom("api.example.com".into()),
        ),
    ] {
        let u = app(&format!("    host_header: {text}\n"));
        assert_eq!(u.peer.host_header, Some(want));
    }
    let u = app("    tls: false\n    tcp_fast_open: false\n    dscp: 0\n");
    assert_eq!(u.peer.tls, Some(false));
    assert_eq!(u.peer.tcp_fast_open, Some(false));
    assert_eq!(u.peer.dscp, Some(0));
}

#[test]
fn server_names_and_options() {
    let c = yaml(&format!(
        "{LISTENER}upstreams:\n  app:\n    servers:\n      - localhost:3000\n      - \"[::1]:3001\"\n      - {{ address: \"db-1.svc.cluster.local.:5432\", tls: true, alpn: h2, host_header: keep }}\n"
    ));
    let s = &c.upstreams["app"].servers;
    assert_eq!(s[0].address.to_string(), "localhost:3000");
    assert_eq!(s[0].address.host(), "localhost");
    assert_eq!(s[0].address.port(), 3000);
    assert_eq!(s[1].address.to_string(), "[::1]:3001");
    assert_eq!(s[1].address.host(), "::1");
    assert_eq!(s[2].address.host(), "db-1.svc.cluster.local.");
    assert_eq!(s[2].peer.tls, Some(true));
    assert_eq!(s[2].peer.alpn, Some(Alpn::H2));
    assert_eq!(s[2].peer.host_header, Some(HostHeader::Keep));
    assert_eq!(s[2].weight, 1);
}

#[test]
fn route_overrides() {
    let c = yaml(&format!(
        "{BASE}routes:\n  - name: r\n    rule: \"Path(`/`)\"\n    upstream: app\n    timeout: 30s\n    connect_timeout: 1s\n    read_timeout: 2s\n    write_timeout: 3s\n    idle_timeout: 4s\n    retries: {{ attempts: 0 }}\n"
    ));
    let r = &c.routes[0];
    assert_eq!(r.timeout, Some(Duration::from_secs(30)));
    assert_eq!(r.connect_timeout, Some(Duration::from_secs(1)));
    assert_eq!(r.read_timeout, Some(Duration::from_secs(2)));
    assert_eq!(r.write_timeout, Some(Duration::from_secs(3)));
    assert_eq!(r.idle_timeout, Some(Duration::from_secs(4)));
    assert_eq!(r.retries.as_ref().map(|r| r.attempts), Some(0));
    let c = yaml(&format!(
        "{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: app }}\n"
    ));
    let r = &c.routes[0];
    assert_eq!(
        (r.timeout, r.connect_timeout, r.idle_timeout),
        (None, None, None)
    );
    assert_eq!(r.retries, None);
}

/// Lists mixing names and numbers read the same in YAML, TOML and JSON.
#[test]
fn mixed_lists_in_every_format() {
    let yaml_text = format!(
        "{LISTENER}upstreams:\n  app:\n    servers: [\"127.0.0.1:3000\"]\n    retries:\n      on: [connect_failure, timeout, 502, 503]\n      methods: all\n    health_check:\n      expected_status: [200, \"2xx\", 301]\n"
    );
    let toml_text = "listeners = [{ name = \"web\", address = \"127.0.0.1:8080\" }]\n[upstreams.app]\nservers = [\"127.0.0.1:3000\"]\nretries = { on = [\"connect_failure\", \"timeout\", 502, 503], methods = \"all\" }\nhealth_check = { expected_status = [200, \"2xx\", 301] }\n";
    let json_text = r#"{"listeners": [{"name": "web", "address": "127.0.0.1:8080"}],
        "upstreams": {"app": {"servers": ["127.0.0.1:3000"],
          "retries": {"on": ["connect_failure", "timeout", 502, 503], "methods": "all"},
          "health_check": {"expected_status": [200, "2xx", 301]}}}}"#;
    let y = yaml(&yaml_text);
    let t = load_str(toml_text, Format::Toml, Path::new("t.toml")).unwrap();
    let j = load_str(json_text, Format::Json, Path::new("t.json")).unwrap();
    assert_eq!(y, t);
    assert_eq!(y, j);
    let u = &y.upstreams["app"];
    let r = u.retries.as_ref().unwrap();
    assert_eq!(
        r.on,
        [
            RetryOn::ConnectFailure,
            RetryOn::Timeout,
            RetryOn::Status(502),
            RetryOn::Status(503)
        ]
    );
    assert_eq!(r.methods, RetryMethods::All);
    let expected = &u.health_check.as_ref().unwrap().expected_status;
    assert_eq!(
        expected,
        &[
            StatusMatch::Code(200),
            StatusMatch::Class(2),
            StatusMatch::Code(301)
        ]
    );
    // Methods as a list, in every format.
    let t = load_str(
        &toml_text.replace("methods = \"all\"", "methods = [\"GET\", \"PUT\"]"),
        Format::Toml,
        Path::new("t.toml"),
    )
    .unwrap();
    let j = load_str(
        &json_text.replace("\"methods\": \"all\"", "\"methods\": [\"GET\", \"PUT\"]"),
        Format::Json,
        Path::new("t.json"),
    )
    .unwrap();
    let y = yaml(&yaml_text.replace("methods: all", "methods: [GET, PUT]"));
    let list = RetryMethods::List(vec!["GET".into(), "PUT".into()]);
    for c in [&y, &t, &j] {
        assert_eq!(c.upstreams["app"].retries.as_ref().unwrap().methods, list);
    }
}

/// `${VAR}` values stand for numbers inside the mixed lists too.
#[test]
fn substituted_statuses() {
    std::env::set_var("PYLON_T_UP_STATUS", "503");
    let u = app("    retries: { on: [\"${PYLON_T_UP_STATUS}\"] }\n    health_check: { expected_status: [\"${PYLON_T_UP_STATUS}\"] }\n");
    assert_eq!(u.retries.unwrap().on, [RetryOn::Status(503)]);
    assert_eq!(
        u.health_check.unwrap().expected_status,
        [StatusMatch::Code(503)]
    );
}

#[test]
fn serialised_forms() {
    let u = app("    balance: least_conn\n    retries: { on: [reset, 504], methods: idempotent }\n    health_check: { type: tcp }\n    host_header: api.example.com\n    alpn: h2\n");
    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["balance"], "least_conn");
    assert_eq!(json["retries"]["on"], serde_json::json!(["reset", 504]));
    assert_eq!(json["retries"]["methods"], "idempotent");
    assert_eq!(json["health_check"]["type"], "tcp");
    assert_eq!(
        json["health_check"]["expected_status"],
        serde_json::json!(["2xx", "3xx"])
    );
    assert_eq!(json["host_header"], "api.example.com");
    assert_eq!(json["alpn"], "h2");
    assert_eq!(json["queue_timeout"], "1s");
    // Unset peer options are left out, not written as null.
    assert!(json.get("tls").is_none(), "{json}");
    assert!(json["servers"][0].get("tls").is_none(), "{json}");
    assert_eq!(json["servers"][0]["address"], "127.0.0.1:3000");
    let _: Config = yaml(BASE);
}
