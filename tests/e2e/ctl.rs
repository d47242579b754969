//! `pylon ctl` through the binary against a running Pylon's admin API: resources added,
//! listed (table and JSON) and removed with traffic checked, the whole config applied with a
//! dry run first, and the exit codes of refused writes, bad credentials and an unreachable
//! API.

use std::process::Output;

use crate::harness::pylon::run_cli;
use crate::harness::tempdir::TempDir;
use crate::harness::{Origin, Pylon};

const KEY: &str = "ctl-test-key";

/// Pylon with `-c DIR` (its config in `DIR/base.yaml`: a hand-written route `/hand`) and the
/// admin API on `@listen1@` with the key `KEY`.
fn start(origin: &str) -> Pylon {
    let config = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
admin:
  listen: "@listen1@"
  api_keys: ["{KEY}"]
upstreams:
  hand: {{ servers: ["{origin}"] }}
routes:
  - {{ name: hand, rule: "PathPrefix(`/hand`)", upstream: hand }}
"#
    );
    Pylon::builder(&config)
        .file_name("base.yaml")
        .config_dir("conf.d")
        .start()
}

/// `pylon ctl --admin … --api-key KEY ARGS`.
fn ctl(pylon: &Pylon, args: &[&str]) -> Output {
    let admin = format!("http://{}", pylon.listeners[1]);
    let mut all = vec!["ctl", "--admin", &admin, "--api-key", KEY];
    all.extend_from_slice(args);
    run_cli(&all, None)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Checks that `out` exited 0, and returns its stdout.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[test]
fn ctl_adds_lists_and_removes_resources_and_traffic_follows() {
    let hand = Origin::start("hand");
    let api = Origin::start("api");
    let pylon = start(&hand.address());
    let files = TempDir::new("ctl");
    let upstream = files.write(
        "up.json",
        &format!(r#"{{"name": "api", "servers": ["{}"]}}"#, api.address()),
    );
    let route = files.write(
        "route.yaml",
        "name: new\nrule: PathPrefix(`/new`)\nupstream: api\npriority: 50\n",
    );
    assert_eq!(pylon.client().get("/new").status, 404);

    let out = ok(&ctl(
        &pylon,
        &["upstreams", "add", "-f", upstream.to_str().unwrap()],
    ));
    assert!(out.contains("upstream `api` created"), "{out}");
    let out = ok(&ctl(
        &pylon,
        &["routes", "add", "-f", route.to_str().unwrap(), "--dry-run"],
    ));
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(pylon.client().get("/new/x").status, 404);
    let out = ok(&ctl(
        &pylon,
        &["routes", "add", "-f", route.to_str().unwrap()],
    ));
    assert!(out.contains("route `new` created"), "{out}");
    assert!(out.contains("changes: routes: +1 ~0 -0"), "{out}");
    assert_eq!(pylon.client().get("/new/x").served_by(), "api");

    // The table: a header and aligned columns.
    let table = ok(&ctl(&pylon, &["routes", "list"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("NAME  RULE") && lines[0].ends_with("TARGET  PRIORITY"),
        "{table}"
    );
    let rule_column = lines[0].find("RULE").unwrap();
    assert_eq!(
        lines[1].find("PathPrefix(`/new`)"),
        Some(rule_column),
        "{table}"
    );
    assert!(lines[1].starts_with("new "), "{table}");
    assert!(
        lines[1].contains("  api  ") && lines[1].ends_with("50"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("hand ") && lines[2].ends_with('-'),
        "{table}"
    );
    let upstreams = ok(&ctl(&pylon, &["upstreams", "list"]));
    assert!(upstreams.starts_with("NAME"), "{upstreams}");
    assert!(upstreams.contains(&api.address()), "{upstreams}");

    // JSON for scripts: the API's answer as is.
    let json: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&pylon, &["routes", "list", "-o", "json"]))).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["new", "hand"]);
    let one: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&pylon, &["-o", "json", "routes", "get", "new"])))
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one["upstream"], "api");

    // --replace: PUT, the whole route.
    let replacement = files.write(
        "route2.yaml",
        "name: new\nrule: PathPrefix(`/new`)\nupstream: api\npriority: 60\n",
    );
    let out = ok(&ctl(
        &pylon,
        &[
            "routes",
            "add",
            "-f",
            replacement.to_str().unwrap(),
            "--replace",
        ],
    ));
    assert!(out.contains("route `new` replaced"), "{out}");
    assert!(ok(&ctl(&pylon, &["routes", "get", "new"])).contains("priority: 60"));

    let status = ok(&ctl(&pylon, &["status"]));
    assert!(status.contains("generation"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("routes") && l.ends_with(" 2")),
        "{status}"
    );

    let out = ok(&ctl(&pylon, &["routes", "rm", "new"]));
    assert!(out.contains("route `new` deleted"), "{out}");
    assert_eq!(pylon.client().get("/new/x").status, 404);
    assert_eq!(pylon.client().get("/hand").served_by(), "hand");
    // Gone: a second rm is the API's 404.
    let again = ctl(&pylon, &["routes", "rm", "new"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("404"), "{}", stderr(&again));
}

#[test]
fn ctl_config_apply_dry_run_changes_nothing_and_prints_the_diff() {
    let hand = Origin::start("hand");
    let pylon = start(&hand.address());
    let files = TempDir::new("ctl");

    let mut config: serde_json::Value =
        serde_json::from_str(&ok(&ctl(&pylon, &["config", "get", "-o", "json"]))).unwrap();
    assert!(config.get("admin").is_none());
    let yaml = ok(&ctl(&pylon, &["config", "get"]));
    assert!(yaml.contains("PathPrefix(`/hand`)"), "{yaml}");
    config["routes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"name": "ok", "rule": "Path(`/ok`)", "respond": {"status": 200, "body": "applied"}}
        ));
    let file = files.write("new.json", &config.to_string());
    let file = file.to_str().unwrap();

    let out = ok(&ctl(&pylon, &["config", "apply", "-f", file, "--dry-run"]));
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert!(out.contains("routes: +1 ~0 -0"), "{out}");
    assert_eq!(pylon.client().get("/ok").status, 404);
    assert!(!ok(&ctl(&pylon, &["routes", "list"])).contains("Path(`/ok`)"));

    let out = ok(&ctl(&pylon, &["config", "apply", "-f", file]));
    assert!(out.contains("applied: generation 2"), "{out}");
    assert_eq!(pylon.client().get("/ok").text(), "applied");
}

#[test]
fn ctl_exits_1_on_refusals_and_bad_keys_and_2_when_unreachable() {
    let hand = Origin::start("hand");
    let pylon = start(&hand.address());
    let files = TempDir::new("ctl");
    let bad = files.write(
        "bad.yaml",
        "name: bad\nrule: PathPrefix(`/bad`\nupstream: nope\n",
    );
    let out = ctl(&pylon, &["routes", "add", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("422"), "{err}");
    // Each validation error on its own line.
    assert!(
        err.lines().any(|l| l.trim_start().starts_with("rule: ")),
        "{err}"
    );
    assert!(
        err.lines().any(|l| l
            .trim_start()
            .starts_with("upstream: unknown upstream `nope`")),
        "{err}"
    );
    assert_eq!(pylon.client().get("/bad").status, 404);

    // An output a write cannot have is refused before anything is sent.
    let good = files.write(
        "good.yaml",
        "name: yaml\nrule: PathPrefix(`/yaml`)\nupstream: hand\n",
    );
    let out = ctl(
        &pylon,
        &["-o", "yaml", "routes", "add", "-f", good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("-o yaml is not available"),
        "{}",
        stderr(&out)
    );
    assert_eq!(pylon.client().get("/yaml").status, 404);

    let admin = format!("http://{}", pylon.listeners[1]);
    let missing = run_cli(&["ctl", "--admin", &admin, "routes", "list"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("401"), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("--api-key"),
        "{}",
        stderr(&missing)
    );
    let wrong = run_cli(
        &["ctl", "--admin", &admin, "--api-key", "nope", "status"],
        None,
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("401"), "{}", stderr(&wrong));

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let down = run_cli(
        &["ctl", "--admin", &format!("http://{addr}"), "status"],
        None,
    );
    assert_eq!(down.status.code(), Some(2), "{}", stderr(&down));
    assert!(
        stderr(&down).contains(&format!("cannot reach the admin API at http://{addr}")),
        "{}",
        stderr(&down)
    );
}
