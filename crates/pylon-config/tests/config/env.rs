//! `${VAR}` substitution and `.env` files. Each test uses its own variable names, since
//! tests share the process environment.

use std::net::SocketAddr;
use std::path::Path;

use pylon_config::{load, load_str, Format};

use crate::{errors, errors_in, yaml, TempDir, BASE};

fn set(name: &str, value: &str) {
    std::env::set_var(name, value);
}

#[test]
fn set_variables_replace_and_keep_types() {
    set("PYLON_T1_ADDR", "127.0.0.1:9090");
    set("PYLON_T1_W", "3");
    set("PYLON_T1_DAEMON", "true");
    set("PYLON_T1_HOST", "example.com");
    let c = yaml(
        "server:\n  daemon: ${PYLON_T1_DAEMON}\n  threads: \"${PYLON_T1_W}\"\nlisteners:\n  - name: web\n    address: ${PYLON_T1_ADDR}\nupstreams:\n  app:\n    servers:\n      - address: \"127.0.0.1:1\"\n        weight: ${PYLON_T1_W}\n      - { address: \"127.0.0.1:2\", weight: \"${PYLON_T1_W}\" }\nroutes:\n  - { name: r, rule: \"Host(`${PYLON_T1_HOST}`)\", upstream: app }\n",
    );
    assert_eq!(
        c.listeners[0].address,
        "127.0.0.1:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(c.upstreams["app"].servers[0].weight, 3);
    // In a flow map (`{ … }`) YAML needs `${…}` quoted, as `{` and `}` are flow syntax.
    assert_eq!(c.upstreams["app"].servers[1].weight, 3);
    assert!(c.server.daemon);
    assert_eq!(c.server.threads, Some(3));
    assert_eq!(c.routes[0].rule, "Host(`example.com`)");

    // TOML can only write `${W}` as a string; it still types as a number.
    let c = load_str(
        "[[listeners]]\nname = \"web\"\naddress = \"${PYLON_T1_ADDR}\"\n[upstreams.app]\nservers = [{ address = \"127.0.0.1:1\", weight = \"${PYLON_T1_W}\" }]\n",
        Format::Toml,
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(c.upstreams["app"].servers[0].weight, 3);
}

#[test]
fn defaults_and_dollar_escape() {
    std::env::remove_var("PYLON_T2_UNSET");
    set("PYLON_T2_EMPTY", "");
    let c = yaml(&format!(
        "{BASE}server:\n  user: ${{PYLON_T2_UNSET:-nobody}}\n  group: \"${{PYLON_T2_EMPTY:-staff}}\"\n  threads: ${{PYLON_T2_UNSET:-}}\nroutes:\n  - {{ name: \"$$x\", rule: \"PathRegexp(`^/a$`)\", upstream: app, respond: null }}\n"
    ));
    assert_eq!(c.server.user.as_deref(), Some("nobody"));
    assert_eq!(c.server.group.as_deref(), Some("staff"));
    // An empty substitution leaves an optional setting unset.
    assert_eq!(c.server.threads, None);
    assert_eq!(c.routes[0].name, "$x");
    // A `$` not followed by `{` or `$` stays as written.
    assert_eq!(c.routes[0].rule, "PathRegexp(`^/a$`)");
}

#[test]
fn unset_variable_is_an_error_at_its_place() {
    std::env::remove_var("PYLON_T3_UNSET");
    assert_eq!(
        errors("listeners:\n  - name: web\n    address: \"127.0.0.1:${PYLON_T3_UNSET}\"\n"),
        ["t.yaml:3:25: listeners[0].address: environment variable `PYLON_T3_UNSET` is not set (use `${PYLON_T3_UNSET:-default}` to give a default)"]
    );
    // Only that error: the poisoned value does not also fail to type, nor does the route
    // that uses it as upstream name report a second problem about it.
    assert_eq!(
        errors(&format!("{BASE}routes:\n  - {{ name: r, rule: \"Path(`/`)\", upstream: \"${{PYLON_T3_UNSET}}\" }}\n")),
        ["t.yaml:8:46: routes[0].upstream: environment variable `PYLON_T3_UNSET` is not set (use `${PYLON_T3_UNSET:-default}` to give a default)"]
    );
    assert_eq!(
        errors_in("[[listeners]]\nname = \"${PYLON_T3_UNSET}\"\naddress = \"127.0.0.1:1\"\n", Format::Toml),
        ["t.toml:2:9: listeners[0].name: environment variable `PYLON_T3_UNSET` is not set (use `${PYLON_T3_UNSET:-default}` to give a default)"]
    );
    assert_eq!(
        errors(&format!("{BASE}server:\n  user: \"${{PYLON_T3_UNSET\"\n")),
        ["t.yaml:8:10: server.user: unterminated `${`: close it with `}` (write `$$` for a literal `$`)"]
    );
}

#[test]
fn substitution_cannot_inject_structure() {
    set(
        "PYLON_T4_EVIL",
        "x\n  - name: injected\n    address: \"127.0.0.1:2\"",
    );
    let c = yaml(&format!("{BASE}routes:\n  - {{ name: \"${{PYLON_T4_EVIL}}\", rule: \"Path(`/`)\", upstream: app }}\n"));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(
        c.routes[0].name,
        "x\n  - name: injected\n    address: \"127.0.0.1:2\""
    );
}

#[test]
fn dotenv_beside_the_config_then_working_directory() {
    let dir = TempDir::create();
    std::env::remove_var("PYLON_T5_PORT");
    std::env::remove_var("PYLON_T5_NAME");
    set("PYLON_T5_FROM_PROCESS", "process");
    dir.write(".env", "# comment\nPYLON_T5_PORT=8181\nPYLON_T5_NAME=\"from-dotenv\"\nPYLON_T5_FROM_PROCESS=dotenv\nPYLON_T5_PORT=9999\n");
    let file = dir.write(
        "pylon.yaml",
        "listeners:\n  - { name: \"${PYLON_T5_NAME}\", address: \"127.0.0.1:${PYLON_T5_PORT}\" }\nserver:\n  user: ${PYLON_T5_FROM_PROCESS}\n",
    );
    let loaded = load(&file).unwrap();
    assert_eq!(loaded.config.listeners[0].name, "from-dotenv");
    assert_eq!(
        loaded.config.listeners[0].address.port(),
        8181,
        "first definition wins"
    );
    assert_eq!(
        loaded.config.server.user.as_deref(),
        Some("process"),
        "the process wins over .env"
    );
    assert_eq!(loaded.env_files, [dir.path().join(".env")]);
    assert_eq!(loaded.files, [file]);
    // The process environment is left alone.
    assert!(std::env::var("PYLON_T5_PORT").is_err());
}

#[test]
fn bad_dotenv_line_is_reported() {
    let dir = TempDir::create();
    dir.write(".env", "GOOD=1\nBAD LINE\n");
    let file = dir.write("pylon.yaml", BASE);
    let errs = load(&file).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs}");
    let e = &errs.0[0];
    assert_eq!(e.file, dir.path().join(".env"));
    assert_eq!(e.line, 2, "{e}");
    assert!(e.message.contains("invalid .env line"), "{e}");
}
