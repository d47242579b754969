//! The command line: `check`, `schema`, `--bind`, config formats, directories, env.

use crate::harness::pylon::run_cli;
use crate::harness::tempdir::TempDir;
use crate::harness::{Client, Origin, Pylon};

const VALID: &str = r#"
listeners:
  - name: web
    address: "127.0.0.1:18080"
routes:
  - name: hello
    rule: "Path(`/hello`)"
    respond: { status: 200, body: "hi" }
"#;

#[test]
fn check_accepts_a_valid_config() {
    let dir = TempDir::new("check-ok");
    let path = dir.write("pylon.yaml", VALID);
    let out = run_cli(&["check", "-c", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (1 listeners, 0 upstreams, 1 routes)"),
        "{stdout}"
    );
}

#[test]
fn check_prints_every_error_with_file_line_column_and_exits_1() {
    let dir = TempDir::new("check-bad");
    let bad = r#"listeners:
  - name: web
    adress: "127.0.0.1:18080"
upstreams:
  app:
    servers: ["127.0.0.1:3000"]
routes:
  - name: api
    rule: "PathPrefix(`/api`) &&"
    upstream: app
  - name: other
    rule: "Path(`/x`)"
    upstream: ap
"#;
    let path = dir.write("pylon.yaml", bad);
    let out = run_cli(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    // The unknown key, with its position and a suggestion.
    assert!(
        stderr.contains(&format!("{file}:3:5:")) && stderr.contains("did you mean `address`"),
        "{stderr}"
    );
    // The broken rule, pointing into the rule text.
    assert!(stderr.contains("routes[0].rule"), "{stderr}");
    // The unknown upstream, with a suggestion.
    assert!(
        stderr.contains(&format!("{file}:13:")) && stderr.contains("did you mean `app`"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_an_invalid_config_and_starts_nothing() {
    let dir = TempDir::new("run-bad");
    let path = dir.write("pylon.yaml", "listeners: 12\n");
    let out = run_cli(&["-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
}

#[test]
fn schema_prints_a_json_schema_of_the_config() {
    let out = run_cli(&["schema"], None);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let props = &schema["properties"];
    for key in ["listeners", "upstreams", "routes", "server"] {
        assert!(props.get(key).is_some(), "schema lacks `{key}`: {schema}");
    }
}

#[test]
fn bind_overrides_the_first_listener() {
    let yaml = VALID.replace("127.0.0.1:18080", "127.0.0.1:1");
    // Port 1 would need root and is surely not ours: only --bind makes this start.
    let pylon = Pylon::builder(&yaml).bind_flag().start();
    assert_eq!(pylon.client().get("/hello").text(), "hi");
}

#[test]
fn toml_and_json_configs_serve_the_same_routes() {
    let origin = Origin::start("app");
    let toml = format!(
        r#"
[[listeners]]
name = "web"
address = "@listen0@"

[upstreams.app]
servers = ["{}"]

[[routes]]
name = "api"
rule = "PathPrefix(`/api`)"
upstream = "app"
"#,
        origin.address()
    );
    let pylon = Pylon::builder(&toml).file_name("pylon.toml").start();
    assert_eq!(pylon.client().get("/api/x").served_by(), "app");

    let json = format!(
        r#"{{
  "listeners": [{{ "name": "web", "address": "@listen0@" }}],
  "upstreams": {{ "app": {{ "servers": ["{}"] }} }},
  "routes": [{{ "name": "api", "rule": "PathPrefix(`/api`)", "upstream": "app" }}]
}}"#,
        origin.address()
    );
    let pylon = Pylon::builder(&json).file_name("pylon.json").start();
    assert_eq!(pylon.client().get("/api/y").served_by(), "app");
}

#[test]
fn env_substitution_with_defaults_and_dotenv() {
    let origin = Origin::start("from-env");
    let yaml = r#"
listeners:
  - name: web
    address: "${LISTEN}"
upstreams:
  app:
    servers: ["${ORIGIN}"]
routes:
  - name: api
    rule: "PathPrefix(`${PREFIX:-/default}`)"
    upstream: app
"#;
    let pylon = Pylon::builder(yaml)
        .port_env("LISTEN")
        .file(".env", &format!("ORIGIN={}\n", origin.address()))
        .start();
    let c = pylon.client();
    assert_eq!(c.get("/default/x").served_by(), "from-env");
    assert_eq!(c.get("/other").status, 404);
}

#[test]
fn unset_variable_without_default_is_an_error() {
    let dir = TempDir::new("env-unset");
    let path = dir.write(
        "pylon.yaml",
        "listeners:\n  - name: web\n    address: \"${PYLON_TEST_SURELY_UNSET}\"\n",
    );
    let out = run_cli(&["check", "-c", path.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PYLON_TEST_SURELY_UNSET"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3:", path.display())),
        "{stderr}"
    );
}

#[test]
fn a_directory_of_files_is_merged_and_duplicates_name_both_places() {
    let origin = Origin::start("merged");
    let dir = TempDir::new("confdir");
    let port = crate::harness::closed_addr();
    dir.write(
        "10-listeners.yaml",
        &format!("listeners:\n  - name: web\n    address: \"{port}\"\n"),
    );
    dir.write(
        "20-app.toml",
        &format!(
            "[upstreams.app]\nservers = [\"{}\"]\n\n[[routes]]\nname = \"api\"\nrule = \"PathPrefix(`/api`)\"\nupstream = \"app\"\n",
            origin.address()
        ),
    );
    let out = run_cli(&["check", "-c", dir.path().to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    dir.write(
        "30-dup.yaml",
        "routes:\n  - name: api\n    rule: \"Path(`/x`)\"\n    upstream: app\n",
    );
    let out = run_cli(&["check", "-c", dir.path().to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("20-app.toml") && stderr.contains("30-dup.yaml"),
        "{stderr}"
    );
    std::fs::remove_file(dir.path().join("30-dup.yaml")).unwrap();

    // And the merged directory serves.
    let mut child = std::process::Command::new(crate::harness::pylon::binary())
        .args(["run", "-c", dir.path().to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(port).is_err() {
        assert!(std::time::Instant::now() < deadline, "pylon did not start");
        assert!(child.try_wait().unwrap().is_none(), "pylon exited");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let served = Client::new(port).get("/api/z").served_by();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(served, "merged");
}

/// Kills a daemonised Pylon by the pid it wrote, even when the test fails.
struct DaemonGuard(Option<String>);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    }
}

#[test]
fn daemon_mode_writes_the_pid_file_and_logs_to_error_log() {
    let dir = TempDir::new("daemon");
    let port = crate::harness::closed_addr();
    let pid_file = dir.path().join("pylon.pid");
    let error_log = dir.path().join("error.log");
    let yaml = format!(
        r#"
server:
  daemon: true
  pid_file: "{}"
  error_log: "{}"
  upgrade_sock: "{}"
listeners:
  - name: web
    address: "{port}"
routes:
  - name: hello
    rule: "Path(`/hello`)"
    respond: {{ status: 200, body: "from the daemon" }}
"#,
        pid_file.display(),
        error_log.display(),
        dir.path().join("upgrade.sock").display()
    );
    let path = dir.write("pylon.yaml", &yaml);
    // The foreground process forks the daemon and returns.
    let out = run_cli(&["-c", path.to_str().unwrap()], Some(dir.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut guard = DaemonGuard(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            if !pid.trim().is_empty() {
                break pid.trim().to_string();
            }
        }
        assert!(std::time::Instant::now() < deadline, "no pid file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    guard.0 = Some(pid.clone());
    while std::net::TcpStream::connect(port).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "daemon does not listen"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(Client::new(port).get("/hello").text(), "from the daemon");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let log = std::fs::read_to_string(&error_log).unwrap();
    assert!(log.contains("listener `web`"), "error log: {log}");
}

#[test]
fn a_listener_address_in_use_is_refused_at_start() {
    let dir = TempDir::new("busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let path = dir.write(
        "pylon.yaml",
        &VALID.replace("127.0.0.1:18080", &addr.to_string()),
    );
    let mut child = std::process::Command::new(crate::harness::pylon::binary())
        .args(["-c", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pylon kept running without its listener");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("in use"),
        "{stderr}"
    );
}
