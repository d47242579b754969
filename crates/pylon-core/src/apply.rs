//! The one path every config change takes: validate → compile → diff → swap → report.
//!
//! A file change, SIGHUP (and, later, the admin API and the etcd watch) all hand a loaded,
//! validated [`Config`] to [`Applier::apply`]. Loading and validation happen before (they
//! need the source: file:line:column errors belong to the file), so a config that fails them
//! never reaches this point and the running snapshot keeps serving.
//!
//! Applies are serialized (one at a time, each against the snapshot the previous one
//! installed), compiled off the async workers by the caller (compiling resolves new
//! servers' names, which blocks), and installed with one atomic swap: a request that already
//! loaded the old snapshot finishes on it; the next one sees the new one. Unchanged upstream
//! pools and middlewares are carried over ([`Snapshot::compile_next`]).
//!
//! Node-local sections — `server`, `listeners`, `dns` — are read once at start: Pingora binds
//! its listeners and sizes its engine before serving, and the resolver is built then. A
//! reload that changes them applies everything else and says that those need a restart (or
//! `pylon -u`).

use std::sync::{Arc, Mutex};

use pylon_config::Config;
use pylon_upstream::dns::Resolver;

use crate::snapshot::{ChangeSummary, CompileError, SharedSnapshot, Snapshot};

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    /// The generation now serving.
    pub generation: u64,
    pub summary: ChangeSummary,
    /// Node-local sections the new config changes, which only a restart applies.
    pub needs_restart: Vec<&'static str>,
}

/// Installs new configs into the shared snapshot, one at a time.
pub struct Applier {
    snapshot: SharedSnapshot,
    resolver: Arc<Resolver>,
    /// Serializes applies: two triggers at once must not both compile against the same
    /// previous snapshot and lose one of the changes.
    lock: Mutex<()>,
}

impl Applier {
    pub fn new(snapshot: SharedSnapshot, resolver: Arc<Resolver>) -> Applier {
        Applier {
            snapshot,
            resolver,
            lock: Mutex::new(()),
        }
    }

    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.snapshot
    }

    /// Compiles `config` against the running snapshot and swaps it in. Blocking. On error
    /// nothing changes.
    pub fn apply(&self, mut config: Config) -> Result<Applied, CompileError> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load_full();
        let running = &current.config;
        let mut needs_restart = Vec::new();
        if config.server != running.server {
            needs_restart.push("server");
        }
        if config.listeners != running.listeners {
            needs_restart.push("listeners");
        }
        if config.dns != running.dns {
            needs_restart.push("dns");
        }
        // What is bound and running stays what the snapshot describes.
        config.server = running.server.clone();
        config.listeners = running.listeners.clone();
        config.dns = running.dns.clone();
        let generation = current.generation + 1;
        let (next, summary) =
            Snapshot::compile_next(Arc::new(config), generation, &self.resolver, Some(&current))?;
        self.snapshot.store(Arc::new(next));
        Ok(Applied {
            generation,
            summary,
            needs_restart,
        })
    }
}
