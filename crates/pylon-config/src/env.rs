//! Environment for `${VAR}` substitution: the process environment first, then `.env` files
//! (beside the config, then in the working directory), first definition winning — dotenvy's
//! "never override what is set" rule.
//!
//! `.env` values are kept in this table rather than written into the process environment:
//! changing the environment of a running multi-threaded server is unsound, and a reload must
//! not leave yesterday's values behind.
//!
//! Substitution runs per string scalar after parsing, so positions stay exact and a value can
//! never inject structure: `${VAR}`, `${VAR:-default}` (default when unset or empty), `$$` for
//! a literal `$`. Any other `$` is kept as written (rules use `$` in regexes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::node::{index_path, key_path, Kind, LineIndex, Node, Pos};

/// Where `${VAR}` values come from.
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    /// Values from `.env` files, first definition kept.
    dotenv: HashMap<String, String>,
    /// The `.env` files that were read.
    pub files: Vec<PathBuf>,
}

impl Env {
    /// The value of `name`: the process environment wins over `.env` files.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Adds `other`'s `.env` values not defined here, and its files.
    pub fn merge(&mut self, other: &Env) {
        for (key, value) in &other.dotenv {
            self.dotenv
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        for file in &other.files {
            if !self.files.contains(file) {
                self.files.push(file.clone());
            }
        }
    }

    /// Reads `path` if it exists, adding the variables not defined yet.
    pub fn load_dotenv(&mut self, path: &Path) -> Result<(), ConfigError> {
        if self.files.iter().any(|f| f == path) {
            return Ok(());
        }
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ConfigError::file(path, format!("cannot read: {e}"))),
        };
        self.files.push(path.to_path_buf());
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((key, value)) => {
                    self.dotenv.entry(key).or_insert(value);
                }
                Err(dotenvy::Error::LineParse(line, index)) => {
                    let lines = LineIndex::new(text);
                    let start = text.find(line.trim_end()).unwrap_or(0);
                    let pos = lines.pos(start + index.min(line.trim_end().len()));
                    let snippet = line.trim_end();
                    return Err(ConfigError::new(
                        path,
                        pos,
                        "",
                        format!("invalid .env line: {snippet:?}"),
                    ));
                }
                Err(e) => return Err(ConfigError::file(path, format!("cannot read: {e}"))),
            }
        }
        Ok(())
    }
}

/// Replaces `${…}` in every string scalar of `node`, reporting each failure at its scalar.
/// A scalar that fails becomes `Poisoned` so it produces no second error when typed.
pub(crate) fn substitute(
    node: &mut Node,
    path: &str,
    env: &Env,
    file: &Path,
    errors: &mut Vec<ConfigError>,
) {
    match &mut node.kind {
        Kind::Str(scalar) => match expand(&scalar.value, env) {
            Ok(None) => {}
            Ok(Some((value, substituted))) => {
                scalar.value = value;
                scalar.content = None;
                scalar.substituted = substituted;
            }
            Err((offset, message)) => {
                let pos = match scalar.content {
                    Some(c) => Pos {
                        line: c.line,
                        column: c.column + offset,
                    },
                    None => node.pos,
                };
                errors.push(ConfigError::new(file, pos, path, message));
                node.kind = Kind::Poisoned;
            }
        },
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute(item, &index_path(path, i), env, file, errors);
            }
        }
        Kind::Map(entries) => {
            for entry in entries {
                substitute(
                    &mut entry.value,
                    &key_path(path, &entry.key),
                    env,
                    file,
                    errors,
                );
            }
        }
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Poisoned => {}
    }
}

/// Expands `text`. `Ok(None)`: nothing to do. `Ok(Some((value, substituted)))`: the new
/// value, and whether a variable was used (not only `$$`). `Err((char offset, message))`.
fn expand(text: &str, env: &Env) -> Result<Option<(String, bool)>, (usize, String)> {
    if !text.contains('$') {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut substituted = false;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let offset = text.len() - rest.len() + at;
        let offset = text[..offset].chars().count();
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err((
                    offset,
                    "unterminated `${`: close it with `}` (write `$$` for a literal `$`)".into(),
                ));
            };
            let (name, default) = match body[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..end], None),
            };
            if !is_var_name(name) {
                return Err((
                    offset,
                    format!("invalid variable name {name:?} in `${{…}}`"),
                ));
            }
            match (env.get(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err((
                        offset,
                        format!("environment variable `{name}` is not set (use `${{{name}:-default}}` to give a default)"),
                    ))
                }
            }
            substituted = true;
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Some((out, substituted)))
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        let mut env = Env::default();
        for (k, v) in vars {
            env.dotenv.insert(k.to_string(), v.to_string());
        }
        env
    }

    #[test]
    fn expands() {
        let e = env(&[("PYLON_T_A", "x"), ("PYLON_T_EMPTY", "")]);
        let ok = |t: &str| expand(t, &e).map(|o| o.map(|(v, _)| v));
        assert_eq!(ok("plain"), Ok(None));
        assert_eq!(ok("a${PYLON_T_A}b"), Ok(Some("axb".into())));
        assert_eq!(ok("${PYLON_T_UNSET:-d}"), Ok(Some("d".into())));
        assert_eq!(ok("${PYLON_T_EMPTY:-d}"), Ok(Some("d".into())));
        assert_eq!(ok("${PYLON_T_EMPTY}"), Ok(Some("".into())));
        assert_eq!(ok("$$"), Ok(Some("$".into())));
        assert_eq!(ok("$${PYLON_T_A}"), Ok(Some("${PYLON_T_A}".into())));
        assert_eq!(ok("^/a$"), Ok(Some("^/a$".into())));
        assert_eq!(ok("${PYLON_T_UNSET:-}"), Ok(Some("".into())));
        assert_eq!(expand("$$", &e), Ok(Some(("$".into(), false))));
        assert_eq!(expand("é${PYLON_T_UNSET}", &e).map_err(|e| e.0), Err(1));
        assert!(expand("${PYLON_T_A", &e).is_err());
        assert!(expand("${1X}", &e).is_err());
    }
}
