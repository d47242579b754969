//! Documents as plain JSON values, both ways: text (an API body in YAML or JSON) parsed with
//! the loader's own parsers, so syntax errors read the same as in files; and a value written
//! as YAML that [`crate::load`] reads back to the same value.
//!
//! The writer is deliberately plain: block maps and lists, every string double-quoted (no
//! YAML type guessing: `"on"`, `"1.0"`, `"*.example.com"` stay strings), and `$` doubled
//! where the loader would otherwise substitute `${VAR}` — a value the API received as
//! `${HOME}` is kept as those characters, never expanded on the next load.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Number, Value};

use crate::error::{ConfigError, ConfigErrors};
use crate::loader::Format;
use crate::node::{Kind, Node};

/// Parses `text` (YAML, JSON or TOML) into a JSON value; `origin` names it in errors.
/// No `${VAR}` substitution.
pub fn parse_value(text: &str, format: Format, origin: &Path) -> Result<Value, ConfigErrors> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let to_error = |(pos, message)| ConfigError::new(origin, pos, "", message);
    let root = match format {
        Format::Yaml => crate::yaml::parse(text).map_err(|e| vec![to_error(e)]),
        Format::Json => crate::json::parse(text).map_err(|e| vec![to_error(e)]),
        Format::Toml => crate::toml_doc::parse(text)
            .map_err(|errors| errors.into_iter().map(to_error).collect()),
    }
    .map_err(ConfigErrors::sorted)?;
    Ok(to_value(&root))
}

fn to_value(node: &Node) -> Value {
    match &node.kind {
        Kind::Null | Kind::Poisoned => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::Number((*i).into()),
        // NaN and infinities have no JSON form; the typed config refuses them anyway.
        Kind::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Kind::Str(s) => Value::String(s.value.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_value).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_value(&e.value)))
                .collect(),
        ),
    }
}

/// `text` with each `$` the loader would read as the start of `${…}` or `$$` doubled, so
/// that loading it gives `text` back.
pub fn escape_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$' | '{')) {
            out.push('$');
        }
    }
    out
}

/// The top-level keys in the order a person reads a config.
const TOP_LEVEL_ORDER: [&str; 11] = [
    "server",
    "admin",
    "listeners",
    "dns",
    "reload",
    "upstream",
    "upstreams",
    "middlewares",
    "routes",
    "error_pages",
    "access_log",
];

/// Writes `value` (a map) as a YAML document that loads back to the same value. Keys come
/// in a fixed order: the known top-level keys first, `name` first inside a map, the rest as
/// they are in the value.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                TOP_LEVEL_ORDER
                    .iter()
                    .position(|t| t == k)
                    .unwrap_or(TOP_LEVEL_ORDER.len())
            });
            for key in keys {
                entry(&mut out, 0, key, &map[key.as_str()]);
            }
        }
        other => {
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
    out
}

/// One `key: value` line (and the block under it) at `indent`.
fn entry(out: &mut String, indent: usize, key: &str, value: &Value) {
    push_indent(out, indent);
    out.push_str(&yaml_key(key));
    out.push(':');
    block_value(out, indent, value);
}

/// What follows `key:` or `- `: a scalar on the same line, or a block below.
fn block_value(out: &mut String, indent: usize, value: &Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            map_body(out, indent + 2, map);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                push_indent(out, indent + 2);
                out.push('-');
                seq_item(out, indent + 2, item);
            }
        }
        scalar => {
            out.push(' ');
            out.push_str(&flow(scalar));
            out.push('\n');
        }
    }
}

/// The entries of a map at `indent`, `name` first.
fn map_body(out: &mut String, indent: usize, map: &Map<String, Value>) {
    for (key, value) in ordered(map) {
        entry(out, indent, key, value);
    }
}

/// A list item after its `- `: a map's first entry goes on the dash's line.
fn seq_item(out: &mut String, indent: usize, item: &Value) {
    match item {
        Value::Object(map) if !map.is_empty() => {
            let mut entries = ordered(map).into_iter();
            if let Some((key, value)) = entries.next() {
                out.push(' ');
                out.push_str(&yaml_key(key));
                out.push(':');
                block_value(out, indent + 2, value);
            }
            for (key, value) in entries {
                entry(out, indent + 2, key, value);
            }
        }
        // Lists in lists are rare in configs: written in flow style.
        other => {
            out.push(' ');
            out.push_str(&flow(other));
            out.push('\n');
        }
    }
}

fn ordered(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(k, _)| *k != "name");
    entries
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A value in flow style (JSON syntax, which YAML reads the same), strings escaped for
/// both YAML and `${VAR}` substitution.
fn flow(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(&escape_env(s)),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = ordered(map)
                .into_iter()
                .map(|(k, v)| format!("{}: {}", quote(k), flow(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// A map key: plain when it cannot be read as anything but that string, else quoted.
/// Keys are not substituted by the loader, so `$` needs no escape here.
fn yaml_key(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        key.to_string()
    } else {
        quote(key)
    }
}

/// A YAML double-quoted scalar. Control characters, C1 controls, U+2028/U+2029 (line breaks
/// to some YAML readers) and the BOM are escaped; other characters are written as they are.
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn back(value: &Value) -> Value {
        let text = to_yaml(value);
        let parsed = parse_value(&text, Format::Yaml, Path::new("t.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        unescape(parsed)
    }

    /// Undoes `escape_env` as the loader's substitution does for these strings (`$$` → `$`;
    /// they hold no `${…}` of their own once escaped).
    fn unescape(value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(s.replace("$$", "$")),
            Value::Array(items) => Value::Array(items.into_iter().map(unescape).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, unescape(v))).collect())
            }
            other => other,
        }
    }

    #[test]
    fn writes_yaml_that_reads_back_the_same() {
        let value = json!({
            "routes": [
                {"name": "a", "rule": "Path(`/a`) && Host(`*.example.com`)", "priority": -3,
                 "middlewares": ["m", {"headers": {"request": {"set": {"X-On": "on"}}}}]},
                {"rule": "PathRegexp(`^/x$`)", "name": "b", "respond": {"status": 200, "body": "line\nnext \"q\" \\ ${HOME} $$ $ é \u{2028}\u{7}"}}
            ],
            "upstreams": {"app": {"servers": ["127.0.0.1:1", {"address": "[::1]:2", "weight": 2}]}},
            "error_pages": {"404": {"body": "yes"}, "true": {"body": "no"}},
            "empty": {}, "list": [], "nested": [[1, 2.5], [true, null]], "n": null,
        });
        assert_eq!(back(&value), value);
        let text = to_yaml(&value);
        assert!(text.contains("upstreams:\n  app:\n    servers:\n      - \"127.0.0.1:1\"\n      - address: \"[::1]:2\"\n        weight: 2\n"), "{text}");
        assert!(
            text.contains("  - name: \"b\"\n    respond:"),
            "name first: {text}"
        );
        assert!(text.contains("$${HOME} $$$ $ é"), "{text}");
        assert!(text.contains("\"true\":"), "{text}");
        assert!(
            text.find("upstreams:") < text.find("routes:"),
            "top-level order: {text}"
        );
    }

    #[test]
    fn escape_env_doubles_only_what_the_loader_reads() {
        assert_eq!(escape_env("^/a$"), "^/a$");
        assert_eq!(escape_env("${A}"), "$${A}");
        assert_eq!(escape_env("$$"), "$$$");
        assert_eq!(escape_env("$x $"), "$x $");
    }

    #[test]
    fn parse_errors_have_positions() {
        let e = parse_value("a: [1,\n", Format::Yaml, Path::new("body.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("body.yaml:"), "{e}");
        let v = parse_value("{\"a\": 1}", Format::Json, Path::new("b.json")).unwrap();
        assert_eq!(v, json!({"a": 1}));
    }
}
