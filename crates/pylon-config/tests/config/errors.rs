//! Every error kind, with its exact file:line:column and key path.

use pylon_config::Format;

use crate::{errors, errors_in, BASE};

#[test]
fn unknown_key_with_hint_at_the_key() {
    assert_eq!(
        errors("listeners:\n  - name: web\n    adress: \"127.0.0.1:8080\"\n"),
        ["t.yaml:3:5: listeners[0].adress: unknown key `adress` in listeners[0], did you mean `address`?"]
    );
    assert_eq!(
        errors_in("[[listeners]]\nname = \"web\"\nadress = \"127.0.0.1:8080\"\n", Format::Toml),
        ["t.toml:3:1: listeners[0].adress: unknown key `adress` in listeners[0], did you mean `address`?"]
    );
    assert_eq!(
        errors_in("{\"listeners\": [{\"name\": \"web\", \"adress\": \"127.0.0.1:8080\"}]}", Format::Json),
        ["t.json:1:32: listeners[0].adress: unknown key `adress` in listeners[0], did you mean `address`?"]
    );
    assert_eq!(
        errors(&format!("{BASE}route: []\n")),
        ["t.yaml:7:1: route: unknown key `route` at the top level, did you mean `routes`?"]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  zzz: 1\n")),
        ["t.yaml:8:3: server.zzz: unknown key `zzz` in server"]
    );
    assert_eq!(
        errors(&format!("{BASE}    conect_timeout: 1s\n")),
        ["t.yaml:7:5: upstreams.app.conect_timeout: unknown key `conect_timeout` in upstreams.app, did you mean `connect_timeout`?"]
    );
}

#[test]
fn missing_keys_and_wrong_types() {
    assert_eq!(
        errors("listeners:\n  - name: web\n"),
        ["t.yaml:2:5: listeners[0]: missing required key `address`"]
    );
    assert_eq!(
        errors("listeners:\n  - web\n"),
        ["t.yaml:2:5: listeners[0]: expected a map, found \"web\""]
    );
    assert_eq!(
        errors("listeners: { name: web }\n"),
        ["t.yaml:1:12: listeners: expected a list of listeners, found a map"]
    );
    assert_eq!(
        errors("listeners:\n  - name: 8080\n    address: \"127.0.0.1:1\"\n"),
        ["t.yaml:2:11: listeners[0].name: expected a string, found the number 8080"]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  daemon: yes\n")),
        ["t.yaml:8:11: server.daemon: expected `true` or `false`, found \"yes\""]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  threads: 1.5\n")),
        ["t.yaml:8:12: server.threads: expected a whole number from 0 to 18446744073709551615, found the number 1.5"]
    );
    assert_eq!(errors("- a\n"), ["t.yaml:1:1: expected a map with `listeners`, `upstreams`, `routes` and `server` at the top level"]);
}

#[test]
fn addresses() {
    assert_eq!(
        errors("listeners:\n  - { name: web, address: \"localhost:80\" }\n"),
        ["t.yaml:2:27: listeners[0].address: expected an IP address and port like \"127.0.0.1:8080\" or \"[::1]:8080\", found \"localhost:80\" (host names are not resolved here: use an IP address)"]
    );
    assert_eq!(
        errors("listeners:\n  - { name: web, address: \"::1:80\" }\n"),
        ["t.yaml:2:27: listeners[0].address: expected an IP address and port like \"127.0.0.1:8080\" or \"[::1]:8080\", found \"::1:80\" (an IPv6 address goes in brackets: \"[::1]:8080\")"]
    );
    assert_eq!(
        errors("listeners:\n  - { name: web, address: 8080 }\n"),
        ["t.yaml:2:27: listeners[0].address: expected an IP address and port like \"127.0.0.1:8080\" or \"[::1]:8080\", found the number 8080"]
    );
    assert_eq!(
        errors("listeners:\n  - { name: web, address: \"127.0.0.1:1\" }\nupstreams:\n  a:\n    servers: [\"10.0.0.1\"]\n"),
        ["t.yaml:5:15: upstreams.a.servers[0]: expected an address like \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\", found \"10.0.0.1\" (the port is missing)"]
    );
    assert_eq!(
        errors("listeners:\n  - { name: web, address: \"127.0.0.1:1\" }\nupstreams:\n  a:\n    servers: [7]\n"),
        ["t.yaml:5:15: upstreams.a.servers[0]: expected an address like \"10.0.0.1:80\", \"[::1]:80\" or \"api.internal:8080\" or a map with `address` and `weight`, found the number 7"]
    );
}

#[test]
fn all_errors_of_a_file_at_once() {
    let text = "\
listeners:
  - name: web
    address: \"127.0.0.1:99999\"
upstreams:
  app:
    servers: [\"127.0.0.1:3000\"]
    read_timeout: soon
routes:
  - name: api
    rule: \"Path(`/`)\"
    upstream: app
    priorty: 3
";
    assert_eq!(
        errors(text),
        [
            "t.yaml:3:14: listeners[0].address: expected an IP address and port like \"127.0.0.1:8080\" or \"[::1]:8080\", found \"127.0.0.1:99999\"",
            "t.yaml:7:19: upstreams.app.read_timeout: expected a duration like \"30s\", \"250ms\" or a number of seconds, found \"soon\"",
            "t.yaml:12:5: routes[0].priorty: unknown key `priorty` in routes[0], did you mean `priority`?",
        ]
    );
}

#[test]
fn rule_errors_point_inside_the_rule() {
    let route =
        |rule: &str| format!("{BASE}routes:\n  - name: r\n    upstream: app\n    rule: {rule}\n");
    // Double-quoted: the content starts one column after the quote.
    let errs = errors(&route("\"Host(`a`) && Nope(`x`)\""));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("t.yaml:10:25: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    // Plain scalar: no quote.
    let errs = errors(&route("Host(`a`) && Nope(`x`)"));
    assert!(
        errs[0].starts_with("t.yaml:10:24: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    // An escape in the scalar: the source no longer maps 1:1, so point at the scalar.
    let errs = errors(&route("\"Host(`\\x61`) && Nope(`x`)\""));
    assert!(
        errs[0].starts_with("t.yaml:10:11: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    // A block scalar: point at its first line.
    let errs = errors(&format!("{BASE}routes:\n  - name: r\n    upstream: app\n    rule: >-\n      Host(`a`)\n      && Nope(`x`)\n"));
    assert!(
        errs[0].starts_with("t.yaml:11:7: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    // TOML and JSON strings likewise.
    let toml = "listeners = [{ name = \"w\", address = \"127.0.0.1:1\" }]\nupstreams.app.servers = [\"127.0.0.1:2\"]\n[[routes]]\nname = \"r\"\nupstream = \"app\"\nrule = \"Host(`a`) && Nope(`x`)\"\n";
    let errs = errors_in(toml, Format::Toml);
    assert!(
        errs[0].starts_with("t.toml:6:22: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    let toml_literal = toml.replace(
        "rule = \"Host(`a`) && Nope(`x`)\"",
        "rule = 'Host(`a`) && Nope(`x`)'",
    );
    let errs = errors_in(&toml_literal, Format::Toml);
    assert!(
        errs[0].starts_with("t.toml:6:22: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
    let json = "{\"listeners\": [{\"name\": \"w\", \"address\": \"127.0.0.1:1\"}], \"upstreams\": {\"app\": {\"servers\": [\"127.0.0.1:2\"]}},\n\"routes\": [{\"name\": \"r\", \"upstream\": \"app\", \"rule\": \"Host(`a`) && Nope(`x`)\"}]}";
    let errs = errors_in(json, Format::Json);
    assert!(
        errs[0].starts_with("t.json:2:67: routes[0].rule: invalid rule: "),
        "{errs:?}"
    );
}

#[test]
fn route_targets() {
    assert_eq!(
        errors(&format!("{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\" }}\n")),
        ["t.yaml:8:5: routes[0]: a route needs a target: `upstream: NAME`, `respond: { status: … }`, or a middleware that answers every request (`static`, `redirect`, `respond` without `when`)"]
    );
    assert_eq!(
        errors(&format!("{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: app, respond: {{ status: 200 }} }}\n")),
        ["t.yaml:8:50: routes[0].respond: a route takes `upstream` or `respond`, not both"]
    );
    assert_eq!(
        errors(&format!(
            "{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: ap }}\n"
        )),
        ["t.yaml:8:45: routes[0].upstream: unknown upstream `ap`, did you mean `app`?"]
    );
    assert_eq!(
        errors(&format!(
            "{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: zzz }}\n"
        )),
        ["t.yaml:8:45: routes[0].upstream: unknown upstream `zzz` (defined: `app`)"]
    );
    assert_eq!(
        errors(&format!("{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: app, listeners: [web, wbe] }}\n")),
        ["t.yaml:8:67: routes[0].listeners[1]: unknown listener `wbe`, did you mean `web`?"]
    );
}

#[test]
fn respond_checks() {
    let route = |respond: &str| {
        format!("{BASE}routes:\n  - name: r\n    rule: \"Path(`/`)\"\n    respond: {respond}\n")
    };
    assert_eq!(
        errors(&route("{ status: 99 }")),
        ["t.yaml:10:24: routes[0].respond.status: status must be from 100 to 599, found 99"]
    );
    assert_eq!(
        errors(&route("{ status: 600, body: x }")),
        ["t.yaml:10:24: routes[0].respond.status: status must be from 100 to 599, found 600"]
    );
    assert_eq!(
        errors(&route("{ status: 200, headers: { \"x y\": a, x-ok: \"caf\\u00e9\", x-nl: \"a\\nb\" } }")),
        [
            "t.yaml:10:40: routes[0].respond.headers[\"x y\"]: invalid header name \"x y\": use letters, digits and !#$%&'*+-.^_`|~",
            "t.yaml:10:56: routes[0].respond.headers.x-ok: invalid header value \"café\": use printable ASCII only",
            "t.yaml:10:75: routes[0].respond.headers.x-nl: invalid header value \"a\\nb\": use printable ASCII only",
        ]
    );
    assert_eq!(
        errors(&route("{ status: 200, headers: { x-n: 5 } }")),
        ["t.yaml:10:45: routes[0].respond.headers.x-n: expected a string, found the number 5"]
    );
}

#[test]
fn upstream_checks() {
    let listeners = "listeners:\n  - { name: web, address: \"127.0.0.1:1\" }\n";
    assert_eq!(
        errors(&format!("{listeners}upstreams:\n  a:\n    servers: []\n")),
        ["t.yaml:5:14: upstreams.a.servers: an upstream needs at least one server"]
    );
    assert_eq!(
        errors(&format!("{listeners}upstreams:\n  a:\n    servers:\n      - {{ address: \"127.0.0.1:2\", weight: 0 }}\n")),
        ["t.yaml:6:43: upstreams.a.servers[0].weight: weight must be at least 1"]
    );
    assert_eq!(
        errors(&format!("{listeners}upstreams:\n  a:\n    servers:\n      - {{ address: \"127.0.0.1:2\", wieght: 2 }}\n")),
        ["t.yaml:6:35: upstreams.a.servers[0].wieght: unknown key `wieght` in upstreams.a.servers[0], did you mean `weight`?"]
    );
    assert_eq!(
        errors(&format!(
            "{listeners}upstreams:\n  a:\n    servers:\n      - {{ weight: 2 }}\n"
        )),
        ["t.yaml:6:9: upstreams.a.servers[0]: missing required key `address`"]
    );
    assert_eq!(
        errors(&format!("{listeners}upstreams:\n  a: {{}}\n")),
        ["t.yaml:4:6: upstreams.a: missing required key `servers`"]
    );
}

#[test]
fn duplicate_names_and_addresses() {
    let text = "\
listeners:
  - { name: web, address: \"127.0.0.1:1\" }
  - { name: web, address: \"127.0.0.1:2\" }
  - { name: other, address: \"127.0.0.1:1\" }
upstreams:
  app: { servers: [\"127.0.0.1:3\"] }
routes:
  - { name: r, rule: \"Path(`/`)\", upstream: app }
  - { name: r, rule: \"Path(`/a`)\", upstream: app }
";
    assert_eq!(
        errors(text),
        [
            "t.yaml:3:13: listeners[1].name: listener `web` is already defined at t.yaml:2:13",
            "t.yaml:4:29: listeners[2].address: address 127.0.0.1:1 is already used by listener `web` at t.yaml:2:27",
            "t.yaml:9:13: routes[1].name: route `r` is already defined at t.yaml:8:13",
        ]
    );
}

#[test]
fn at_least_one_listener() {
    assert_eq!(errors(""), ["t.yaml:1:1: listeners: at least one listener is required, e.g. `listeners: [{ name: web, address: \"0.0.0.0:8080\" }]`"]);
    assert_eq!(
        errors("upstreams: {}\nlisteners: []\n"),
        ["t.yaml:2:1: listeners: at least one listener is required, e.g. `listeners: [{ name: web, address: \"0.0.0.0:8080\" }]`"]
    );
}

#[test]
fn syntax_errors() {
    let errs = errors("listeners:\n  - name: web\n   address: x\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("t.yaml:3:"), "{errs:?}");
    assert!(errs[0].contains("invalid YAML"), "{errs:?}");
    assert_eq!(
        errors_in("{\"listeners\": [}", Format::Json),
        ["t.json:1:16: invalid JSON: expected a value"]
    );
    let errs = errors_in("[server]\nthreads = \n", Format::Toml);
    assert!(errs[0].starts_with("t.toml:2:"), "{errs:?}");
    assert!(errs[0].contains("invalid TOML"), "{errs:?}");
    let errs = errors_in("a = 1\na = 2\n", Format::Toml);
    assert!(errs[0].starts_with("t.toml:2:1: invalid TOML"), "{errs:?}");
}

#[test]
fn display_of_the_error_list() {
    let e = pylon_config::load_str(
        "listeners: 5\nx: 1\n",
        Format::Yaml,
        std::path::Path::new("f.yaml"),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.yaml:1:12: listeners: expected a list of listeners, found a single value\nf.yaml:2:1: x: unknown key `x` at the top level"
    );
    let first = &e.0[0];
    assert_eq!(
        (first.line, first.column, first.path.as_str()),
        (1, 12, "listeners")
    );
    let _: &dyn std::error::Error = &e;
}
