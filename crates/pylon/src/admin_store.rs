//! The admin API's store on a fleet node (`config: { store: etcd, … }`): API writes go to
//! etcd, in one transaction that compares the prefix's generation, so every node gets them
//! through its watch and two writers on different nodes cannot overwrite each other.
//!
//! The managed document is every route, upstream and middleware under the prefix (the
//! node's own files hold none: `store: etcd` keeps them out). [`ConfigStore::load`] reads
//! the prefix and remembers the etcd generation it was at; [`ConfigStore::candidate`] turns
//! the new document into key changes (only the resources that differ) and previews them on
//! top of that generation with the node's files — the same build and validation a watching
//! node does; [`ConfigStore::persist`] writes them with that generation as the expected
//! one. A writer that came in between makes either step fail with
//! [`StoreError::Conflict`] (412), and nothing is written.
//!
//! The trait is blocking (the API calls it from `spawn_blocking`), the etcd client async:
//! the client is made on first use on the admin service's runtime (its connection lives on
//! the runtime that made it) and each call blocks on that runtime's handle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use pylon_admin::{document, Candidate, ConfigStore, StoreError, StoreInfo, Stored};
use pylon_config::{Config, Origins, Parsed, ResourceKind, StoreConfig};
use pylon_store::{Change, EtcdStore, PreviewError, WriteError};
use serde_json::Value;

/// What a load saw, and what the candidate made of it: the next steps of the same write.
#[derive(Default)]
struct Pending {
    /// The etcd generation the load read (what the write compares against).
    generation: u64,
    /// The managed document as loaded, to find what the new one changes.
    loaded: Value,
    /// The last candidate's text and its key changes.
    candidate: Option<(String, Vec<Change>)>,
}

pub struct EtcdConfigStore {
    /// The node's config path, for the status endpoint.
    path: PathBuf,
    local: Parsed,
    settings: StoreConfig,
    bind: Option<SocketAddr>,
    client: Mutex<Option<(tokio::runtime::Handle, EtcdStore)>>,
    /// The API writes one at a time (its own lock), so one pending write is enough.
    pending: Mutex<Pending>,
}

impl EtcdConfigStore {
    pub fn new(
        path: PathBuf,
        local: Parsed,
        settings: StoreConfig,
        bind: Option<SocketAddr>,
    ) -> EtcdConfigStore {
        EtcdConfigStore {
            path,
            local,
            settings,
            bind,
            client: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Runs `work` with the client, on the runtime of the thread calling (the admin's).
    fn with_client<T>(
        &self,
        work: impl AsyncFnOnce(&EtcdStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Io(format!("no runtime for the etcd client: {e}")))?;
        let (handle, store) = {
            let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
            match client.as_ref() {
                Some(made) => made.clone(),
                None => {
                    let store = handle
                        .block_on(EtcdStore::connect(&self.settings))
                        .map_err(|e| StoreError::Io(e.to_string()))?;
                    client.insert((handle, store)).clone()
                }
            }
        };
        // The lock is not held across the request: a slow etcd must not block
        // `info`/`writable`.
        handle.block_on(work(&store))
    }

    fn with_bind(&self, mut config: Config) -> Config {
        if let (Some(bind), Some(first)) = (self.bind, config.listeners.first_mut()) {
            first.address = bind;
        }
        config
    }

    /// Where the managed document is: the prefix, as config errors name it.
    fn managed_origin(&self) -> PathBuf {
        PathBuf::from(pylon_store::origin(self.settings.prefix.as_str()))
    }

    fn invalid(&self, errors: pylon_config::ConfigErrors) -> StoreError {
        StoreError::Invalid {
            errors,
            managed: self.managed_origin(),
        }
    }
}

impl ConfigStore for EtcdConfigStore {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            mode: "etcd",
            path: self.path.clone(),
            api_file: self.managed_origin(),
        }
    }

    fn writable(&self) -> Result<(), String> {
        Ok(())
    }

    fn load(&self) -> Result<Stored, StoreError> {
        let contents = self.with_client(async |store| {
            store
                .read()
                .await
                .map_err(|e| StoreError::Io(e.to_string()))
        })?;
        let config = contents
            .assemble(&self.local)
            .map_err(|e| self.invalid(e))?;
        let managed = managed(&config);
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Pending {
            generation: contents.generation,
            loaded: managed.clone(),
            candidate: None,
        };
        Ok(Stored {
            config: self.with_bind(config),
            managed,
            elsewhere: Origins::default(),
        })
    }

    fn candidate(&self, managed: &Value) -> Result<Candidate, StoreError> {
        let (generation, loaded) = {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            (pending.generation, pending.loaded.clone())
        };
        let changes = changes(&loaded, managed);
        let text = serde_json::to_string(managed).map_err(|e| StoreError::Io(e.to_string()))?;
        let config = self.with_client(async |store| {
            store
                .preview(&self.local, &changes, generation)
                .await
                .map_err(|e| match e {
                    PreviewError::Conflict { .. } => StoreError::Conflict(e.to_string()),
                    PreviewError::Invalid(errors) => self.invalid(errors),
                    PreviewError::Store(e) => StoreError::Io(e.to_string()),
                })
        })?;
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .candidate = Some((text.clone(), changes));
        Ok(Candidate {
            config: self.with_bind(config),
            text,
        })
    }

    fn persist(&self, candidate: &Candidate) -> Result<(), StoreError> {
        let (generation, changes) = {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match &pending.candidate {
                Some((text, changes)) if *text == candidate.text => {
                    (pending.generation, changes.clone())
                }
                _ => {
                    return Err(StoreError::Io(
                        "the change to write is not the one last checked".into(),
                    ))
                }
            }
        };
        if changes.is_empty() {
            return Ok(());
        }
        let written = self.with_client(async |store| {
            store
                .write(&changes, generation)
                .await
                .map_err(|e| match e {
                    WriteError::Conflict { .. } => StoreError::Conflict(e.to_string()),
                    WriteError::Store(e) => StoreError::Io(e.to_string()),
                })
        })?;
        // A second persist of the same candidate (the API's "unchanged" path) compares
        // against what this write made.
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.generation = written;
        pending.loaded = serde_json::from_str(&candidate.text).unwrap_or(Value::Null);
        pending.candidate = Some((candidate.text.clone(), Vec::new()));
        Ok(())
    }
}

/// The shared resources of `config` as a managed document, shaped like a config file.
fn managed(config: &Config) -> Value {
    document(config, |_, _| true)
}

/// The resources of a managed document by kind and name.
fn resources(doc: &Value) -> Vec<(ResourceKind, String, Value)> {
    let mut found = Vec::new();
    for route in doc
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = route.get("name").and_then(Value::as_str).unwrap_or("");
        found.push((ResourceKind::Route, name.to_string(), route.clone()));
    }
    for (section, kind) in [
        ("upstreams", ResourceKind::Upstream),
        ("middlewares", ResourceKind::Middleware),
    ] {
        for (name, value) in doc
            .get(section)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            found.push((kind, name.clone(), value.clone()));
        }
    }
    found
}

/// The key changes that turn `loaded` into `wanted`: a put for each resource that is new or
/// differs (so an unchanged one keeps its key's revision), a delete for each one gone.
fn changes(loaded: &Value, wanted: &Value) -> Vec<Change> {
    let before = resources(loaded);
    let after = resources(wanted);
    let mut changes = Vec::new();
    for (kind, name, value) in &after {
        let same = before
            .iter()
            .any(|(k, n, v)| k == kind && n == name && v == value);
        if !same {
            changes.push(Change::Put {
                kind: *kind,
                name: name.clone(),
                value: serde_json::to_string_pretty(value).unwrap_or_default(),
            });
        }
    }
    for (kind, name, _) in &before {
        if !after.iter().any(|(k, n, _)| k == kind && n == name) {
            changes.push(Change::delete(*kind, name));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_differs_is_written() {
        let loaded = json!({
            "upstreams": {"u": {"servers": ["127.0.0.1:1"]}, "old": {"servers": ["127.0.0.1:2"]}},
            "routes": [{"name": "a", "rule": "Path(`/a`)", "upstream": "u"}]
        });
        let wanted = json!({
            "upstreams": {"u": {"servers": ["127.0.0.1:1"]}},
            "routes": [
                {"name": "a", "rule": "Path(`/a`)", "upstream": "u"},
                {"name": "b", "rule": "Path(`/b`)", "upstream": "u"}
            ]
        });
        let changes = changes(&loaded, &wanted);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(
            matches!(&changes[0], Change::Put { kind: ResourceKind::Route, name, .. } if name == "b")
        );
        assert_eq!(changes[1], Change::delete(ResourceKind::Upstream, "old"));
    }
}
