//! The access log through the binary: JSON and text lines in files and on stdout, route
//! overrides and `off`, errors Pylon answers itself, SIGUSR1 after a rename (logrotate),
//! a reload to a new path, and the last lines before SIGTERM.
//!
//! Lines are written by a background thread: tests poll the file for what they expect,
//! with a deadline, never a fixed sleep.

use crate::harness::pylon::check_refuses;
use crate::harness::tempdir::TempDir;
use crate::harness::{Origin, Pylon};
use std::path::Path;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// The file's lines once it has at least `count` of them (panics after the deadline).
fn wait_lines(path: &Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} lines, expected {count}:\n{text}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json_lines(path: &Path, count: usize) -> Vec<serde_json::Value> {
    wait_lines(path, count)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn json_lines_carry_the_request_its_upstream_and_its_outcome() {
    let origin = Origin::start("app");
    let dir = TempDir::new("alog-json");
    let log = dir.path().join("logs/access.log");
    let yaml = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
access_log:
  format: json
  path: {log}
  template: "{{status}} {{method}} {{path}} {{route}} {{upstream}} {{upstream_addr}} {{upstream_status}} {{upstream_error}} {{attempts}} {{duration_ms}} {{upstream_header_ms}} {{request_id}} {{header.X-Tenant}} {{bytes_sent}} {{bytes_received}} {{time}}"
upstreams:
  app: {{ servers: ["{app}"] }}
  dead: {{ servers: ["{dead}"] }}
routes:
  - {{ name: api, rule: "PathPrefix(`/api`)", upstream: app, middlewares: [{{ request_id: {{}} }}] }}
  - {{ name: down, rule: "PathPrefix(`/down`)", upstream: dead }}
"#,
        log = path_str(&log),
        app = origin.address(),
        dead = crate::harness::closed_addr(),
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    let ok = c.request("GET", "/api/items", &[("X-Tenant", "acme \"one\"")]);
    assert_eq!(ok.status, 200);
    let id = ok.header("x-request-id").unwrap().to_string();
    let lines = json_lines(&log, 1);
    let first = &lines[0];
    assert_eq!(first["status"], 200);
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/api/items");
    assert_eq!(first["route"], "api");
    assert_eq!(first["upstream"], "app");
    assert_eq!(first["upstream_addr"], origin.address());
    assert_eq!(first["upstream_status"], 200);
    assert_eq!(first["upstream_error"], serde_json::Value::Null);
    assert_eq!(first["attempts"], 1);
    assert!(first["duration_ms"].as_f64().unwrap() >= 0.0, "{first}");
    assert!(
        first["upstream_header_ms"].as_f64().unwrap() >= 0.0,
        "{first}"
    );
    assert_eq!(first["request_id"], id.as_str());
    assert_eq!(first["header.x-tenant"], "acme \"one\"");
    assert_eq!(first["bytes_sent"], ok.body.len());
    let time = first["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z'), "{time}");

    // Errors Pylon answers itself: no route (404), an upstream that refuses (502).
    assert_eq!(c.get("/nowhere").status, 404);
    assert_eq!(c.get("/down").status, 502);
    let lines = json_lines(&log, 3);
    let missing = &lines[1];
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["path"], "/nowhere");
    assert_eq!(missing["route"], serde_json::Value::Null);
    assert_eq!(missing["attempts"], 0);
    assert!(missing["bytes_sent"].as_u64().unwrap() > 0, "{missing}");
    let down = &lines[2];
    assert_eq!(down["status"], 502);
    assert_eq!(down["route"], "down");
    assert_eq!(down["upstream"], "dead");
    assert_eq!(down["upstream_error"], "connect");
    assert_eq!(down["upstream_status"], serde_json::Value::Null);
    assert!(down["attempts"].as_u64().unwrap() >= 1, "{down}");

    // A body read from the client; a header value with a byte that is not UTF-8 and a
    // tab still makes a line that parses.
    let mut raw = b"POST /api/upload HTTP/1.1\r\nHost: x\r\nX-Tenant: caf\xe9\tok\r\nContent-Length: 11\r\nConnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(b"hello world");
    assert_eq!(c.raw(&raw, false).status, 200);
    let lines = json_lines(&log, 4);
    let upload = &lines[3];
    assert_eq!(upload["method"], "POST");
    assert_eq!(upload["bytes_received"], 11);
    assert_eq!(upload["header.x-tenant"], "caf\u{e9}\tok");
}

#[test]
fn text_template_route_off_and_route_override() {
    let origin = Origin::start("app");
    let dir = TempDir::new("alog-text");
    let main = dir.path().join("main.log");
    let own = dir.path().join("own.log");
    let yaml = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
access_log:
  path: {main}
  template: "{{method}} {{path_and_query}} {{status}} {{{{{{route}}}}}} {{header.X-Tenant}} {{upstream}} {{bytes_sent}} {{duration_ms}} {{user_agent}}"
upstreams:
  app: {{ servers: ["{app}"] }}
routes:
  - {{ name: quiet, rule: "PathPrefix(`/quiet`)", upstream: app, access_log: off }}
  - {{ name: own, rule: "PathPrefix(`/own`)", upstream: app, access_log: {{ format: json, path: {own} }} }}
  - {{ name: main, rule: "PathPrefix(`/`)", upstream: app }}
"#,
        main = path_str(&main),
        own = path_str(&own),
        app = origin.address(),
    );
    let pylon = Pylon::start(&yaml);
    let c = pylon.client();
    // The quiet request goes first: had it been logged, its line would come first.
    assert_eq!(c.get("/quiet").status, 200);
    assert_eq!(c.get("/own/x?y=1").status, 200);
    let r = c.request("GET", "/main?q=a%20b", &[("User-Agent", "probe/1.0")]);
    assert_eq!(r.status, 200);
    let lines = wait_lines(&main, 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(
        fields[..7],
        [
            "GET",
            "/main?q=a%20b",
            "200",
            "{main}",
            "-",
            "app",
            r.body.len().to_string().as_str()
        ],
        "{}",
        lines[0]
    );
    let (whole, millis) = fields[7].split_once('.').unwrap();
    assert!(
        whole.bytes().all(|b| b.is_ascii_digit()) && millis.len() == 3,
        "{}",
        lines[0]
    );
    assert_eq!(fields[8], "probe/1.0");
    assert_eq!(fields.len(), 9);

    // The override's own file, in the default JSON field set.
    let own_lines = json_lines(&own, 1);
    let line = &own_lines[0];
    assert_eq!(line["route"], "own");
    assert_eq!(line["path"], "/own/x");
    assert_eq!(line["query"], "y=1");
    assert_eq!(line["status"], 200);
    assert_eq!(line["protocol"], "HTTP/1.1");
    assert_eq!(line["client_ip"], "127.0.0.1");
    for key in [
        "upstream_addr",
        "duration_ms",
        "time",
        "bytes_received",
        "trace_id",
    ] {
        assert!(line.get(key).is_some(), "{key} missing: {line}");
    }
}

#[test]
fn sigusr1_reopens_the_file_after_a_rename() {
    let origin = Origin::start("app");
    let dir = TempDir::new("alog-rotate");
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let yaml = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
access_log: {{ path: {log}, template: "{{path}}" }}
upstreams:
  app: {{ servers: ["{app}"] }}
routes:
  - {{ name: all, rule: "PathPrefix(`/`)", upstream: app }}
"#,
        log = path_str(&log),
        app = origin.address(),
    );
    let pylon = Pylon::start(&yaml);
    // Until the handler is in place, SIGUSR1 would end the process.
    assert!(pylon.wait_for_log("SIGUSR1 reopens"), "{}", pylon.log());
    let c = pylon.client();
    assert_eq!(c.get("/before").status, 200);
    assert_eq!(wait_lines(&log, 1), ["/before"]);
    std::fs::rename(&log, &rotated).unwrap();
    pylon.signal("USR1");
    let deadline = Instant::now() + DEADLINE;
    while !log.exists() {
        assert!(Instant::now() < deadline, "not reopened: {}", pylon.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.get("/after").status, 200);
    assert_eq!(wait_lines(&log, 1), ["/after"]);
    assert_eq!(
        std::fs::read_to_string(&rotated).unwrap(),
        "/before\n",
        "the rotated file keeps its lines and gets no new ones"
    );
}

#[test]
fn a_reload_to_a_new_path_writes_there() {
    let origin = Origin::start("app");
    let dir = TempDir::new("alog-reload");
    let first = dir.path().join("first.log");
    let second = dir.path().join("second.log");
    let yaml = |log: &Path| {
        format!(
            r#"
listeners: [{{ name: web, address: "@listen0@" }}]
access_log: {{ path: {log}, template: "{{path}}" }}
upstreams:
  app: {{ servers: ["{app}"] }}
routes:
  - {{ name: all, rule: "PathPrefix(`/`)", upstream: app }}
"#,
            log = path_str(log),
            app = origin.address(),
        )
    };
    let pylon = Pylon::start(&yaml(&first));
    let c = pylon.client();
    assert_eq!(c.get("/one").status, 200);
    assert_eq!(wait_lines(&first, 1), ["/one"]);
    pylon.rewrite_config(&yaml(&second));
    pylon.signal("HUP");
    assert!(
        pylon.wait_for_log("generation 2 serving"),
        "{}",
        pylon.log()
    );
    assert_eq!(c.get("/two").status, 200);
    assert_eq!(wait_lines(&second, 1), ["/two"]);
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "/one\n");
}

#[test]
fn stdout_lines_and_the_last_ones_before_sigterm() {
    let origin = Origin::start("app");
    let yaml = format!(
        r#"
server: {{ grace_period: 0s, graceful_shutdown_timeout: 1s }}
listeners: [{{ name: web, address: "@listen0@" }}]
access_log: {{ format: json, path: "-", template: "{{path}} {{status}}" }}
upstreams:
  app: {{ servers: ["{app}"] }}
routes:
  - {{ name: all, rule: "PathPrefix(`/`)", upstream: app }}
"#,
        app = origin.address(),
    );
    let mut pylon = Pylon::start(&yaml);
    let c = pylon.client();
    assert_eq!(c.get("/first").status, 200);
    assert!(
        pylon.wait_for_log(r#"{"path":"/first","status":200}"#),
        "{}",
        pylon.log()
    );
    // The last request, then SIGTERM at once. Its line is queued before the client has the
    // whole response (Pylon closes the connection after logging); with no grace period the
    // process exits within the writer's 100 ms interval, and the exit path writes what is
    // pending.
    assert_eq!(c.get("/last").status, 200);
    pylon.signal("TERM");
    let status = pylon.wait_exit(Duration::from_secs(15));
    assert!(status.is_some(), "did not exit: {}", pylon.log());
    assert!(
        pylon.log().contains(r#"{"path":"/last","status":200}"#),
        "{}",
        pylon.log()
    );
}

#[test]
fn bad_templates_and_paths_are_refused_with_their_place() {
    let base = r#"
listeners: [{ name: web, address: "127.0.0.1:8080" }]
upstreams:
  app: { servers: ["127.0.0.1:9000"] }
"#;
    let out = check_refuses(&format!(
        "{base}access_log:\n  template: \"{{status}} {{stauts}}\"\nroutes:\n  - {{ name: all, rule: \"PathPrefix(`/`)\", upstream: app }}\n"
    ));
    assert!(out.contains("pylon.yaml:6:"), "{out}");
    assert!(out.contains("did you mean `{status}`"), "{out}");
    let out = check_refuses(&format!(
        "{base}routes:\n  - name: all\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    access_log: {{ path: /dev/null/x/access.log }}\n"
    ));
    assert!(out.contains("pylon.yaml:9:"), "{out}");
    assert!(out.contains("cannot create the log's directory"), "{out}");
}
