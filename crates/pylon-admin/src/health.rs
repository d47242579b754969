//! `/health` and `/ready` on the admin listener, for load balancers and orchestrators
//! (Kubernetes liveness and readiness probes). Neither needs credentials nor counts against
//! the admin rate limit: a probe carries no key, and a probe refused would take the node out.
//! They say nothing a caller could not learn by sending traffic.
//!
//! - `/health` (liveness): 200 while the process answers at all.
//! - `/ready` (readiness): 200 when every listener accepts connections, a config is serving,
//!   and each upstream that counts (`admin.ready.upstreams`, default all) has at least one
//!   server the balancer may pick; else 503 naming what is not ready.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;

use crate::Admin;

/// How long a listener gets to accept the readiness check's connection.
const LISTENER_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The answer of `/ready`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// The generation serving.
    pub generation: u64,
    /// Listeners that did not accept a connection, with why.
    pub listeners_down: Vec<String>,
    /// Upstreams (of those that count) with no server the balancer may pick.
    pub upstreams_down: Vec<String>,
}

/// The unauthenticated probe endpoints.
pub fn router(admin: Arc<Admin>) -> axum::Router {
    axum::Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(admin)
}

async fn health() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn ready(State(admin): State<Arc<Admin>>) -> Response {
    let readiness = readiness(&admin).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// Runs the checks.
pub async fn readiness(admin: &Admin) -> Readiness {
    let snapshot = admin.applier.snapshot().load_full();
    let now = pylon_upstream::server::now_ms();
    let counted = admin.ready.upstreams.as_ref();
    let mut upstreams_down: Vec<String> = snapshot
        .upstreams
        .iter()
        .filter(|(name, _)| counted.is_none_or(|list| list.contains(name)))
        .filter(|(_, pool)| {
            !pool
                .endpoints()
                .list
                .iter()
                .any(|e| e.state.is_healthy(now))
        })
        .map(|(name, _)| name.clone())
        .collect();
    // A listed upstream a reload removed cannot serve either.
    for name in counted.into_iter().flatten() {
        if !snapshot.upstreams.contains_key(name) {
            upstreams_down.push(format!("{name} (not in the serving config)"));
        }
    }
    upstreams_down.sort();
    let mut listeners_down = Vec::new();
    for listener in &snapshot.config.listeners {
        if let Err(why) = accepts(listener.address).await {
            listeners_down.push(format!("{} ({}): {why}", listener.name, listener.address));
        }
    }
    Readiness {
        ready: listeners_down.is_empty() && upstreams_down.is_empty(),
        generation: snapshot.generation,
        listeners_down,
        upstreams_down,
    }
}

/// Whether something accepts connections on `address` (a wildcard address is tried on
/// loopback). The connection is closed at once, before any byte.
async fn accepts(mut address: std::net::SocketAddr) -> Result<(), String> {
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    match tokio::time::timeout(
        LISTENER_CHECK_TIMEOUT,
        tokio::net::TcpStream::connect(address),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {LISTENER_CHECK_TIMEOUT:?}")),
    }
}
