//! Semantic checks on the typed pieces of a config, all collected: names unique across
//! files, references resolve, rules parse, values in range. Each error points at the value
//! it is about.

use std::collections::{hash_map, BTreeSet, HashMap};
use std::hash::Hash;
use std::net::SocketAddr;

use crate::de::did_you_mean;
use crate::error::ConfigError;
use crate::loader::{Piece, Pieces};
use crate::model::{DEFAULT_WEIGHT, MAX_STATUS, MIN_STATUS};
use crate::node::{index_path, key_path, Kind, Node, Pos};

/// Runs every check, appending to `errors`.
pub(crate) fn validate(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    listeners(pieces, errors);
    upstreams(pieces, errors);
    routes(pieces, errors);
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

fn upstreams(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let mut names: HashMap<&str, &Piece<'_, _>> = HashMap::new();
    for u in &pieces.upstreams {
        let (name, upstream) = &u.value;
        if let Some(first) = first_seen(&mut names, name, u) {
            let message = format!("upstream `{name}` is already defined at {}", first.place());
            errors.push(err(u, u.name_pos, u.path.clone(), message));
        }
        let servers_path = key_path(&u.path, "servers");
        if upstream.servers.is_empty() {
            let message = "an upstream needs at least one server".to_string();
            errors.push(err(
                u,
                pos_of(u.node, "servers"),
                servers_path.clone(),
                message,
            ));
        }
        for (i, server) in upstream.servers.iter().enumerate() {
            if server.weight < DEFAULT_WEIGHT {
                let node = u.node.get("servers").and_then(|s| s.item(i));
                let pos = node.map_or(u.node.pos, |n| pos_of(n, "weight"));
                let path = key_path(&index_path(&servers_path, i), "weight");
                errors.push(err(u, pos, path, "weight must be at least 1".into()));
            }
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
                rule_error_pos(r.node, e.column),
                key_path(&r.path, "rule"),
                format!("invalid rule: {}", e.message),
            ));
        }
        match (&route.upstream, &route.respond) {
            (None, None) => {
                let message =
                    "a route needs a target: `upstream: NAME` or `respond: { status: … }`"
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
            if !pieces.upstream_names.contains(upstream.as_str()) {
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
            headers(r, node, &path, errors);
        }
    }
}

/// Header names must be HTTP tokens and values visible ASCII (or tab/space).
fn headers(r: &Piece<'_, crate::Route>, respond: &Node, path: &str, errors: &mut Vec<ConfigError>) {
    let Some(Kind::Map(entries)) = respond.get("headers").map(|h| &h.kind) else {
        return;
    };
    let path = key_path(path, "headers");
    for entry in entries {
        let entry_path = key_path(&path, &entry.key);
        if entry.key.is_empty() || !entry.key.bytes().all(is_tchar) {
            let message = format!(
                "invalid header name {:?}: use letters, digits and !#$%&'*+-.^_`|~",
                entry.key
            );
            errors.push(err(r, entry.key_pos, entry_path.clone(), message));
        }
        if let Some(value) = entry.value.as_str() {
            if !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                let message = format!("invalid header value {value:?}: use printable ASCII only");
                errors.push(err(r, entry.value.pos, entry_path, message));
            }
        }
    }
}

/// Records `item` under `key` unless taken; returns the item that took it first.
fn first_seen<'p, K: Hash + Eq, T>(
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

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `unknown upstream `ap`, did you mean `app`?` (or the list of names when short).
fn unknown(what: &str, name: &str, known: &BTreeSet<&str>) -> String {
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

/// Where a rule parse error at 1-based character `column` is: exact when the rule scalar is
/// written verbatim on one line, else the start of the scalar.
fn rule_error_pos(route: &Node, column: usize) -> Pos {
    match route.get("rule") {
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
        None => route.pos,
    }
}
