//! Live reload, as a Pingora background service: the config files are watched, and SIGHUP
//! asks for a reload at once. Both load and validate the config from its files and hand it
//! to the shared [`Applier`]; a config that fails is refused with every error logged
//! (file:line:column), and the running snapshot keeps serving.
//!
//! Watching polls each file's size, modification time and inode every `reload.interval`
//! instead of using inotify: it sees editors' write-to-temp-then-rename, Kubernetes'
//! ConfigMap symlink swaps and files on network mounts alike, and costs a few `stat` calls a
//! second. A change is applied once the files have stayed the same for one interval, so a
//! file caught half-written is not read.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pylon_config::{ReloadConfig, MIN_WATCH_INTERVAL};
use pylon_core::apply::{Applier, ApplyError, ReloadOutcome};

/// Where the config comes from, and what the command line changes in it.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The config file or directory.
    pub path: PathBuf,
    /// `--bind`: replaces the first listener's address.
    pub bind: Option<SocketAddr>,
}

impl ConfigSource {
    /// Loads and validates the config, with the command line's changes; on failure, every
    /// error.
    pub fn load(&self) -> Result<pylon_config::Loaded, Vec<String>> {
        self.parse().map(|(_, loaded)| loaded)
    }

    /// Like [`ConfigSource::load`], also returning the parsed files (a node whose routes
    /// come from a store builds its config again from them on every change).
    pub fn parse(&self) -> Result<(pylon_config::Parsed, pylon_config::Loaded), Vec<String>> {
        let strings = |errors: pylon_config::ConfigErrors| {
            errors.0.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        let parsed = pylon_config::parse_files(&self.path).map_err(strings)?;
        let (mut config, origins) = parsed.build_with_origins().map_err(strings)?;
        apply_bind(&mut config, self.bind).map_err(|e| vec![e])?;
        let loaded = pylon_config::Loaded {
            config,
            files: parsed.files.clone(),
            env_files: parsed.env_files(),
            origins,
        };
        Ok((parsed, loaded))
    }
}

/// `--bind`: replaces the first listener's address.
pub fn apply_bind(
    config: &mut pylon_config::Config,
    bind: Option<SocketAddr>,
) -> Result<(), String> {
    if let Some(bind) = bind {
        match config.listeners.first_mut() {
            Some(first) => first.address = bind,
            None => return Err("--bind given but the config has no listener".into()),
        }
    }
    Ok(())
}

/// Why a reload stood down: the files changed between reading and swapping.
const FILES_CHANGED: &str = "the config files changed while they were read";

/// One file's identity and state: a change to any of these is a change of the file.
type Stamp = Option<(u64, SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?, meta.ino()))
}

pub struct ReloadService {
    source: ConfigSource,
    applier: Arc<Applier>,
    settings: ReloadConfig,
    /// The files the last successful load read (config files and `.env` files): a config
    /// directory is also listed again on every look, so new files count.
    files: Mutex<Vec<PathBuf>>,
    /// The files' state when the service was made, right after the start-up load: a change
    /// made before the watcher's thread first runs is still seen as a change.
    initial: Mutex<Option<Vec<(PathBuf, Stamp)>>>,
}

impl ReloadService {
    pub fn new(
        source: ConfigSource,
        applier: Arc<Applier>,
        settings: ReloadConfig,
        files: Vec<PathBuf>,
    ) -> ReloadService {
        let mut service = ReloadService {
            source,
            applier,
            settings,
            files: Mutex::new(files),
            initial: Mutex::new(None),
        };
        service.initial = Mutex::new(Some(service.fingerprint()));
        service
    }

    fn files(&self) -> Vec<PathBuf> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The state of every watched file, in a stable order.
    fn fingerprint(&self) -> Vec<(PathBuf, Stamp)> {
        let mut paths = self.files();
        if self.source.path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&self.source.path) {
                paths.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            paths.push(self.source.path.clone());
        }
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect()
    }

    /// Remembers the outcome for the admin API's status.
    fn record(&self, why: &str, generation: u64, errors: Vec<String>) {
        if !errors.is_empty() {
            pylon_core::notify::config_rejected(why, generation, &errors);
        }
        self.applier.record_reload(ReloadOutcome {
            trigger: why.to_string(),
            at: SystemTime::now(),
            generation,
            errors,
        });
    }

    /// Loads, validates and applies the config; logs what happened. Blocking.
    fn reload(&self, why: &str) {
        let running = self.applier.snapshot().load().generation;
        // What the files were before reading them: if they change before the swap (the
        // admin API persists under the applier's lock), what was read is stale and must
        // not replace the newer config; the next look applies the files as they are then.
        let read_from = self.fingerprint();
        let loaded = match self.source.load() {
            Ok(loaded) => loaded,
            Err(errors) => {
                log::error!(
                    "config reload ({why}) refused, {} error(s); still serving generation {running}",
                    errors.len()
                );
                for e in &errors {
                    log::error!("{e}");
                }
                self.record(why, running, errors);
                return;
            }
        };
        if loaded.config.etcd().is_some() {
            // The running node takes its routes from this file: switching it to a store
            // here would apply an empty route set.
            log::error!(
                "config reload ({why}) refused: `config.store: etcd` needs a restart to take effect; still serving generation {running}"
            );
            return;
        }
        let mut files = loaded.files.clone();
        files.extend(loaded.env_files.iter().cloned());
        let unchanged_since_read = |_: &pylon_config::Config| {
            if self.fingerprint() == read_from {
                Ok(())
            } else {
                Err(FILES_CHANGED.to_string())
            }
        };
        let applied = self.applier.apply_with(loaded.config, unchanged_since_read);
        // Updated after the check, which compares against the set of files `read_from` saw.
        *self.files.lock().unwrap_or_else(|p| p.into_inner()) = files;
        let applied = match applied {
            Ok(applied) => applied,
            Err(ApplyError::BeforeSwap(e)) if e == FILES_CHANGED => {
                log::info!("config reload ({why}): {FILES_CHANGED}; the next look applies them");
                return;
            }
            Err(e) => {
                log::error!(
                    "config reload ({why}) refused: {e}; still serving generation {running}"
                );
                self.record(why, running, vec![e.to_string()]);
                return;
            }
        };
        self.record(why, applied.generation, Vec::new());
        if applied.unchanged {
            log::info!(
                "config reload ({why}): no change; generation {} keeps serving",
                applied.generation
            );
        } else {
            log::info!(
                "config reload ({why}): generation {} serving; {}",
                applied.generation,
                applied.summary
            );
        }
        if !applied.needs_restart.is_empty() {
            log::warn!(
                "config reload ({why}): `{}` changed, which only a restart or `pylon -u` applies; the running values stay",
                applied.needs_restart.join("`, `")
            );
        }
    }
}

/// Runs a blocking reload off the async workers.
async fn reload_blocking(service: &Arc<ReloadService>, why: &'static str) {
    let service = service.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || service.reload(why)).await {
        log::error!("config reload ({why}) failed: {e}");
    }
}

/// The background service; holds the state in an `Arc` so reloads can run on blocking
/// threads.
pub struct ReloadTask(pub Arc<ReloadService>);

#[async_trait]
impl BackgroundService for ReloadTask {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let service = &self.0;
        let interval = service.settings.interval.max(MIN_WATCH_INTERVAL);
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        let mut hangup = match hangup {
            Ok(signal) => {
                let watching = if service.settings.watch {
                    format!(", and so does a change to it (looked at every {interval:?})")
                } else {
                    String::new()
                };
                log::info!(
                    "config reload: SIGHUP reloads {}{watching}",
                    service.source.path.display()
                );
                Some(signal)
            }
            Err(e) => {
                log::error!("cannot listen for SIGHUP, reload on signal is off: {e}");
                None
            }
        };
        let initial = service
            .initial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let mut seen = initial.unwrap_or_else(|| service.fingerprint());
        // A change seen but not yet applied: the fingerprint it had, to check it settled.
        let mut pending: Option<Vec<(PathBuf, Stamp)>> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                // `seen` is always taken before the files are read: a change made while a
                // reload runs shows up as a difference on the next look, not absorbed.
                Some(()) = recv(&mut hangup) => {
                    seen = service.fingerprint();
                    pending = None;
                    reload_blocking(service, "SIGHUP").await;
                }
                () = tokio::time::sleep(interval), if service.settings.watch => {
                    let now = service.fingerprint();
                    match pending.take() {
                        Some(before) if before == now => {
                            seen = now;
                            reload_blocking(service, "file change").await;
                        }
                        _ if now != seen => pending = Some(now),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The next SIGHUP, or never when there is no signal stream.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
