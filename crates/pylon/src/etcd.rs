//! A node of a fleet that shares its config through etcd (`config: { store: etcd, … }`).
//!
//! At start the node reads its prefix once (retrying an unreachable etcd with back-off for
//! `config.start_timeout`), builds its config from its own file plus the resources, and
//! serves. Then this background service (the shape of the file reload service) watches the
//! prefix from the revision it read: a change waits [`DEBOUNCE`] for the rest of a
//! multi-key transaction, the whole prefix is read again (one request, one revision) and
//! handed to the shared [`Applier`]. A config that fails validation is refused with every
//! error naming its key, and the running one keeps serving.
//!
//! etcd unreachable or the watch broken: the node keeps serving what it has, logs once,
//! retries with exponential back-off ([`BACKOFF_MIN`] to [`BACKOFF_MAX`]), and resyncs
//! with a full read before watching again — which also covers a watch whose revision etcd
//! has compacted away. SIGHUP forces such a full read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pylon_config::{Parsed, StoreConfig};
use pylon_core::apply::Applier;
use pylon_store::{Contents, EtcdStore, StoreError, WatchResponse, WatchStream};

/// How long a change waits for the rest of its transaction's events (one apply for a
/// multi-key write instead of one per key).
pub const DEBOUNCE: Duration = Duration::from_millis(50);
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Exponential back-off between tries: [`BACKOFF_MIN`], doubling up to [`BACKOFF_MAX`].
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(BACKOFF_MIN)
    }

    fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        delay
    }
}

/// Reads the prefix for a starting node, retrying an unreachable etcd for
/// `start_timeout`. Blocking (its own short-lived runtime: the store's connection lives on
/// the runtime that made it, and Pingora's are not running yet).
pub fn read_at_start(settings: &StoreConfig) -> Result<Contents, String> {
    on_own_runtime(settings, async |store| {
        let deadline = Instant::now() + settings.start_timeout;
        let mut backoff = Backoff::new();
        let mut waiting = false;
        loop {
            match store.read().await {
                Ok(contents) => {
                    if waiting {
                        log::info!("etcd at {} answered", store.endpoints());
                    }
                    return Ok(contents);
                }
                Err(e) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(format!(
                            "{e}; gave up after {:?} (config.start_timeout)",
                            settings.start_timeout
                        ));
                    }
                    if !waiting {
                        log::warn!(
                            "{e}; retrying for up to {:?} (config.start_timeout)",
                            settings.start_timeout
                        );
                        waiting = true;
                    }
                    tokio::time::sleep(backoff.next().min(deadline - now)).await;
                }
            }
        }
    })
}

/// Reads the prefix once, without retrying (for `pylon check`).
pub fn read_once(settings: &StoreConfig) -> Result<Contents, String> {
    on_own_runtime(settings, async |store| {
        store.read().await.map_err(|e| e.to_string())
    })
}

/// Runs `work` with a store connected on a short-lived runtime of its own. Blocking.
pub(crate) fn on_own_runtime<T>(
    settings: &StoreConfig,
    work: impl AsyncFnOnce(EtcdStore) -> Result<T, String>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime to read etcd: {e}"))?;
    runtime.block_on(async {
        let store = EtcdStore::connect(settings)
            .await
            .map_err(|e| e.to_string())?;
        work(store).await
    })
}

/// What a start read found, in one line.
pub fn describe(settings: &StoreConfig, contents: &Contents) -> String {
    use pylon_config::ResourceKind as K;
    format!(
        "etcd prefix {} at generation {} (revision {}): {} routes, {} upstreams, {} middlewares{}",
        settings.prefix,
        contents.generation,
        contents.revision,
        contents.count(K::Route),
        contents.count(K::Upstream),
        contents.count(K::Middleware),
        if contents.count(K::ErrorPages) > 0 {
            ", error pages"
        } else {
            ""
        }
    )
}

/// The watch: the node's own files (read once, at start), where the fleet's resources are,
/// and the applier they go to.
pub struct EtcdWatch {
    local: Parsed,
    settings: StoreConfig,
    applier: Arc<Applier>,
    /// `--bind`, applied to every config built, as at start.
    bind: Option<SocketAddr>,
    /// The revision the node's running config was read at.
    start_revision: i64,
}

/// How following a watch stream ended.
enum Followed {
    Shutdown,
    /// The stream broke (etcd went away): back off, then resync.
    Broken(String),
    /// etcd canceled the watch (its revision was compacted away): resync now.
    Resync(String),
}

impl EtcdWatch {
    pub fn new(
        local: Parsed,
        settings: StoreConfig,
        applier: Arc<Applier>,
        bind: Option<SocketAddr>,
        start_revision: i64,
    ) -> EtcdWatch {
        EtcdWatch {
            local,
            settings,
            applier,
            bind,
            start_revision,
        }
    }

    fn serving(&self) -> u64 {
        self.applier.snapshot().load().generation
    }

    /// Builds the config from `contents` and applies it; logs what happened. Blocking.
    fn apply(&self, contents: &Contents, why: &str) {
        let running = self.serving();
        let at = format!(
            "etcd generation {}, revision {}",
            contents.generation, contents.revision
        );
        let config = match contents.assemble(&self.local) {
            Ok(mut config) => match crate::reload::apply_bind(&mut config, self.bind) {
                Ok(()) => config,
                Err(e) => {
                    log::error!("etcd change ({why}, {at}) refused: {e}; still serving generation {running}");
                    pylon_core::notify::config_rejected("etcd change", running, &[e.to_string()]);
                    return;
                }
            },
            Err(errors) => {
                log::error!(
                    "etcd change ({why}, {at}) refused, {} error(s); still serving generation {running}",
                    errors.len()
                );
                for e in &errors {
                    log::error!("{e}");
                }
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                pylon_core::notify::config_rejected("etcd change", running, &errors);
                return;
            }
        };
        match self.applier.apply(config) {
            Ok(applied) if applied.unchanged => log::info!(
                "etcd change ({why}, {at}): no change; generation {} keeps serving",
                applied.generation
            ),
            Ok(applied) => {
                log::info!(
                    "etcd change ({why}, {at}): generation {} serving; {}",
                    applied.generation,
                    applied.summary
                );
                if contents.is_empty() {
                    log_empty(&self.settings);
                }
            }
            Err(e) => {
                log::error!(
                    "etcd change ({why}, {at}) refused: {e}; still serving generation {running}"
                );
                pylon_core::notify::config_rejected("etcd change", running, &[e.to_string()]);
            }
        }
    }

    /// Reads the whole prefix and applies it; the revision read, or why it failed.
    async fn resync(
        self: &Arc<Self>,
        store: &EtcdStore,
        why: &'static str,
    ) -> Result<i64, StoreError> {
        let contents = store.read().await?;
        let revision = contents.revision;
        let this = self.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || this.apply(&contents, why)).await {
            log::error!("etcd change ({why}) failed: {e}");
        }
        Ok(revision)
    }

    /// Follows `stream` until it breaks or the server stops, applying each change.
    async fn follow(
        self: &Arc<Self>,
        store: &EtcdStore,
        stream: &mut WatchStream,
        revision: &mut i64,
        shutdown: &mut ShutdownWatch,
        hangup: &mut Option<tokio::signal::unix::Signal>,
    ) -> Followed {
        loop {
            let response = tokio::select! {
                _ = shutdown.changed() => return Followed::Shutdown,
                Some(()) = recv(hangup) => {
                    match self.resync(store, "SIGHUP").await {
                        Ok(read) => *revision = read,
                        Err(e) => return Followed::Broken(e.to_string()),
                    }
                    continue;
                }
                response = next(stream) => match response {
                    Ok(response) => response,
                    Err(end) => return end,
                },
            };
            // Events this node already read (a change that arrived during a read) are not
            // read again.
            let newer = response
                .events()
                .iter()
                .any(|e| e.kv().is_some_and(|kv| kv.mod_revision() > *revision));
            if !newer {
                continue;
            }
            // The rest of a transaction's events arrive together; a full read after the
            // pause sees all of it at one revision.
            let pause = tokio::time::sleep(DEBOUNCE);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    more = next(stream) => if let Err(end) = more {
                        return end;
                    },
                }
            }
            match self.resync(store, "watch").await {
                Ok(read) => *revision = read,
                Err(e) => return Followed::Broken(e.to_string()),
            }
        }
    }
}

/// The next message of `stream`, or how following it ends: etcd canceled the watch (its
/// revision was compacted away; a canceled watch sends nothing more) or the stream broke.
async fn next(stream: &mut WatchStream) -> Result<WatchResponse, Followed> {
    match stream.message().await {
        Ok(Some(r)) if r.canceled() || r.compact_revision() > 0 => Err(Followed::Resync(format!(
            "the watch was canceled ({}; compacted at revision {})",
            r.cancel_reason(),
            r.compact_revision()
        ))),
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(Followed::Broken("the watch stream ended".into())),
        Err(e) => Err(Followed::Broken(format!(
            "the watch broke: {}",
            pylon_store::describe(&e)
        ))),
    }
}

/// Logs that the prefix holds nothing, so a node serving 404s says why.
pub fn log_empty(settings: &StoreConfig) {
    log::warn!(
        "etcd prefix {} is empty: no routes, every request gets 404 until it is seeded (`pylon store seed`)",
        settings.prefix
    );
}

/// The background service; holds the state in an `Arc` so applies can run on blocking
/// threads.
pub struct EtcdTask(pub Arc<EtcdWatch>);

#[async_trait]
impl BackgroundService for EtcdTask {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let watch = &self.0;
        let settings = &watch.settings;
        let store = match EtcdStore::connect(settings).await {
            Ok(store) => store,
            Err(e) => {
                log::error!("{e}: the config will not follow etcd");
                return;
            }
        };
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                log::error!("cannot listen for SIGHUP, re-reading etcd on signal is off: {e}");
                None
            }
        };
        log::info!(
            "etcd: watching prefix {} at {} from revision {}; SIGHUP re-reads it",
            settings.prefix,
            store.endpoints(),
            watch.start_revision + 1
        );
        let mut revision = watch.start_revision;
        let mut backoff = Backoff::new();
        // When etcd went away (logged once per outage), and whether the next watch must
        // start with a full read.
        let mut outage: Option<Instant> = None;
        let mut read_first = false;
        'watching: loop {
            let failure = 'attempt: {
                if read_first {
                    match watch.resync(&store, "resync").await {
                        Ok(read) => revision = read,
                        Err(e) => break 'attempt e.to_string(),
                    }
                    if let Some(since) = outage.take() {
                        log::info!(
                            "etcd at {} reachable again after {:.1?}: prefix re-read at revision {revision}",
                            store.endpoints(),
                            since.elapsed()
                        );
                    }
                    backoff = Backoff::new();
                }
                let mut stream = match store.watch(revision + 1).await {
                    Ok(stream) => stream,
                    Err(e) => break 'attempt e.to_string(),
                };
                match watch
                    .follow(
                        &store,
                        &mut stream,
                        &mut revision,
                        &mut shutdown,
                        &mut hangup,
                    )
                    .await
                {
                    Followed::Shutdown => return,
                    Followed::Broken(why) => why,
                    Followed::Resync(why) => {
                        log::warn!("etcd: {why}; re-reading prefix {}", settings.prefix);
                        read_first = true;
                        continue 'watching;
                    }
                }
            };
            read_first = true;
            if outage.is_none() {
                outage = Some(Instant::now());
                log::error!(
                    "etcd unreachable ({failure}); still serving generation {}, retrying with back-off (at most {BACKOFF_MAX:?})",
                    watch.serving()
                );
            } else {
                log::debug!("etcd still unreachable: {failure}");
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(backoff.next()) => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next()).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert_eq!(*delays.last().unwrap_or(&Duration::ZERO), BACKOFF_MAX);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
    }
}
