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
//! Node-local sections — `server`, `listeners`, `dns`, `admin`, `metrics` — are read once at start:
//! Pingora binds its listeners and sizes its engine before serving, and the resolver and the
//! admin API's listener are built then. A reload that changes them applies everything else
//! and says that those need a restart (or `pylon -u`).
//!
//! The applier also remembers the outcome of the last reload from the config source
//! ([`Applier::record_reload`]), so that a refused reload's errors can be shown where
//! operators look (the admin API's status), not only in the log.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

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
    /// The config equals the running one: nothing was compiled or swapped.
    pub unchanged: bool,
}

/// Why an apply did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The step run before the swap (persisting the config) failed.
    #[error("{0}")]
    BeforeSwap(String),
}

/// The outcome of one reload from the config source (a file change, SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// What triggered it: `file change`, `SIGHUP`.
    pub trigger: String,
    pub at: SystemTime,
    /// The generation serving after it (the old one when refused).
    pub generation: u64,
    /// Why it was refused (each config error with its file:line:column); empty when it
    /// applied or changed nothing.
    pub errors: Vec<String>,
}

/// Installs new configs into the shared snapshot, one at a time.
pub struct Applier {
    snapshot: SharedSnapshot,
    resolver: Arc<Resolver>,
    /// Serializes applies: two triggers at once must not both compile against the same
    /// previous snapshot and lose one of the changes.
    lock: Mutex<()>,
    last_reload: Mutex<Option<ReloadOutcome>>,
}

impl Applier {
    pub fn new(snapshot: SharedSnapshot, resolver: Arc<Resolver>) -> Applier {
        Applier {
            snapshot,
            resolver,
            lock: Mutex::new(()),
            last_reload: Mutex::new(None),
        }
    }

    /// Remembers how the last reload from the config source ended.
    pub fn record_reload(&self, outcome: ReloadOutcome) {
        crate::metrics::reload_recorded(outcome.errors.is_empty(), outcome.at);
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// How the last reload from the config source ended, if there was one.
    pub fn last_reload(&self) -> Option<ReloadOutcome> {
        self.last_reload
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> &SharedSnapshot {
        &self.snapshot
    }

    /// Compiles `config` against the running snapshot and swaps it in. Blocking. On error
    /// nothing changes.
    pub fn apply(&self, config: Config) -> Result<Applied, ApplyError> {
        self.apply_with(config, |_| Ok(()))
    }

    /// Like [`Applier::apply`], running `before_swap` on the compiled config (with the
    /// running node-local sections) after it compiled and before it serves — to persist it,
    /// so that a change is durable before anyone is told it applied. If it fails, nothing
    /// changes. It is not run for a config equal to the running one.
    pub fn apply_with(
        &self,
        config: Config,
        before_swap: impl FnOnce(&Config) -> Result<(), String>,
    ) -> Result<Applied, ApplyError> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.snapshot.load_full();
        let (config, needs_restart) = with_running_node_settings(config, &current.config);
        if config == *current.config {
            return Ok(Applied {
                generation: current.generation,
                summary: ChangeSummary::default(),
                needs_restart,
                unchanged: true,
            });
        }
        let generation = current.generation + 1;
        let (next, summary) =
            Snapshot::compile_next(Arc::new(config), generation, &self.resolver, Some(&current))?;
        before_swap(&next.config).map_err(ApplyError::BeforeSwap)?;
        self.snapshot.store(Arc::new(next));
        crate::notify::config_applied(generation, &summary);
        Ok(Applied {
            generation,
            summary,
            needs_restart,
            unchanged: false,
        })
    }

    /// What applying `config` would change, without changing anything.
    pub fn dry_run(&self, config: Config) -> Result<Applied, ApplyError> {
        let current = self.snapshot.load_full();
        let (config, needs_restart) = with_running_node_settings(config, &current.config);
        let unchanged = config == *current.config;
        let (_, summary) = Snapshot::compile_next(
            Arc::new(config),
            current.generation + 1,
            &self.resolver,
            Some(&current),
        )?;
        Ok(Applied {
            generation: current.generation,
            summary,
            needs_restart,
            unchanged,
        })
    }
}

/// `config` with the running `server`, `listeners`, `dns` and `admin` (what is bound and
/// running stays what the snapshot describes), and the names of those it wanted to change.
fn with_running_node_settings(mut config: Config, running: &Config) -> (Config, Vec<&'static str>) {
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
    if config.admin != running.admin {
        needs_restart.push("admin");
    }
    if config.metrics != running.metrics {
        needs_restart.push("metrics");
    }
    config.server = running.server.clone();
    config.listeners = running.listeners.clone();
    config.dns = running.dns.clone();
    config.admin = running.admin.clone();
    config.metrics = running.metrics.clone();
    (config, needs_restart)
}
