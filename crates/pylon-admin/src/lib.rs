//! Pylon's management API: the routes, upstreams and middlewares of a running Pylon over
//! HTTP (axum, on its own listener and runtime), the whole config, status and health, an
//! OpenAPI 3.1 document and Swagger UI served from the binary.
//!
//! Every change goes through the one apply path (`pylon_core::apply::Applier`) and is made
//! durable by a [`ConfigStore`] before it serves and before the answer: a change the API
//! acknowledged survives a restart. Modules:
//! - `api`: handlers and the router (auth, rate limit and `ETag` layers);
//! - `edit`: the write path (If-Match, the managed document, validate, apply + persist);
//! - `store`: where changes are kept ([`FileStore`]: `api.yaml` of a config directory, or
//!   the config file written back whole), atomic writes; the etcd store of a fleet node
//!   implements [`ConfigStore`] in the `pylon` crate (it needs `pylon-store`);
//! - `resource`: routes, upstreams and middlewares as API values;
//! - `status`: status and upstream health; `health`: `/health` and `/ready`; `auth`, `limit`: credentials and rate limit;
//! - `metrics`: `GET /metrics` (no credentials), and its own listener;
//! - `openapi`: the document, with the config model's own schemas; `service`: the
//!   Pingora background service.

mod api;
mod auth;
mod edit;
mod error;
mod health;
mod limit;
mod metrics;
mod openapi;
mod resource;
mod service;
mod status;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pylon_config::AdminConfig;
use pylon_core::apply::Applier;

pub use metrics::MetricsService;
pub use service::{app, bind, AdminService};
pub use store::{
    document, to_value, write_atomic, Candidate, ConfigStore, FileStore, StoreError, StoreInfo,
    Stored, API_FILE,
};

/// What the handlers share.
pub struct Admin {
    applier: Arc<Applier>,
    store: Arc<dyn ConfigStore>,
    auth: auth::Auth,
    limiter: Option<limit::RateLimiter>,
    started: Instant,
    version: String,
    listen: SocketAddr,
    /// One write at a time: each reads the stored document, changes it and stores it.
    writes: Mutex<()>,
    /// What `/ready` requires of upstreams.
    ready: pylon_config::ReadyConfig,
}

impl Admin {
    /// The API for `settings`, applying through `applier` and saving to `store`; `version`
    /// is what the status reports.
    pub fn new(
        settings: &AdminConfig,
        applier: Arc<Applier>,
        store: Arc<dyn ConfigStore>,
        version: &str,
    ) -> Admin {
        Admin {
            applier,
            store,
            auth: auth::Auth::new(settings),
            limiter: settings.rate_limit.as_ref().map(limit::RateLimiter::new),
            started: Instant::now(),
            version: version.to_string(),
            listen: settings.listen,
            writes: Mutex::new(()),
            ready: settings.ready.clone(),
        }
    }
}
