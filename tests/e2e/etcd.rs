//! A fleet sharing one config through etcd (`config: { store: etcd, … }`), through the
//! binary and a real etcd: `pylon store seed` fills an empty prefix, a write (the store's
//! transaction, as the admin API will make it) reaches every node, a stale write is refused,
//! an invalid resource is refused by every node while the old config serves, and the nodes
//! serve throughout an etcd outage and catch up after it. The admin API of a node writes
//! to etcd: its change serves on every node, and a write that lost to another writer (or
//! names a stale ETag) is refused with 412, etcd unchanged.

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use pylon_config::{ResourceKind, StoreConfig, StoreKind};
use pylon_store::{Change, Contents, EtcdStore, PreviewError, WriteError};

use crate::harness::etcd::Etcd;
use crate::harness::load::Load;
use crate::harness::pylon::run_cli;
use crate::harness::tempdir::TempDir;
use crate::harness::{Origin, Pylon};

const PREFIX: &str = "/fleet";

/// A node's own file: a listener and the store.
fn node_yaml(etcd: &Etcd, extra: &str) -> String {
    format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
config: {{ store: etcd, endpoints: ["{}"], prefix: {PREFIX}{extra} }}
"#,
        etcd.endpoint()
    )
}

/// The fleet's shared config, as a file: `/` goes to `origin`, `/hello` answers directly.
fn shared_yaml(origin: &Origin) -> String {
    format!(
        r#"
upstreams:
  app: {{ servers: ["{}"] }}
routes:
  - {{ name: hello, rule: "Path(`/hello`)", priority: 100, respond: {{ status: 200, body: "hello" }} }}
  - {{ name: app, rule: "PathPrefix(`/`)", upstream: app }}
"#,
        origin.address()
    )
}

/// Runs `pylon store seed` with `shared` as `--from`; returns its output.
fn seed(etcd: &Etcd, shared: &str) -> Output {
    let dir = TempDir::new("seed");
    let node = dir.write(
        "node.yaml",
        &node_yaml(etcd, "").replace("@listen0@", "127.0.0.1:8080"),
    );
    let from = dir.write("shared.yaml", shared);
    run_cli(
        &[
            "store",
            "seed",
            "-c",
            node.to_str().unwrap(),
            "--from",
            from.to_str().unwrap(),
        ],
        None,
    )
}

fn seeded(etcd: &Etcd, shared: &str) {
    let out = seed(etcd, shared);
    assert!(
        out.status.success(),
        "seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The store's client, as the admin API will use it: its own runtime (the connection lives
/// on it).
struct Writer {
    runtime: tokio::runtime::Runtime,
    store: EtcdStore,
}

impl Writer {
    fn new(etcd: &Etcd) -> Writer {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let settings = StoreConfig {
            store: StoreKind::Etcd,
            endpoints: vec![etcd.endpoint()],
            prefix: PREFIX.to_string(),
            timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
        };
        let store = runtime.block_on(EtcdStore::connect(&settings)).unwrap();
        Writer { runtime, store }
    }

    fn read(&self) -> Contents {
        self.runtime.block_on(self.store.read()).unwrap()
    }

    fn write(&self, changes: &[Change], expected: u64) -> Result<u64, WriteError> {
        self.runtime.block_on(self.store.write(changes, expected))
    }
}

fn put(kind: ResourceKind, name: &str, json: &str) -> Change {
    Change::Put {
        kind,
        name: name.to_string(),
        value: json.to_string(),
    }
}

/// Starts a node of the fleet.
fn node(etcd: &Etcd) -> Pylon {
    Pylon::start(&node_yaml(etcd, ""))
}

/// Polls `path` on `pylon` until it answers `body`, or `deadline` passes.
fn serves_by(pylon: &Pylon, path: &str, body: &str, deadline: Instant) -> bool {
    loop {
        if pylon.client().get(path).text() == body {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `path` on `pylon` until origin `id` answers it, or `deadline` passes.
fn reaches(pylon: &Pylon, path: &str, id: &str, deadline: Instant) -> bool {
    loop {
        let answer = pylon.client().get(path);
        let by = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v["server"].as_str().map(str::to_string));
        if answer.status == 200 && by.as_deref() == Some(id) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_route_written_to_etcd_serves_on_every_node_within_a_second() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    let other = Origin::start("other");
    let out = seed(&etcd, &shared_yaml(&app));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "seeded etcd prefix {PREFIX} at {} from",
            etcd.endpoint()
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("1"));

    let nodes = [node(&etcd), node(&etcd), node(&etcd)];
    for node in &nodes {
        assert_eq!(node.client().get("/hello").text(), "hello");
        assert_eq!(node.client().get("/x").served_by(), "app");
        assert_eq!(node.client().get("/other").served_by(), "app");
        assert!(node.wait_for_log("etcd: watching prefix /fleet"));
    }

    // One transaction adds an upstream and the route that uses it (written through node 1
    // once the admin API exists; the store's write is what it calls).
    let writer = Writer::new(&etcd);
    let generation = writer.read().generation;
    let changes = [
        put(
            ResourceKind::Upstream,
            "other",
            &format!(r#"{{ "servers": ["{}"] }}"#, other.address()),
        ),
        put(
            ResourceKind::Route,
            "other",
            r#"{ "rule": "PathPrefix(`/other`)", "priority": 50, "upstream": "other" }"#,
        ),
    ];
    assert_eq!(writer.write(&changes, generation).unwrap(), generation + 1);
    let deadline = Instant::now() + Duration::from_secs(1);
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            reaches(node, "/other", "other", deadline),
            "node {} does not serve the new route within 1 s",
            i + 1
        );
    }
    for node in &nodes {
        assert_eq!(node.client().get("/other/x").served_by(), "other");
        assert_eq!(node.client().get("/x").served_by(), "app");
        // The transaction applied as one change: the route never came without its upstream.
        assert!(node.wait_for_log(
            "generation 2 serving; routes: +1 ~0 -0; upstreams: app kept, other added"
        ));
        assert!(!node.log().contains("refused"), "{}", node.log());
    }
}

#[test]
fn a_write_with_a_stale_generation_is_refused() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    let node = node(&etcd);
    let writer = Writer::new(&etcd);
    let read = writer.read();
    assert_eq!(read.generation, 1);

    let first = put(
        ResourceKind::Route,
        "first",
        r#"{ "rule": "Path(`/first`)", "priority": 100, "respond": { "status": 200, "body": "first" } }"#,
    );
    assert_eq!(writer.write(&[first], read.generation).unwrap(), 2);
    // A second writer that read generation 1 too: refused, nothing written.
    let second = put(
        ResourceKind::Route,
        "second",
        r#"{ "rule": "Path(`/second`)", "priority": 100, "respond": { "status": 200, "body": "second" } }"#,
    );
    // Checked before writing (as the admin API will): the preview sees the conflict too.
    let local = pylon_config::parse_files(&node.config_path).unwrap();
    let preview = writer.runtime.block_on(writer.store.preview(
        &local,
        std::slice::from_ref(&second),
        read.generation,
    ));
    assert!(
        matches!(
            preview,
            Err(PreviewError::Conflict {
                expected: 1,
                current: 2
            })
        ),
        "{preview:?}"
    );
    match writer.write(&[second], read.generation) {
        Err(WriteError::Conflict { expected, current }) => assert_eq!((expected, current), (1, 2)),
        other => panic!("a stale write was not refused: {other:?}"),
    }
    assert_eq!(etcd.get("/fleet/routes/second"), None);
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("2"));
    let deadline = Instant::now() + Duration::from_secs(5);
    assert!(serves_by(&node, "/first", "first", deadline));
    assert_eq!(node.client().get("/second").served_by(), "app");

    // A preview names what the nodes would refuse, by key.
    let bad = put(
        ResourceKind::Route,
        "bad",
        r#"{ "rule": "Path(`/bad`)", "upstream": "nope" }"#,
    );
    match writer
        .runtime
        .block_on(writer.store.preview(&local, &[bad], 2))
    {
        Err(PreviewError::Invalid(errors)) => assert!(
            errors
                .to_string()
                .starts_with("etcd:/fleet/routes/bad:1:39: upstream: unknown upstream `nope`"),
            "{errors}"
        ),
        other => panic!("an invalid write previewed as {other:?}"),
    }

    // SIGHUP re-reads the prefix: nothing new.
    node.signal("HUP");
    assert!(node.wait_for_log(
        "etcd change (SIGHUP, etcd generation 2, revision 3): no change; generation 2 keeps serving"
    ));
}

#[test]
fn an_invalid_resource_is_refused_by_every_node_while_the_old_config_serves() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    let nodes = [node(&etcd), node(&etcd)];

    // Written straight into etcd, past any check: a rule with a typo.
    etcd.put(
        "/fleet/routes/bad",
        r#"{ "rule": "Pth(`/bad`)", "priority": 100, "respond": { "status": 200, "body": "bad" } }"#,
    );
    for node in &nodes {
        assert!(node.wait_for_log("refused, 1 error(s); still serving generation 1"));
        assert!(
            node.log()
                .contains("etcd:/fleet/routes/bad:1:12: rule: invalid rule"),
            "the error names the key: {}",
            node.log()
        );
        assert_eq!(node.client().get("/hello").text(), "hello");
        assert_eq!(node.client().get("/bad").served_by(), "app");
    }

    // Fixing the key applies it everywhere.
    etcd.put(
        "/fleet/routes/bad",
        r#"{ "rule": "Path(`/bad`)", "priority": 100, "respond": { "status": 200, "body": "fixed" } }"#,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    for node in &nodes {
        assert!(serves_by(node, "/bad", "fixed", deadline));
    }
}

#[test]
fn nodes_serve_throughout_an_etcd_outage_and_catch_up_after_it() {
    let mut etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    let nodes = [node(&etcd), node(&etcd)];
    let loads: Vec<Load> = nodes
        .iter()
        .map(|n| Load::start(n.addr(), 1, true))
        .collect();

    etcd.stop();
    for node in &nodes {
        assert!(node.wait_for_log("etcd unreachable ("));
        assert!(node
            .log()
            .contains("still serving generation 1, retrying with back-off"));
    }
    // A while without etcd: several retries, every request still answered.
    std::thread::sleep(Duration::from_millis(1500));
    for node in &nodes {
        assert_eq!(node.client().get("/hello").text(), "hello");
        assert_eq!(
            node.log().matches("etcd unreachable (").count(),
            1,
            "an outage is logged once"
        );
    }

    etcd.restart();
    // A change made after the restart reaches every node.
    let writer = Writer::new(&etcd);
    let changes = [put(
        ResourceKind::Route,
        "after",
        r#"{ "rule": "Path(`/after`)", "priority": 100, "respond": { "status": 200, "body": "after" } }"#,
    )];
    writer.write(&changes, writer.read().generation).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    for node in &nodes {
        assert!(
            serves_by(node, "/after", "after", deadline),
            "the change after the restart did not arrive"
        );
        assert!(node.wait_for_log("reachable again after"));
    }
    for (load, node) in loads.into_iter().zip(&nodes) {
        let (ok, failed) = load.finish();
        assert!(ok > 50, "too few requests to mean anything: {ok}");
        assert_eq!(failed, 0, "{failed} requests failed on {}", node.addr());
    }
}

#[test]
fn a_node_started_while_etcd_is_down_waits_for_it_up_to_start_timeout() {
    let mut etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    etcd.stop();

    // etcd stays down: the node gives up after start_timeout and serves nothing.
    let dir = TempDir::new("etcd-down");
    let text = node_yaml(&etcd, ", start_timeout: 1s").replace("@listen0@", "127.0.0.1:0");
    let file: PathBuf = dir.write("node.yaml", &text);
    let out = run_cli(&["-c", file.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("etcd at {}: ", etcd.endpoint()))
            && stderr.contains("gave up after 1s (config.start_timeout); nothing was started"),
        "{stderr}"
    );

    // etcd comes back within start_timeout: the node starts with the fleet's config.
    let starting = {
        let text = node_yaml(&etcd, ", start_timeout: 30s");
        std::thread::spawn(move || Pylon::start(&text))
    };
    std::thread::sleep(Duration::from_millis(1000));
    etcd.restart();
    let node = starting.join().unwrap();
    assert!(node
        .log()
        .contains("retrying for up to 30s (config.start_timeout)"));
    assert_eq!(node.client().get("/hello").text(), "hello");
    assert_eq!(node.client().get("/x").served_by(), "app");
}

#[test]
fn an_empty_prefix_serves_404_until_seeded_and_seeding_needs_an_empty_prefix() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    let node = node(&etcd);
    assert!(node.wait_for_log("etcd prefix /fleet is empty: no routes"));
    assert_eq!(node.client().get("/hello").status, 404);

    // A seed the nodes would refuse is not written.
    let bad = shared_yaml(&app).replace("upstream: app", "upstream: ap");
    let out = seed(&etcd, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("shared.yaml:6:") && stderr.contains("nothing was written"),
        "{stderr}"
    );
    assert_eq!(etcd.get("/fleet/generation"), None);

    // Seeding while the node runs: it picks the config up.
    seeded(&etcd, &shared_yaml(&app));
    let deadline = Instant::now() + Duration::from_secs(5);
    assert!(serves_by(&node, "/hello", "hello", deadline));
    assert_eq!(node.client().get("/x").served_by(), "app");

    // `pylon check` reads the prefix too.
    let out = run_cli(&["check", "-c", node.config_path.to_str().unwrap()], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("2 routes; from etcd prefix /fleet at generation 1"));

    // A prefix that holds a config is not seeded again.
    let out = seed(&etcd, &shared_yaml(&app));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("etcd prefix /fleet is not empty"));
}

#[test]
fn a_nodes_file_with_store_etcd_holds_no_routes() {
    let text = r#"
listeners: [{ name: web, address: "127.0.0.1:8080" }]
config: { store: etcd, endpoints: ["https://127.0.0.1:2379"], prefix: pylon }
routes: [{ name: a, rule: "Path(`/`)", respond: { status: 200 } }]
"#;
    let out = crate::harness::pylon::check_refuses(text);
    assert!(out.contains("pylon.yaml:4:1: routes: `routes` cannot be set in a node's file with `config.store: etcd`"), "{out}");
    assert!(out.contains("TLS to etcd is not supported"), "{out}");
    assert!(
        out.contains("config.prefix: expected a key prefix like `/pylon`"),
        "{out}"
    );
}

#[test]
fn a_reload_does_not_switch_a_running_node_from_its_file_to_etcd() {
    let text = r#"
reload: { interval: 100ms }
listeners: [{ name: web, address: "@listen0@" }]
routes: [{ name: hello, rule: "Path(`/hello`)", respond: { status: 200, body: "hello" } }]
"#;
    let pylon = Pylon::start(text);
    // Switching stores would take the routes away at once: it waits for a restart.
    pylon.rewrite_config(
        "listeners: [{ name: web, address: \"@listen0@\" }]\nconfig: { store: etcd, endpoints: [\"http://127.0.0.1:9\"] }\n",
    );
    assert!(pylon.wait_for_log(
        "config reload (file change) refused: `config.store: etcd` needs a restart to take effect; still serving generation 1"
    ));
    assert_eq!(pylon.client().get("/hello").text(), "hello");
}

/// A request to node `pylon`'s admin API (its second listener), with the fleet's key.
fn admin_call(
    pylon: &Pylon,
    method: &str,
    path: &str,
    if_match: Option<&str>,
    body: &str,
) -> crate::harness::client::Response {
    let mut headers = vec![
        ("Host", "admin"),
        ("Authorization", "Bearer k-0123456789"),
        ("Content-Type", "application/json"),
    ];
    if let Some(tag) = if_match {
        headers.push(("If-Match", tag));
    }
    crate::harness::Client::new(pylon.listeners[1]).request_with_body(
        method,
        path,
        &headers,
        body.as_bytes(),
    )
}

#[test]
fn a_route_added_through_one_nodes_admin_api_serves_on_every_node_within_a_second() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    let admin_section = "\nadmin:\n  listen: \"@listen1@\"\n  api_keys: [\"k-0123456789\"]\n";
    let first = Pylon::start(&(node_yaml(&etcd, "") + admin_section));
    let nodes = [first, node(&etcd), node(&etcd)];
    for node in &nodes {
        assert!(node.wait_for_log("etcd: watching prefix /fleet"));
        assert_eq!(node.client().get("/fresh").served_by(), "app");
    }

    let listed = admin_call(&nodes[0], "GET", "/api/v1/routes", None, "");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let etag = listed.header("etag").unwrap_or_default().to_string();
    let route = r#"{"name": "fresh", "rule": "Path(`/fresh`)", "priority": 100,
        "respond": {"status": 200, "body": "fresh"}}"#;
    let created = admin_call(&nodes[0], "POST", "/api/v1/routes", Some(&etag), route);
    assert_eq!(created.status, 201, "{}", created.text());
    // Durable in etcd before the answer: one transaction, one generation.
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("2"));
    assert!(etcd.get("/fleet/routes/fresh").is_some());
    let deadline = Instant::now() + Duration::from_secs(1);
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            serves_by(node, "/fresh", "fresh", deadline),
            "node {} does not serve the route added through node 1 within 1 s",
            i + 1
        );
    }

    // The ETag read before the write is stale now: refused, nothing written.
    let late = r#"{"name": "late", "rule": "Path(`/late`)", "respond": {"status": 200}}"#;
    let stale = admin_call(&nodes[0], "POST", "/api/v1/routes", Some(&etag), late);
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("2"));
    assert!(etcd.get("/fleet/routes/late").is_none());

    // A write made elsewhere (another node's API, here the store's own transaction)
    // reaches node 1 through its watch and makes the ETag read before it stale.
    let current = created.header("etag").unwrap_or_default().to_string();
    let writer = Writer::new(&etcd);
    let elsewhere = put(
        ResourceKind::Route,
        "elsewhere",
        r#"{ "rule": "Path(`/elsewhere`)", "priority": 100, "respond": { "status": 200, "body": "elsewhere" } }"#,
    );
    assert_eq!(writer.write(&[elsewhere], 2).unwrap(), 3);
    let deadline = Instant::now() + Duration::from_secs(1);
    assert!(serves_by(&nodes[0], "/elsewhere", "elsewhere", deadline));
    let overwrite = admin_call(&nodes[0], "POST", "/api/v1/routes", Some(&current), late);
    assert_eq!(overwrite.status, 412, "{}", overwrite.text());
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("3"));

    // A route the config refuses: every error listed, etcd unchanged.
    let bad = r#"{"name": "bad", "rule": "Path(`/bad`", "upstream": "nope"}"#;
    let refused = admin_call(&nodes[0], "POST", "/api/v1/routes", None, bad);
    assert_eq!(refused.status, 422, "{}", refused.text());
    let errors = refused.json()["errors"].to_string();
    assert!(errors.contains("etcd:/fleet/routes/bad"), "{errors}");
    assert!(errors.contains("nope"), "{errors}");
    assert!(errors.contains("rule"), "{errors}");
    assert_eq!(etcd.get("/fleet/generation").as_deref(), Some("3"));
    assert!(etcd.get("/fleet/routes/bad").is_none());
    for node in &nodes {
        assert!(!node.log().contains("refused"), "{}", node.log());
        assert_eq!(node.client().get("/fresh").text(), "fresh");
        assert_eq!(node.client().get("/elsewhere").text(), "elsewhere");
    }
}

#[test]
fn an_admin_write_racing_another_writer_is_refused_with_412_and_writes_nothing() {
    let etcd = Etcd::start();
    let app = Origin::start("app");
    seeded(&etcd, &shared_yaml(&app));
    let admin_section = "\nadmin:\n  listen: \"@listen1@\"\n  api_keys: [\"k-0123456789\"]\n";
    let first = Pylon::start(&(node_yaml(&etcd, "") + admin_section));
    assert!(first.wait_for_log("etcd: watching prefix /fleet"));
    let writer = Writer::new(&etcd);
    // The other writer lands while the API write is between its read of etcd and its
    // transaction (staggered start times until one does): the transaction's compare of
    // the generation refuses the API's write.
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..60u64 {
        let route =
            format!(r#"{{"name": "a{i}", "rule": "Path(`/a{i}`)", "respond": {{"status": 200}}}}"#);
        let other = put(
            ResourceKind::Route,
            &format!("w{i}"),
            &format!(r#"{{ "rule": "Path(`/w{i}`)", "respond": {{ "status": 200 }} }}"#),
        );
        let answer = std::thread::scope(|s| {
            let api = s.spawn(|| admin_call(&first, "POST", "/api/v1/routes", None, &route));
            std::thread::sleep(Duration::from_micros(250 * (i % 20)));
            // The other writer may lose the race itself: it retries, as a writer should.
            loop {
                let generation = writer.read().generation;
                match writer.write(std::slice::from_ref(&other), generation) {
                    Ok(_) => break,
                    Err(WriteError::Conflict { .. }) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
            api.join().unwrap()
        });
        match answer.status {
            201 => accepted += 1,
            412 => {
                refused += 1;
                assert!(answer.text().contains("generation"), "{}", answer.text());
                assert!(etcd.get(&format!("/fleet/routes/a{i}")).is_none());
            }
            status => panic!("unexpected {status}: {}", answer.text()),
        }
        if accepted > 0 && refused > 0 {
            break;
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
    assert!(!first.log().contains("refused"), "{}", first.log());
}
