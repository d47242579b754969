//! The same config in YAML, TOML and JSON; defaults; durations; addresses; YAML specifics.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pylon_config::{
    load, load_str, Config, Format, PeerOptions, Server, ServerAddress, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_READ_TIMEOUT,
};

use crate::{errors, errors_in, fixture, yaml, BASE};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn example_loads_identically_in_every_format() {
    let from_yaml = load(&fixture("example.yaml")).unwrap().config;
    let from_toml = load(&fixture("example.toml")).unwrap().config;
    let from_json = load(&fixture("example.json")).unwrap().config;
    assert_eq!(from_yaml, from_toml);
    assert_eq!(from_yaml, from_json);

    let c = from_yaml;
    let s = &c.server;
    assert_eq!(s.threads, Some(1));
    assert_eq!(s.work_stealing, Some(true));
    assert_eq!(s.grace_period, Some(Duration::from_secs(5)));
    assert_eq!(s.graceful_shutdown_timeout, Some(Duration::from_secs(10)));
    assert_eq!(s.upstream_keepalive_pool_size, Some(128));
    assert_eq!(s.pid_file.as_deref(), Some(Path::new("/tmp/pylon.pid")));
    assert_eq!(
        s.error_log.as_deref(),
        Some(Path::new("/var/log/pylon.err"))
    );
    assert!(!s.daemon);
    assert_eq!(
        s.upgrade_sock.as_deref(),
        Some(Path::new("/tmp/pylon_upgrade.sock"))
    );
    assert_eq!(s.user.as_deref(), Some("nobody"));
    assert_eq!(s.group.as_deref(), Some("nogroup"));

    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "web");
    assert_eq!(c.listeners[0].address, addr("127.0.0.1:8080"));

    let app = &c.upstreams["app"];
    assert_eq!(
        app.servers,
        vec![
            Server::new(ServerAddress::Ip(addr("127.0.0.1:3000"))),
            Server {
                weight: 2,
                peer: PeerOptions {
                    max_connections: Some(10),
                    ..PeerOptions::default()
                },
                ..Server::new(ServerAddress::parse("localhost:3001").unwrap())
            }
        ]
    );
    assert_eq!(app.connect_timeout, Duration::from_secs(5));
    assert_eq!(app.read_timeout, Duration::from_secs(60));
    assert_eq!(app.write_timeout, Duration::from_secs(60));
    assert_eq!(app.peer.max_connections, Some(100));
    assert_eq!(c.dns.nameservers, [addr("127.0.0.53:53")]);
    assert_eq!(c.dns.refresh, Some(Duration::from_secs(30)));

    let api = &c.routes[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.rule, "Host(`api.example.com`) && PathPrefix(`/v1`)");
    assert_eq!(api.effective_priority(), 10);
    assert_eq!(api.upstream.as_deref(), Some("app"));
    assert_eq!(api.listeners, Some(vec!["web".to_string()]));
    let hello = &c.routes[1];
    assert_eq!(hello.priority, None);
    let respond = hello.respond.as_ref().unwrap();
    assert_eq!(respond.status, 200);
    assert_eq!(respond.body.as_deref(), Some("hi\n"));
    assert_eq!(respond.headers["content-type"], "text/plain");
}

#[test]
fn default_priority_is_the_rules() {
    let c = yaml(&format!(
        "{BASE}routes:\n  - {{ name: a, rule: \"Path(`/hello`)\", upstream: app }}\n"
    ));
    let rule = pylon_rules::Rule::parse(&c.routes[0].rule).unwrap();
    assert_eq!(c.routes[0].effective_priority(), rule.default_priority());
    assert_eq!(c.routes[0].effective_priority(), 14);
}

#[test]
fn serialises_back_to_an_equivalent_config() {
    let c = load(&fixture("example.yaml")).unwrap().config;
    let json = serde_json::to_string_pretty(&c).unwrap();
    assert!(json.contains("\"grace_period\": \"5s\""), "{json}");
    assert!(json.contains("\"read_timeout\": \"1m\""), "{json}");
    assert!(json.contains("\"address\": \"127.0.0.1:8080\""), "{json}");
    let back = load_str(&json, Format::Json, Path::new("back.json")).unwrap();
    assert_eq!(back, c);
}

#[test]
fn defaults_apply() {
    let c = yaml(BASE);
    assert_eq!(c.server, Default::default());
    let app = &c.upstreams["app"];
    assert_eq!(app.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(app.read_timeout, DEFAULT_READ_TIMEOUT);
    assert_eq!(app.servers[0].weight, 1);
    assert!(c.routes.is_empty());
}

#[test]
fn durations_in_every_shape() {
    for (text, want) in [
        ("30s", Duration::from_secs(30)),
        ("250ms", Duration::from_millis(250)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("1m30s", Duration::from_secs(90)),
        ("\"45\"", Duration::from_secs(45)),
        ("30", Duration::from_secs(30)),
        ("1.5", Duration::from_millis(1500)),
    ] {
        let c = yaml(&format!("{BASE}server:\n  grace_period: {text}\n"));
        assert_eq!(c.server.grace_period, Some(want), "{text}");
    }
    let c: Config = load_str(
        "listeners = [{ name = \"w\", address = \"127.0.0.1:1\" }]\n[upstreams.a]\nservers = [\"127.0.0.1:2\"]\nconnect_timeout = 2.5\nread_timeout = 7\n",
        Format::Toml,
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.upstreams["a"].connect_timeout,
        Duration::from_millis(2500)
    );
    assert_eq!(c.upstreams["a"].read_timeout, Duration::from_secs(7));
}

#[test]
fn bad_durations() {
    assert_eq!(
        errors(&format!("{BASE}server:\n  grace_period: fast\n")),
        [
            r#"t.yaml:8:17: server.grace_period: expected a duration like "30s", "250ms" or a number of seconds, found "fast""#
        ]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  grace_period: -3\n")),
        [
            r#"t.yaml:8:17: server.grace_period: expected a duration like "30s", "250ms" or a number of seconds, found the number -3"#
        ]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  grace_period: [1]\n")),
        [
            r#"t.yaml:8:17: server.grace_period: expected a duration like "30s", "250ms" or a number of seconds, found a list"#
        ]
    );
}

#[test]
fn ipv6_addresses() {
    let c = yaml(
        "listeners:\n  - { name: v6, address: \"[::1]:8080\" }\n  - { name: any6, address: \"[::]:443\" }\nupstreams:\n  a:\n    servers: [\"[2001:db8::1]:80\", { address: \"[::1]:81\", weight: 3 }]\n",
    );
    assert_eq!(c.listeners[0].address, addr("[::1]:8080"));
    assert_eq!(c.listeners[1].address, addr("[::]:443"));
    assert_eq!(
        c.upstreams["a"].servers[0].address,
        ServerAddress::Ip(addr("[2001:db8::1]:80"))
    );
    assert_eq!(
        c.upstreams["a"].servers[1],
        Server {
            weight: 3,
            ..Server::new(ServerAddress::Ip(addr("[::1]:81")))
        }
    );
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"[::1]:8080\""), "{json}");
}

#[test]
fn yaml_anchors_and_aliases_expand() {
    let c = yaml(
        "listeners:\n  - { name: web, address: &a \"127.0.0.1:8080\" }\nupstreams:\n  one: &up\n    servers: [\"127.0.0.1:1\"]\n  two: *up\nroutes:\n  - { name: r, rule: \"Path(`/`)\", upstream: two }\n",
    );
    assert_eq!(c.upstreams["one"], c.upstreams["two"]);
}

#[test]
fn yaml_bomb_is_refused() {
    let mut text = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for i in 0..9 {
        let prev = (b'a' + i) as char;
        let next = (b'a' + i + 1) as char;
        text.push_str(&format!("{next}: &{next} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("YAML aliases expand to more than 10000 values"),
        "{errs:?}"
    );
}

#[test]
fn deep_nesting_is_refused() {
    for (text, format) in [
        ("a: ".to_string() + &"[".repeat(50_000), Format::Yaml),
        ("[".repeat(50_000), Format::Json),
        ("a = ".to_string() + &"[".repeat(50_000), Format::Toml),
    ] {
        let errs = errors_in(&text, format);
        assert!(!errs.is_empty(), "{format:?}");
    }
    let errs = errors(&("a: ".to_string() + &"[".repeat(100) + &"]".repeat(100)));
    assert_eq!(errs, ["t.yaml:1:67: nesting deeper than 64 levels"]);
}

#[test]
fn yaml_specifics() {
    assert_eq!(
        errors(&format!("{BASE}---\nlisteners: []\n")),
        ["t.yaml:7:1: a config file holds one YAML document; remove the second `---`"]
    );
    assert_eq!(
        errors("listeners:\n  - name: web\n    name: web2\n    address: \"127.0.0.1:1\"\n"),
        ["t.yaml:3:5: duplicate key `name` (first defined at line 2, column 5)"]
    );
    assert_eq!(
        errors("a: !custom x\n"),
        ["t.yaml:1:4: unsupported YAML tag `!custom`"]
    );
    // `!!str` keeps a number a string.
    let c = yaml(&format!(
        "{BASE}routes:\n  - {{ name: !!str 42, rule: \"Path(`/`)\", upstream: app }}\n"
    ));
    assert_eq!(c.routes[0].name, "42");
}

#[test]
fn dollar_schema_key_is_ignored() {
    let json = r#"{"$schema": "./pylon.schema.json", "listeners": [{"name": "w", "address": "127.0.0.1:1"}]}"#;
    let c = load_str(json, Format::Json, Path::new("t.json")).unwrap();
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn json_duplicate_keys() {
    assert_eq!(
        errors_in("{\"listeners\": [], \"listeners\": []}", Format::Json),
        ["t.json:1:19: duplicate key `listeners` (first defined at line 1, column 2)"]
    );
}

#[test]
fn format_from_path() {
    assert_eq!(Format::from_path(Path::new("a/b.yml")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("b.YAML")), Some(Format::Yaml));
    assert_eq!(Format::from_path(Path::new("b.toml")), Some(Format::Toml));
    assert_eq!(Format::from_path(Path::new("b.json")), Some(Format::Json));
    assert_eq!(Format::from_path(Path::new("b.ini")), None);
    assert_eq!(Format::from_path(Path::new("yaml")), None);
}

/// Truncations and byte flips of the example never panic, in any format.
#[test]
fn mangled_input_never_panics() {
    for (name, format) in [
        ("example.yaml", Format::Yaml),
        ("example.toml", Format::Toml),
        ("example.json", Format::Json),
    ] {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        for cut in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
            let _ = load_str(&text[..cut], format, Path::new(name));
            for junk in ["\"", "[", "{", ":", "\n  ", "${", "*a", "&a ", "\t", "- "] {
                let mangled = format!("{}{junk}{}", &text[..cut], &text[cut..]);
                let _ = load_str(&mangled, format, Path::new(name));
            }
        }
    }
}

/// One-line files with many values parse in linear time (a quadratic position lookup
/// would make this test take minutes).
#[test]
fn long_lines_stay_linear() {
    let n = 200_000;
    let items = vec!["\"é\""; n].join(", ");
    for (text, format) in [
        (format!("x: [{items}]"), Format::Yaml),
        (format!("{{\"x\": [{items}]}}"), Format::Json),
        (format!("x = [{items}]"), Format::Toml),
    ] {
        let errs = errors_in(&text, format);
        assert!(
            errs.iter()
                .any(|e| e.contains("unknown key `x` at the top level")),
            "{errs:?}"
        );
    }
}
