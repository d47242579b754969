//! Every upstream, peer, health, retry and route-option error, with its exact
//! file:line:column and key path.

use pylon_config::Format;

use crate::{errors, errors_in, TempDir, BASE};

/// Errors of an upstream `app` (one server, `127.0.0.1:3000`) with these extra lines,
/// indented 4 spaces; the first extra line is line 6.
fn up(extra: &str) -> Vec<String> {
    errors(&format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:8080\" }}\nupstreams:\n  app:\n    servers: [\"127.0.0.1:3000\"]\n{extra}"
    ))
}

/// Errors of an upstream `app` whose only server is this map (line 6), then `extra`
/// (line 7 on).
fn server(map: &str, extra: &str) -> Vec<String> {
    errors(&format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:8080\" }}\nupstreams:\n  app:\n    servers:\n      - {map}\n{extra}"
    ))
}

#[test]
fn hash_key_goes_with_balance_hash() {
    assert_eq!(
        up("    balance: hash\n"),
        ["t.yaml:6:14: upstreams.app.balance: `hash_key` is required with `balance: hash`"]
    );
    assert_eq!(
        up("    balance: ip_hash\n    hash_key: client_ip\n"),
        ["t.yaml:7:5: upstreams.app.hash_key: `hash_key` only applies to `balance: hash`"]
    );
    assert_eq!(
        up("    hash_key: path\n"),
        ["t.yaml:6:5: upstreams.app.hash_key: `hash_key` only applies to `balance: hash`"]
    );
    assert_eq!(
        up("    balance: hash\n    hash_key: \"header:\"\n"),
        ["t.yaml:7:15: upstreams.app.hash_key: expected a hash key like \"client_ip\", \"header:X-User\", \"cookie:sid\", \"path\" or \"query:user\", found \"header:\" (invalid header name \"\")"]
    );
    assert_eq!(
        up("    balance: hash\n    hash_key: header\n"),
        ["t.yaml:7:15: upstreams.app.hash_key: expected a hash key like \"client_ip\", \"header:X-User\", \"cookie:sid\", \"path\" or \"query:user\", found \"header\" (name the header: \"header:NAME\")"]
    );
}

#[test]
fn percentages() {
    assert_eq!(
        up("    panic_threshold: 101\n"),
        ["t.yaml:6:22: upstreams.app.panic_threshold: panic_threshold must be from 0 to 100, found 101"]
    );
    assert_eq!(
        up("    panic_threshold: 300\n"),
        ["t.yaml:6:22: upstreams.app.panic_threshold: expected a whole number from 0 to 255, found the number 300"]
    );
    assert_eq!(
        up("    passive_health: { max_ejected_percent: 120 }\n"),
        ["t.yaml:6:44: upstreams.app.passive_health.max_ejected_percent: max_ejected_percent must be from 0 to 100, found 120"]
    );
}

#[test]
fn client_certificate_pairs_and_files() {
    let dir = TempDir::create();
    let cert = dir.write("c.pem", "x");
    let cert = cert.display();
    assert_eq!(
        up(&format!(
            "    tls: true\n    client_cert: {cert}\n    sni: api.internal\n"
        )),
        ["t.yaml:7:5: upstreams.app.client_cert: `client_cert` needs `client_key` beside it"]
    );
    assert_eq!(
        server(
            &format!("{{ address: \"127.0.0.1:1\", tls: true, client_key: {cert}, sni: a.internal }}"),
            ""
        ),
        ["t.yaml:6:46: upstreams.app.servers[0].client_key: `client_key` needs `client_cert` beside it"]
    );
    let missing = dir.path().join("missing.pem");
    let missing = missing.display();
    let errs = up(&format!(
        "    tls: true\n    ca_file: {missing}\n    client_cert: {missing}\n    client_key: {}\n    sni: api.internal\n",
        dir.path().display()
    ));
    assert_eq!(
        errs,
        [
            format!("t.yaml:7:14: upstreams.app.ca_file: cannot read {missing}: No such file or directory (os error 2)"),
            format!("t.yaml:8:18: upstreams.app.client_cert: cannot read {missing}: No such file or directory (os error 2)"),
            format!("t.yaml:9:17: upstreams.app.client_key: cannot read {}: not a file", dir.path().display()),
        ]
    );
}

#[test]
fn peer_option_ranges() {
    assert_eq!(
        up("    dscp: 64\n    max_connections: 0\n    max_h2_streams: 0\n"),
        [
            "t.yaml:6:11: upstreams.app.dscp: dscp must be from 0 to 63, found 64",
            "t.yaml:7:22: upstreams.app.max_connections: max_connections must be at least 1, found 0",
            "t.yaml:8:21: upstreams.app.max_h2_streams: max_h2_streams must be at least 1, found 0",
        ]
    );
    assert_eq!(
        server("{ address: \"127.0.0.1:1\", dscp: 99 }", ""),
        ["t.yaml:6:41: upstreams.app.servers[0].dscp: dscp must be from 0 to 63, found 99"]
    );
    assert_eq!(
        up("    tcp_keepalive: { idle: 500ms, interval: 0s, count: 0 }\n"),
        [
            "t.yaml:6:28: upstreams.app.tcp_keepalive.idle: idle must be at least 1s, found 500ms",
            "t.yaml:6:45: upstreams.app.tcp_keepalive.interval: interval must be at least 1s, found 0s",
            "t.yaml:6:56: upstreams.app.tcp_keepalive.count: count must be at least 1, found 0",
        ]
    );
    assert_eq!(
        up("    tls: true\n    sni: \"bad name\"\n"),
        ["t.yaml:7:10: upstreams.app.sni: sni must be a host name: invalid host name \"bad name\": use letters, digits, `-` and `_`, not starting or ending a part with `-`"]
    );
    assert_eq!(
        up("    host_header: \"a\\tb\\n\"\n"),
        ["t.yaml:6:18: upstreams.app.host_header: expected \"keep\", \"server\" or a host like \"api.example.com\", found \"a\\tb\\n\" (a Host header must be non-empty printable ASCII)"]
    );
    assert_eq!(
        up("    alpn: h3\n"),
        ["t.yaml:6:11: upstreams.app.alpn: unknown value `h3`, expected one of: h1, h2, h1h2; did you mean `h1`?"]
    );
}

#[test]
fn tls_options_need_tls() {
    assert_eq!(
        up("    sni: api.example.com\n    alpn: h1h2\n"),
        [
            "t.yaml:6:5: upstreams.app.sni: `sni` only applies to TLS connections, and no server of this upstream uses TLS: add `tls: true`",
            "t.yaml:7:5: upstreams.app.alpn: `alpn: h1h2` is negotiated in the TLS handshake, and no server of this upstream uses TLS: add `tls: true`, or use `h2` for HTTP/2 over cleartext",
        ]
    );
    assert_eq!(
        server("{ address: \"127.0.0.1:1\", verify_cert: false }", ""),
        ["t.yaml:6:35: upstreams.app.servers[0].verify_cert: `verify_cert` only applies to TLS connections, and this server does not use TLS: add `tls: true`"]
    );
    assert_eq!(
        server(
            "{ address: \"127.0.0.1:1\", tls: false, verify_hostname: false }",
            "    tls: true\n"
        ),
        ["t.yaml:6:47: upstreams.app.servers[0].verify_hostname: `verify_hostname` only applies to TLS connections, and this server sets `tls: false`"]
    );
    assert_eq!(
        up("    tls: false\n    alpn: h1h2\n"),
        ["t.yaml:7:5: upstreams.app.alpn: `alpn: h1h2` is negotiated in the TLS handshake, and this upstream sets `tls: false`: use `h2` for HTTP/2 over cleartext"]
    );
    // An upstream's TLS options serve its TLS servers; a plaintext server beside them is
    // fine, and so are a server's own options when the upstream turns TLS on.
    assert_eq!(
        crate::yaml("listeners:\n  - { name: web, address: \"127.0.0.1:8080\" }\nupstreams:\n  app:\n    servers: [\"127.0.0.1:1\", { address: \"127.0.0.1:2\", tls: true }, { address: \"127.0.0.1:3\", tls: false }]\n    sni: api.example.com\n  b:\n    tls: true\n    servers: [{ address: \"127.0.0.1:4\", sni: b.example.com, alpn: h1h2 }]\n").upstreams.len(),
        2
    );
}

#[test]
fn health_check_errors() {
    assert_eq!(
        up("    health_check:\n      interval: 2s\n      timeout: 2s\n"),
        ["t.yaml:8:16: upstreams.app.health_check.timeout: timeout must be less than interval (2s), found 2s"]
    );
    assert_eq!(
        up("    health_check: { interval: 1s }\n"),
        ["t.yaml:6:19: upstreams.app.health_check.timeout: timeout must be less than interval (1s), found 2s"]
    );
    assert_eq!(
        up("    health_check:\n      healthy_threshold: 0\n      unhealthy_threshold: 0\n      port: 0\n"),
        [
            "t.yaml:7:26: upstreams.app.health_check.healthy_threshold: healthy_threshold must be at least 1, found 0",
            "t.yaml:8:28: upstreams.app.health_check.unhealthy_threshold: unhealthy_threshold must be at least 1, found 0",
            "t.yaml:9:13: upstreams.app.health_check.port: port must be at least 1, found 0",
        ]
    );
    assert_eq!(
        up("    health_check:\n      type: tcp\n      path: /health\n      expected_status: [200]\n"),
        [
            "t.yaml:8:7: upstreams.app.health_check.path: `path` only applies to `http` and `https` checks",
            "t.yaml:9:7: upstreams.app.health_check.expected_status: `expected_status` only applies to `http` and `https` checks",
        ]
    );
    assert_eq!(
        up("    health_check:\n      path: health\n      method: \"GE T\"\n      host: \"\"\n      expected_status: []\n      headers: { \"x y\": z }\n"),
        [
            "t.yaml:7:13: upstreams.app.health_check.path: path must start with `/`, found \"health\"",
            "t.yaml:8:15: upstreams.app.health_check.method: invalid method \"GE T\": use letters, digits and !#$%&'*+-.^_`|~",
            "t.yaml:9:13: upstreams.app.health_check.host: invalid host \"\": use non-empty printable ASCII",
            "t.yaml:10:24: upstreams.app.health_check.expected_status: expected_status needs at least one status, e.g. `[200]` or `[\"2xx\"]`",
            "t.yaml:11:18: upstreams.app.health_check.headers[\"x y\"]: invalid header name \"x y\": use letters, digits and !#$%&'*+-.^_`|~",
        ]
    );
    assert_eq!(
        up("    health_check: { path: \"/a b\" }\n"),
        ["t.yaml:6:27: upstreams.app.health_check.path: path must be printable ASCII without spaces (percent-encode the rest), found \"/a b\""]
    );
    assert_eq!(
        up("    health_check: { expected_status: [200, 99, \"6xx\"] }\n"),
        ["t.yaml:6:44: upstreams.app.health_check.expected_status[1]: expected a status from 100 to 599 or a class \"1xx\" to \"5xx\", found the number 99"]
    );
    assert_eq!(
        up("    health_check: { expected_status: [\"6xx\"] }\n"),
        ["t.yaml:6:39: upstreams.app.health_check.expected_status[0]: expected a status from 100 to 599 or a class \"1xx\" to \"5xx\", found \"6xx\""]
    );
    assert_eq!(
        up("    health_check: { type: udp }\n"),
        ["t.yaml:6:27: upstreams.app.health_check.type: unknown value `udp`, expected one of: http, https, tcp"]
    );
}

#[test]
fn passive_health_errors() {
    assert_eq!(
        up("    passive_health:\n      consecutive_failures: 0\n      failure_statuses: [502, 700]\n      ejection_time: 0s\n"),
        [
            "t.yaml:7:29: upstreams.app.passive_health.consecutive_failures: consecutive_failures must be at least 1, found 0",
            "t.yaml:8:31: upstreams.app.passive_health.failure_statuses[1]: status must be from 100 to 599, found 700",
            "t.yaml:9:22: upstreams.app.passive_health.ejection_time: ejection_time must be more than 0s",
        ]
    );
    assert_eq!(
        up("    passive_health:\n      ejection_time: 1m\n      max_ejection_time: 30s\n"),
        ["t.yaml:8:26: upstreams.app.passive_health.max_ejection_time: max_ejection_time must be at least ejection_time (1m), found 30s"]
    );
}

#[test]
fn retry_errors() {
    assert_eq!(
        up("    retries:\n      attempts: 11\n      on: []\n      methods: []\n      budget: { ratio: 1.5 }\n"),
        [
            "t.yaml:7:17: upstreams.app.retries.attempts: attempts must be from 0 to 10, found 11",
            "t.yaml:8:11: upstreams.app.retries.on: on needs at least one condition, e.g. `[connect_failure]`",
            "t.yaml:9:16: upstreams.app.retries.methods: methods needs at least one method, or `idempotent` or `all`",
            "t.yaml:10:24: upstreams.app.retries.budget.ratio: ratio must be from 0.0 to 1.0, found 1.5",
        ]
    );
    assert_eq!(
        up("    retries: { methods: [GET, \"PO ST\"] }\n"),
        ["t.yaml:6:31: upstreams.app.retries.methods[1]: invalid method \"PO ST\": use letters, digits and !#$%&'*+-.^_`|~"]
    );
    assert_eq!(
        up("    retries: { on: [timout] }\n"),
        ["t.yaml:6:21: upstreams.app.retries.on[0]: expected `connect_failure`, `timeout`, `reset` or a status from 500 to 599, found \"timout\", did you mean `timeout`?"]
    );
    assert_eq!(
        up("    retries: { on: [connect_failure, 404] }\n"),
        ["t.yaml:6:38: upstreams.app.retries.on[1]: expected `connect_failure`, `timeout`, `reset` or a status from 500 to 599, found the number 404"]
    );
    assert_eq!(
        up("    retries: { methods: POST }\n"),
        ["t.yaml:6:25: upstreams.app.retries.methods: expected `idempotent`, `all` or a list of methods, found \"POST\" (write one method as a list: [POST])"]
    );
    assert_eq!(
        up("    retries: { budget: { ratio: lots } }\n"),
        ["t.yaml:6:33: upstreams.app.retries.budget.ratio: expected a number, found \"lots\""]
    );
    assert_eq!(
        errors_in(
            "listeners = [{ name = \"w\", address = \"127.0.0.1:1\" }]\n[upstreams.app]\nservers = [\"127.0.0.1:2\"]\nretries = { on = [\"connect_failure\", 404] }\n",
            Format::Toml
        ),
        ["t.toml:4:38: upstreams.app.retries.on[1]: expected `connect_failure`, `timeout`, `reset` or a status from 500 to 599, found the number 404"]
    );
}

#[test]
fn route_options() {
    let respond = |extra: &str| {
        errors(&format!(
            "{BASE}routes:\n  - name: r\n    rule: \"Path(`/`)\"\n    respond: {{ status: 200 }}\n{extra}"
        ))
    };
    assert_eq!(
        respond("    timeout: 5s\n    retries: {}\n    idle_timeout: 1s\n"),
        [
            "t.yaml:11:5: routes[0].timeout: `timeout` only applies to routes with an `upstream`",
            "t.yaml:12:5: routes[0].retries: `retries` only applies to routes with an `upstream`",
            "t.yaml:13:5: routes[0].idle_timeout: `idle_timeout` only applies to routes with an `upstream`",
        ]
    );
    assert_eq!(
        respond("    connect_timeout: 1s\n    read_timeout: 1s\n    write_timeout: 1s\n"),
        [
            "t.yaml:11:5: routes[0].connect_timeout: `connect_timeout` only applies to routes with an `upstream`",
            "t.yaml:12:5: routes[0].read_timeout: `read_timeout` only applies to routes with an `upstream`",
            "t.yaml:13:5: routes[0].write_timeout: `write_timeout` only applies to routes with an `upstream`",
        ]
    );
    assert_eq!(
        errors(&format!(
            "{BASE}routes:\n  - name: r\n    rule: \"Path(`/`)\"\n    upstream: app\n    retries: {{ attempts: 20 }}\n"
        )),
        [
            "t.yaml:11:26: routes[0].retries.attempts: attempts must be from 0 to 10, found 20",
        ]
    );
}

#[test]
fn server_addresses() {
    assert_eq!(
        server("\"api.internal\"", ""),
        ["t.yaml:6:9: upstreams.app.servers[0]: expected an address like \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\", found \"api.internal\" (the port is missing)"]
    );
    assert_eq!(
        server("{ address: \"api_internal-:80\" }", ""),
        ["t.yaml:6:20: upstreams.app.servers[0].address: expected an address like \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\", found \"api_internal-:80\" (invalid host name \"api_internal-\": use letters, digits, `-` and `_`, not starting or ending a part with `-`)"]
    );
    assert_eq!(
        server("\"https://api.internal:443\"", ""),
        ["t.yaml:6:9: upstreams.app.servers[0]: expected an address like \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\", found \"https://api.internal:443\" (write the address without a scheme, like \"api.internal:8080\"; `tls: true` selects HTTPS)"]
    );
    assert_eq!(
        server("{ address: \"10.0.0.1:80\", tsl: true }", ""),
        ["t.yaml:6:35: upstreams.app.servers[0].tsl: unknown key `tsl` in upstreams.app.servers[0], did you mean `tls`?"]
    );
}

#[test]
fn tls_to_an_ip_needs_a_name_to_verify() {
    assert_eq!(
        up("    tls: true\n"),
        ["t.yaml:5:15: upstreams.app.servers[0]: TLS to an IP address cannot verify the certificate without a name: set `sni` to the name in 127.0.0.1:3000's certificate, or `verify_cert: false`"]
    );
    let loads = |upstream: &str| {
        let text = format!(
            "listeners:\n  - {{ name: web, address: \"127.0.0.1:8080\" }}\nupstreams:\n  app:\n{upstream}"
        );
        pylon_config::load_str(&text, Format::Yaml, std::path::Path::new("t.yaml")).is_ok()
    };
    assert!(loads(
        "    servers: [\"127.0.0.1:3000\"]\n    tls: true\n    sni: api.internal\n"
    ));
    assert!(loads(
        "    servers: [\"127.0.0.1:3000\"]\n    tls: true\n    verify_cert: false\n"
    ));
    // A server given by name verifies against that name.
    assert!(loads(
        "    servers: [\"api.internal:443\"]\n    tls: true\n"
    ));
}
