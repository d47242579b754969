//! The write path. Every change — one resource or the whole config — goes the same way:
//!
//! 1. one write at a time (a lock), and `If-Match` checked against the serving generation;
//! 2. the stored config is loaded, the managed document changed;
//! 3. the store loads the config *as it would be* with that document (the same loader and
//!    validation as a file: every error at once);
//! 4. [`Applier::apply_with`] compiles it and, before the swap, the store persists it —
//!    so the 2xx goes out only once the change is durable, and a failed write changes
//!    nothing. A dry run stops after compiling, with the diff.
//!
//! [`Applier::apply_with`]: pylon_core::apply::Applier::apply_with

use std::cell::{Cell, RefCell};

use pylon_config::{Config, ConfigError};
use pylon_core::apply::{Applied, ApplyError};
use serde_json::Value;

use crate::error::ApiError;
use crate::resource::Kind;
use crate::store::{whole, StoreError};
use crate::Admin;

/// The `If-Match` precondition of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any generation.
    Any,
    /// The generations named (`"3"`, `W/"3"`).
    Tags(Vec<String>),
}

impl IfMatch {
    pub fn parse(header: &str) -> IfMatch {
        if header.trim() == "*" {
            return IfMatch::Any;
        }
        IfMatch::Tags(
            header
                .split(',')
                .map(|t| {
                    let t = t.trim();
                    let t = t.strip_prefix("W/").unwrap_or(t);
                    t.trim_matches('"').to_string()
                })
                .collect(),
        )
    }

    pub fn matches(&self, generation: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| *t == generation.to_string()),
        }
    }
}

/// How a write is made.
#[derive(Debug, Clone, Default)]
pub struct Write {
    pub if_match: Option<IfMatch>,
    pub dry_run: bool,
}

/// One resource change.
#[derive(Debug, Clone)]
pub enum Change {
    /// POST: a new resource; its name is in the body.
    Create(Value),
    /// PUT: create or replace the named resource.
    Replace(String, Value),
    /// PATCH: a JSON merge patch (RFC 7396) on the named resource.
    Patch(String, Value),
    Delete(String),
}

/// What a write did.
#[derive(Debug)]
pub struct Outcome {
    pub applied: Applied,
    pub dry_run: bool,
    /// The resource did not exist before (PUT that created it).
    pub created: bool,
    /// The resource's name.
    pub name: Option<String>,
}

/// Applies one resource change. Blocking.
pub fn resource(
    admin: &Admin,
    kind: Kind,
    change: Change,
    write: &Write,
) -> Result<Outcome, ApiError> {
    let _one_at_a_time = admin.writes.lock().unwrap_or_else(|p| p.into_inner());
    check_if_match(admin, write)?;
    let stored = admin.store.load().map_err(stored_error)?;
    let mut doc = stored.managed;
    let noun = kind.noun();
    let name = match &change {
        Change::Create(body) => body_name(body, None)?,
        Change::Replace(name, _) | Change::Patch(name, _) | Change::Delete(name) => name.clone(),
    };
    if let Some(origin) = kind.origin(&stored.elsewhere, &name) {
        return Err(ApiError::conflict(format!(
            "{noun} `{name}` is defined in {origin}, not through the API: change it there"
        )));
    }
    let existing = kind.find(&doc, &name);
    let mut created = false;
    match change {
        Change::Create(body) => {
            if existing.is_some() {
                return Err(ApiError::conflict(format!(
                    "{noun} `{name}` already exists: PUT /api/v1/{}/{name} replaces it",
                    kind.section()
                )));
            }
            created = true;
            kind.put(&mut doc, &name, object(body)?);
        }
        Change::Replace(_, body) => {
            body_name(&body, Some(&name))?;
            created = existing.is_none();
            kind.put(&mut doc, &name, with_name(object(body)?, &name));
        }
        Change::Patch(_, patch) => {
            let Some(mut current) = existing else {
                return Err(not_found(kind, &name));
            };
            merge_patch(&mut current, &patch);
            body_name(&current, Some(&name))?;
            kind.put(&mut doc, &name, current);
        }
        Change::Delete(_) => {
            if !kind.remove(&mut doc, &name) {
                return Err(not_found(kind, &name));
            }
        }
    }
    let mut outcome = commit(admin, &doc, write, Some((kind, &name)))?;
    outcome.created = created;
    outcome.name = Some(name);
    Ok(outcome)
}

/// Replaces the managed part of the config with `body`, a config document. Blocking.
///
/// In directory mode the API manages only routes, upstreams and middlewares not defined in
/// the other files: anything else in `body` must be what is running (so a document read
/// with GET can be sent back), else the request is refused and names the file.
pub fn config(admin: &Admin, body: Value, write: &Write) -> Result<Outcome, ApiError> {
    let _one_at_a_time = admin.writes.lock().unwrap_or_else(|p| p.into_inner());
    check_if_match(admin, write)?;
    let Value::Object(mut body) = body else {
        return Err(ApiError::invalid(vec![
            "expected a map with `routes`, `upstreams`, … at the top level".into(),
        ]));
    };
    if body.contains_key("admin") {
        return Err(ApiError::invalid(vec![
            "admin: the admin section is not changed through the API (edit the config file and restart)".into(),
        ]));
    }
    body.remove("$schema");
    let stored = admin.store.load().map_err(stored_error)?;
    let running = admin.applier.snapshot().load_full();
    let doc = if admin.store.info().mode == "file" {
        let mut doc = body;
        // What GET shows of the node-local sections is the running value (with `--bind`);
        // sent back unchanged, the file keeps its own.
        for key in ["server", "listeners", "dns", "metrics"] {
            if same_as_running(key, doc.get(key), &running.config) {
                match stored.managed.get(key) {
                    Some(v) => doc.insert(key.into(), v.clone()),
                    None => doc.remove(key),
                };
            }
        }
        if let Some(admin_section) = stored.managed.get("admin") {
            doc.insert("admin".into(), admin_section.clone());
        }
        Value::Object(doc)
    } else {
        let mut doc = serde_json::Map::new();
        let mut problems = Vec::new();
        for (key, value) in body {
            match key.as_str() {
                "routes" | "upstreams" | "middlewares" => {
                    doc.insert(key, value);
                }
                _ if same_as_running(&key, Some(&value), &running.config) => {}
                _ => problems.push(format!(
                    "{key}: differs from the running config; the API changes only routes, upstreams and middlewares — `{key}` is defined in the files of {}",
                    stored_path(admin)
                )),
            }
        }
        let mut doc = Value::Object(doc);
        for kind in [Kind::Route, Kind::Upstream, Kind::Middleware] {
            keep_only_managed(
                kind,
                &mut doc,
                &stored.elsewhere,
                &running.config,
                &mut problems,
            );
        }
        if !problems.is_empty() {
            return Err(ApiError::conflict(
                "the document changes what is defined outside the API's file",
            )
            .with_errors(problems));
        }
        doc
    };
    commit(admin, &doc, write, None)
}

/// Drops from `doc` the resources defined in other files when they are as running; any
/// other difference about them is a problem.
fn keep_only_managed(
    kind: Kind,
    doc: &mut Value,
    elsewhere: &pylon_config::Origins,
    running: &Config,
    problems: &mut Vec<String>,
) {
    let noun = kind.noun();
    let names: Vec<(String, pylon_config::Origin)> = match kind {
        Kind::Route => elsewhere.routes.clone(),
        Kind::Upstream => elsewhere.upstreams.clone(),
        Kind::Middleware => elsewhere.middlewares.clone(),
    }
    .into_iter()
    .collect();
    for (name, origin) in names {
        match kind.find(doc, &name) {
            None => problems.push(format!(
                "{}: {noun} `{name}` is missing; it is defined in {origin} and cannot be removed through the API",
                kind.section()
            )),
            Some(sent) => {
                if Some(canonical(kind, &sent)) != kind.get(running, &name) {
                    problems.push(format!(
                        "{}: {noun} `{name}` differs from the running one; it is defined in {origin}: change it there",
                        kind.section()
                    ));
                }
                kind.remove(doc, &name);
            }
        }
    }
}

/// A resource as the running config would show it, if it types.
fn canonical(kind: Kind, value: &Value) -> Value {
    let mut bare = value.clone();
    if kind != Kind::Route {
        if let Value::Object(map) = &mut bare {
            map.remove("name");
        }
    }
    let name = value.get("name").and_then(Value::as_str).unwrap_or("");
    let typed = match kind {
        Kind::Route => {
            serde_json::from_value::<pylon_config::Route>(bare).map(|r| crate::store::to_value(&r))
        }
        Kind::Upstream => serde_json::from_value::<pylon_config::Upstream>(bare)
            .map(|u| crate::resource::named(name, crate::store::to_value(&u))),
        Kind::Middleware => serde_json::from_value::<pylon_config::Middleware>(bare)
            .map(|m| crate::resource::named(name, crate::store::to_value(&m))),
    };
    typed.unwrap_or(Value::Null)
}

/// Whether a top-level section as sent equals the running one (absent counts as equal).
fn same_as_running(key: &str, value: Option<&Value>, running: &Config) -> bool {
    let Some(value) = value else {
        return true;
    };
    let mut one = serde_json::Map::new();
    one.insert(key.to_string(), value.clone());
    let Ok(sent) = serde_json::from_value::<Config>(Value::Object(one)) else {
        return false;
    };
    match key {
        "server" => sent.server == running.server,
        "listeners" => sent.listeners == running.listeners,
        "dns" => sent.dns == running.dns,
        "metrics" => sent.metrics == running.metrics,
        "reload" => sent.reload == running.reload,
        "error_pages" => sent.error_pages == running.error_pages,
        "access_log" => sent.access_log == running.access_log,
        _ => false,
    }
}

fn stored_path(admin: &Admin) -> String {
    admin.store.info().path.display().to_string()
}

/// Validates `doc` as the new managed document, then applies and persists it (or only
/// compiles it, for a dry run).
fn commit(
    admin: &Admin,
    doc: &Value,
    write: &Write,
    focus: Option<(Kind, &str)>,
) -> Result<Outcome, ApiError> {
    let candidate = admin
        .store
        .candidate(doc)
        .map_err(|e| candidate_error(e, doc, focus))?;
    if write.dry_run {
        let applied = admin
            .applier
            .dry_run(candidate.config)
            .map_err(apply_error)?;
        return Ok(Outcome {
            applied,
            dry_run: true,
            created: false,
            name: None,
        });
    }
    let stale = Cell::new(None);
    // The apply hook only carries a message; a store conflict (another node wrote to etcd
    // first) is kept here so that it reaches the client as 412, not 500.
    let conflict = RefCell::new(None);
    let result = admin.applier.apply_with(candidate.config.clone(), |_| {
        // Checked again under the applier's lock: a reload may have come in between.
        let serving = admin.applier.snapshot().load().generation;
        if write.if_match.as_ref().is_some_and(|m| !m.matches(serving)) {
            stale.set(Some(serving));
            return Err("stale".into());
        }
        match admin.store.persist(&candidate) {
            Err(StoreError::Conflict(why)) => {
                let message = why.clone();
                *conflict.borrow_mut() = Some(why);
                Err(message)
            }
            other => other.map_err(|e| e.to_string()),
        }
    });
    let applied = match result {
        Ok(applied) => applied,
        Err(ApplyError::BeforeSwap(e)) => {
            if let Some(why) = conflict.into_inner() {
                return Err(changed_elsewhere(why));
            }
            return Err(match stale.get() {
                Some(serving) => ApiError::stale(serving),
                None => ApiError::internal(format!(
                    "the change was not saved, so it was not applied: {e}"
                )),
            });
        }
        Err(e) => return Err(apply_error(e)),
    };
    if applied.unchanged {
        // Same config as serving, but the stored document may differ (a file edited by
        // hand and not reloaded yet): what was acknowledged must be what is stored.
        admin.store.persist(&candidate).map_err(|e| match e {
            StoreError::Conflict(why) => changed_elsewhere(why),
            e => ApiError::internal(format!("the change was not saved: {e}")),
        })?;
    }
    Ok(Outcome {
        applied,
        dry_run: false,
        created: false,
        name: None,
    })
}

fn check_if_match(admin: &Admin, write: &Write) -> Result<(), ApiError> {
    let serving = admin.applier.snapshot().load().generation;
    match &write.if_match {
        Some(m) if !m.matches(serving) => Err(ApiError::stale(serving)),
        _ => Ok(()),
    }
}

/// The stored config could not be read for a change.
fn stored_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid { errors, .. } => ApiError::conflict(
            "the config as stored does not load, so it cannot be changed through the API; fix it first (the running config is unchanged)",
        )
        .with_errors(errors.iter().map(ToString::to_string).collect()),
        StoreError::ReadOnly(why) => ApiError::conflict(why),
        StoreError::Conflict(why) => changed_elsewhere(why),
        StoreError::Io(e) => ApiError::internal(e),
    }
}

/// The store changed under the write (another node of a fleet wrote first): 412, as a
/// stale `If-Match`, since the remedy is the same — read again and retry.
fn changed_elsewhere(why: String) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PRECONDITION_FAILED,
        format!("{why}; read it again and retry"),
    )
}

/// The changed config does not load: each error, relative to the resource sent when it is
/// about it (`upstream: unknown upstream …`), else with its place.
fn candidate_error(e: StoreError, doc: &Value, focus: Option<(Kind, &str)>) -> ApiError {
    let StoreError::Invalid { errors, managed } = e else {
        return stored_error(e);
    };
    let prefix = focus.and_then(|(kind, name)| kind.path_in(doc, name));
    let describe = |e: &ConfigError| -> String {
        if e.file != managed {
            return e.to_string();
        }
        // The managed document was not written: its positions mean nothing to the caller.
        let path = match &prefix {
            Some(prefix) if e.path == *prefix => String::new(),
            Some(prefix) => e
                .path
                .strip_prefix(&format!("{prefix}."))
                .or_else(|| {
                    e.path
                        .strip_prefix(prefix.as_str())
                        .filter(|p| p.starts_with('['))
                })
                .unwrap_or(&e.path)
                .to_string(),
            None => e.path.clone(),
        };
        if path.is_empty() {
            e.message.clone()
        } else {
            format!("{path}: {}", e.message)
        }
    };
    ApiError::invalid(errors.iter().map(describe).collect())
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Compile(e) => ApiError::invalid(vec![e.to_string()]),
        ApplyError::BeforeSwap(e) => ApiError::internal(e),
    }
}

fn not_found(kind: Kind, name: &str) -> ApiError {
    ApiError::not_found(format!("no {} `{name}`", kind.noun()))
}

fn object(body: Value) -> Result<Value, ApiError> {
    if body.is_object() {
        Ok(body)
    } else {
        Err(ApiError::invalid(vec![
            "expected a map (a JSON object)".into()
        ]))
    }
}

/// The `name` of a body; with `expected`, it may be left out but must not differ.
fn body_name(body: &Value, expected: Option<&str>) -> Result<String, ApiError> {
    match (body.get("name"), expected) {
        (None, Some(expected)) => Ok(expected.to_string()),
        (Some(Value::String(name)), Some(expected)) if name != expected => {
            Err(ApiError::invalid(vec![format!(
                "name: `{name}` differs from the name in the URL (`{expected}`); to rename, create the new one and delete the old"
            )]))
        }
        (Some(Value::String(name)), _) if !name.is_empty() => Ok(name.clone()),
        _ => Err(ApiError::invalid(vec!["name: a non-empty string is required".into()])),
    }
}

fn with_name(mut body: Value, name: &str) -> Value {
    if let Value::Object(map) = &mut body {
        map.insert("name".into(), Value::String(name.to_string()));
    }
    body
}

/// RFC 7396: `null` removes a key, maps merge, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The document `GET /api/v1/config` shows: the running config without the `admin`
/// section (node-local, and it holds credentials).
pub fn shown_config(config: &Config) -> Value {
    let mut value = whole(config);
    if let Value::Object(map) = &mut value {
        map.remove("admin");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn if_match_forms() {
        assert!(IfMatch::parse("*").matches(7));
        assert!(IfMatch::parse("\"7\"").matches(7));
        assert!(IfMatch::parse("W/\"7\"").matches(7));
        assert!(IfMatch::parse("\"6\", \"7\"").matches(7));
        assert!(!IfMatch::parse("\"6\"").matches(7));
        assert!(!IfMatch::parse("garbage").matches(7));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1]});
        merge_patch(
            &mut target,
            &json!({"a": null, "b": {"c": 5}, "e": [2], "f": "new"}),
        );
        assert_eq!(target, json!({"b": {"c": 5, "d": 3}, "e": [2], "f": "new"}));
    }
}
