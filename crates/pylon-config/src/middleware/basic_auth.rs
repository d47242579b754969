//! The `basic_auth` middleware's settings: htpasswd users written inline or read from a
//! file, each hash checked at load (see [`super::htpasswd`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::headers::check_header_name;
use super::htpasswd::{parse_entry, parse_file, HtpasswdEntry};
use crate::duration::DurationSchema;
use crate::error::ConfigError;
use crate::validate::{is_header_value, Spot};

/// HTTP Basic authentication (RFC 7617) against htpasswd users. A request without valid
/// credentials gets 401 with `WWW-Authenticate: Basic realm="…"`; a valid one goes on with
/// the user name in `state.consumer` (and in `user_header`, when set).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// htpasswd lines, `user:hash`: bcrypt (`$2y$`, `$2b$`, `$2a$`), argon2
    /// (`$argon2id$…`) or SHA-crypt (`$5$`, `$6$`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// An htpasswd file (one `user:hash` per line, `#` comments), read at load. A
    /// relative path is relative to Pylon's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_file: Option<PathBuf>,
    /// The realm named in `WWW-Authenticate`. Default: `pylon`.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Remove the `Authorization` header before the request goes upstream. Default: true,
    /// so passwords never reach upstreams (or their logs).
    #[serde(default = "yes")]
    pub remove_header: bool,
    /// A request header that carries the user name upstream (`X-Auth-User`). Any value
    /// the client sent under that name is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_header: Option<String>,
    /// Accept plain-text passwords in `users`/`users_file`. For tests only.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// How long a successful check is remembered, so a client sending the same
    /// credentials does not pay for a hash check each time. `0s` turns the cache off.
    /// Default: 60s.
    #[serde(default = "default_cache_ttl", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub cache_ttl: Duration,
    /// Most successful checks remembered at once. Default: 1024.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
}

/// Default realm.
const DEFAULT_REALM: &str = "pylon";
/// Default time a successful check is remembered.
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);
/// Default number of successful checks remembered.
const DEFAULT_CACHE_SIZE: usize = 1024;

fn default_realm() -> String {
    DEFAULT_REALM.into()
}

fn default_cache_ttl() -> Duration {
    DEFAULT_CACHE_TTL
}

fn default_cache_size() -> usize {
    DEFAULT_CACHE_SIZE
}

fn yes() -> bool {
    true
}

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            users: Vec::new(),
            users_file: None,
            realm: default_realm(),
            remove_header: true,
            user_header: None,
            allow_plaintext: false,
            cache_ttl: DEFAULT_CACHE_TTL,
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

impl BasicAuth {
    /// Every user, inline ones first, then the file's; the first problem found. The
    /// runtime reads users with this, after validation reported every problem.
    pub fn entries(&self) -> Result<Vec<HtpasswdEntry>, String> {
        let mut out = Vec::new();
        for (i, line) in self.users.iter().enumerate() {
            out.push(
                parse_entry(line, self.allow_plaintext).map_err(|e| format!("users[{i}]: {e}"))?,
            );
        }
        if let Some(path) = &self.users_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for (line, entry) in parse_file(&text, self.allow_plaintext) {
                out.push(entry.map_err(|e| format!("{}:{line}: {e}", path.display()))?);
            }
        }
        Ok(out)
    }

    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        // Where each user was defined, to name both places of a duplicate.
        let mut seen: HashMap<String, String> = HashMap::new();
        let note = |user: &str,
                    place: String,
                    error_spot: &Spot<'_>,
                    seen: &mut HashMap<String, String>,
                    errors: &mut Vec<ConfigError>| {
            if let Some(first) = seen.get(user) {
                errors.push(error_spot.error(format!(
                    "user `{user}` is already defined ({first}): one entry per user"
                )));
            } else {
                seen.insert(user.to_string(), place);
            }
        };
        // Lines read, good or bad: an empty list is an error of its own.
        let mut lines = self.users.len();
        let mut unreadable = false;
        let users = spot.key("users");
        for (i, line) in self.users.iter().enumerate() {
            let item = users.item(i);
            match parse_entry(line, self.allow_plaintext) {
                Ok(entry) => note(&entry.user, format!("users[{i}]"), &item, &mut seen, errors),
                Err(e) => errors.push(item.error(e)),
            }
        }
        if let Some(path) = &self.users_file {
            let file_spot = spot.key("users_file");
            match std::fs::read_to_string(path) {
                Err(e) => {
                    unreadable = true;
                    errors.push(file_spot.error(format!("cannot read {}: {e}", path.display())));
                }
                Ok(text) => {
                    let parsed = parse_file(&text, self.allow_plaintext);
                    lines += parsed.len();
                    for (line, entry) in parsed {
                        let place = format!("{}:{line}", path.display());
                        match entry {
                            Ok(entry) => note(&entry.user, place, &file_spot, &mut seen, errors),
                            Err(e) => errors.push(file_spot.error(format!("{place}: {e}"))),
                        }
                    }
                }
            }
        }
        if lines == 0 && !unreadable {
            errors.push(
                spot.error(
                    "no users: write htpasswd lines in `users` or name a file in `users_file`",
                ),
            );
        }
        if self.realm.is_empty()
            || !is_header_value(&self.realm)
            || self.realm.contains(['"', '\\'])
        {
            errors.push(spot.key("realm").error(
                "a realm is printable ASCII without `\"` or `\\` (it is quoted in `WWW-Authenticate`)",
            ));
        }
        if let Some(name) = &self.user_header {
            check_header_name(&spot.key("user_header"), name, errors);
        }
        spot.at_least("cache_size", self.cache_size, 1, errors);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BCRYPT: &str = "$2y$05$KBCwKxOzLha2MUDgW0PjXeGy8zDyKFegpVV4y0qPBUgij10WNyKY6";

    fn errors(settings: &str) -> String {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ servers: [\"127.0.0.1:9000\"] }} }}\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n      - basic_auth: {settings}\n"
        );
        super::super::load_errors(&text)
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("pylon-{name}-{}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn inline_users_and_defaults() {
        assert_eq!(errors(&format!("{{ users: [\"ann:{BCRYPT}\"] }}")), "");
        let def = BasicAuth {
            users: vec![format!("ann:{BCRYPT}")],
            ..BasicAuth::default()
        };
        assert_eq!(def.realm, "pylon");
        assert!(def.remove_header);
        assert_eq!(def.entries().unwrap()[0].user, "ann");
    }

    #[test]
    fn plaintext_needs_allow_plaintext() {
        let e = errors("{ users: [\"ann:secret\"] }");
        assert!(
            e.contains("t.yaml:8:31: routes[0].middlewares[0].basic_auth.users[0]: user `ann`: not a password hash (a plain-text password?)"),
            "{e}"
        );
        assert!(!e.contains("secret"), "the password is quoted: {e}");
        assert_eq!(
            errors("{ users: [\"ann:secret\"], allow_plaintext: true }"),
            ""
        );
    }

    #[test]
    fn users_file_is_read_and_checked_line_by_line() {
        let good = temp_file(
            "users-good",
            &format!("# team\nann:{BCRYPT}\n\nbob:{BCRYPT}\n"),
        );
        assert_eq!(
            errors(&format!("{{ users_file: \"{}\" }}", good.display())),
            ""
        );
        let bad = temp_file(
            "users-bad",
            &format!("ann:{BCRYPT}\nbob:$apr1$x$y\nann:{BCRYPT}\n"),
        );
        let e = errors(&format!("{{ users_file: \"{}\" }}", bad.display()));
        let shown = bad.display().to_string();
        assert!(
            e.contains(&format!("t.yaml:8:35: routes[0].middlewares[0].basic_auth.users_file: {shown}:2: user `bob`: MD5-crypt")),
            "{e}"
        );
        assert!(
            e.contains(&format!(
                "basic_auth.users_file: user `ann` is already defined ({shown}:1)"
            )),
            "{e}"
        );
        let e = errors("{ users_file: /no/such/pylon/htpasswd }");
        assert!(
            e.contains("basic_auth.users_file: cannot read /no/such/pylon/htpasswd"),
            "{e}"
        );
        std::fs::remove_file(good).unwrap();
        std::fs::remove_file(bad).unwrap();
    }

    #[test]
    fn no_users_bad_realm_header_and_cache_size() {
        let e = errors("{}");
        assert!(e.contains("basic_auth: no users"), "{e}");
        let e = errors(&format!(
            "{{ users: [\"ann:{BCRYPT}\"], realm: 'a\"b', user_header: \"X User\", cache_size: 0 }}"
        ));
        assert!(
            e.contains("basic_auth.realm: a realm is printable ASCII"),
            "{e}"
        );
        assert!(
            e.contains("basic_auth.user_header: invalid header name \"X User\""),
            "{e}"
        );
        assert!(
            e.contains("basic_auth.cache_size: cache_size must be at least 1, found 0"),
            "{e}"
        );
    }
}
