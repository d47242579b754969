//! Where API changes are kept, behind one small trait so that a second store (etcd) can be
//! added beside the file one.
//!
//! A store holds the *managed document*: the part of the config the API may change, as a
//! plain value shaped like a config file. It loads the config as it is stored now, loads it
//! as it would be with another managed document (validation, nothing written), and makes a
//! candidate durable. The config the API applies is always one the store *loaded*, so a
//! restart serves exactly what the API last acknowledged.
//!
//! [`FileStore`] has two layouts:
//! - **directory** (`pylon -c DIR`): the managed document is `DIR/api.yaml` (created on the
//!   first write) with `routes`, `upstreams` and `middlewares`; everything defined in the
//!   other files of the directory is the user's, read-only through the API.
//! - **file** (`pylon -c FILE`): the managed document is the whole file, written back as a
//!   whole (comments are lost). A file that uses `${VAR}` is never written back: its
//!   secrets would land in it in plain text.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pylon_config::{Config, ConfigErrors, Format, Origins, ResourceKind};
use serde_json::{Map, Value};

/// The file of a config directory that holds what the API manages.
pub const API_FILE: &str = "api.yaml";

/// The first lines of a file the API writes.
const HEADER: &str =
    "# Written by Pylon's admin API: every API change rewrites this file (comments here are\n\
                      # not kept). Hand edits are loaded like any other config file.\n";

/// The config as stored now.
#[derive(Debug)]
pub struct Stored {
    /// The whole config, validated, with the command line's `--bind` applied.
    pub config: Config,
    /// The part the API manages, shaped like a config file.
    pub managed: Value,
    /// Routes, upstreams and middlewares defined outside the managed document, and where:
    /// the API may not change them.
    pub elsewhere: Origins,
}

/// The config as it would be with a new managed document.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub config: Config,
    /// What would be stored.
    pub text: String,
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The config does not load; `managed` names the file (or key) holding the managed
    /// document, whose positions mean nothing to the caller when it was not written.
    #[error("{errors}")]
    Invalid {
        errors: ConfigErrors,
        managed: PathBuf,
    },
    /// The store will not take writes, and why.
    #[error("{0}")]
    ReadOnly(String),
    /// Someone else changed the stored config since it was loaded (an etcd store shared by
    /// a fleet): nothing was written. The API answers 412.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Io(String),
}

/// What a store keeps, for the status endpoint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreInfo {
    /// `directory`, `file` or `etcd`.
    pub mode: &'static str,
    /// The config path Pylon was started with.
    pub path: PathBuf,
    /// Where API changes are written.
    pub api_file: PathBuf,
}

/// Keeps the API-managed part of the config durable.
pub trait ConfigStore: Send + Sync {
    fn info(&self) -> StoreInfo;
    /// Whether writes are possible, and if not why (checked before each write).
    fn writable(&self) -> Result<(), String>;
    /// The config as stored now. Blocking.
    fn load(&self) -> Result<Stored, StoreError>;
    /// The config as it would be with `managed` stored; nothing is written. Blocking.
    fn candidate(&self, managed: &Value) -> Result<Candidate, StoreError>;
    /// Makes `candidate` durable before returning. Blocking.
    fn persist(&self, candidate: &Candidate) -> Result<(), StoreError>;
}

/// Config files on disk: a directory with `api.yaml`, or one file written back whole.
pub struct FileStore {
    path: PathBuf,
    api_file: PathBuf,
    directory: bool,
    /// `--bind`: the first listener's address, applied to every loaded config as at start.
    bind: Option<SocketAddr>,
}

impl FileStore {
    pub fn new(path: &Path, bind: Option<SocketAddr>) -> FileStore {
        let directory = path.is_dir();
        FileStore {
            path: path.to_path_buf(),
            api_file: if directory {
                path.join(API_FILE)
            } else {
                path.to_path_buf()
            },
            directory,
            bind,
        }
    }

    fn with_bind(&self, mut config: Config) -> Config {
        if let (Some(bind), Some(first)) = (self.bind, config.listeners.first_mut()) {
            first.address = bind;
        }
        config
    }

    fn invalid(&self, errors: ConfigErrors) -> StoreError {
        StoreError::Invalid {
            errors,
            managed: self.api_file.clone(),
        }
    }

    /// The text for `managed` in the API file's format.
    fn render(&self, managed: &Value) -> Result<String, StoreError> {
        match Format::from_path(&self.api_file) {
            Some(Format::Yaml) => Ok(format!("{HEADER}{}", pylon_config::to_yaml(managed))),
            Some(Format::Json) => serde_json::to_string_pretty(&escape_strings(managed))
                .map(|text| text + "\n")
                .map_err(|e| StoreError::Io(e.to_string())),
            _ => Err(StoreError::ReadOnly(format!(
                "{} is not YAML or JSON: the API writes back only those (run Pylon with a config directory to keep API changes in {API_FILE})",
                self.api_file.display()
            ))),
        }
    }
}

impl ConfigStore for FileStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            mode: if self.directory { "directory" } else { "file" },
            path: self.path.clone(),
            api_file: self.api_file.clone(),
        }
    }

    fn writable(&self) -> Result<(), String> {
        if !matches!(
            Format::from_path(&self.api_file),
            Some(Format::Yaml | Format::Json)
        ) {
            return Err(format!(
                "{} is not a YAML or JSON file; the API writes back only those (or run Pylon with a config directory: API changes then go to {API_FILE} in it)",
                self.api_file.display()
            ));
        }
        match std::fs::read_to_string(&self.api_file) {
            Ok(text) if uses_env(&text) => Err(format!(
                "{} uses ${{VAR}} substitution; writing it back would store the values in plain text, so the API does not write it (run Pylon with a config directory: API changes then go to {API_FILE} in it)",
                self.api_file.display()
            )),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot read {}: {e}", self.api_file.display())),
        }
    }

    fn load(&self) -> Result<Stored, StoreError> {
        self.writable().map_err(StoreError::ReadOnly)?;
        let loaded = pylon_config::load(&self.path).map_err(|e| self.invalid(e))?;
        let (managed, elsewhere) = if self.directory {
            split(&loaded.config, &loaded.origins, &self.api_file)
        } else {
            (whole(&loaded.config), Origins::default())
        };
        Ok(Stored {
            config: self.with_bind(loaded.config),
            managed,
            elsewhere,
        })
    }

    fn candidate(&self, managed: &Value) -> Result<Candidate, StoreError> {
        let text = self.render(managed)?;
        let loaded = pylon_config::load_replacing(&self.path, &self.api_file, &text)
            .map_err(|e| self.invalid(e))?;
        Ok(Candidate {
            config: self.with_bind(loaded.config),
            text,
        })
    }

    fn persist(&self, candidate: &Candidate) -> Result<(), StoreError> {
        if std::fs::read_to_string(&self.api_file).is_ok_and(|t| t == candidate.text) {
            return Ok(());
        }
        write_atomic(&self.api_file, candidate.text.as_bytes())
            .map_err(|e| StoreError::Io(format!("cannot write {}: {e}", self.api_file.display())))
    }
}

/// A config's resources as a managed document (`routes`, `upstreams`, `middlewares`) when
/// defined in `api_file`, and where the others are.
fn split(config: &Config, origins: &Origins, api_file: &Path) -> (Value, Origins) {
    let ours = |o: Option<&pylon_config::Origin>| o.is_some_and(|o| o.file == api_file);
    let managed = document(config, |kind, name| {
        ours(match kind {
            ResourceKind::Route => origins.routes.get(name),
            ResourceKind::Upstream => origins.upstreams.get(name),
            ResourceKind::Middleware => origins.middlewares.get(name),
            ResourceKind::ErrorPages => None,
        })
    });
    let elsewhere = Origins {
        routes: others(&origins.routes, api_file),
        upstreams: others(&origins.upstreams, api_file),
        middlewares: others(&origins.middlewares, api_file),
    };
    (managed, elsewhere)
}

/// The routes, upstreams and middlewares of `config` that `keep` picks, as a managed
/// document shaped like a config file (a section with none is left out).
pub fn document(config: &Config, keep: impl Fn(ResourceKind, &str) -> bool) -> Value {
    let mut doc = Map::new();
    let upstreams: Map<String, Value> = config
        .upstreams
        .iter()
        .filter(|(name, _)| keep(ResourceKind::Upstream, name))
        .map(|(name, u)| (name.clone(), to_value(u)))
        .collect();
    let middlewares: Map<String, Value> = config
        .middlewares
        .iter()
        .filter(|(name, _)| keep(ResourceKind::Middleware, name))
        .map(|(name, m)| (name.clone(), to_value(m)))
        .collect();
    let routes: Vec<Value> = config
        .routes
        .iter()
        .filter(|r| keep(ResourceKind::Route, &r.name))
        .map(to_value)
        .collect();
    if !upstreams.is_empty() {
        doc.insert("upstreams".into(), Value::Object(upstreams));
    }
    if !middlewares.is_empty() {
        doc.insert("middlewares".into(), Value::Object(middlewares));
    }
    if !routes.is_empty() {
        doc.insert("routes".into(), Value::Array(routes));
    }
    Value::Object(doc)
}

fn others(
    map: &std::collections::BTreeMap<String, pylon_config::Origin>,
    api_file: &Path,
) -> std::collections::BTreeMap<String, pylon_config::Origin> {
    map.iter()
        .filter(|(_, o)| o.file != api_file)
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect()
}

/// A whole config as a document, without the sections left at their defaults.
pub fn whole(config: &Config) -> Value {
    let mut value = to_value(config);
    if let Value::Object(map) = &mut value {
        if config.server == Default::default() {
            map.remove("server");
        }
        if config.dns == Default::default() {
            map.remove("dns");
        }
        if config.reload == Default::default() {
            map.remove("reload");
        }
    }
    value
}

/// A typed config value as a document value. The config model serializes to plain data
/// (its tests load what it prints), so this cannot fail in practice.
pub fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// `value` with `${`/`$$` escaped in every string, for a JSON file the loader reads back.
fn escape_strings(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(pylon_config::escape_env(s)),
        Value::Array(items) => Value::Array(items.iter().map(escape_strings).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), escape_strings(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `text` has a `${…}` the loader would substitute (`$${` is a literal).
/// Comments count too: cautious, and a comment is lost on write-back anyway.
pub fn uses_env(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            match chars.peek() {
                Some('$') => {
                    chars.next();
                }
                Some('{') => return true,
                _ => {}
            }
        }
    }
    false
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file, and
/// the new one is on disk before this returns: write a temporary file in the same directory
/// (hidden, so a config directory never loads it), fsync it, keep the previous version as
/// `NAME.bak`, rename over `path`, fsync the directory. A new file gets mode 0600 (it may
/// hold credentials); a replaced one keeps its permissions.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let previous = std::fs::metadata(path).ok();
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        if let Some(meta) = &previous {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if previous.is_some() {
        // A hard link keeps the old version under the new name without a copy, and
        // atomically; a filesystem without links gets a copy.
        let bak = dir.join(format!("{name}.bak"));
        match std::fs::remove_file(&bak) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        if std::fs::hard_link(path, &bak).is_err() {
            std::fs::copy(path, &bak)?;
        }
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pylon-admin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        dir
    }

    #[test]
    fn a_json_file_is_written_back_as_json_that_loads_the_same() {
        let dir = temp_dir("json");
        let file = dir.join("pylon.json");
        let text = r#"{"listeners": [{"name": "web", "address": "127.0.0.1:8080"}],
            "routes": [{"name": "r", "rule": "Path(`/`)", "respond": {"status": 200, "body": "$${X}"}}]}"#;
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
        let store = FileStore::new(&file, None);
        let stored = store.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.managed["routes"][0]["respond"]["body"], "${X}");
        let mut doc = stored.managed.clone();
        doc["routes"][0]["respond"]["body"] = "${Y} $".into();
        let candidate = store.candidate(&doc).unwrap_or_else(|e| panic!("{e}"));
        let body = candidate.config.routes[0]
            .respond
            .as_ref()
            .and_then(|r| r.body.clone());
        assert_eq!(body.as_deref(), Some("${Y} $"), "taken literally");
        store.persist(&candidate).unwrap_or_else(|e| panic!("{e}"));
        let written = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(serde_json::from_str::<Value>(&written).is_ok(), "{written}");
        let reloaded = pylon_config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reloaded.config, candidate.config);
        assert!(dir.join("pylon.json.bak").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_keeps_api_resources_in_api_yaml_and_names_the_others() {
        let dir = temp_dir("dir");
        let base = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams:\n  u: { servers: [\"127.0.0.1:1\"] }\nroutes:\n  - { name: hand, rule: \"Path(`/h`)\", upstream: u }\n";
        std::fs::write(dir.join("base.yaml"), base).unwrap_or_else(|e| panic!("{e}"));
        let bind: SocketAddr = "127.0.0.1:9999".parse().unwrap_or_else(|e| panic!("{e}"));
        let store = FileStore::new(&dir, Some(bind));
        assert_eq!(store.info().mode, "directory");
        let stored = store.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.managed, serde_json::json!({}));
        assert_eq!(stored.config.listeners[0].address, bind, "--bind applies");
        assert!(stored.elsewhere.routes["hand"]
            .to_string()
            .ends_with("base.yaml:5:13"));
        let doc =
            serde_json::json!({"routes": [{"name": "api", "rule": "Path(`/a`)", "upstream": "u"}]});
        let candidate = store.candidate(&doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(candidate.config.routes.len(), 2);
        store.persist(&candidate).unwrap_or_else(|e| panic!("{e}"));
        let stored = store.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stored.managed["routes"][0]["name"], "api");
        assert_eq!(stored.elsewhere.routes.len(), 1);
        assert_eq!(
            std::fs::read_to_string(dir.join("base.yaml")).unwrap_or_default(),
            base
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn uses_env_sees_references_not_escapes() {
        assert!(uses_env("a: ${X}"));
        assert!(uses_env("a: $$$${X} ${Y}"));
        assert!(!uses_env("a: $${X} ^/a$ $$"));
    }

    #[test]
    fn atomic_write_keeps_the_previous_version() {
        let dir = temp_dir("atomic");
        let file = dir.join("api.yaml");
        write_atomic(&file, b"one").unwrap_or_else(|e| panic!("{e}"));
        assert!(!dir.join("api.yaml.bak").exists());
        write_atomic(&file, b"two").unwrap_or_else(|e| panic!("{e}"));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&file), "two");
        assert_eq!(read(&dir.join("api.yaml.bak")), "one");
        write_atomic(&file, b"three").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read(&dir.join("api.yaml.bak")), "two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
