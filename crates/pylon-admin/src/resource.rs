//! The three resource kinds — routes, upstreams, middlewares — as the API shows them: the
//! same shape as in a config file, with the name as `name` (a route has one already; an
//! upstream's or middleware's is its key in the file).
//!
//! Reads come from the running config; edits change a managed document (a value shaped
//! like a config file, see `store`), where routes are a list and the others maps by name.

use pylon_config::{Config, Origin, Origins};
use serde_json::{Map, Value};

use crate::store::to_value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Route,
    Upstream,
    Middleware,
}

impl Kind {
    /// The config file's key for this kind.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Route => "routes",
            Kind::Upstream => "upstreams",
            Kind::Middleware => "middlewares",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Kind::Route => "route",
            Kind::Upstream => "upstream",
            Kind::Middleware => "middleware",
        }
    }

    /// Every resource of this kind in `config`, in config order (names sorted for maps).
    pub fn list(self, config: &Config) -> Vec<Value> {
        match self {
            Kind::Route => config.routes.iter().map(to_value).collect(),
            Kind::Upstream => config
                .upstreams
                .iter()
                .map(|(n, u)| named(n, to_value(u)))
                .collect(),
            Kind::Middleware => config
                .middlewares
                .iter()
                .map(|(n, m)| named(n, to_value(m)))
                .collect(),
        }
    }

    /// One resource of `config`, by name.
    pub fn get(self, config: &Config, name: &str) -> Option<Value> {
        match self {
            Kind::Route => config.routes.iter().find(|r| r.name == name).map(to_value),
            Kind::Upstream => config.upstreams.get(name).map(|u| named(name, to_value(u))),
            Kind::Middleware => config
                .middlewares
                .get(name)
                .map(|m| named(name, to_value(m))),
        }
    }

    /// Where a resource is defined, from a store's origins.
    pub fn origin(self, origins: &Origins, name: &str) -> Option<Origin> {
        match self {
            Kind::Route => origins.routes.get(name),
            Kind::Upstream => origins.upstreams.get(name),
            Kind::Middleware => origins.middlewares.get(name),
        }
        .cloned()
    }

    /// A resource of the managed document `doc`, with its name.
    pub fn find(self, doc: &Value, name: &str) -> Option<Value> {
        match self {
            Kind::Route => doc
                .get("routes")?
                .as_array()?
                .iter()
                .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
                .cloned(),
            _ => doc
                .get(self.section())?
                .get(name)
                .map(|v| named(name, v.clone())),
        }
    }

    /// Puts `value` (with its `name`) into `doc`, replacing the resource of that name in
    /// place (a route keeps its position) or adding it at the end.
    pub fn put(self, doc: &mut Value, name: &str, value: Value) {
        let section = section_mut(doc, self);
        match self {
            Kind::Route => {
                let routes = as_array(section);
                match routes
                    .iter_mut()
                    .find(|r| r.get("name").and_then(Value::as_str) == Some(name))
                {
                    Some(slot) => *slot = value,
                    None => routes.push(value),
                }
            }
            _ => {
                let mut value = value;
                if let Value::Object(map) = &mut value {
                    map.remove("name");
                }
                as_object(section).insert(name.to_string(), value);
            }
        }
    }

    /// Removes a resource from `doc`; whether it was there.
    pub fn remove(self, doc: &mut Value, name: &str) -> bool {
        let section = section_mut(doc, self);
        let removed = match self {
            Kind::Route => {
                let routes = as_array(section);
                let before = routes.len();
                routes.retain(|r| r.get("name").and_then(Value::as_str) != Some(name));
                routes.len() != before
            }
            _ => as_object(section).remove(name).is_some(),
        };
        // An empty section is left out of the file.
        if let Value::Object(map) = doc {
            let empty = match map.get(self.section()) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                _ => false,
            };
            if empty {
                map.remove(self.section());
            }
        }
        removed
    }

    /// The key path of a resource inside `doc`, as the loader writes it in errors
    /// (`routes[2]`, `upstreams.app`, `middlewares["a.b"]`).
    pub fn path_in(self, doc: &Value, name: &str) -> Option<String> {
        match self {
            Kind::Route => doc
                .get("routes")?
                .as_array()?
                .iter()
                .position(|r| r.get("name").and_then(Value::as_str) == Some(name))
                .map(|i| format!("routes[{i}]")),
            _ => Some(key_path(self.section(), name)),
        }
    }
}

/// `value` (a map) with `name` added.
pub fn named(name: &str, value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            map.insert("name".into(), Value::String(name.to_string()));
            Value::Object(map)
        }
        other => other,
    }
}

/// The key path the loader writes for `key` under `parent`.
fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{key:?}]")
    }
}

fn section_mut(doc: &mut Value, kind: Kind) -> &mut Value {
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let empty = match kind {
        Kind::Route => Value::Array(Vec::new()),
        _ => Value::Object(Map::new()),
    };
    match doc {
        Value::Object(map) => map.entry(kind.section()).or_insert(empty),
        _ => unreachable!("made a map above"),
    }
}

fn as_array(value: &mut Value) -> &mut Vec<Value> {
    if !value.is_array() {
        *value = Value::Array(Vec::new());
    }
    match value {
        Value::Array(items) => items,
        _ => unreachable!("made a list above"),
    }
}

fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made a map above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_keep_route_order_and_drop_empty_sections() {
        let mut doc = json!({});
        Kind::Route.put(&mut doc, "a", json!({"name": "a", "rule": "1"}));
        Kind::Route.put(&mut doc, "b", json!({"name": "b", "rule": "2"}));
        Kind::Route.put(&mut doc, "a", json!({"name": "a", "rule": "3"}));
        assert_eq!(doc["routes"][0]["rule"], "3");
        assert_eq!(Kind::Route.path_in(&doc, "b").as_deref(), Some("routes[1]"));
        Kind::Upstream.put(&mut doc, "u.1", json!({"name": "u.1", "servers": []}));
        assert_eq!(doc["upstreams"]["u.1"], json!({"servers": []}));
        assert_eq!(
            Kind::Upstream.find(&doc, "u.1"),
            Some(json!({"name": "u.1", "servers": []}))
        );
        assert_eq!(
            Kind::Upstream.path_in(&doc, "u.1").as_deref(),
            Some("upstreams[\"u.1\"]")
        );
        assert!(Kind::Upstream.remove(&mut doc, "u.1"));
        assert!(!Kind::Upstream.remove(&mut doc, "u.1"));
        assert!(doc.get("upstreams").is_none());
        assert!(Kind::Route.remove(&mut doc, "a"));
        assert_eq!(
            Kind::Route.find(&doc, "b").map(|r| r["rule"].clone()),
            Some(json!("2"))
        );
    }
}
