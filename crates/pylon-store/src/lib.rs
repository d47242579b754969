//! Pylon's shared config store: a fleet of nodes takes its routes, upstreams, middlewares
//! and error pages from etcd, each resource under its own key, while every node's own file
//! keeps its node-local settings.
//!
//! Layout under a prefix (`/pylon`): `routes/NAME`, `upstreams/NAME`, `middlewares/NAME`
//! (each the resource as JSON or YAML, the shape it has in a config file), `error_pages`
//! (the whole map) and `generation`, a counter that every write transaction compares and
//! bumps ([`EtcdStore::write`]), so two writers cannot overwrite each other unknowingly.
//!
//! [`EtcdStore::read`] reads a prefix in one request ([`Contents`]),
//! [`Contents::assemble`] builds a node's config from it with errors naming the key,
//! [`EtcdStore::watch`] follows changes, [`EtcdStore::seed`] fills an empty prefix.
//! A writer (the admin API) checks a write with [`EtcdStore::preview`] (the config every
//! node would build, or the conflict), then makes it with [`EtcdStore::write`];
//! [`Change::to_replace`] turns a whole new config into the puts and deletes it needs.

mod contents;
mod etcd;
mod layout;

pub use contents::{origin, Change, Contents};
pub use etcd::{describe, EtcdStore, PreviewError, SeedError, StoreError, WriteError};
pub use etcd_client::{WatchResponse, WatchStream};
pub use layout::{KeyKind, Layout};
