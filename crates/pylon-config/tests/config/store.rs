//! The `config:` section and configs built from a store's resources: a node's file keeps
//! its node-local settings, each resource is typed as in a file, errors name the key.

use pylon_config::{parse_files, ResourceKind, StoreKind, StoredResource};

use crate::{errors, yaml, TempDir};

const NODE: &str = r#"
listeners: [{ name: web, address: "127.0.0.1:8080" }]
config: { store: etcd, endpoints: ["http://127.0.0.1:2379"], prefix: /p }
"#;

fn resource(kind: ResourceKind, name: &str, text: &str) -> StoredResource {
    let key = if kind.is_named() {
        format!("/p/{}/{name}", kind.segment())
    } else {
        format!("/p/{}", kind.segment())
    };
    StoredResource {
        origin: format!("etcd:{key}"),
        kind,
        name: name.to_string(),
        text: text.to_string(),
    }
}

fn node() -> (TempDir, pylon_config::Parsed) {
    let dir = TempDir::create();
    let path = dir.write("node.yaml", NODE);
    let parsed = parse_files(&path).unwrap_or_else(|e| panic!("{e}"));
    (dir, parsed)
}

#[test]
fn resources_build_the_config_a_file_would() {
    let (_dir, node) = node();
    let built = node
        .build_with(&[
            resource(
                ResourceKind::Route,
                "api",
                r#"{ "rule": "PathPrefix(`/api`)", "upstream": "app", "middlewares": ["rid"] }"#,
            ),
            resource(
                ResourceKind::Upstream,
                "app",
                "servers: [\"127.0.0.1:3000\"]\n",
            ),
            resource(ResourceKind::Middleware, "rid", r#"{ "request_id": {} }"#),
            resource(
                ResourceKind::ErrorPages,
                "",
                r#"{ "404": { "body": "none" } }"#,
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    let file = yaml(&format!(
        "{}{}",
        NODE.replace("config:", "#"),
        r#"
upstreams: { app: { servers: ["127.0.0.1:3000"] } }
middlewares: { rid: { request_id: {} } }
routes: [{ name: api, rule: "PathPrefix(`/api`)", upstream: app, middlewares: [rid] }]
error_pages: { "404": { body: none } }
"#
    ));
    assert_eq!(built.routes, file.routes);
    assert_eq!(built.upstreams, file.upstreams);
    assert_eq!(built.middlewares, file.middlewares);
    assert_eq!(built.error_pages, file.error_pages);
    let store = built.etcd().unwrap();
    assert_eq!(store.store, StoreKind::Etcd);
    assert_eq!(store.prefix, "/p");
    assert_eq!(store.endpoints, ["http://127.0.0.1:2379"]);
}

#[test]
fn errors_in_a_resource_name_its_key() {
    let (_dir, node) = node();
    let errors = node
        .build_with(&[
            resource(
                ResourceKind::Route,
                "api",
                "{ \"rule\": \"Pth(`/`)\",\n  \"upstream\": \"nope\" }",
            ),
            resource(ResourceKind::Upstream, "app", r#"{ "servers": [] }"#),
            resource(
                ResourceKind::Route,
                "named",
                r#"{ "name": "other", "rule": "Path(`/`)", "respond": { "status": 200 } }"#,
            ),
        ])
        .unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(text.contains(&"etcd:/p/routes/api:1:12: rule: invalid rule: unknown matcher `Pth`, did you mean `Path`?".to_string()), "{text:#?}");
    assert!(
        text.iter()
            .any(|e| e.starts_with("etcd:/p/routes/api:2:15: upstream: unknown upstream `nope`")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|e| e.starts_with(
            "etcd:/p/upstreams/app:1:14: servers: an upstream needs at least one server"
        )),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|e| e.starts_with(
            "etcd:/p/routes/named:1:11: name: a route's name is its key's last segment, `named`"
        )),
        "{text:#?}"
    );
}

#[test]
fn stored_values_are_literal() {
    let (_dir, node) = node();
    let built = node
        .build_with(&[resource(
            ResourceKind::Route,
            "r",
            r#"{ "rule": "Path(`/`)", "respond": { "status": 200, "body": "${HOME}" } }"#,
        )])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        built.routes[0].respond.as_ref().unwrap().body.as_deref(),
        Some("${HOME}")
    );
}

#[test]
fn a_shared_file_brings_its_resources_but_not_its_node_local_sections() {
    let (dir, node) = node();
    let shared = dir.write(
        "shared.yaml",
        r#"
listeners: [{ name: other, address: "127.0.0.1:9090" }]
server: { threads: 4 }
upstreams: { app: { servers: ["127.0.0.1:3000"] } }
routes: [{ name: all, rule: "PathPrefix(`/`)", upstream: app }]
"#,
    );
    let shared = parse_files(&shared).unwrap();
    let (merged, left_out) = node.with_shared(&shared);
    assert_eq!(left_out, ["listeners", "server"]);
    let config = merged.build().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].name, "web");
    assert_eq!(config.server.threads, None);
    assert_eq!(config.routes.len(), 1);
}

#[test]
fn a_nodes_file_on_etcd_keeps_shared_sections_out() {
    let found = errors(&format!(
        "{NODE}upstreams: {{ app: {{ servers: [\"127.0.0.1:1\"] }} }}\nreload: {{ watch: false }}\n"
    ));
    assert!(found[0].starts_with("t.yaml:4:1: upstreams: `upstreams` cannot be set in a node's file with `config.store: etcd`: routes, upstreams, middlewares and error pages live in etcd"), "{found:#?}");
    assert!(found[1].starts_with("t.yaml:5:1: reload: `reload` cannot be set in a node's file with `config.store: etcd`: changes come from etcd's watch"), "{found:#?}");
}

#[test]
fn the_store_section_is_checked() {
    let base = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\n";
    let found = errors(&format!("{base}config: {{ store: file, prefix: /p }}\n"));
    assert_eq!(
        found,
        ["t.yaml:2:24: config.prefix: `prefix` is only used with `store: etcd`"]
    );
    let found = errors(&format!("{base}config: {{ store: etcd }}\n"));
    assert_eq!(found, ["t.yaml:2:9: config: `store: etcd` needs `endpoints`, e.g. `endpoints: [\"http://127.0.0.1:2379\"]`"]);
    let found = errors(&format!(
        "{base}config: {{ store: etcd, endpoints: [\"127.0.0.1:2379\", \"https://e:2379\"], prefix: /p/, timeout: 1ms }}\n"
    ));
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found[0].contains("config.endpoints[0]: expected an etcd client URL `http://HOST:PORT`, found \"127.0.0.1:2379\""));
    assert!(found[1].contains("config.endpoints[1]: TLS to etcd is not supported"));
    assert!(found[2].contains("config.prefix: expected a key prefix like `/pylon`"));
    assert!(found[3].contains("config.timeout: timeout must be at least 10ms"));
    let found = errors(&format!("{base}config: {{ store: consul }}\n"));
    assert!(found[0].contains("config.store"), "{found:#?}");
}
