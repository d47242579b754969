//! The admin API as a Pingora background service: Pingora gives it its own runtime (one
//! thread), it serves on its own listener, and it stops with the rest of the server.
//!
//! The listener is bound before Pingora starts (see [`bind`]), so a taken port stops
//! `pylon` at start with a clear error instead of a gateway whose API never answers. After
//! `pylon -u` (graceful upgrade) the old process still holds the port for its grace period,
//! so the new one keeps trying to bind it until the old one lets go.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use utoipa_swagger_ui::SwaggerUi;

use crate::Admin;

/// How long an upgraded process waits for the old one to release the admin port.
const UPGRADE_BIND_TIMEOUT: Duration = Duration::from_secs(60);
const UPGRADE_BIND_RETRY: Duration = Duration::from_millis(100);

/// Binds the admin listener (address reuse on, as Pingora binds).
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// A listener bound before Pingora starts, or — after `pylon -u`, while the old process
/// still holds the port for its grace period — bound once the port is free.
pub(crate) struct PreBound {
    addr: SocketAddr,
    bound: Mutex<Option<std::net::TcpListener>>,
}

impl PreBound {
    pub(crate) fn new(addr: SocketAddr, bound: Option<std::net::TcpListener>) -> PreBound {
        PreBound {
            addr,
            bound: Mutex::new(bound),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener; `what` names it in the log while waiting for the port.
    pub(crate) async fn take(&self, what: &str) -> std::io::Result<tokio::net::TcpListener> {
        let bound = self.bound.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(listener) = bound {
            return tokio::net::TcpListener::from_std(listener);
        }
        let addr = self.addr;
        let deadline = tokio::time::Instant::now() + UPGRADE_BIND_TIMEOUT;
        loop {
            match bind(addr) {
                Ok(listener) => return tokio::net::TcpListener::from_std(listener),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    log::debug!("{what}: {addr} not free yet ({e}); retrying");
                    tokio::time::sleep(UPGRADE_BIND_RETRY).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

pub struct AdminService {
    admin: Arc<Admin>,
    listener: PreBound,
}

impl AdminService {
    pub fn new(admin: Arc<Admin>, listener: Option<std::net::TcpListener>) -> AdminService {
        let addr = admin.listen;
        AdminService {
            admin,
            listener: PreBound::new(addr, listener),
        }
    }
}

/// The whole app: `/api/v1/…`, the OpenAPI document and Swagger UI (from the binary).
pub fn app(admin: Arc<Admin>) -> axum::Router {
    let metrics = crate::metrics::router(admin.applier.snapshot().clone());
    let (api, openapi) = crate::api::router(admin.clone());
    let document = crate::openapi::finish(&openapi);
    let docs = SwaggerUi::new("/docs").external_url_unchecked("/api/v1/openapi.json", document);
    // The probes and metrics need no credentials: they are routed beside the API, outside
    // its auth layer.
    crate::health::router(admin)
        .merge(metrics)
        .merge(api)
        .merge(docs)
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let addr = self.admin.listen;
        let listener = match self.listener.take("admin API").await {
            Ok(listener) => listener,
            Err(e) => {
                log::error!("admin API: cannot listen on {addr}: {e}; the API is off");
                return;
            }
        };
        if self.admin.auth.required() {
            log::info!("admin API on http://{addr} (docs at /docs)");
        } else {
            log::warn!(
                "admin API on http://{addr} (docs at /docs) without credentials: anyone who can connect to it can change the config"
            );
        }
        let app = app(self.admin.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            log::error!("admin API on {addr} stopped: {e}");
        }
    }
}
