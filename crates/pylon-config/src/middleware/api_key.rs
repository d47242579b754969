//! The `api_key` middleware's settings: keys written inline (`${VAR}` reads them from the
//! environment) or read from a file, where they are looked for, and the consumer header.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::headers::check_header_name;
use crate::error::ConfigError;
use crate::validate::{is_header_value, Spot};

/// API keys in a header or a query parameter. A request without a known key gets 401 with
/// `WWW-Authenticate: ApiKey header="…"` (and `query="…"`); a known one goes on with its
/// consumer in `state.consumer` (and in `consumer_header`, when set). The key is removed
/// from the request (header and query parameter) before anything else sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// The keys, each with an optional consumer name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<ApiKeyEntry>,
    /// A file of keys, one `consumer:key` per line (`#` comments), read at load. A
    /// relative path is relative to Pylon's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    /// The request header the key is read from. Default: `X-API-Key` when `query` is not
    /// set either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A query parameter the key is read from (`api_key`). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A request header that carries the key's consumer upstream (`X-Consumer`). Any value
    /// the client sent under that name is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_header: Option<String>,
}

/// One key.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// The key, as clients send it: printable ASCII without spaces.
    pub key: String,
    /// Who the key belongs to, forwarded upstream and used by `rate_limit`'s `consumer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
}

/// Keys stay out of debug output.
impl fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("key", &"…")
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// The header keys are read from when neither `header` nor `query` is set.
pub const DEFAULT_API_KEY_HEADER: &str = "X-API-Key";

impl ApiKey {
    /// The header to read keys from, if any.
    pub fn header_name(&self) -> Option<&str> {
        match (&self.header, &self.query) {
            (Some(h), _) => Some(h),
            (None, None) => Some(DEFAULT_API_KEY_HEADER),
            (None, Some(_)) => None,
        }
    }

    /// Every key, inline ones first, then the file's; the first problem found. The
    /// runtime reads keys with this, after validation reported every problem.
    pub fn entries(&self) -> Result<Vec<ApiKeyEntry>, String> {
        let mut out = Vec::new();
        for (i, entry) in self.keys.iter().enumerate() {
            check_entry(entry).map_err(|e| format!("keys[{i}]: {e}"))?;
            out.push(entry.clone());
        }
        if let Some(path) = &self.keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for (line, entry) in parse_keys_file(&text) {
                out.push(entry.map_err(|e| format!("{}:{line}: {e}", path.display()))?);
            }
        }
        Ok(out)
    }

    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        // Where each key was defined, by key: messages name the places, never the key.
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut note =
            |entry: &ApiKeyEntry, place: String, at: &Spot<'_>, errors: &mut Vec<ConfigError>| {
                if let Some(first) = seen.get(&entry.key) {
                    errors.push(at.error(format!(
                        "this key is already defined ({first}): each key names one consumer"
                    )));
                } else {
                    seen.insert(entry.key.clone(), place);
                }
            };
        let mut count = self.keys.len();
        let mut unreadable = false;
        let keys = spot.key("keys");
        for (i, entry) in self.keys.iter().enumerate() {
            let item = keys.item(i);
            match check_entry(entry) {
                Ok(()) => note(entry, format!("keys[{i}]"), &item, errors),
                Err(e) => errors.push(item.error(e)),
            }
        }
        if let Some(path) = &self.keys_file {
            let file_spot = spot.key("keys_file");
            match std::fs::read_to_string(path) {
                Err(e) => {
                    unreadable = true;
                    errors.push(file_spot.error(format!("cannot read {}: {e}", path.display())));
                }
                Ok(text) => {
                    let parsed = parse_keys_file(&text);
                    count += parsed.len();
                    for (line, entry) in parsed {
                        let place = format!("{}:{line}", path.display());
                        match entry {
                            Ok(entry) => note(&entry, place, &file_spot, errors),
                            Err(e) => errors.push(file_spot.error(format!("{place}: {e}"))),
                        }
                    }
                }
            }
        }
        if count == 0 && !unreadable {
            errors.push(spot.error("no keys: list them in `keys` or name a file in `keys_file`"));
        }
        for key in ["header", "consumer_header"] {
            let value = if key == "header" {
                &self.header
            } else {
                &self.consumer_header
            };
            if let Some(name) = value {
                check_header_name(&spot.key(key), name, errors);
            }
        }
        if let Some(name) = &self.query {
            if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
                errors.push(spot.key("query").error(format!(
                    "invalid query parameter name {name:?}: it may not be empty or hold `&`, `=`, `#` or spaces"
                )));
            }
        }
    }
}

/// A key and its consumer are sendable: the key as a header value or query parameter
/// (printable ASCII, no spaces), the consumer as a header value.
fn check_entry(entry: &ApiKeyEntry) -> Result<(), String> {
    if entry.key.is_empty() {
        return Err("the key is empty (an unset `${VAR}`?)".into());
    }
    if !entry.key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("a key is printable ASCII without spaces".into());
    }
    if let Some(consumer) = &entry.consumer {
        if consumer.is_empty() || !is_header_value(consumer) {
            return Err(format!(
                "invalid consumer {consumer:?}: use printable ASCII (it is sent as a header value)"
            ));
        }
    }
    Ok(())
}

/// Reads a keys file: `(line number, entry or why not)` for each line that is not blank or
/// a `#` comment. A line is `consumer:key` (split at the first `:`, so keys may hold `:`).
pub fn parse_keys_file(text: &str) -> Vec<(usize, Result<ApiKeyEntry, String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, line)| {
            let entry = match line.trim().split_once(':') {
                None => Err("expected `consumer:key`, found no `:`".to_string()),
                Some((consumer, key)) => {
                    let entry = ApiKeyEntry {
                        key: key.to_string(),
                        consumer: Some(consumer.to_string()),
                    };
                    check_entry(&entry).map(|()| entry)
                }
            };
            (i + 1, entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn errors(settings: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - api_key: {settings}\n"
        );
        super::super::load_errors(&text)
    }

    #[test]
    fn where_keys_are_read_from() {
        let mut def = ApiKey::default();
        assert_eq!(def.header_name(), Some("X-API-Key"));
        def.query = Some("api_key".into());
        assert_eq!(def.header_name(), None);
        def.header = Some("X-Key".into());
        assert_eq!(def.header_name(), Some("X-Key"));
    }

    #[test]
    fn keys_inline_and_from_a_file() {
        assert_eq!(
            errors("{ keys: [{ key: k-123, consumer: ci }, { key: \"a:b\" }], header: X-Key, query: key, consumer_header: X-Consumer }"),
            ""
        );
        let path = std::env::temp_dir().join(format!("pylon-keys-{}", std::process::id()));
        std::fs::write(&path, "# keys\nci:k-1\n\nbot:k:2\nnocolon\nweb:k-1\n").unwrap();
        let def = ApiKey {
            keys_file: Some(path.clone()),
            ..ApiKey::default()
        };
        let parsed = parse_keys_file(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(parsed.len(), 4);
        let bot = parsed[1].1.as_ref().unwrap();
        assert_eq!(
            (bot.key.as_str(), bot.consumer.as_deref()),
            ("k:2", Some("bot"))
        );
        assert!(def
            .entries()
            .unwrap_err()
            .ends_with(":5: expected `consumer:key`, found no `:`"));
        let e = errors(&format!("{{ keys_file: \"{}\" }}", path.display()));
        let shown = path.display().to_string();
        assert!(
            e.contains(&format!("t.yaml:8:31: routes[0].middlewares[0].api_key.keys_file: {shown}:5: expected `consumer:key`")),
            "{e}"
        );
        assert!(
            e.contains(&format!(
                "api_key.keys_file: this key is already defined ({shown}:2)"
            )),
            "{e}"
        );
        assert!(!e.contains("k-1"), "a key is quoted: {e}");
        std::fs::remove_file(path).unwrap();
        let e = errors("{ keys_file: /no/such/pylon/keys }");
        assert!(
            e.contains("api_key.keys_file: cannot read /no/such/pylon/keys"),
            "{e}"
        );
    }

    #[test]
    fn bad_keys_names_and_empty_lists_are_located() {
        let e = errors("{ keys: [{ key: \"\" }, { key: \"a b\" }, { key: k2, consumer: \"\" }, { key: k }, { key: k }] }");
        assert!(
            e.contains("t.yaml:8:27: routes[0].middlewares[0].api_key.keys[0]: the key is empty"),
            "{e}"
        );
        assert!(
            e.contains("api_key.keys[1]: a key is printable ASCII without spaces"),
            "{e}"
        );
        assert!(e.contains("api_key.keys[2]: invalid consumer \"\""), "{e}");
        assert!(
            e.contains("api_key.keys[4]: this key is already defined (keys[3])"),
            "{e}"
        );
        let e = errors("{ keys: [] }");
        assert!(e.contains("api_key: no keys"), "{e}");
        let e = errors(
            "{ keys: [{ key: k }], header: \"X Key\", consumer_header: \"a:b\", query: \"a&b\" }",
        );
        assert!(
            e.contains("api_key.header: invalid header name \"X Key\""),
            "{e}"
        );
        assert!(
            e.contains("api_key.consumer_header: invalid header name \"a:b\""),
            "{e}"
        );
        assert!(
            e.contains("api_key.query: invalid query parameter name \"a&b\""),
            "{e}"
        );
    }
}
