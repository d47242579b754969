//! The `admin:` section, where entries are defined (`Origins`), loading with one file
//! replaced, and writing a config back as YAML that loads to the same config.

use std::path::Path;

use pylon_config::{load, load_replacing, to_yaml, AdminConfig, DEFAULT_ADMIN_LISTEN};

use crate::{errors, fixture, yaml, TempDir, BASE};

/// A bcrypt hash (cost 4) of `secret`.
const HASH: &str = "$2y$04$Tm1ZgQwS2m2qz4Gm3K1O4eQxH0f5bq4YxWl3Jm1Q9a3b5v2C1zE5G";

#[test]
fn admin_defaults_to_loopback_without_auth() {
    let c = yaml(&format!("{BASE}admin: {{}}\n"));
    let admin = c.admin.unwrap();
    assert_eq!(admin.listen, DEFAULT_ADMIN_LISTEN);
    assert!(!admin.requires_auth());
    assert_eq!(yaml(BASE).admin, None);
}

#[test]
fn admin_settings_load() {
    let c = yaml(&format!(
        "{BASE}admin:\n  listen: \"0.0.0.0:9180\"\n  api_keys: [k1]\n  basic_auth: [\"ops:{HASH}\"]\n  rate_limit: {{ average: 5, period: 2s }}\n"
    ));
    let admin: AdminConfig = c.admin.unwrap();
    assert_eq!(admin.listen.port(), 9180);
    assert_eq!(admin.api_keys, ["k1"]);
    assert_eq!(admin.basic_auth, [format!("ops:{HASH}")]);
    let limit = admin.rate_limit.unwrap();
    assert_eq!(
        (limit.average, limit.period.as_secs(), limit.burst),
        (5, 2, None)
    );
}

#[test]
fn a_public_admin_listener_without_credentials_is_refused() {
    let e = errors(&format!("{BASE}admin:\n  listen: \"0.0.0.0:9180\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "t.yaml:8:11: admin.listen: the admin API on 0.0.0.0:9180 would let anyone"
        ),
        "{e:?}"
    );
}

#[test]
fn bad_credentials_and_limits_are_refused_with_their_place() {
    let e = errors(&format!(
        "{BASE}admin:\n  api_keys: [\"\", \"a b\"]\n  basic_auth: [\"ops:$apr1$xyz\", \"nocolon\", \"u:{HASH}\", \"u:{HASH}\"]\n  rate_limit: {{ average: 0, period: 0s }}\n"
    ));
    let joined = e.join("\n");
    for needle in [
        "admin.api_keys[0]: an API key must not be empty",
        "admin.api_keys[1]: an API key must not contain spaces",
        "admin.basic_auth[0]: user `ops`: MD5-crypt (`$apr1$`, `$1$`) is too weak; use bcrypt",
        "admin.basic_auth[1]: expected `user:hash`",
        "admin.basic_auth[3]: user `u` is listed twice",
        "admin.rate_limit.average: average must be at least 1",
        "admin.rate_limit.period: period must be more than 0s",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn a_plain_password_for_an_admin_user_is_refused_without_the_middlewares_escape_hatch() {
    let e = errors(&format!("{BASE}admin:\n  basic_auth: [\"ops:hunter2\"]\n")).join("\n");
    assert!(
        e.contains("not a password hash (a plain-text password?)"),
        "{e}"
    );
    // `allow_plaintext` is a `basic_auth` middleware option; the admin section has none.
    assert!(!e.contains("allow_plaintext"), "{e}");
}

#[test]
fn unknown_admin_keys_are_refused_with_a_hint() {
    let e = errors(&format!("{BASE}admin:\n  lisen: \"127.0.0.1:1\"\n"));
    assert_eq!(
        e,
        ["t.yaml:8:3: admin.lisen: unknown key `lisen` in admin, did you mean `listen`?"]
    );
}

#[test]
fn origins_name_the_file_and_line_of_each_entry() {
    let dir = TempDir::create();
    dir.write("a.yaml", BASE);
    dir.write(
        "b.yaml",
        "middlewares:\n  m: { request_id: {} }\nroutes:\n  - name: r\n    rule: \"Path(`/`)\"\n    upstream: app\n",
    );
    let loaded = load(dir.path()).unwrap();
    let o = &loaded.origins;
    assert_eq!(
        o.upstreams["app"].to_string(),
        format!("{}:5:3", dir.path().join("a.yaml").display())
    );
    assert_eq!(
        o.middlewares["m"].to_string(),
        format!("{}:2:3", dir.path().join("b.yaml").display())
    );
    assert_eq!(
        o.routes["r"].to_string(),
        format!("{}:4:11", dir.path().join("b.yaml").display())
    );
}

#[test]
fn load_replacing_sees_a_file_that_is_not_written_yet() {
    let dir = TempDir::create();
    dir.write("base.yaml", BASE);
    let api = dir.path().join("api.yaml");
    let routes = "routes:\n  - { name: r, rule: \"Path(`/`)\", upstream: app }\n";
    let loaded = load_replacing(dir.path(), &api, routes).unwrap();
    assert_eq!(loaded.config.routes[0].name, "r");
    assert_eq!(loaded.origins.routes["r"].file, api);
    assert!(!api.exists(), "nothing is written");
    let e = load_replacing(
        dir.path(),
        &api,
        "routes:\n  - { name: r, rule: \"Path(`/`)\", upstream: nope }\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("api.yaml:2:"), "{e}");
    // A single file replaced by other text.
    let file = dir.write("one.yaml", BASE);
    let text = format!("{BASE}{routes}");
    assert_eq!(
        load_replacing(&file, &file, &text)
            .unwrap()
            .config
            .routes
            .len(),
        1
    );
}

#[test]
fn a_config_written_back_as_yaml_loads_to_the_same_config() {
    for name in ["example.yaml", "example.toml", "example.json"] {
        let config = load(&fixture(name)).unwrap().config;
        let text = to_yaml(&serde_json::to_value(&config).unwrap());
        let back = pylon_config::load_str(&text, pylon_config::Format::Yaml, Path::new("b.yaml"))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(back, config, "{name}:\n{text}");
    }
    // Strings the loader would substitute come back as written.
    let c = yaml(&format!(
        "{BASE}routes:\n  - {{ name: r, rule: \"PathRegexp(`^/a$`)\", respond: {{ status: 200, body: \"$${{HOME}} and $$$$\" }} }}\n"
    ));
    assert_eq!(
        c.routes[0].respond.as_ref().unwrap().body.as_deref(),
        Some("${HOME} and $$")
    );
    let text = to_yaml(&serde_json::to_value(&c).unwrap());
    let back =
        pylon_config::load_str(&text, pylon_config::Format::Yaml, Path::new("b.yaml")).unwrap();
    assert_eq!(back, c, "{text}");
}
