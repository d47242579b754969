//! What `/api/v1/status` and `/api/v1/upstreams/{name}/health` report: the process and
//! its config (version, uptime, generation, listeners, the last reload and its errors), and
//! each server of an upstream with its health state and the reason for it — exactly the
//! state the proxy uses to pick servers, read without locks.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use pylon_core::upstream::pool::UpstreamPool;
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreInfo;
use crate::Admin;

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// Pylon's version.
    pub version: String,
    /// Seconds since the process started.
    pub uptime_seconds: u64,
    /// The config generation serving (also the ETag): 1 at start, one more per applied
    /// change.
    pub generation: u64,
    pub listeners: Vec<ListenerStatus>,
    /// Where the admin API listens.
    pub admin_listen: String,
    pub routes: usize,
    pub upstreams: usize,
    pub middlewares: usize,
    pub config: ConfigStatus,
    /// The last reload from the config files (a file change or SIGHUP); absent before the
    /// first.
    pub last_reload: Option<ReloadStatus>,
    /// Each upstream's servers and their health, by upstream name (as
    /// `/api/v1/upstreams/{name}/health` gives one).
    pub upstream_health: Vec<UpstreamHealth>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListenerStatus {
    pub name: String,
    pub address: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigStatus {
    /// `directory` (API changes in `api.yaml` of the directory), `file` (written back
    /// whole) or `etcd` (API changes go to the fleet's etcd prefix).
    pub mode: String,
    /// The config path Pylon was started with.
    pub path: String,
    /// Where API changes are written.
    pub api_file: String,
    /// Whether the API can write changes.
    pub writable: bool,
    /// Why not, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReloadStatus {
    /// `file change` or `SIGHUP`.
    pub trigger: String,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// Whether the config was applied (or was unchanged); false when refused.
    pub ok: bool,
    /// The generation serving after it.
    pub generation: u64,
    /// Why it was refused: each error with its file:line:column.
    pub errors: Vec<String>,
}

pub fn status(admin: &Admin) -> Status {
    let snapshot = admin.applier.snapshot().load_full();
    let config = &snapshot.config;
    let info: StoreInfo = admin.store.info();
    let writable = admin.store.writable();
    Status {
        version: admin.version.clone(),
        uptime_seconds: admin.started.elapsed().as_secs(),
        generation: snapshot.generation,
        listeners: config
            .listeners
            .iter()
            .map(|l| ListenerStatus {
                name: l.name.clone(),
                address: l.address.to_string(),
            })
            .collect(),
        admin_listen: admin.listen.to_string(),
        routes: config.routes.len(),
        upstreams: config.upstreams.len(),
        middlewares: config.middlewares.len(),
        config: ConfigStatus {
            mode: info.mode.to_string(),
            path: info.path.display().to_string(),
            api_file: info.api_file.display().to_string(),
            writable: writable.is_ok(),
            read_only_reason: writable.err(),
        },
        last_reload: admin.applier.last_reload().map(|r| ReloadStatus {
            ok: r.errors.is_empty(),
            trigger: r.trigger,
            at: unix_seconds(r.at),
            generation: r.generation,
            errors: r.errors,
        }),
        upstream_health: {
            let mut names: Vec<&String> = snapshot.upstreams.keys().collect();
            names.sort();
            names
                .into_iter()
                .map(|name| health(name, &snapshot.upstreams[name]))
                .collect()
        },
    }
}

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamHealth {
    pub upstream: String,
    /// How many servers may be picked now.
    pub healthy: usize,
    pub servers: Vec<ServerHealth>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerHealth {
    /// The server as configured (`api.internal:8080` or an address).
    pub server: String,
    /// The resolved address; absent while a name does not resolve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `healthy`, `unhealthy` (active checks failing), `ejected` (passive health) or
    /// `unresolved` (the name has no address yet).
    pub state: String,
    /// Why, in words.
    pub reason: String,
    pub weight: u32,
    pub in_flight: u32,
    /// Consecutive failed / successful active probes (absent without active checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_successes: Option<u32>,
    /// Milliseconds left of a passive-health ejection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ejected_for_ms: Option<u64>,
    /// Recent ejections (the back-off exponent), with passive health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ejections: Option<u32>,
    /// Consecutive failed requests counted by passive health.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_failures: Option<u32>,
}

pub fn health(name: &str, pool: &UpstreamPool) -> UpstreamHealth {
    let now = pylon_upstream::server::now_ms();
    let endpoints = pool.endpoints();
    let mut by_server: BTreeMap<usize, usize> = BTreeMap::new();
    let mut servers = Vec::new();
    for endpoint in &endpoints.list {
        *by_server.entry(endpoint.server_index).or_default() += 1;
        let s = &endpoint.state;
        let active_up = s.active_healthy.load(Ordering::Relaxed);
        let until = s.ejected_until_ms.load(Ordering::Relaxed);
        let failures = s.probe_failures.load(Ordering::Relaxed);
        let (state, reason) = if until > now {
            (
                "ejected",
                format!(
                    "ejected by passive health for {} ms more (ejection #{})",
                    until - now,
                    s.ejection_count.load(Ordering::Relaxed)
                ),
            )
        } else if !active_up {
            (
                "unhealthy",
                format!("the active health check failed {failures} time(s) in a row"),
            )
        } else if pool.active.is_some() {
            ("healthy", "the active health check passes".to_string())
        } else {
            (
                "healthy",
                "no active health check; not ejected by passive health".to_string(),
            )
        };
        servers.push(ServerHealth {
            server: s.label.clone(),
            address: Some(s.address.to_string()),
            state: state.into(),
            reason,
            weight: s.weight,
            in_flight: s.in_flight(),
            probe_failures: pool.active.as_ref().map(|_| failures),
            probe_successes: pool
                .active
                .as_ref()
                .map(|_| s.probe_successes.load(Ordering::Relaxed)),
            ejected_for_ms: pool.outlier.as_ref().map(|_| until.saturating_sub(now)),
            ejections: pool.outlier.as_ref().map(|o| o.ejection_count(s, now)),
            consecutive_failures: pool
                .outlier
                .as_ref()
                .map(|_| s.consecutive_failures.load(Ordering::Relaxed)),
        });
    }
    for (index, server) in pool.definition.servers.iter().enumerate() {
        if !by_server.contains_key(&index) {
            servers.push(ServerHealth {
                server: server.address.to_string(),
                address: None,
                state: "unresolved".into(),
                reason: "the name does not resolve yet; DNS refresh retries".into(),
                weight: server.weight,
                in_flight: 0,
                probe_failures: None,
                probe_successes: None,
                ejected_for_ms: None,
                ejections: None,
                consecutive_failures: None,
            });
        }
    }
    UpstreamHealth {
        upstream: name.to_string(),
        healthy: servers.iter().filter(|s| s.state == "healthy").count(),
        servers,
    }
}
