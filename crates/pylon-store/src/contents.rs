//! What a store holds at one revision, changes to it, and the config a node builds from it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pylon_config::{
    Config, ConfigError, ConfigErrors, ErrorPage, Middleware, Parsed, ResourceKind, Route,
    StoredResource, Upstream,
};

use crate::layout::Layout;

/// The resources under a prefix, read in one request (so at one revision).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// The etcd revision they were read at; a watch continues after it.
    pub revision: i64,
    /// The value of `PREFIX/generation` (0 when never written): what the next write
    /// compares against.
    pub generation: u64,
    /// The resources, by key.
    pub resources: Vec<StoredResource>,
    /// Keys under the prefix that are not part of the layout, values that are not UTF-8, a
    /// generation that is not a number: each fails the config built from these contents.
    pub problems: Vec<ConfigError>,
}

impl Contents {
    /// No resource (a prefix nobody seeded yet).
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The number of resources of `kind`.
    pub fn count(&self, kind: ResourceKind) -> usize {
        self.resources.iter().filter(|r| r.kind == kind).count()
    }

    /// The node's config: its local files with these resources, validated as one config;
    /// errors name the key they are about (`etcd:/pylon/routes/api:2:11: rule: …`).
    pub fn assemble(&self, local: &Parsed) -> Result<Config, ConfigErrors> {
        if !self.problems.is_empty() {
            return Err(ConfigErrors(self.problems.clone()));
        }
        local.build_with(&self.resources)
    }

    /// These contents with `changes` made (for checking a write before making it).
    pub fn with_changes(&self, layout: &Layout, changes: &[Change]) -> Contents {
        let mut resources: BTreeMap<(ResourceKind, String), StoredResource> = self
            .resources
            .iter()
            .map(|r| ((r.kind, r.name.clone()), r.clone()))
            .collect();
        for change in changes {
            match change {
                Change::Put { kind, name, value } => {
                    let resource = stored(layout, *kind, name, value.clone());
                    resources.insert((*kind, resource.name.clone()), resource);
                }
                Change::Delete { kind, name } => {
                    let name = if kind.is_named() { name.as_str() } else { "" };
                    resources.remove(&(*kind, name.to_string()));
                }
            }
        }
        Contents {
            resources: resources.into_values().collect(),
            ..self.clone()
        }
    }
}

/// A resource at its key.
pub(crate) fn stored(
    layout: &Layout,
    kind: ResourceKind,
    name: &str,
    text: String,
) -> StoredResource {
    let name = if kind.is_named() { name } else { "" };
    StoredResource {
        origin: origin(&layout.key(kind, name)),
        kind,
        name: name.to_string(),
        text,
    }
}

/// How a key is named in messages: `etcd:/pylon/routes/api`.
pub fn origin(key: &str) -> String {
    format!("etcd:{key}")
}

/// A problem with a key as a whole.
pub(crate) fn key_problem(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: PathBuf::from(origin(key)),
        line: 0,
        column: 0,
        path: String::new(),
        message: message.into(),
    }
}

/// One change to a store's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates or replaces a resource. `value` is its text: JSON (or YAML), the shape the
    /// resource has in a config file. `name` is ignored for `error_pages`.
    Put {
        kind: ResourceKind,
        name: String,
        value: String,
    },
    /// Removes a resource (nothing happens if it does not exist).
    Delete { kind: ResourceKind, name: String },
}

impl Change {
    /// Puts a route, under its name.
    pub fn route(route: &Route) -> Result<Change, serde_json::Error> {
        Ok(Change::Put {
            kind: ResourceKind::Route,
            name: route.name.clone(),
            value: serde_json::to_string_pretty(route)?,
        })
    }

    pub fn upstream(name: &str, upstream: &Upstream) -> Result<Change, serde_json::Error> {
        Ok(Change::Put {
            kind: ResourceKind::Upstream,
            name: name.to_string(),
            value: serde_json::to_string_pretty(upstream)?,
        })
    }

    pub fn middleware(name: &str, middleware: &Middleware) -> Result<Change, serde_json::Error> {
        Ok(Change::Put {
            kind: ResourceKind::Middleware,
            name: name.to_string(),
            value: serde_json::to_string_pretty(middleware)?,
        })
    }

    /// Puts the error pages, or removes them when there are none.
    pub fn error_pages(pages: &BTreeMap<String, ErrorPage>) -> Result<Change, serde_json::Error> {
        if pages.is_empty() {
            return Ok(Change::delete(ResourceKind::ErrorPages, ""));
        }
        Ok(Change::Put {
            kind: ResourceKind::ErrorPages,
            name: String::new(),
            value: serde_json::to_string_pretty(pages)?,
        })
    }

    pub fn delete(kind: ResourceKind, name: &str) -> Change {
        Change::Delete {
            kind,
            name: name.to_string(),
        }
    }

    /// Every shared resource of `config` (routes, upstreams, middlewares, error pages), as
    /// puts: what seeding a store with `config` writes.
    pub fn all_of(config: &Config) -> Result<Vec<Change>, serde_json::Error> {
        let mut changes = Vec::new();
        for route in &config.routes {
            changes.push(Change::route(route)?);
        }
        for (name, upstream) in &config.upstreams {
            changes.push(Change::upstream(name, upstream)?);
        }
        for (name, middleware) in &config.middlewares {
            changes.push(Change::middleware(name, middleware)?);
        }
        if !config.error_pages.is_empty() {
            changes.push(Change::error_pages(&config.error_pages)?);
        }
        Ok(changes)
    }

    /// The changes that make `contents` hold exactly `config`'s shared resources: a put for
    /// each one that is new or whose value differs from the stored one, a delete for each
    /// stored one `config` lacks (a whole-config apply, as `pylon ctl config apply` makes).
    pub fn to_replace(
        contents: &Contents,
        config: &Config,
    ) -> Result<Vec<Change>, serde_json::Error> {
        let wanted = Change::all_of(config)?;
        let mut changes: Vec<Change> = wanted
            .iter()
            .filter(|change| {
                !contents.resources.iter().any(|r| {
                    Change::Put {
                        kind: r.kind,
                        name: r.name.clone(),
                        value: r.text.clone(),
                    } == **change
                })
            })
            .cloned()
            .collect();
        for r in &contents.resources {
            if !wanted
                .iter()
                .any(|w| w.kind() == r.kind && (!r.kind.is_named() || w.name() == r.name))
            {
                changes.push(Change::delete(r.kind, &r.name));
            }
        }
        Ok(changes)
    }

    pub fn kind(&self) -> ResourceKind {
        match self {
            Change::Put { kind, .. } | Change::Delete { kind, .. } => *kind,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Change::Put { name, .. } | Change::Delete { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    /// The YAML examples of the docs that are complete configs.
    fn doc_examples() -> Vec<(String, Config)> {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let mut found = Vec::new();
        for page in ["config.md", "upstreams.md", "middlewares.md"] {
            let text = std::fs::read_to_string(docs.join(page)).unwrap();
            for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
                let block = block.split("```").next().unwrap();
                // Fragments (a middleware, an upstream) become configs with a listener.
                let block = if block.contains("listeners:") {
                    block.to_string()
                } else {
                    format!("listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\n{block}")
                };
                let block = block.as_str();
                let origin = format!("{page}#{i}.yaml");
                if let Ok(config) =
                    pylon_config::load_str(block, pylon_config::Format::Yaml, Path::new(&origin))
                {
                    found.push((origin, config));
                }
            }
        }
        found
    }

    fn by_name(mut config: Config) -> Config {
        config.routes.sort_by(|a, b| a.name.cmp(&b.name));
        config
    }

    /// What `pylon store seed` writes reads back as the config it came from: every
    /// resource's JSON is typed exactly as the file was.
    #[test]
    fn every_doc_example_round_trips_through_the_store() {
        let examples = doc_examples();
        assert!(examples.len() >= 15, "too few examples: {}", examples.len());
        let dir = std::env::temp_dir().join(format!("pylon-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let node = dir.join("node.yaml");
        std::fs::write(
            &node,
            "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nconfig: { store: etcd, endpoints: [\"http://127.0.0.1:2379\"] }\n",
        )
        .unwrap();
        let node = pylon_config::parse_files(&node).unwrap();
        let layout = Layout::new("/pylon");
        let empty = Contents::default();
        for (origin, example) in examples {
            let changes = Change::all_of(&example).unwrap();
            let built = empty
                .with_changes(&layout, &changes)
                .assemble(&node)
                .unwrap_or_else(|e| panic!("{origin}: {e}"));
            let mut expected = example.clone();
            expected.listeners = built.listeners.clone();
            expected.server = built.server.clone();
            expected.dns = built.dns.clone();
            expected.reload = built.reload.clone();
            expected.config = built.config.clone();
            expected.admin = built.admin.clone();
            // Not kept in etcd: node-local, or read from the node's file in etcd mode.
            expected.metrics = built.metrics.clone();
            expected.tracing = built.tracing.clone();
            expected.access_log = built.access_log.clone();
            expected.notifications = built.notifications.clone();
            assert_eq!(by_name(built), by_name(expected), "{origin}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_whole_config_replaces_only_what_differs() {
        let layout = Layout::new("/p");
        let config = |routes: &[&str]| Config {
            routes: routes
                .iter()
                .map(|n| pylon_config::Route::to_upstream(n, "PathPrefix(`/`)", "app"))
                .collect(),
            ..Config::default()
        };
        let empty = Contents {
            revision: 1,
            generation: 1,
            resources: Vec::new(),
            problems: Vec::new(),
        };
        let stored = empty.with_changes(&layout, &Change::all_of(&config(&["a", "b"])).unwrap());
        assert!(Change::to_replace(&stored, &config(&["a", "b"]))
            .unwrap()
            .is_empty());
        let changes = Change::to_replace(&stored, &config(&["b", "c"])).unwrap();
        let names: Vec<(bool, &str)> = changes
            .iter()
            .map(|c| (matches!(c, Change::Put { .. }), c.name()))
            .collect();
        assert_eq!(names, [(true, "c"), (false, "a")]);
    }

    #[test]
    fn changes_replace_and_remove_resources() {
        let layout = Layout::new("/p");
        let route = |name: &str, text: &str| Change::Put {
            kind: ResourceKind::Route,
            name: name.into(),
            value: text.into(),
        };
        let start = Contents {
            revision: 7,
            generation: 3,
            resources: Vec::new(),
            problems: Vec::new(),
        }
        .with_changes(&layout, &[route("a", "1"), route("b", "2")]);
        let next = start.with_changes(
            &layout,
            &[route("a", "3"), Change::delete(ResourceKind::Route, "b")],
        );
        assert_eq!((next.revision, next.generation), (7, 3));
        assert_eq!(next.resources.len(), 1);
        assert_eq!(next.resources[0].origin, "etcd:/p/routes/a");
        assert_eq!(next.resources[0].text, "3");
    }
}
