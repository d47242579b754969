//! `GET /metrics`: the Prometheus exposition, on the admin listener and, when
//! `metrics.listener` is set, on a listener of its own ([`MetricsService`]).
//!
//! No credentials are asked for, even when the admin API requires them: Prometheus scrapes
//! without them by default, and the page only reads (counters, no config values or
//! secrets). An operator who must hide it gives it its own listener on a private address.
//! With `metrics.enabled: false` the page answers 404, so a scrape job pointed at a node
//! that records nothing fails loudly instead of reading an empty page as "no traffic".

use crate::service::PreBound;
use std::net::SocketAddr;

use async_trait::async_trait;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pylon_core::{metrics, SharedSnapshot};

/// A router serving `/metrics` from `snapshot`.
pub fn router(snapshot: SharedSnapshot) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let snapshot = snapshot.clone();
            async move { scrape(&snapshot) }
        }),
    )
}

fn scrape(snapshot: &SharedSnapshot) -> axum::response::Response {
    if !metrics::enabled() {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off (metrics.enabled: false)\n",
        )
            .into_response();
    }
    let body = metrics::render(&snapshot.load());
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// The metrics page on a listener of its own.
pub struct MetricsService {
    snapshot: SharedSnapshot,
    listener: PreBound,
}

impl MetricsService {
    pub fn new(
        snapshot: SharedSnapshot,
        listen: SocketAddr,
        listener: Option<std::net::TcpListener>,
    ) -> MetricsService {
        MetricsService {
            snapshot,
            listener: PreBound::new(listen, listener),
        }
    }
}

#[async_trait]
impl BackgroundService for MetricsService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let addr = self.listener.addr();
        let listener = match self.listener.take("metrics").await {
            Ok(listener) => listener,
            Err(e) => {
                log::error!("metrics: cannot listen on {addr}: {e}; the page is off");
                return;
            }
        };
        log::info!("metrics on http://{addr}/metrics");
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, router(self.snapshot.clone()))
            .with_graceful_shutdown(stopped)
            .await
        {
            log::error!("metrics on {addr} stopped: {e}");
        }
    }
}
