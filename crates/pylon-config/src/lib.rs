//! Pylon's configuration: the file schema users write (YAML, TOML or JSON, one model),
//! loading from a file or a directory, `${VAR}` substitution with `.env` files, validation
//! that reports every error at once with file:line:column and key path, and the JSON Schema
//! editors use to validate and complete configs.
//!
//! ```no_run
//! let loaded = pylon_config::load(std::path::Path::new("pylon.yaml"));
//! match loaded {
//!     Ok(loaded) => println!("{} routes", loaded.config.routes.len()),
//!     Err(errors) => eprintln!("{errors}"),
//! }
//! ```
//!
//! Pipeline: parse each file into a spanned tree (`node`, via `yaml`, `json`, `toml_doc`)
//! → substitute env in string scalars (`env`) → type each entry through a serde
//! deserializer over the tree (`de`) → cross-entry checks (`validate`) → merge, and rewrite
//! load-balancer mode into an upstream and a route (`loader`).
//!
//! The model: [`Config`] (`model`), [`Upstream`] with its balancing and timeouts
//! (`upstream`), [`Server`] and [`ServerAddress`] (`server`), [`PeerOptions`] (`peer`),
//! [`HealthCheck`] and [`PassiveHealth`] (`health`), [`Retries`] (`retry`), [`DnsConfig`]
//! (`dns`), [`AdminConfig`] (`admin`), [`Middleware`] with one module per type (`middleware`).
//!
//! Writing back: [`parse_value`] reads API bodies into JSON values with the loader's parser
//! and errors, and [`to_yaml`] writes a document that loads back to the same values (`value`).

mod access_log;
mod addr;
mod admin;
mod de;
mod dns;
pub mod duration;
mod env;
mod error;
mod health;
mod json;
mod loader;
mod metrics;
pub mod middleware;
mod model;
mod node;
mod notifications;
mod peer;
mod reload;
mod retry;
mod server;
mod store;
mod toml_doc;
mod tracing;
mod upstream;
mod validate;
mod value;
mod yaml;

pub use access_log::{
    AccessLogConfig, LogFormat, LogPart, LogTemplate, LogVar, RouteAccessLog,
    DEFAULT_JSON_TEMPLATE, DEFAULT_TEXT_TEMPLATE,
};
pub use admin::*;
pub use dns::*;
pub use error::{ConfigError, ConfigErrors};
pub use health::*;
pub use loader::{
    load, load_replacing, load_str, parse_files, Format, Loaded, Origin, Origins, Parsed,
    MAX_FILE_BYTES,
};
pub use metrics::*;
pub use middleware::{Middleware, MiddlewareRef};
pub use model::*;
pub use notifications::*;
pub use peer::*;
pub use reload::*;
pub use retry::*;
pub use server::*;
pub use store::*;
pub use tracing::*;
pub use upstream::*;
pub use value::{escape_env, parse_value, to_yaml};

/// The JSON Schema (draft-07, the dialect editors' YAML and JSON language servers support
/// best) of a config file, for `pylon schema`.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<Config>().to_value();
    schema["title"] = "Pylon configuration".into();
    // The loader accepts (and ignores) a top-level `$schema` key, for JSON editors.
    schema["properties"]["$schema"] = serde_json::json!({
        "type": "string",
        "description": "Path or URL of this file's JSON Schema, for editors. Ignored by Pylon."
    });
    schema
}
