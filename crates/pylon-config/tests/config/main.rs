//! Loading tests: every format, every error kind with its exact place, env substitution,
//! `.env` files, directory mode and the JSON Schema. One test binary, several modules.

#![allow(clippy::unwrap_used)]

mod admin;
mod dir;
mod docs;
mod env;
mod errors;
mod formats;
mod lb;
mod middlewares;
mod schema;
mod store;
mod upstream_errors;
mod upstreams;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pylon_config::{load_str, Config, Format};

/// Loads YAML text as `t.yaml`, panicking with the errors if invalid.
pub fn yaml(text: &str) -> Config {
    load_str(text, Format::Yaml, Path::new("t.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

/// The errors of `text` in `format`, as displayed (`t.yaml:1:2: path: message`).
pub fn errors_in(text: &str, format: Format) -> Vec<String> {
    let origin = match format {
        Format::Yaml => "t.yaml",
        Format::Toml => "t.toml",
        Format::Json => "t.json",
    };
    match load_str(text, format, Path::new(origin)) {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// The errors of YAML `text` loaded as `t.yaml`.
pub fn errors(text: &str) -> Vec<String> {
    errors_in(text, Format::Yaml)
}

/// A minimal valid YAML prefix: one listener, one upstream.
pub const BASE: &str = "listeners:\n  - name: web\n    address: \"127.0.0.1:8080\"\nupstreams:\n  app:\n    servers: [\"127.0.0.1:3000\"]\n";

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn create() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("pylon-config-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixtures directory.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
