//! The `static` middleware's settings: serve files from a directory.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::validate::Spot;

/// Serves files under `root` for GET and HEAD: index files, content types by extension,
/// `ETag`/`Last-Modified` with 304s, `Range` requests. Paths never leave `root` (`..`,
/// encoded dots and symlinks pointing outside are refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticFiles {
    /// The directory served.
    pub root: PathBuf,
    /// Files served for a directory path. Default: `[index.html]`.
    #[serde(default = "default_index", skip_serializing_if = "Vec::is_empty")]
    pub index: Vec<String>,
    /// A path prefix removed before looking the file up (`/assets` serves
    /// `/assets/app.js` from `root/app.js`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
    /// When no file matches, pass the request on to the route's upstream instead of
    /// answering 404.
    #[serde(default)]
    pub try_upstream: bool,
    /// List a directory's files when it has no index file. Default: false.
    #[serde(default)]
    pub directory_listing: bool,
    /// `Cache-Control` sent with files, as written (`public, max-age=3600`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
}

fn default_index() -> Vec<String> {
    vec!["index.html".into()]
}

impl StaticFiles {
    pub(crate) fn validate(&self, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
        let root = spot.key("root");
        match std::fs::metadata(&self.root) {
            // Read at load time so a typo fails `pylon check`, not the first request.
            Err(e) => errors.push(root.error(format!("cannot read {}: {e}", self.root.display()))),
            Ok(meta) if !meta.is_dir() => {
                errors.push(root.error(format!("{} is not a directory", self.root.display())));
            }
            Ok(_) => {}
        }
        let index = spot.key("index");
        for (i, name) in self.index.iter().enumerate() {
            if name.is_empty() || name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
                errors.push(index.item(i).error(format!(
                    "an index file is a plain file name (no `/`), found {name:?}"
                )));
            }
        }
        if let Some(prefix) = &self.strip_prefix {
            if !prefix.starts_with('/') {
                errors.push(spot.key("strip_prefix").error(format!(
                    "strip_prefix must start with `/`, found {prefix:?}"
                )));
            }
        }
        if let Some(value) = &self.cache_control {
            crate::middleware::check_header_value(&spot.key("cache_control"), value, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use crate::{load_str, Format};

    /// The errors of a config whose route has `static: {settings}`.
    fn errors(settings: &str) -> Vec<String> {
        let text = format!(
            "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nroutes:\n  - name: files\n    rule: \"PathPrefix(`/`)\"\n    middlewares:\n      - static: {{ {settings} }}\n"
        );
        match load_str(&text, Format::Yaml, Path::new("t.yaml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn root_must_be_an_existing_directory() {
        let dir = std::env::temp_dir();
        assert_eq!(
            errors(&format!("root: \"{}\"", dir.display())),
            Vec::<String>::new()
        );
        let missing = errors("root: /no/such/pylon/dir");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with(
                "t.yaml:6:25: routes[0].middlewares[0].static.root: cannot read /no/such/pylon/dir"
            ),
            "{missing:?}"
        );
        let file = dir.join(format!("pylon-static-root-{}", std::process::id()));
        std::fs::write(&file, "x").unwrap();
        let not_dir = errors(&format!("root: \"{}\"", file.display()));
        std::fs::remove_file(&file).unwrap();
        assert!(not_dir[0].ends_with("is not a directory"), "{not_dir:?}");
    }

    #[test]
    fn index_names_prefix_and_cache_control_are_checked() {
        let root = std::env::temp_dir();
        let errs = errors(&format!(
            "root: \"{}\", index: [index.html, a/b.html, ..], strip_prefix: assets, cache_control: \"a\\nb\"",
            root.display()
        ));
        let all = errs.join("\n");
        assert!(
            all.contains("static.index[1]: an index file is a plain file name"),
            "{all}"
        );
        assert!(
            all.contains("static.index[2]: an index file is a plain file name"),
            "{all}"
        );
        assert!(
            all.contains("static.strip_prefix: strip_prefix must start with `/`"),
            "{all}"
        );
        assert!(
            all.contains("static.cache_control: invalid header value"),
            "{all}"
        );
        assert_eq!(errs.len(), 4, "{all}");
    }
}
