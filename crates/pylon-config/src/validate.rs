//! Semantic checks on the typed pieces of a config, all collected: names unique across
//! files, references resolve, rules parse, values in range. Each error points at the value
//! it is about (or at the key, when the key's presence is the problem).

mod store;
mod upstream;

use std::collections::{hash_map, BTreeSet, HashMap};
use std::fmt::Display;
use std::hash::Hash;
use std::net::SocketAddr;
use std::path::Path;

use crate::de::did_you_mean;
use crate::error::ConfigError;
use crate::loader::{Piece, Pieces};
use crate::middleware::{Middleware, MiddlewareRef};
use crate::model::{MAX_STATUS, MIN_STATUS};
use crate::node::{index_path, key_path, Kind, Node, Pos};

/// Runs every check, appending to `errors`.
pub(crate) fn validate(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    listeners(pieces, errors);
    upstream::upstreams(pieces, errors);
    upstream::load_balancer_mode(pieces, errors);
    upstream::dns(pieces, errors);
    middlewares(pieces, errors);
    error_pages(pieces, errors);
    routes(pieces, errors);
    store::store(pieces, errors);
    access_log(pieces, errors);
    crate::metrics::validate(pieces, errors);
    if let Some(admin) = &pieces.admin {
        crate::admin::validate(admin, &pieces.upstream_names, errors);
    }
    if let Some(notifications) = &pieces.notifications {
        crate::notifications::validate(notifications, errors);
    }
    if let Some(tracing) = &pieces.tracing {
        crate::tracing::validate(tracing, errors);
    }
}

/// The top-level and per-route `access_log` paths.
fn access_log(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    if let Some(p) = &pieces.access_log {
        let spot = Spot::new(&p.doc.file, p.node, "access_log");
        crate::access_log::validate(&p.value, &spot, errors);
    }
    for r in &pieces.routes {
        if let Some(crate::RouteAccessLog::On(config)) = &r.value.access_log {
            let spot = Spot::new(&r.doc.file, r.node, r.path.clone()).key("access_log");
            crate::access_log::validate(config, &spot, errors);
        }
    }
}

fn middlewares(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let mut names: HashMap<&str, &Piece<'_, _>> = HashMap::new();
    for m in &pieces.middlewares {
        let (name, middleware) = &m.value;
        if let Some(first) = first_seen(&mut names, name.as_str(), m) {
            let message = format!(
                "middleware `{name}` is already defined at {}",
                first.place()
            );
            errors.push(err(m, m.name_pos, m.path.clone(), message));
        }
        let spot = Spot::new(&m.doc.file, m.node, m.path.clone()).key(middleware.type_name());
        middleware.validate(&spot, errors);
    }
}

/// `error_pages` keys are statuses (`"404"`) or classes (`"5xx"`); a page has one body.
fn error_pages(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let Some(p) = &pieces.error_pages else {
        return;
    };
    let spot = Spot::new(&p.doc.file, p.node, p.path.clone());
    for (key, page) in &p.value {
        let entry = spot.key(key);
        if crate::middleware::parse_status_key(key).is_none() {
            errors.push(spot.key_error(
                key,
                format!("expected a status from 400 to 599 (\"404\") or a class (\"4xx\", \"5xx\"), found {key:?}"),
            ));
        }
        if page.body.is_some() && page.body_file.is_some() {
            errors.push(entry.key_error("body_file", "write `body` or `body_file`, not both"));
        }
        if let Some(file) = &page.body_file {
            crate::middleware::check_readable_file(&entry.key("body_file"), file, errors);
        }
        if let Some(ct) = &page.content_type {
            crate::middleware::check_header_value(&entry.key("content_type"), ct, errors);
        }
    }
}

/// A value being checked: where it is written (its node, when the source has one) and its
/// key path. A default value has no node; errors about it point at the nearest ancestor.
#[derive(Clone)]
pub(crate) struct Spot<'a> {
    pub file: &'a Path,
    pub node: Option<&'a Node>,
    /// The node's position, or the nearest ancestor's.
    pub pos: Pos,
    pub path: String,
}

impl<'a> Spot<'a> {
    pub fn new(file: &'a Path, node: &'a Node, path: impl Into<String>) -> Self {
        Spot {
            file,
            node: Some(node),
            pos: node.pos,
            path: path.into(),
        }
    }

    /// The value under `key`.
    pub fn key(&self, key: &str) -> Spot<'a> {
        let node = self.node.and_then(|n| n.get(key));
        Spot {
            file: self.file,
            node,
            pos: node.map_or(self.pos, |n| n.pos),
            path: key_path(&self.path, key),
        }
    }

    /// Item `index` of this list.
    pub fn item(&self, index: usize) -> Spot<'a> {
        let node = self.node.and_then(|n| n.item(index));
        Spot {
            file: self.file,
            node,
            pos: node.map_or(self.pos, |n| n.pos),
            path: index_path(&self.path, index),
        }
    }

    /// Whether `key` is written in this map.
    pub fn has(&self, key: &str) -> bool {
        self.node.and_then(|n| n.entry(key)).is_some()
    }

    /// An error about this value, at the value.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.file, self.pos, self.path.clone(), message)
    }

    /// An error about the presence of `key` in this map, at the key.
    pub fn key_error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let pos = self
            .node
            .and_then(|n| n.entry(key))
            .map_or(self.pos, |e| e.key_pos);
        ConfigError::new(self.file, pos, key_path(&self.path, key), message)
    }

    /// `key` is at least `min`.
    pub fn at_least<T: PartialOrd + Display>(
        &self,
        key: &str,
        value: T,
        min: T,
        errors: &mut Vec<ConfigError>,
    ) {
        if value < min {
            errors.push(
                self.key(key)
                    .error(format!("{key} must be at least {min}, found {value}")),
            );
        }
    }

    /// `key` is from `min` to `max`.
    pub fn within<T: PartialOrd + Display>(
        &self,
        key: &str,
        value: T,
        (min, max): (T, T),
        errors: &mut Vec<ConfigError>,
    ) {
        if value < min || value > max {
            errors.push(
                self.key(key)
                    .error(format!("{key} must be from {min} to {max}, found {value}")),
            );
        }
    }
}

fn err<T>(piece: &Piece<'_, T>, pos: Pos, path: String, message: String) -> ConfigError {
    ConfigError::new(&piece.doc.file, pos, path, message)
}

/// The position of `key` inside `node`, or of `node` itself.
fn pos_of(node: &Node, key: &str) -> Pos {
    node.get(key).map_or(node.pos, |n| n.pos)
}

fn listeners(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    if pieces.listener_count == 0 {
        // Point at an empty `listeners:` if there is one, else at the top of the first file.
        let spot = pieces
            .docs
            .iter()
            .find_map(|d| d.root.entry("listeners").map(|e| (*d, e.key_pos)))
            .or_else(|| pieces.docs.first().map(|d| (*d, Pos::START)));
        if let Some((doc, pos)) = spot {
            errors.push(ConfigError::new(
                &doc.file,
                pos,
                "listeners",
                "at least one listener is required, e.g. `listeners: [{ name: web, address: \"0.0.0.0:8080\" }]`",
            ));
        }
    }
    let mut names: HashMap<&str, &Piece<'_, _>> = HashMap::new();
    let mut addresses: HashMap<SocketAddr, &Piece<'_, _>> = HashMap::new();
    for l in &pieces.listeners {
        if let Some(first) = first_seen(&mut names, &l.value.name, l) {
            let message = format!(
                "listener `{}` is already defined at {}",
                l.value.name,
                first.place()
            );
            errors.push(err(l, l.name_pos, key_path(&l.path, "name"), message));
        }
        if let Some(first) = first_seen(&mut addresses, l.value.address, l) {
            let message = format!(
                "address {} is already used by listener `{}` at {}",
                l.value.address,
                first.value.name,
                ConfigError::place(&first.doc.file, pos_of(first.node, "address"))
            );
            errors.push(err(
                l,
                pos_of(l.node, "address"),
                key_path(&l.path, "address"),
                message,
            ));
        }
    }
}

fn routes(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let mut names: HashMap<&str, &Piece<'_, _>> = HashMap::new();
    for r in &pieces.routes {
        let route = &r.value;
        if let Some(first) = first_seen(&mut names, &route.name, r) {
            let message = format!(
                "route `{}` is already defined at {}",
                route.name,
                first.place()
            );
            errors.push(err(r, r.name_pos, key_path(&r.path, "name"), message));
        }
        if let Err(e) = pylon_rules::Rule::parse(&route.rule) {
            errors.push(err(
                r,
                rule_error_pos(r.node, "rule", e.column),
                key_path(&r.path, "rule"),
                format!("invalid rule: {}", e.message),
            ));
        }
        let answers_all = route_middlewares(pieces, r, errors);
        match (&route.upstream, &route.respond) {
            (None, None) if !answers_all => {
                let message =
                    "a route needs a target: `upstream: NAME`, `respond: { status: … }`, or a middleware that answers every request (`static`, `redirect`, `respond` without `when`)"
                        .to_string();
                errors.push(err(r, r.node.pos, r.path.clone(), message));
            }
            (Some(_), Some(_)) => {
                let message = "a route takes `upstream` or `respond`, not both".to_string();
                let pos = r.node.entry("respond").map_or(r.node.pos, |e| e.key_pos);
                errors.push(err(r, pos, key_path(&r.path, "respond"), message));
            }
            _ => {}
        }
        if let Some(upstream) = &route.upstream {
            // With `routes` beside a top-level `upstream` (already an error), a route to
            // `default` is not a second one.
            let lb = pieces.lb.is_some() && upstream == crate::upstream::LB_NAME;
            if !pieces.upstream_names.contains(upstream.as_str()) && !lb {
                let message = unknown("upstream", upstream, &pieces.upstream_names);
                errors.push(err(
                    r,
                    pos_of(r.node, "upstream"),
                    key_path(&r.path, "upstream"),
                    message,
                ));
            }
        }
        for (i, listener) in route.listeners.iter().flatten().enumerate() {
            if !pieces.listener_names.contains(listener.as_str()) {
                let list = r.node.get("listeners");
                let pos = list
                    .and_then(|l| l.item(i))
                    .or(list)
                    .map_or(r.node.pos, |n| n.pos);
                let path = index_path(&key_path(&r.path, "listeners"), i);
                errors.push(err(
                    r,
                    pos,
                    path,
                    unknown("listener", listener, &pieces.listener_names),
                ));
            }
        }
        if let Some(respond) = &route.respond {
            let node = r.node.get("respond").unwrap_or(r.node);
            let path = key_path(&r.path, "respond");
            if !(MIN_STATUS..=MAX_STATUS).contains(&respond.status) {
                let message = format!(
                    "status must be from {MIN_STATUS} to {MAX_STATUS}, found {}",
                    respond.status
                );
                errors.push(err(
                    r,
                    pos_of(node, "status"),
                    key_path(&path, "status"),
                    message,
                ));
            }
            headers(&Spot::new(&r.doc.file, node, path).key("headers"), errors);
        }
        upstream_only_options(r, errors);
    }
}

/// Checks a route's middleware list: names resolve, inline instances are valid. Returns
/// whether some middleware answers every request (so the route needs no target).
fn route_middlewares(
    pieces: &Pieces<'_>,
    r: &Piece<'_, crate::Route>,
    errors: &mut Vec<ConfigError>,
) -> bool {
    let list = Spot::new(&r.doc.file, r.node, r.path.clone()).key("middlewares");
    let mut answers_all = false;
    for (i, item) in r.value.middlewares.iter().enumerate() {
        let spot = list.item(i);
        let middleware = match item {
            MiddlewareRef::Named(name) => {
                let defined = pieces.middlewares.iter().find(|m| &m.value.0 == name);
                // Defined but untyped: its own error is already reported.
                if defined.is_none() && !pieces.middleware_names.contains(name.as_str()) {
                    let message = unknown("middleware", name, &pieces.middleware_names);
                    errors.push(spot.error(message));
                }
                defined.map(|m| &m.value.1)
            }
            MiddlewareRef::Inline(m) => {
                m.validate(&spot.key(m.type_name()), errors);
                Some(&**m)
            }
        };
        let Some(middleware) = middleware else {
            continue;
        };
        answers_all |= middleware.can_answer_all();
        if let Middleware::Static(s) = middleware {
            if s.try_upstream && r.value.upstream.is_none() {
                let message =
                    "`static` with `try_upstream: true` needs the route to have an `upstream`";
                errors.push(spot.error(message));
            }
        }
    }
    answers_all
}

/// The keys of a route that only apply when it forwards to an upstream.
const UPSTREAM_ROUTE_KEYS: [&str; 6] = [
    "timeout",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "idle_timeout",
    "retries",
];

/// Checks a route's retries; timeouts and retries make no sense on a route that answers
/// itself.
fn upstream_only_options(r: &Piece<'_, crate::Route>, errors: &mut Vec<ConfigError>) {
    let route = &r.value;
    let spot = Spot::new(&r.doc.file, r.node, r.path.clone());
    if let Some(retries) = &route.retries {
        upstream::retries(&spot.key("retries"), retries, errors);
    }
    if route.upstream.is_none() {
        for key in UPSTREAM_ROUTE_KEYS.into_iter().filter(|k| spot.has(k)) {
            let message = format!("`{key}` only applies to routes with an `upstream`");
            errors.push(spot.key_error(key, message));
        }
    }
}

/// Header names must be HTTP tokens and values visible ASCII (or tab/space).
pub(crate) fn headers(map: &Spot<'_>, errors: &mut Vec<ConfigError>) {
    let Some(Kind::Map(entries)) = map.node.map(|h| &h.kind) else {
        return;
    };
    for entry in entries {
        let entry_path = key_path(&map.path, &entry.key);
        if let Some(message) = crate::middleware::header_name_problem(&entry.key) {
            errors.push(ConfigError::new(
                map.file,
                entry.key_pos,
                entry_path.clone(),
                message,
            ));
        }
        if let Some(value) = entry.value.as_str() {
            if !is_header_value(value) {
                let message = format!("invalid header value {value:?}: use printable ASCII only");
                errors.push(ConfigError::new(
                    map.file,
                    entry.value.pos,
                    entry_path,
                    message,
                ));
            }
        }
    }
}

/// Whether `value` may be sent as a header value: visible ASCII, space and tab.
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// Records `item` under `key` unless taken; returns the item that took it first.
pub(crate) fn first_seen<'p, K: Hash + Eq, T>(
    map: &mut HashMap<K, &'p T>,
    key: K,
    item: &'p T,
) -> Option<&'p T> {
    match map.entry(key) {
        hash_map::Entry::Occupied(o) => Some(*o.get()),
        hash_map::Entry::Vacant(v) => {
            v.insert(item);
            None
        }
    }
}

/// Whether `b` may appear in an HTTP token (header name, method).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `unknown upstream `ap`, did you mean `app`?` (or the list of names when short).
pub(crate) fn unknown(what: &str, name: &str, known: &BTreeSet<&str>) -> String {
    let mut m = format!("unknown {what} `{name}`");
    if let Some(hint) = did_you_mean(name, known.iter().copied()) {
        m.push_str(&format!(", did you mean `{hint}`?"));
    } else if known.is_empty() {
        m.push_str(&format!(" (no {what}s are defined)"));
    } else if known.len() <= 5 {
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        m.push_str(&format!(" (defined: {})", list.join(", ")));
    }
    m
}

/// Where a rule parse error at 1-based character `column` is: exact when the rule scalar
/// (under `key` of `map`: a route's `rule`, a `respond` middleware's `when`) is written
/// verbatim on one line, else the start of the scalar.
pub(crate) fn rule_error_pos(map: &Node, key: &str, column: usize) -> Pos {
    match map.get(key) {
        Some(Node {
            kind: Kind::Str(s),
            pos,
        }) => match s.content {
            Some(c) => Pos {
                line: c.line,
                column: c.column + column.saturating_sub(1),
            },
            None => *pos,
        },
        Some(node) => node.pos,
        None => map.pos,
    }
}
