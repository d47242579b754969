//! Re-resolves server host names and updates pools in place, as a Pingora background service.
//!
//! Each pool with named servers is refreshed on the fixed `dns.refresh` interval, or else
//! when the shortest record TTL runs out (clamped to [`MIN_TTL`, `MAX_TTL`]). Only a change
//! of addresses touches the pool, and endpoints whose address stays keep their health state,
//! counters and pooled connections. A failed lookup keeps the last good addresses and is
//! retried after [`RETRY_AFTER_FAILURE`].

use super::pool::UpstreamPool;
use crate::snapshot::SharedSnapshot;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pylon_config::ServerAddress;
use pylon_upstream::dns::Resolver;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(300);
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How often the service looks for pools that are due.
const TICK: Duration = Duration::from_millis(250);

pub struct DnsRefreshService {
    snapshot: SharedSnapshot,
    resolver: Arc<Resolver>,
    fixed_interval: Option<Duration>,
}

impl DnsRefreshService {
    pub fn new(
        snapshot: SharedSnapshot,
        resolver: Arc<Resolver>,
        fixed_interval: Option<Duration>,
    ) -> Self {
        DnsRefreshService {
            snapshot,
            resolver,
            fixed_interval,
        }
    }

    /// Resolves every server of `pool`; returns the addresses per server and when to look
    /// again. IP servers keep their address.
    async fn resolve_pool(&self, pool: &UpstreamPool) -> (Vec<Vec<SocketAddr>>, Duration) {
        let current = pool.addresses();
        let mut next = self.fixed_interval.unwrap_or(MAX_TTL);
        let mut out = Vec::with_capacity(pool.definition.servers.len());
        for (i, server) in pool.definition.servers.iter().enumerate() {
            match &server.address {
                ServerAddress::Ip(addr) => out.push(vec![*addr]),
                ServerAddress::Name { host, port } => {
                    match self.resolver.resolve(host, *port).await {
                        Ok(resolved) => {
                            if self.fixed_interval.is_none() {
                                next = next.min(resolved.ttl.clamp(MIN_TTL, MAX_TTL));
                            }
                            out.push(resolved.addrs);
                        }
                        Err(e) => {
                            log::warn!("upstream `{}`: {e}; keeping the last addresses", pool.name);
                            next = next.min(RETRY_AFTER_FAILURE);
                            out.push(current.get(i).cloned().unwrap_or_default());
                        }
                    }
                }
            }
        }
        (out, next)
    }
}

#[async_trait]
impl BackgroundService for DnsRefreshService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Keyed by pool identity, so a reload's new pool is refreshed on its own schedule.
        let mut due: HashMap<usize, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            let snapshot = self.snapshot.load_full();
            let now = Instant::now();
            let mut live = Vec::new();
            for pool in snapshot.upstreams.values() {
                if !pool.has_names() {
                    continue;
                }
                let id = Arc::as_ptr(pool) as usize;
                live.push(id);
                let first = self.fixed_interval.unwrap_or(MIN_TTL);
                if *due.entry(id).or_insert(now + first) > now {
                    continue;
                }
                let (addresses, next) = self.resolve_pool(pool).await;
                if addresses != pool.addresses() {
                    log::info!(
                        "upstream `{}`: servers now resolve to {addresses:?}",
                        pool.name
                    );
                    if let Err(e) = pool.set_addresses(&addresses) {
                        log::warn!("upstream `{}`: {e}", pool.name);
                    }
                }
                due.insert(id, Instant::now() + next);
            }
            due.retain(|id, _| live.contains(id));
        }
    }
}
