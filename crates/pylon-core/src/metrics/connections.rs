//! Downstream connection counts. Pingora calls `ServerApp::process_new` once per request of
//! a keep-alive connection, handing the stream back in between; [`Counted`] wraps the proxy
//! app and loops over those calls itself, so one call of its own is one connection: the
//! accepted counter and the active gauge move at its start and end.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

/// Client connections open now.
pub static ACTIVE: AtomicI64 = AtomicI64::new(0);
/// Client connections accepted since start.
pub static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Counts the connection for as long as it lives (also when its task is dropped).
struct Open;

impl Open {
    fn new() -> Open {
        ACCEPTED.fetch_add(1, Relaxed);
        ACTIVE.fetch_add(1, Relaxed);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Relaxed);
    }
}

/// An app that counts its connections; `inner` serves them.
pub struct Counted<A> {
    inner: Arc<A>,
}

impl<A> Counted<A> {
    pub fn new(inner: A) -> Counted<A> {
        Counted {
            inner: Arc::new(inner),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Counted<A> {
    async fn process_new(
        self: &Arc<Self>,
        session: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if !super::enabled() {
            return self.inner.process_new(session, shutdown).await;
        }
        let _open = Open::new();
        let mut stream = session;
        // Every request of the connection, here: the stream is never handed back, so this
        // call lasts as long as the connection.
        while let Some(next) = self.inner.process_new(stream, shutdown).await {
            stream = next;
        }
        None
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}
