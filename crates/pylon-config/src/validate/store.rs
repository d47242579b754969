//! The `config:` section: etcd settings only with `store: etcd`, usable endpoints and
//! prefix, and no shared resources in a node-local file whose store is etcd.

use std::time::Duration;

use super::Spot;
use crate::error::ConfigError;
use crate::loader::Pieces;
use crate::store::StoreKind;

/// The keys that only mean something with `store: etcd`.
const ETCD_KEYS: [&str; 4] = ["endpoints", "prefix", "timeout", "start_timeout"];

const SEED: &str =
    "routes, upstreams, middlewares and error pages live in etcd (`pylon store seed` fills an empty prefix)";

/// Top-level keys a node-local file may not hold when the store is etcd, and why.
const SHARED_KEYS: [(&str, &str); 6] = [
    ("routes", SEED),
    ("upstreams", SEED),
    ("upstream", SEED),
    ("middlewares", SEED),
    ("error_pages", SEED),
    (
        "reload",
        "changes come from etcd's watch, and this file is read at start only (SIGHUP re-reads etcd)",
    ),
];

pub(super) fn store(pieces: &Pieces<'_>, errors: &mut Vec<ConfigError>) {
    let Some(p) = &pieces.store else {
        return;
    };
    let spot = Spot::new(&p.doc.file, p.node, "config");
    let store = &p.value;
    if store.store == StoreKind::File {
        for key in ETCD_KEYS.into_iter().filter(|k| spot.has(k)) {
            errors.push(spot.key_error(key, format!("`{key}` is only used with `store: etcd`")));
        }
        return;
    }
    if store.endpoints.is_empty() {
        errors.push(spot.error(
            "`store: etcd` needs `endpoints`, e.g. `endpoints: [\"http://127.0.0.1:2379\"]`",
        ));
    }
    let endpoints = spot.key("endpoints");
    for (i, endpoint) in store.endpoints.iter().enumerate() {
        if let Err(message) = check_endpoint(endpoint) {
            errors.push(endpoints.item(i).error(message));
        }
    }
    let prefix = &store.prefix;
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
        errors.push(spot.key("prefix").error(format!(
            "expected a key prefix like `/pylon`: starting with `/`, not ending with one, found {prefix:?}"
        )));
    } else if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errors.push(spot.key("prefix").error(format!(
            "a key prefix has no spaces or control characters, found {prefix:?}"
        )));
    }
    if store.timeout < Duration::from_millis(10) {
        errors.push(spot.key("timeout").error(format!(
            "timeout must be at least 10ms, found {:?}",
            store.timeout
        )));
    }
    for doc in pieces.docs.iter().filter(|d| !d.shared) {
        for (key, why) in SHARED_KEYS {
            if let Some(entry) = doc.root.entry(key) {
                errors.push(ConfigError::new(
                    &doc.file,
                    entry.key_pos,
                    key,
                    format!(
                        "`{key}` cannot be set in a node's file with `config.store: etcd`: {why}"
                    ),
                ));
            }
        }
    }
}

/// An endpoint is `http://HOST:PORT`.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.starts_with("https://") {
        return Err(format!(
            "TLS to etcd is not supported: use an `http://` endpoint, found {endpoint:?}"
        ));
    }
    let usable = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.strip_suffix('/').unwrap_or(rest))
        .and_then(|rest| rest.rsplit_once(':'))
        .is_some_and(|(host, port)| {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
    if usable {
        Ok(())
    } else {
        Err(format!(
            "expected an etcd client URL `http://HOST:PORT`, found {endpoint:?}"
        ))
    }
}
