//! Load-balancer mode (a top-level `upstream`) and `dns`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pylon_config::{
    load, load_str, Balance, DnsConfig, Format, LookupStrategy, Route, ServerAddress, LB_NAME,
};

use crate::{errors, errors_in, yaml, TempDir, BASE};

const LISTENER: &str = "listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\n";

#[test]
fn top_level_upstream_becomes_an_upstream_and_a_route() {
    let c = yaml(&format!(
        "{LISTENER}upstream:\n  servers: [\"10.0.0.1:80\", \"app.internal:80\"]\n  balance: least_conn\n"
    ));
    assert_eq!(c.upstream, None);
    assert_eq!(c.upstreams.keys().collect::<Vec<_>>(), [LB_NAME]);
    let u = &c.upstreams["default"];
    assert_eq!(u.balance, Balance::LeastConn);
    assert_eq!(
        u.servers[1].address,
        ServerAddress::Name {
            host: "app.internal".into(),
            port: 80
        }
    );
    assert_eq!(
        c.routes,
        [Route::to_upstream("default", "PathPrefix(`/`)", "default")]
    );
    let route = &c.routes[0];
    assert_eq!(route.name, "default");
    assert_eq!(route.upstream.as_deref(), Some("default"));
    assert_eq!(route.listeners, None);
    assert!(pylon_rules::Rule::parse(&route.rule).is_ok());

    // The same in TOML and JSON; other named upstreams may sit beside it.
    let toml = "listeners = [{ name = \"web\", address = \"127.0.0.1:8080\" }]\n[upstream]\nservers = [\"10.0.0.1:80\", \"app.internal:80\"]\nbalance = \"least_conn\"\n";
    assert_eq!(
        load_str(toml, Format::Toml, Path::new("t.toml")).unwrap(),
        c
    );
    let json = r#"{"listeners": [{"name": "web", "address": "127.0.0.1:8080"}],
        "upstream": {"servers": ["10.0.0.1:80", "app.internal:80"], "balance": "least_conn"},
        "upstreams": {"spare": {"servers": ["10.0.0.9:80"]}}}"#;
    let j = load_str(json, Format::Json, Path::new("t.json")).unwrap();
    assert_eq!(j.upstreams["default"], c.upstreams["default"]);
    assert!(j.upstreams.contains_key("spare"));
    assert_eq!(j.routes, c.routes);
}

#[test]
fn load_balancer_mode_errors() {
    assert_eq!(
        errors(&format!(
            "{BASE}upstream:\n  servers: [\"10.0.0.1:80\"]\nroutes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: app }}\n"
        )),
        ["t.yaml:7:1: upstream: use either a top-level `upstream` (load-balancer mode) or `routes`, not both (`routes` is at t.yaml:9:1)"]
    );
    assert_eq!(
        errors(&format!(
            "{LISTENER}upstreams:\n  default: {{ servers: [\"10.0.0.2:80\"] }}\nupstream:\n  servers: [\"10.0.0.1:80\"]\n"
        )),
        ["t.yaml:5:1: upstream: a top-level `upstream` is the upstream `default`, which is already defined at t.yaml:4:3: rename that one"]
    );
    // Its own checks report under `upstream`.
    assert_eq!(
        errors(&format!(
            "{LISTENER}upstream:\n  servers:\n    - {{ address: \"10.0.0.1:80\", weight: 0 }}\n"
        )),
        ["t.yaml:5:41: upstream.servers[0].weight: weight must be at least 1"]
    );
    assert_eq!(
        errors(&format!("{LISTENER}upstream:\n")),
        ["t.yaml:3:9: upstream: missing required key `servers`"]
    );
    assert_eq!(
        errors(&format!("{LISTENER}upstream:\n  servers: [\"10.0.0.1:80\"]\n  balanse: random\n")),
        ["t.yaml:5:3: upstream.balanse: unknown key `balanse` in upstream, did you mean `balance`?"]
    );
    assert_eq!(
        errors(&format!("{LISTENER}upstream:\n  servers: [\"10.0.0.1:80\"]\n  balance: round_robbin\n")),
        ["t.yaml:5:12: upstream.balance: unknown value `round_robbin`, expected one of: round_robin, random, least_conn, ip_hash, hash, least_time; did you mean `round_robin`?"]
    );
    assert_eq!(
        errors(&format!(
            "{LISTENER}upstrem:\n  servers: [\"10.0.0.1:80\"]\n"
        )),
        ["t.yaml:3:1: upstrem: unknown key `upstrem` at the top level, did you mean `upstream`?"]
    );
}

#[test]
fn load_balancer_mode_across_files() {
    let dir = TempDir::create();
    dir.write(
        "a.yaml",
        &format!("{LISTENER}upstream:\n  servers: [\"10.0.0.1:80\"]\n"),
    );
    dir.write("b.yaml", "upstream:\n  servers: [\"10.0.0.2:80\"]\n");
    dir.write(
        "c.toml",
        "[[routes]]\nname = \"r\"\nrule = \"Path(`/`)\"\nupstream = \"default\"\n",
    );
    let errs = load(dir.path()).unwrap_err();
    let (a, b, c) = (
        dir.path().join("a.yaml"),
        dir.path().join("b.yaml"),
        dir.path().join("c.toml"),
    );
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            format!("{}:3:1: upstream: use either a top-level `upstream` (load-balancer mode) or `routes`, not both (`routes` is at {}:1:3)", a.display(), c.display()),
            format!("{}:1:1: upstream: `upstream` is already set at {}:3:1; only one file may set it", b.display(), a.display()),
        ]
    );
    std::fs::remove_file(&b).unwrap();
    std::fs::remove_file(&c).unwrap();
    let config = load(dir.path()).unwrap().config;
    assert_eq!(config.routes.len(), 1);
}

#[test]
fn dns_every_key() {
    let c = yaml(&format!(
        "{BASE}dns:\n  nameservers: [\"1.1.1.1\", \"10.0.0.2:5353\", \"[2606:4700::1111]:53\", \"2606:4700::1001\"]\n  use_hosts_file: false\n  hosts_file: /etc/pylon/hosts\n  timeout: 2s\n  attempts: 4\n  strategy: ipv6_then_ipv4\n  cache_size: 1024\n  refresh: 30s\n"
    ));
    let d = &c.dns;
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        d.nameservers,
        [
            addr("1.1.1.1:53"),
            addr("10.0.0.2:5353"),
            addr("[2606:4700::1111]:53"),
            addr("[2606:4700::1001]:53")
        ]
    );
    assert!(!d.use_hosts_file);
    assert_eq!(d.hosts_file, Path::new("/etc/pylon/hosts"));
    assert_eq!(d.timeout, Duration::from_secs(2));
    assert_eq!(d.attempts, 4);
    assert_eq!(d.strategy, LookupStrategy::Ipv6ThenIpv4);
    assert_eq!(d.cache_size, 1024);
    assert_eq!(d.refresh, Some(Duration::from_secs(30)));
    for (text, want) in [
        ("ipv4_then_ipv6", LookupStrategy::Ipv4ThenIpv6),
        ("ipv4_only", LookupStrategy::Ipv4Only),
        ("ipv6_only", LookupStrategy::Ipv6Only),
    ] {
        let c = yaml(&format!("{BASE}dns:\n  strategy: {text}\n"));
        assert_eq!(c.dns.strategy, want);
    }
    // Printed back, name servers keep their port.
    let json = serde_json::to_value(&c.dns).unwrap();
    assert_eq!(json["nameservers"][0], "1.1.1.1:53");
}

#[test]
fn dns_defaults() {
    for text in [
        BASE.to_string(),
        format!("{BASE}dns:\n"),
        format!("{BASE}dns: {{}}\n"),
    ] {
        let d = yaml(&text).dns;
        assert_eq!(d, DnsConfig::default());
        assert!(d.nameservers.is_empty());
        assert!(d.use_hosts_file);
        assert_eq!(d.hosts_file, Path::new("/etc/hosts"));
        assert_eq!(d.timeout, Duration::from_secs(5));
        assert_eq!(d.attempts, 2);
        assert_eq!(d.strategy, LookupStrategy::Ipv4ThenIpv6);
        assert_eq!(d.cache_size, 256);
        assert_eq!(d.refresh, None);
    }
}

#[test]
fn dns_errors() {
    assert_eq!(
        errors(&format!(
            "{BASE}dns:\n  attempts: 0\n  timeout: 0s\n  refresh: 500ms\n"
        )),
        [
            "t.yaml:8:13: dns.attempts: attempts must be at least 1, found 0",
            "t.yaml:9:12: dns.timeout: timeout must be more than 0s",
            "t.yaml:10:12: dns.refresh: refresh must be at least 1s, found 500ms",
        ]
    );
    assert_eq!(
        errors(&format!("{BASE}dns:\n  nameservers: [\"1.1.1.1\", dns.google]\n")),
        ["t.yaml:8:28: dns.nameservers[1]: expected a name server's IP address like \"1.1.1.1\", \"10.0.0.2:5353\" or \"[2606:4700::1111]:53\", found \"dns.google\" (name servers are given by IP address)"]
    );
    assert_eq!(
        errors(&format!("{BASE}dns:\n  strategy: ipv4\n")),
        ["t.yaml:8:13: dns.strategy: unknown value `ipv4`, expected one of: ipv4_then_ipv6, ipv6_then_ipv4, ipv4_only, ipv6_only; did you mean `ipv4_only`?"]
    );
    assert_eq!(
        errors_in(
            "listeners = [{ name = \"w\", address = \"127.0.0.1:1\" }]\n[dns]\nattempt = 3\n",
            Format::Toml
        ),
        ["t.toml:3:1: dns.attempt: unknown key `attempt` in dns, did you mean `attempts`?"]
    );
    let dir = TempDir::create();
    dir.write("a.yaml", &format!("{BASE}dns: {{ attempts: 3 }}\n"));
    dir.write("b.yaml", "dns: { attempts: 4 }\n");
    let errs = load(dir.path()).unwrap_err();
    assert_eq!(
        errs.to_string(),
        format!(
            "{}:1:1: dns: `dns` is already set at {}:7:1; only one file may set it",
            dir.path().join("b.yaml").display(),
            dir.path().join("a.yaml").display()
        )
    );
}
