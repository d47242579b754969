//! Loading: read a file or a directory of files, parse each by its extension, substitute
//! `${VAR}`, type every listener, upstream and route separately (so one bad entry does not
//! hide the next), validate the whole, and return either the config or every error.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::admin::AdminConfig;
use crate::de::{did_you_mean, from_node, unknown_key_message};
use crate::dns::DnsConfig;
use crate::env::{substitute, Env};
use crate::error::{ConfigError, ConfigErrors};
use crate::middleware::Middleware;
use crate::model::{Config, ErrorPage, Listener, Route, ServerConfig};
use crate::node::{index_path, key_path, Entry, Kind, Node, Pos};
use crate::notifications::Notification;
use crate::reload::ReloadConfig;
use crate::store::{ResourceKind, StoreConfig, StoredResource};
use crate::upstream::{Upstream, LB_NAME, LB_RULE};
use crate::validate::validate;

/// Config files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The top-level keys of a config file.
const TOP_LEVEL_KEYS: [&str; 15] = [
    "metrics",
    "config",
    "server",
    "admin",
    "listeners",
    "upstreams",
    "routes",
    "upstream",
    "dns",
    "reload",
    "middlewares",
    "error_pages",
    "notifications",
    "tracing",
    "access_log",
];

/// The top-level keys that belong to one node, not to a fleet's shared store.
const NODE_LOCAL_KEYS: [&str; 9] = [
    "metrics",
    "server",
    "listeners",
    "dns",
    "reload",
    "config",
    "admin",
    "tracing",
    "$schema",
];

/// A source format, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` or `.yml`.
    Yaml,
    /// `.toml`.
    Toml,
    /// `.json`.
    Json,
}

impl Format {
    /// The format of `path` by its extension (case-insensitive), if it is a config file.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// A loaded, valid config and the files it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged, validated config.
    pub config: Config,
    /// The config files read, in merge order.
    pub files: Vec<PathBuf>,
    /// The `.env` files read (beside the config, then in the working directory); a watcher
    /// may want to reload when they change too.
    pub env_files: Vec<PathBuf>,
    /// Where each route, upstream and named middleware is defined.
    pub origins: Origins,
}

/// Where a named entry is defined: its file and the position of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where the routes, upstreams and named middlewares of a loaded config are defined, by
/// name (the admin API uses it to tell which file a resource belongs to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    pub routes: BTreeMap<String, Origin>,
    pub upstreams: BTreeMap<String, Origin>,
    pub middlewares: BTreeMap<String, Origin>,
}

/// One parsed source file, or one resource read from a config store.
#[derive(Clone)]
pub(crate) struct Doc {
    pub file: PathBuf,
    pub root: Node,
    /// Values taken literally, without `${VAR}` substitution: a resource from a store
    /// (wrapped as a config file would hold it).
    pub literal: bool,
    /// Shared resources, not a node-local file: a store's resource or a file being seeded
    /// into a store. A node-local file with `config.store: etcd` may not hold routes.
    pub shared: bool,
}

/// Config files read and parsed but not yet typed and validated: the node-local part of a
/// config whose routes, upstreams, middlewares and error pages come from a store, built
/// again with the store's resources on every change ([`Parsed::build_with`]).
#[derive(Clone)]
pub struct Parsed {
    docs: Vec<Doc>,
    env: Env,
    /// The config files read, in merge order.
    pub files: Vec<PathBuf>,
}

impl Parsed {
    /// The `.env` files read.
    pub fn env_files(&self) -> Vec<PathBuf> {
        self.env.files.clone()
    }

    /// Types and validates the files alone.
    pub fn build(&self) -> Result<Config, ConfigErrors> {
        build(self.docs.clone(), &self.env).map(|(config, _)| config)
    }

    /// Like [`Parsed::build`], with where each route, upstream and middleware is defined.
    pub fn build_with_origins(&self) -> Result<(Config, Origins), ConfigErrors> {
        build(self.docs.clone(), &self.env)
    }

    /// These files with `shared`'s routes, upstreams, middlewares and error pages (its
    /// node-local sections — `server`, `listeners`, `dns`, `reload`, `config` — left out):
    /// what a node would serve once `shared` is seeded into its store. Also returns the
    /// node-local keys that were left out.
    pub fn with_shared(&self, shared: &Parsed) -> (Parsed, Vec<String>) {
        let mut merged = self.clone();
        let mut left_out = Vec::new();
        for doc in &shared.docs {
            let mut doc = doc.clone();
            doc.shared = true;
            if let Kind::Map(entries) = &mut doc.root.kind {
                entries.retain(|e| {
                    let local = NODE_LOCAL_KEYS.contains(&e.key.as_str());
                    if local && !left_out.contains(&e.key) {
                        left_out.push(e.key.clone());
                    }
                    !local
                });
            }
            merged.docs.push(doc);
        }
        merged.env.merge(&shared.env);
        (merged, left_out)
    }

    /// Types and validates the files together with resources from a store, as if each
    /// resource were written in a file of its own named after its origin
    /// (`etcd:/pylon/routes/api:3:10: rule: …`). Resource names come from their keys.
    pub fn build_with(&self, resources: &[StoredResource]) -> Result<Config, ConfigErrors> {
        let mut docs = self.docs.clone();
        let mut errors = Vec::new();
        for resource in resources {
            let (doc, error) = stored_doc(resource);
            docs.push(doc);
            errors.extend(error);
        }
        match build(docs, &self.env) {
            Ok((config, _)) if errors.is_empty() => return Ok(config),
            Ok(_) => {}
            Err(e) => errors.extend(e.0),
        }
        // Inside a resource's own document the path starts at the resource itself.
        for error in &mut errors {
            if let Some(r) = resources
                .iter()
                .find(|r| error.file.as_os_str() == r.origin.as_str())
            {
                error.path = strip_wrapper(&error.path, r);
            }
        }
        Err(ConfigErrors::sorted(errors))
    }
}

/// The key path a resource has inside its synthetic document.
fn wrapper_path(resource: &StoredResource) -> String {
    match resource.kind {
        ResourceKind::Route => index_path("routes", 0),
        ResourceKind::ErrorPages => "error_pages".to_string(),
        kind => key_path(kind.segment(), &resource.name),
    }
}

fn strip_wrapper(path: &str, resource: &StoredResource) -> String {
    let wrapper = wrapper_path(resource);
    match path.strip_prefix(&wrapper) {
        Some(rest) => rest.trim_start_matches('.').to_string(),
        None => path.to_string(),
    }
}

/// Parses one stored resource and wraps it as a config file would hold it: a route as the
/// one item of `routes:` (named after its key when it has no `name`), an upstream or a
/// middleware under its name, error pages as `error_pages:`. A resource that does not parse
/// (or names itself differently from its key) still stands for its name, with a value that
/// fails silently, so that references to it do not add "unknown upstream" errors.
fn stored_doc(resource: &StoredResource) -> (Doc, Option<ConfigError>) {
    let origin = PathBuf::from(&resource.origin);
    let text = resource
        .text
        .strip_prefix('\u{feff}')
        .unwrap_or(&resource.text);
    let format = if text.trim_start().starts_with('{') {
        Format::Json
    } else {
        Format::Yaml
    };
    let start = Pos::START;
    let poisoned = || Node::new(Kind::Poisoned, start);
    let (mut node, mut error) = match parse(text, format, &origin) {
        Ok(node) => (node, None),
        Err(mut e) => (poisoned(), Some(e.remove(0))),
    };
    let entry = |key: &str, value: Node| Entry {
        key: key.to_string(),
        key_pos: start,
        value,
    };
    let wrapped = match resource.kind {
        ResourceKind::Route => {
            if let Kind::Map(entries) = &mut node.kind {
                match entries.iter().find(|e| e.key == "name") {
                    None => entries.insert(
                        0,
                        entry("name", Node::str(resource.name.clone(), node.pos, None)),
                    ),
                    Some(e) if e.value.as_str() != Some(resource.name.as_str()) => {
                        error = Some(ConfigError::new(
                            &origin,
                            e.value.pos,
                            "name",
                            format!(
                                "a route's name is its key's last segment, `{}`: leave `name` out or make it the same",
                                resource.name
                            ),
                        ));
                        node = poisoned();
                    }
                    Some(_) => {}
                }
            }
            Node::new(Kind::Seq(vec![node]), start)
        }
        ResourceKind::Upstream | ResourceKind::Middleware => {
            Node::new(Kind::Map(vec![entry(&resource.name, node)]), start)
        }
        ResourceKind::ErrorPages => node,
    };
    let root = Kind::Map(vec![entry(resource.kind.segment(), wrapped)]);
    let doc = Doc {
        file: origin,
        root: Node::new(root, start),
        literal: true,
        shared: true,
    };
    (doc, error)
}

/// Loads a config file, or every `*.yaml`, `*.yml`, `*.toml` and `*.json` file of a
/// directory (non-recursive, by file name; hidden files skipped), merged into one config.
///
/// `.env` beside the file (or in the directory), then `.env` in the working directory,
/// provide `${VAR}` values not set in the process environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_inner(path, None)
}

/// Loads like [`load`], but as if `file` (the config file itself, or a file of the config
/// directory, which need not exist yet) held `text`: what the config would be once `text`
/// is written there. Nothing is written.
pub fn load_replacing(path: &Path, file: &Path, text: &str) -> Result<Loaded, ConfigErrors> {
    load_inner(path, Some((file, text)))
}

fn load_inner(path: &Path, replacing: Option<(&Path, &str)>) -> Result<Loaded, ConfigErrors> {
    let parsed = parse_files_inner(path, replacing)?;
    let (config, origins) = build(parsed.docs, &parsed.env)?;
    Ok(Loaded {
        config,
        files: parsed.files,
        env_files: parsed.env.files,
        origins,
    })
}

/// Reads and parses the config files as [`load`] does, without typing or validating them.
pub fn parse_files(path: &Path) -> Result<Parsed, ConfigErrors> {
    parse_files_inner(path, None)
}

fn parse_files_inner(
    path: &Path,
    replacing: Option<(&Path, &str)>,
) -> Result<Parsed, ConfigErrors> {
    let (files, env_dir) = if path.is_dir() {
        let mut files = list_dir_allowing_empty(path, replacing.is_some())?;
        if let Some((file, _)) = replacing {
            if !files.iter().any(|f| f == file) {
                files.push(file.to_path_buf());
                files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
            }
        }
        (files, path.to_path_buf())
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        (vec![path.to_path_buf()], dir.to_path_buf())
    };

    let mut env = Env::default();
    let mut errors = Vec::new();
    let mut dotenvs = vec![env_dir.join(".env")];
    if let Ok(cwd) = std::env::current_dir() {
        dotenvs.push(cwd.join(".env"));
    }
    let mut seen = HashSet::new();
    for dotenv in dotenvs {
        let canonical = dotenv.canonicalize().unwrap_or_else(|_| dotenv.clone());
        if seen.insert(canonical) {
            if let Err(e) = env.load_dotenv(&dotenv) {
                errors.push(e);
            }
        }
    }

    let mut docs = Vec::new();
    for file in &files {
        let text = match replacing {
            Some((replaced, text)) if replaced == file => {
                Ok(text.strip_prefix('\u{feff}').unwrap_or(text).to_string())
            }
            _ => read(file),
        };
        match text.and_then(|text| parse(&text, format_of(file)?, file)) {
            Ok(root) => docs.push(Doc {
                file: file.clone(),
                root,
                literal: false,
                shared: false,
            }),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors::sorted(errors));
    }
    Ok(Parsed { docs, env, files })
}

/// Loads a config from text, as if read from `origin` (used in messages only). Reads no
/// `.env` file: `${VAR}` values come from the process environment.
pub fn load_str(text: &str, format: Format, origin: &Path) -> Result<Config, ConfigErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let root = parse(text, format, origin).map_err(ConfigErrors::sorted)?;
    build(
        vec![Doc {
            file: origin.to_path_buf(),
            root,
            literal: false,
            shared: false,
        }],
        &Env::default(),
    )
    .map(|(config, _)| config)
}

fn format_of(file: &Path) -> Result<Format, Vec<ConfigError>> {
    Format::from_path(file).ok_or_else(|| {
        vec![ConfigError::file(
            file,
            "unknown config format: use a .yaml, .yml, .toml or .json file",
        )]
    })
}

/// The config files of `dir`; an empty directory is an error unless `empty_ok` (a file is
/// about to be added).
fn list_dir_allowing_empty(dir: &Path, empty_ok: bool) -> Result<Vec<PathBuf>, ConfigErrors> {
    let fail = |m: String| ConfigErrors(vec![ConfigError::file(dir, m)]);
    let entries =
        std::fs::read_dir(dir).map_err(|e| fail(format!("cannot read directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| fail(format!("cannot read directory: {e}")))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && path.is_file() && Format::from_path(&path).is_some() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if files.is_empty() && !empty_ok {
        return Err(fail(
            "no .yaml, .yml, .toml or .json file in this directory".into(),
        ));
    }
    Ok(files)
}

fn read(file: &Path) -> Result<String, Vec<ConfigError>> {
    use std::io::Read;
    let fail = |m: String| vec![ConfigError::file(file, m)];
    let handle = std::fs::File::open(file).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail(format!(
            "larger than {} MiB",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| fail(format!("not valid UTF-8: {e}")))?;
    if text.starts_with('\u{feff}') {
        text.drain(..3);
    }
    Ok(text)
}

fn parse(text: &str, format: Format, file: &Path) -> Result<Node, Vec<ConfigError>> {
    let to_error = |(pos, message): (Pos, String)| ConfigError::new(file, pos, "", message);
    match format {
        Format::Yaml => crate::yaml::parse(text).map_err(|e| vec![to_error(e)]),
        Format::Json => crate::json::parse(text).map_err(|e| vec![to_error(e)]),
        Format::Toml => {
            crate::toml_doc::parse(text).map_err(|e| e.into_iter().map(to_error).collect())
        }
    }
}

/// A typed entry and where it was written.
pub(crate) struct Piece<'a, T> {
    pub value: T,
    pub doc: &'a Doc,
    pub node: &'a Node,
    /// Key path inside its file: `routes[1]`, `upstreams.app`.
    pub path: String,
    /// Where its name is written (the `name:` value, or the upstream's key).
    pub name_pos: Pos,
}

impl<T> Piece<'_, T> {
    /// `file:line:col` of the name, for "already defined at …" messages.
    pub fn place(&self) -> String {
        ConfigError::place(&self.doc.file, self.name_pos)
    }
}

/// Everything typed from all documents, plus what is known about entries that failed to type
/// (their names), so one error does not cascade into "unknown upstream" errors elsewhere.
#[derive(Default)]
pub(crate) struct Pieces<'a> {
    pub server: Option<(ServerConfig, &'a Doc, Pos)>,
    pub store: Option<Piece<'a, StoreConfig>>,
    pub dns: Option<Piece<'a, DnsConfig>>,
    pub reload: Option<Piece<'a, ReloadConfig>>,
    pub admin: Option<Piece<'a, AdminConfig>>,
    pub tracing: Option<Piece<'a, crate::TracingConfig>>,
    pub metrics: Option<Piece<'a, crate::MetricsConfig>>,
    /// The top-level `upstream` of load-balancer mode; its `name_pos` is the key's
    /// position.
    pub lb: Option<Piece<'a, Upstream>>,
    /// The first `routes` key seen, whatever its value.
    pub routes_key: Option<(&'a Doc, Pos)>,
    pub listeners: Vec<Piece<'a, Listener>>,
    pub upstreams: Vec<Piece<'a, (String, Upstream)>>,
    pub routes: Vec<Piece<'a, Route>>,
    pub middlewares: Vec<Piece<'a, (String, Middleware)>>,
    pub error_pages: Option<Piece<'a, BTreeMap<String, ErrorPage>>>,
    pub notifications: Option<Piece<'a, Vec<Notification>>>,
    pub access_log: Option<Piece<'a, crate::AccessLogConfig>>,
    pub listener_names: BTreeSet<&'a str>,
    pub upstream_names: BTreeSet<&'a str>,
    /// Names under top-level `middlewares:`, typed or not.
    pub middleware_names: BTreeSet<&'a str>,
    /// Listener entries seen, typed or not.
    pub listener_count: usize,
    pub docs: Vec<&'a Doc>,
}

/// Substitutes, types, validates and merges parsed documents.
fn build(mut docs: Vec<Doc>, env: &Env) -> Result<(Config, Origins), ConfigErrors> {
    let mut errors = Vec::new();
    for doc in docs.iter_mut().filter(|d| !d.literal) {
        substitute(&mut doc.root, "", env, &doc.file, &mut errors);
    }
    let mut pieces = Pieces::default();
    for doc in &docs {
        collect(doc, &mut pieces, &mut errors);
    }
    validate(&pieces, &mut errors);
    if !errors.is_empty() {
        return Err(ConfigErrors::sorted(errors));
    }
    let origins = origins(&pieces);
    let mut upstreams: BTreeMap<String, Upstream> =
        pieces.upstreams.into_iter().map(|p| p.value).collect();
    let mut routes: Vec<Route> = pieces.routes.into_iter().map(|p| p.value).collect();
    // Load-balancer mode: the runtime only ever sees an upstream and a route.
    if let Some(lb) = pieces.lb {
        upstreams.insert(LB_NAME.to_string(), lb.value);
        routes.push(Route::to_upstream(LB_NAME, LB_RULE, LB_NAME));
    }
    let config = Config {
        server: pieces.server.map(|(s, _, _)| s).unwrap_or_default(),
        listeners: pieces.listeners.into_iter().map(|p| p.value).collect(),
        upstreams,
        routes,
        upstream: None,
        dns: pieces.dns.map(|p| p.value).unwrap_or_default(),
        reload: pieces.reload.map(|p| p.value).unwrap_or_default(),
        admin: pieces.admin.map(|p| p.value),
        middlewares: pieces.middlewares.into_iter().map(|p| p.value).collect(),
        error_pages: pieces.error_pages.map(|p| p.value).unwrap_or_default(),
        config: pieces.store.map(|p| p.value),
        notifications: pieces.notifications.map(|p| p.value).unwrap_or_default(),
        tracing: pieces.tracing.map(|p| p.value),
        access_log: pieces.access_log.map(|p| p.value),
        metrics: pieces.metrics.map(|p| p.value).unwrap_or_default(),
    };
    Ok((config, origins))
}

/// Where each named entry of valid pieces is written (names are unique by then).
fn origins(pieces: &Pieces<'_>) -> Origins {
    fn origin<T>(piece: &Piece<'_, T>) -> Origin {
        Origin {
            file: piece.doc.file.clone(),
            line: piece.name_pos.line,
            column: piece.name_pos.column,
        }
    }
    let mut origins = Origins {
        routes: pieces
            .routes
            .iter()
            .map(|p| (p.value.name.clone(), origin(p)))
            .collect(),
        upstreams: pieces
            .upstreams
            .iter()
            .map(|p| (p.value.0.clone(), origin(p)))
            .collect(),
        middlewares: pieces
            .middlewares
            .iter()
            .map(|p| (p.value.0.clone(), origin(p)))
            .collect(),
    };
    // Load-balancer mode's upstream and route are written as the `upstream` key.
    if let Some(lb) = &pieces.lb {
        origins.upstreams.insert(LB_NAME.to_string(), origin(lb));
        origins.routes.insert(LB_NAME.to_string(), origin(lb));
    }
    origins
}

/// Types one document's top level into `pieces`.
fn collect<'a>(doc: &'a Doc, pieces: &mut Pieces<'a>, errors: &mut Vec<ConfigError>) {
    pieces.docs.push(doc);
    let entries = match &doc.root.kind {
        Kind::Map(entries) => entries,
        Kind::Null | Kind::Poisoned => return,
        _ => {
            // Already an error; do not add "at least one listener is required".
            pieces.listener_count += 1;
            errors.push(ConfigError::new(
                &doc.file,
                doc.root.pos,
                "",
                "expected a map with `listeners`, `upstreams`, `routes` and `server` at the top level",
            ));
            return;
        }
    };
    for entry in entries {
        match entry.key.as_str() {
            "server" => collect_server(doc, entry, pieces, errors),
            "dns" => {
                let first = pieces.dns.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.dns = Some(piece);
                }
            }
            "config" => {
                let first = pieces.store.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.store = Some(piece);
                }
            }
            "reload" => {
                let first = pieces.reload.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.reload = Some(piece);
                }
            }
            "admin" => {
                let first = pieces.admin.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.admin = Some(piece);
                }
            }
            "tracing" => {
                let first = pieces.tracing.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.tracing = Some(piece);
                }
            }
            "metrics" => {
                let first = pieces.metrics.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.metrics = Some(piece);
                }
            }
            "upstream" => {
                let first = pieces.lb.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.lb = Some(piece);
                }
            }
            "error_pages" => {
                let first = pieces.error_pages.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.error_pages = Some(piece);
                }
            }
            "notifications" => {
                let first = pieces.notifications.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.notifications = Some(piece);
                }
            }
            "access_log" => {
                let first = pieces.access_log.as_ref().map(|p| (p.doc, p.name_pos));
                if let Some(piece) = once(first, doc, entry, errors) {
                    pieces.access_log = Some(piece);
                }
            }
            "middlewares" => match &entry.value.kind {
                Kind::Map(middlewares) => {
                    for mw in middlewares {
                        pieces.middleware_names.insert(&mw.key);
                        let path = key_path("middlewares", &mw.key);
                        if let Some(value) = typed::<Middleware>(doc, &mw.value, &path, errors) {
                            pieces.middlewares.push(Piece {
                                value: (mw.key.clone(), value),
                                doc,
                                node: &mw.value,
                                path,
                                name_pos: mw.key_pos,
                            });
                        }
                    }
                }
                Kind::Null | Kind::Poisoned => {}
                _ => errors.push(type_error(
                    doc,
                    entry,
                    "a map of middleware names to middlewares",
                )),
            },
            // For editors (`"$schema": "./pylon.schema.json"` in JSON); Pylon ignores it.
            "$schema" => {}
            "listeners" => {
                if !matches!(entry.value.kind, Kind::Seq(_) | Kind::Null) {
                    // Already an error; do not add "at least one listener is required".
                    pieces.listener_count += 1;
                }
                for (i, node) in items(doc, entry, "a list of listeners", errors) {
                    pieces.listener_count += 1;
                    if let Some(name) = node.get("name").and_then(Node::as_str) {
                        pieces.listener_names.insert(name);
                    }
                    let path = index_path("listeners", i);
                    if let Some(value) = typed::<Listener>(doc, node, &path, errors) {
                        let name_pos = node.get("name").map_or(node.pos, |n| n.pos);
                        pieces.listeners.push(Piece {
                            value,
                            doc,
                            node,
                            path,
                            name_pos,
                        });
                    }
                }
            }
            "upstreams" => match &entry.value.kind {
                Kind::Map(upstreams) => {
                    for up in upstreams {
                        pieces.upstream_names.insert(&up.key);
                        let path = key_path("upstreams", &up.key);
                        if let Some(value) = typed::<Upstream>(doc, &up.value, &path, errors) {
                            let value = (up.key.clone(), value);
                            let node = &up.value;
                            pieces.upstreams.push(Piece {
                                value,
                                doc,
                                node,
                                path,
                                name_pos: up.key_pos,
                            });
                        }
                    }
                }
                Kind::Null | Kind::Poisoned => {}
                _ => errors.push(type_error(
                    doc,
                    entry,
                    "a map of upstream names to upstreams",
                )),
            },
            "routes" => {
                pieces.routes_key.get_or_insert((doc, entry.key_pos));
                for (i, node) in items(doc, entry, "a list of routes", errors) {
                    let path = index_path("routes", i);
                    if let Some(value) = typed::<Route>(doc, node, &path, errors) {
                        let name_pos = node.get("name").map_or(node.pos, |n| n.pos);
                        pieces.routes.push(Piece {
                            value,
                            doc,
                            node,
                            path,
                            name_pos,
                        });
                    }
                }
            }
            other => {
                let hint = did_you_mean(other, TOP_LEVEL_KEYS);
                let message = unknown_key_message(other, "", hint);
                errors.push(ConfigError::new(
                    &doc.file,
                    entry.key_pos,
                    key_path("", other),
                    message,
                ));
            }
        }
    }
}

fn collect_server<'a>(
    doc: &'a Doc,
    entry: &'a Entry,
    pieces: &mut Pieces<'a>,
    errors: &mut Vec<ConfigError>,
) {
    if let Some((_, first, pos)) = &pieces.server {
        let message = format!(
            "`server` is already set at {}; only one file may set it",
            ConfigError::place(&first.file, *pos)
        );
        errors.push(ConfigError::new(
            &doc.file,
            entry.key_pos,
            "server",
            message,
        ));
        return;
    }
    let server = match entry.value.kind {
        Kind::Null => Some(ServerConfig::default()),
        _ => typed::<ServerConfig>(doc, &entry.value, "server", errors),
    };
    if let Some(server) = server {
        pieces.server = Some((server, doc, entry.key_pos));
    }
}

/// Types a top-level key that only one file may set (`dns`, `upstream`); `first` is where
/// it was set before. A null value stands for an empty map.
fn once<'a, T: DeserializeOwned>(
    first: Option<(&Doc, Pos)>,
    doc: &'a Doc,
    entry: &'a Entry,
    errors: &mut Vec<ConfigError>,
) -> Option<Piece<'a, T>> {
    if let Some((first, pos)) = first {
        let message = format!(
            "`{}` is already set at {}; only one file may set it",
            entry.key,
            ConfigError::place(&first.file, pos)
        );
        let path = entry.key.as_str();
        errors.push(ConfigError::new(&doc.file, entry.key_pos, path, message));
        return None;
    }
    let empty = Node::new(Kind::Map(Vec::new()), entry.value.pos);
    let node = match entry.value.kind {
        Kind::Null => &empty,
        _ => &entry.value,
    };
    Some(Piece {
        value: typed::<T>(doc, node, &entry.key, errors)?,
        doc,
        node: &entry.value,
        path: entry.key.clone(),
        name_pos: entry.key_pos,
    })
}

/// The items of a top-level list (`listeners:`, `routes:`), or an error if it is not one.
fn items<'a>(
    doc: &Doc,
    entry: &'a Entry,
    what: &str,
    errors: &mut Vec<ConfigError>,
) -> impl Iterator<Item = (usize, &'a Node)> {
    let items: &[Node] = match &entry.value.kind {
        Kind::Seq(items) => items,
        Kind::Null | Kind::Poisoned => &[],
        _ => {
            errors.push(type_error(doc, entry, what));
            &[]
        }
    };
    items.iter().enumerate()
}

fn type_error(doc: &Doc, entry: &Entry, what: &str) -> ConfigError {
    let found = match entry.value.kind {
        Kind::Seq(_) => "a list",
        Kind::Map(_) => "a map",
        _ => "a single value",
    };
    ConfigError::new(
        &doc.file,
        entry.value.pos,
        key_path("", &entry.key),
        format!("expected {what}, found {found}"),
    )
}

/// Types one node, reporting its error.
fn typed<T: DeserializeOwned>(
    doc: &Doc,
    node: &Node,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match from_node::<T>(node, path.to_string()) {
        Ok(value) => Some(value),
        Err((pos, path, Some(message))) => {
            errors.push(ConfigError::new(&doc.file, pos, path, message));
            None
        }
        Err((_, _, None)) => None,
    }
}
