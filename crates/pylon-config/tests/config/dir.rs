//! Directory mode: files merged by name, duplicates named with both places.

use std::path::Path;

use pylon_config::load;

use crate::TempDir;

#[test]
fn merges_files_in_name_order() {
    let dir = TempDir::create();
    std::env::remove_var("PYLON_T6_PORT");
    dir.write(".env", "PYLON_T6_PORT=3000\n");
    dir.write(
        "10-base.yaml",
        "server:\n  threads: 2\nlisteners:\n  - { name: web, address: \"127.0.0.1:8080\" }\nupstreams:\n  app: { servers: [\"127.0.0.1:${PYLON_T6_PORT}\"] }\nroutes:\n  - { name: first, rule: \"Path(`/1`)\", upstream: app }\n",
    );
    dir.write(
        "20-more.toml",
        "[[listeners]]\nname = \"admin\"\naddress = \"127.0.0.1:9090\"\n[upstreams.other]\nservers = [\"127.0.0.1:4000\"]\n[[routes]]\nname = \"second\"\nrule = \"Path(`/2`)\"\nupstream = \"app\"\nlisteners = [\"admin\"]\n",
    );
    dir.write(
        "30-last.json",
        r#"{"routes": [{"name": "third", "rule": "Path(`/3`)", "upstream": "other"}]}"#,
    );
    dir.write("README.md", "not config");
    dir.write(".hidden.yaml", "garbage: [");
    std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();

    let loaded = load(dir.path()).unwrap();
    let c = &loaded.config;
    assert_eq!(c.server.threads, Some(2));
    let names: Vec<_> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["web", "admin"]);
    let routes: Vec<_> = c.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(routes, ["first", "second", "third"]);
    assert_eq!(c.upstreams.keys().collect::<Vec<_>>(), ["app", "other"]);
    assert_eq!(c.upstreams["app"].servers[0].address.port(), 3000);
    let files: Vec<_> = loaded
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(files, ["10-base.yaml", "20-more.toml", "30-last.json"]);
}

#[test]
fn names_defined_twice_name_both_places() {
    let dir = TempDir::create();
    dir.write(
        "a.yaml",
        "server: { threads: 1 }\nlisteners:\n  - { name: web, address: \"127.0.0.1:8080\" }\nupstreams:\n  app: { servers: [\"127.0.0.1:3000\"] }\nroutes:\n  - { name: r, rule: \"Path(`/`)\", upstream: app }\n",
    );
    dir.write(
        "b.toml",
        "server = { threads = 2 }\n[[listeners]]\nname = \"web\"\naddress = \"127.0.0.1:8081\"\n[upstreams.app]\nservers = [\"127.0.0.1:3001\"]\n[[routes]]\nname = \"r\"\nrule = \"Path(`/b`)\"\nupstream = \"app\"\n",
    );
    let errs = load(dir.path()).unwrap_err();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.toml");
    let (a, b) = (a.display(), b.display());
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            format!(
                "{b}:1:1: server: `server` is already set at {a}:1:1; only one file may set it"
            ),
            format!("{b}:3:8: listeners[0].name: listener `web` is already defined at {a}:3:13"),
            format!("{b}:5:12: upstreams.app: upstream `app` is already defined at {a}:5:3"),
            format!("{b}:8:8: routes[0].name: route `r` is already defined at {a}:7:13"),
        ]
    );
}

#[test]
fn errors_from_several_files_at_once() {
    let dir = TempDir::create();
    dir.write("a.yaml", "listeners: [\n");
    dir.write("b.json", "{\"routes\": 1,}");
    dir.write(
        "c.yaml",
        "listeners:\n  - { name: web, address: \"127.0.0.1:1\" }\n",
    );
    let errs = load(dir.path()).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.0[0].file.ends_with("a.yaml"));
    assert!(errs.0[1].file.ends_with("b.json"));
}

#[test]
fn empty_or_missing() {
    let dir = TempDir::create();
    let errs = load(dir.path()).unwrap_err();
    assert_eq!(
        errs.0[0].message,
        "no .yaml, .yml, .toml or .json file in this directory"
    );
    let errs = load(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(errs.0[0].message.starts_with("cannot read"), "{errs}");
    assert_eq!(errs.0[0].line, 0);
    let file = dir.write("x.ini", "a=1");
    let errs = load(&file).unwrap_err();
    assert_eq!(
        errs.to_string(),
        format!(
            "{}: unknown config format: use a .yaml, .yml, .toml or .json file",
            file.display()
        )
    );
    assert!(load(Path::new("/nonexistent/pylon.yaml")).is_err());
}
