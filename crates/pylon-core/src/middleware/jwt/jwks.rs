//! Keys from a JWKS URL: fetched at start, refreshed in the background, fetched again when a
//! token names a `kid` we do not hold.
//!
//! Design, chosen to survive a live reload without bookkeeping:
//! - Each `jwt` middleware with a `jwks_url` holds an `Arc<Jwks>`: its current [`KeySet`]
//!   behind an `ArcSwap` (a request reads it without locking) and a fetch lock.
//! - Compiling registers a `Weak<Jwks>` in a process-wide list, or reuses the live `Jwks`
//!   of the same URL and settings (so a reload keeps its keys); compiling never fetches, so
//!   `pylon check` stays offline.
//! - [`JwksRefreshService`], a Pingora background service that only `run` starts, looks at
//!   the list every [`TICK`] and, for each `Jwks` still alive and due, spawns one fetch.
//!   When a snapshot is replaced and its middlewares dropped, the `Weak` no longer
//!   upgrades: the entry is pruned and its refreshing stops. Nothing to cancel.
//! - A request whose token names an unknown `kid` (or that finds no keys at all, say before
//!   the first fetch ended) fetches itself, at most once per `jwks_cooldown`; concurrent
//!   requests wait for the fetch under way instead of starting their own.
//! - A failed fetch keeps the last good keys, is logged, and is tried again after
//!   `jwks_cooldown`. With no good keys yet, tokens get 401 until a fetch succeeds.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::BytesMut;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::{HttpPeer, ALPN};
use pylon_config::middleware::{Algorithm, JwksUrl};

use super::keys::{parse_jwks, Key};

/// How often the refresher looks for sets that are due.
pub const TICK: Duration = Duration::from_secs(1);
/// Bound on one whole fetch: resolve, connect, TLS, request, response.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 512 * 1024;
const USER_AGENT: &str = concat!("pylon/", env!("CARGO_PKG_VERSION"));

/// The keys of one fetch. `generation` changes whenever the keys do, so cached tokens
/// verified with an older set are checked again.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Arc<Key>>,
    pub generation: u64,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    /// When the next background fetch is due; `None`: now.
    next_due: Option<Instant>,
}

/// One JWKS URL's keys and fetching.
pub struct Jwks {
    url: JwksUrl,
    /// The URL as logged: without its query, which might carry something private.
    label: String,
    algorithms: Vec<Algorithm>,
    refresh: Duration,
    cooldown: Duration,
    keys: ArcSwap<KeySet>,
    fetch: tokio::sync::Mutex<FetchState>,
    /// Made at the first fetch, so compiling (and `pylon check`) builds no TLS context.
    connector: OnceLock<Connector>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.label)
            .field("keys", &self.keys.load().keys.len())
            .finish_non_exhaustive()
    }
}

/// The `Jwks` of live middlewares. Dead entries are pruned as the list is read.
static LIVE: Mutex<Vec<Weak<Jwks>>> = Mutex::new(Vec::new());

fn live() -> Vec<Arc<Jwks>> {
    let mut list = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
}

impl Jwks {
    /// The set of `url` with these settings: the live one if a middleware already has it
    /// (two middlewares naming one URL share keys and fetches, and a reload that keeps the
    /// settings keeps the keys), else a new one with no keys yet, registered for the
    /// refresher.
    pub fn new(
        url: JwksUrl,
        algorithms: Vec<Algorithm>,
        refresh: Duration,
        cooldown: Duration,
    ) -> Arc<Jwks> {
        let mut list = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|w| w.strong_count() > 0);
        let same = |j: &Arc<Jwks>| {
            j.url == url
                && j.algorithms == algorithms
                && j.refresh == refresh
                && j.cooldown == cooldown
        };
        if let Some(live) = list.iter().filter_map(Weak::upgrade).find(same) {
            return live;
        }
        let scheme = if url.tls { "https" } else { "http" };
        let path = url.path.split('?').next().unwrap_or("/");
        let jwks = Arc::new(Jwks {
            label: format!("{scheme}://{}{path}", url.authority()),
            url,
            algorithms,
            refresh,
            cooldown,
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            connector: OnceLock::new(),
        });
        list.push(Arc::downgrade(&jwks));
        jwks
    }

    /// The keys held now.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Replaces the keys, as a fetch would.
    #[cfg(test)]
    pub fn set_keys(&self, keys: Vec<Arc<Key>>) {
        let generation = self.keys.load().generation + 1;
        self.keys.store(Arc::new(KeySet { keys, generation }));
    }

    /// For the refresher: fetch if due and no fetch is under way.
    pub async fn refresh_if_due(&self) {
        let Ok(mut state) = self.fetch.try_lock() else {
            return;
        };
        if state.next_due.is_some_and(|due| Instant::now() < due) {
            return;
        }
        self.fetch_locked(&mut state).await;
    }

    /// For a request that found no key in key set `seen` (its generation): waits for a
    /// fetch under way, or fetches unless one was tried within the cooldown. True when the
    /// keys changed since `seen` (check again) — also when a fetch finished between the
    /// request's check and this call, which the cooldown would otherwise hide.
    pub async fn refetch(&self, seen: u64) -> bool {
        let mut state = self.fetch.lock().await;
        if self.keys.load().generation != seen {
            return true;
        }
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.cooldown)
        {
            return false;
        }
        self.fetch_locked(&mut state).await
    }

    /// Fetches now (the caller holds the fetch lock); true when the keys changed.
    async fn fetch_locked(&self, state: &mut FetchState) -> bool {
        let started = Instant::now();
        state.last_attempt = Some(started);
        let fetched = match tokio::time::timeout(FETCH_TIMEOUT, self.fetch_once()).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())),
        };
        let current = self.keys.load_full();
        match fetched {
            Ok(keys) => {
                state.next_due = Some(started + self.refresh);
                let same = keys.len() == current.keys.len()
                    && keys
                        .iter()
                        .zip(current.keys.iter())
                        .all(|(a, b)| a.fingerprint() == b.fingerprint());
                if same {
                    return false;
                }
                let kids: Vec<&str> = keys
                    .iter()
                    .map(|k| k.kid.as_deref().unwrap_or("-"))
                    .collect();
                log::info!(
                    "jwt: JWKS {}: {} key(s) (kid {})",
                    self.label,
                    keys.len(),
                    kids.join(", ")
                );
                self.keys.store(Arc::new(KeySet {
                    keys,
                    generation: current.generation + 1,
                }));
                true
            }
            Err(e) => {
                state.next_due = Some(started + self.cooldown);
                if current.keys.is_empty() {
                    log::warn!(
                        "jwt: cannot fetch the JWKS at {}: {e}; no keys yet, so tokens get 401; trying again in {}s",
                        self.label,
                        self.cooldown.as_secs()
                    );
                } else {
                    log::warn!(
                        "jwt: cannot fetch the JWKS at {}: {e}; keeping the {} key(s) fetched before",
                        self.label,
                        current.keys.len()
                    );
                }
                false
            }
        }
    }

    /// One GET of the URL, read and parsed; an error says why in words for the log.
    async fn fetch_once(&self) -> Result<Vec<Arc<Key>>, String> {
        let body = self.get().await?;
        let parsed = parse_jwks(&body, &self.algorithms)?;
        for note in &parsed.skipped {
            log::info!("jwt: JWKS {}: skipped {note}", self.label);
        }
        if parsed.keys.is_empty() {
            return Err("the JWKS holds no key usable with `algorithms`".into());
        }
        Ok(parsed.keys)
    }

    async fn get(&self) -> Result<BytesMut, String> {
        let url = &self.url;
        let addrs: Vec<_> = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
            .collect();
        // With TLS the certificate is checked against the system roots and the host name
        // (Pingora verifies whenever an SNI is given; `jwks_url` refuses IP hosts on https).
        let sni = if url.tls {
            url.host.clone()
        } else {
            String::new()
        };
        let connector = self.connector.get_or_init(|| Connector::new(None));
        // Each address in turn (`localhost` may be ::1 first while the IdP listens on IPv4).
        let mut failure = format!("{} has no address", url.host);
        let mut connected = None;
        for addr in addrs {
            let mut peer = HttpPeer::new(addr, url.tls, sni.clone());
            peer.options.alpn = ALPN::H1;
            peer.options.connection_timeout = Some(FETCH_TIMEOUT);
            peer.options.read_timeout = Some(FETCH_TIMEOUT);
            peer.options.write_timeout = Some(FETCH_TIMEOUT);
            match connector.get_http_session(&peer).await {
                Ok((session, _)) => {
                    connected = Some(session);
                    break;
                }
                Err(e) => failure = format!("cannot connect to {addr}: {e}"),
            }
        }
        let mut session = connected.ok_or(failure)?;
        let mut request =
            RequestHeader::build("GET", url.path.as_bytes(), Some(4)).map_err(|e| e.to_string())?;
        for (name, value) in [
            ("Host", url.authority()),
            (
                "Accept",
                "application/jwk-set+json, application/json".to_string(),
            ),
            ("User-Agent", USER_AGENT.to_string()),
            ("Connection", "close".to_string()),
        ] {
            request
                .insert_header(name, value)
                .map_err(|e| e.to_string())?;
        }
        let io = |e: Box<pingora::Error>| e.to_string();
        session
            .write_request_header(Box::new(request))
            .await
            .map_err(io)?;
        session.finish_request_body().await.map_err(io)?;
        session.read_response_header().await.map_err(io)?;
        let status = session.response_header().map_or(0, |h| h.status.as_u16());
        if status != 200 {
            return Err(format!("status {status}"));
        }
        let mut body = BytesMut::new();
        while let Some(piece) = session.read_response_body().await.map_err(io)? {
            if body.len() + piece.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&piece);
        }
        Ok(body)
    }
}

/// Keeps every live JWKS fresh: the first fetch at start, then every `jwks_refresh`
/// (`jwks_cooldown` after a failure). Fetches run concurrently, one per set at a time.
pub struct JwksRefreshService;

#[async_trait]
impl BackgroundService for JwksRefreshService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        loop {
            for jwks in live() {
                tokio::spawn(async move { jwks.refresh_if_due().await });
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }
}
