//! Upstream pools: the endpoints of one named upstream (one per resolved address of each
//! server), their prebuilt Pingora peers, the balancer over them, and the health, retry and
//! connection-limit policy the proxy applies.
//!
//! The endpoint list and its balancer live together behind one `ArcSwap`, so a DNS refresh
//! swaps both at once; endpoints whose address stays keep their `ServerState` (health,
//! in-flight counts, latency) and connection limit across the swap.

use super::budget::RetryBudget;
use super::peer::{build_peer, Timeouts};
use super::policy::RetryPolicy;
use arc_swap::ArcSwap;
use pingora::upstreams::peer::HttpPeer;
use pylon_config::{Balance, CheckType, HashKey, HostHeader, ServerAddress, Upstream};
use pylon_upstream::balance::{Algorithm, Balancer, InFlight};
use pylon_upstream::dns::Resolver;
use pylon_upstream::health::active::{ActiveCheck, CheckTarget, ProbeKind, StatusMatch};
use pylon_upstream::health::passive::OutlierPolicy;
use pylon_upstream::ServerState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One resolved address of one configured server.
#[derive(Debug)]
pub struct Endpoint {
    pub state: Arc<ServerState>,
    /// The peer handed to Pingora (the upstream's timeouts and the server's peer options).
    pub peer: HttpPeer,
    /// The peer the active health check probes through, when there is a check.
    pub probe_peer: Option<HttpPeer>,
    /// The `Host` header to send instead of the client's, if any.
    pub host_header: Option<String>,
    /// `max_connections`: in-flight requests allowed to this endpoint.
    pub limit: Option<Arc<Semaphore>>,
    /// Which entry of the upstream's `servers` it came from.
    pub server_index: usize,
}

/// The endpoints of a pool and the balancer built for exactly them.
#[derive(Debug)]
pub struct Endpoints {
    pub list: Vec<Arc<Endpoint>>,
    states: Vec<Arc<ServerState>>,
    balancer: Balancer,
}

/// Why no server could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectError {
    /// The pool has no endpoint (e.g. its names do not resolve yet).
    NoServer,
    /// Every endpoint is down (active checks) or ejected (outlier detection).
    NoHealthy,
    /// Every usable endpoint is at `max_connections` and none freed up in `queue_timeout`.
    Busy,
}

/// A chosen endpoint, held for the life of one attempt: dropping it ends the in-flight
/// count and frees the connection slot.
#[derive(Debug)]
pub struct Selection {
    pub endpoint: Arc<Endpoint>,
    pub in_flight: InFlight,
    /// Whether it waited in the server's connection queue (`max_connections`).
    pub queued: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

/// A named pool.
#[derive(Debug)]
pub struct UpstreamPool {
    pub name: String,
    /// The definition it was built from (kept to diff reloads and rebuild after DNS changes).
    pub definition: Upstream,
    endpoints: ArcSwap<Endpoints>,
    pub algorithm: Algorithm,
    pub hash_key: Option<HashKey>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    pub budget: RetryBudget,
    pub outlier: Option<OutlierPolicy>,
    pub active: Option<Arc<ActiveCheck>>,
    pub panic_threshold: u8,
    pub queue_timeout: Duration,
}

fn algorithm_of(balance: &Balance) -> Algorithm {
    match balance {
        Balance::RoundRobin => Algorithm::RoundRobin,
        Balance::Random => Algorithm::Random,
        Balance::LeastConn => Algorithm::LeastConn,
        Balance::IpHash | Balance::Hash => Algorithm::Hash,
        Balance::LeastTime => Algorithm::LeastTime,
    }
}

fn active_check_of(def: &Upstream) -> Option<ActiveCheck> {
    let hc = def.health_check.as_ref()?;
    let kind = match hc.kind {
        CheckType::Tcp => ProbeKind::Tcp,
        CheckType::Http | CheckType::Https => ProbeKind::Http {
            method: hc.method.clone(),
            path: hc.path.clone(),
            host: hc.host.clone(),
            headers: hc
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            expected: hc
                .expected_status
                .iter()
                .map(|m| match m {
                    pylon_config::StatusMatch::Code(c) => StatusMatch::Code(*c),
                    pylon_config::StatusMatch::Class(c) => StatusMatch::Class(*c),
                })
                .collect(),
        },
    };
    Some(ActiveCheck {
        kind,
        interval: hc.interval,
        timeout: hc.timeout,
        healthy_threshold: hc.healthy_threshold,
        unhealthy_threshold: hc.unhealthy_threshold,
    })
}

impl UpstreamPool {
    /// Builds the pool, resolving server names through `resolver`. A name that does not
    /// resolve yet leaves its server without endpoints (logged); the DNS refresh retries.
    pub fn build(name: &str, def: &Upstream, resolver: &Resolver) -> Result<Self, String> {
        let timeouts = Timeouts {
            connect: def.connect_timeout,
            read: def.read_timeout,
            write: def.write_timeout,
            idle: def.idle_timeout,
        };
        let retries = def.retries.clone().unwrap_or_default();
        let pool = UpstreamPool {
            name: name.to_string(),
            definition: def.clone(),
            endpoints: ArcSwap::from_pointee(Endpoints::empty(algorithm_of(&def.balance))),
            algorithm: algorithm_of(&def.balance),
            hash_key: match def.balance {
                Balance::IpHash => Some(HashKey::ClientIp),
                _ => def.hash_key.clone(),
            },
            timeouts,
            retry: RetryPolicy::new(&retries),
            budget: RetryBudget::new(retries.budget.ratio, retries.budget.min_per_sec),
            outlier: def.passive_health.as_ref().map(|p| OutlierPolicy {
                consecutive_failures: p.consecutive_failures,
                failure_statuses: p.failure_statuses.clone(),
                ejection_time: p.ejection_time,
                max_ejection_time: p.max_ejection_time,
                max_ejected_percent: p.max_ejected_percent,
            }),
            active: active_check_of(def).map(Arc::new),
            panic_threshold: def.panic_threshold,
            queue_timeout: def.queue_timeout,
        };
        let mut resolved = Vec::with_capacity(def.servers.len());
        for server in &def.servers {
            resolved.push(match &server.address {
                ServerAddress::Ip(addr) => vec![*addr],
                ServerAddress::Name { host, port } => {
                    match resolver.resolve_blocking(host, *port) {
                        Ok(r) => r.addrs,
                        Err(e) => {
                            log::warn!("upstream `{name}`: {e}; will retry");
                            Vec::new()
                        }
                    }
                }
            });
        }
        pool.set_addresses(&resolved)?;
        Ok(pool)
    }

    /// The current endpoints.
    pub fn endpoints(&self) -> arc_swap::Guard<Arc<Endpoints>> {
        self.endpoints.load()
    }

    /// Replaces the resolved addresses of every configured server (`addresses[i]` belongs to
    /// `servers[i]`). Endpoints whose address stays are kept as they are.
    pub fn set_addresses(&self, addresses: &[Vec<SocketAddr>]) -> Result<(), String> {
        let current = self.endpoints.load_full();
        let mut list = Vec::new();
        for (index, (server, addrs)) in self.definition.servers.iter().zip(addresses).enumerate() {
            for addr in addrs {
                if let Some(kept) = current
                    .list
                    .iter()
                    .find(|e| e.server_index == index && e.state.address == *addr)
                {
                    list.push(kept.clone());
                    continue;
                }
                list.push(Arc::new(self.endpoint(index, server, *addr)?));
            }
        }
        let states: Vec<Arc<ServerState>> = list.iter().map(|e| e.state.clone()).collect();
        let balancer = Balancer::new(self.algorithm, &states);
        self.endpoints.store(Arc::new(Endpoints {
            list,
            states,
            balancer,
        }));
        Ok(())
    }

    fn endpoint(
        &self,
        index: usize,
        server: &pylon_config::Server,
        addr: SocketAddr,
    ) -> Result<Endpoint, String> {
        let opts = server.peer.or(&self.definition.peer);
        let host = match &server.address {
            ServerAddress::Name { host, .. } => Some(host.as_str()),
            ServerAddress::Ip(_) => None,
        };
        let label = match &server.address {
            ServerAddress::Ip(a) => a.to_string(),
            ServerAddress::Name { .. } => format!("{} ({addr})", server.address),
        };
        let peer = build_peer(addr, host, &opts, &self.timeouts)
            .map_err(|e| format!("upstream `{}` server {}: {e}", self.name, server.address))?;
        let probe_peer = match &self.definition.health_check {
            None => None,
            Some(hc) => {
                let mut probe_opts = opts.clone();
                match hc.kind {
                    CheckType::Https => probe_opts.tls = Some(true),
                    CheckType::Http | CheckType::Tcp => probe_opts.tls = Some(false),
                }
                let probe_addr = SocketAddr::new(addr.ip(), hc.port.unwrap_or(addr.port()));
                Some(build_peer(probe_addr, host, &probe_opts, &self.timeouts)?)
            }
        };
        let host_header = match opts.host_header.as_ref() {
            None | Some(HostHeader::Keep) => None,
            // The port is left out where it is the scheme's default, as clients do.
            Some(HostHeader::Server) => {
                Some(match (opts.tls.unwrap_or(false), server.address.port()) {
                    (false, 80) | (true, 443) => match &server.address {
                        ServerAddress::Ip(SocketAddr::V6(v6)) => format!("[{}]", v6.ip()),
                        _ => server.address.host(),
                    },
                    _ => server.address.to_string(),
                })
            }
            Some(HostHeader::Custom(value)) => Some(value.clone()),
        };
        Ok(Endpoint {
            state: Arc::new(ServerState::new(addr, server.weight, label)),
            peer,
            probe_peer,
            host_header,
            limit: opts
                .max_connections
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            server_index: index,
        })
    }

    /// Chooses an endpoint for one attempt at `now` (`now_ms`). `tried` are the addresses
    /// earlier attempts of the same request used: a retry goes elsewhere when another usable
    /// endpoint exists.
    pub async fn select(
        &self,
        key: Option<&[u8]>,
        tried: &[SocketAddr],
        now: u64,
    ) -> Result<Selection, SelectError> {
        let (endpoint, limit) = {
            let eps = self.endpoints.load();
            let total = eps.list.len();
            if total == 0 {
                return Err(SelectError::NoServer);
            }
            // Panic mode (Envoy's): with too few healthy servers, spread over all of them
            // rather than overload the survivors. Off (0) by default: then 503. Counting
            // costs a pass over the servers, so it is only done when panic mode is on.
            let ignore_health = self.panic_threshold > 0 && {
                let healthy = eps.states.iter().filter(|s| s.is_healthy(now)).count();
                healthy * 100 < usize::from(self.panic_threshold) * total
            };
            let up = |i: usize| ignore_health || eps.states[i].is_healthy(now);
            let fresh = |i: usize| tried.is_empty() || !tried.contains(&eps.states[i].address);
            let room = |i: usize| {
                eps.list[i]
                    .limit
                    .as_ref()
                    .is_none_or(|s| s.available_permits() > 0)
            };
            let pick = eps
                .balancer
                .select(&eps.states, key, &mut |i| up(i) && fresh(i) && room(i))
                .or_else(|| {
                    eps.balancer
                        .select(&eps.states, key, &mut |i| up(i) && room(i))
                })
                .or_else(|| eps.balancer.select(&eps.states, key, &mut |i| up(i)))
                .ok_or(SelectError::NoHealthy)?;
            let endpoint = eps.list[pick].clone();
            let limit = endpoint.limit.clone();
            (endpoint, limit)
        };
        let (permit, queued) = match limit {
            None => (None, false),
            Some(limit) => match limit.clone().try_acquire_owned() {
                Ok(permit) => (Some(permit), false),
                Err(_) => {
                    match tokio::time::timeout(self.queue_timeout, limit.acquire_owned()).await {
                        Ok(Ok(permit)) => (Some(permit), true),
                        _ => return Err(SelectError::Busy),
                    }
                }
            },
        };
        let in_flight = endpoint.state.start_request();
        Ok(Selection {
            endpoint,
            in_flight,
            queued,
            _permit: permit,
        })
    }

    /// What the active health check should probe now, if the pool has a check.
    pub fn check_targets(&self, out: &mut Vec<CheckTarget>) {
        let Some(check) = &self.active else { return };
        for ep in &self.endpoints.load().list {
            if let Some(peer) = &ep.probe_peer {
                out.push(CheckTarget {
                    upstream: self.name.clone(),
                    check: check.clone(),
                    server: ep.state.clone(),
                    peer: peer.clone(),
                });
            }
        }
    }

    /// The current addresses of each configured server, in `servers` order.
    pub fn addresses(&self) -> Vec<Vec<SocketAddr>> {
        let eps = self.endpoints.load();
        let mut out = vec![Vec::new(); self.definition.servers.len()];
        for ep in &eps.list {
            if let Some(slot) = out.get_mut(ep.server_index) {
                slot.push(ep.state.address);
            }
        }
        out
    }

    /// Whether any server is given as a host name (and so needs DNS refreshes).
    pub fn has_names(&self) -> bool {
        self.definition
            .servers
            .iter()
            .any(|s| matches!(s.address, ServerAddress::Name { .. }))
    }
}

impl Endpoints {
    fn empty(algorithm: Algorithm) -> Self {
        Endpoints {
            list: Vec::new(),
            states: Vec::new(),
            balancer: Balancer::new(algorithm, &[]),
        }
    }

    /// The state of every endpoint, in order.
    pub fn states(&self) -> &[Arc<ServerState>] {
        &self.states
    }
}
