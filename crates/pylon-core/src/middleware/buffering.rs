//! The `buffering` middleware (nginx's `proxy_request_buffering`): reads the whole request
//! body in the request phase, before any upstream is picked or connected, then sends it
//! upstream in one piece with a `Content-Length` (a chunked upload arrives framed by
//! length).
//!
//! How, in Pingora 0.9: the body is read with the session's retry buffering on, so the
//! bytes stay in the session's retry buffer; when the proxy starts an attempt and finds
//! the downstream body already read, it sends that buffer as the whole body (and again on
//! a retry). The retry buffer holds at most 64 KiB (Pingora's fixed `BODY_BUF_LIMIT`),
//! which is why `max_request_body` cannot exceed it: a larger body would be read but never
//! sent.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::Buffering as Config;

use super::{Flow, Hooks, Middleware, RequestState};

/// Pingora's retry buffer size, the most a buffered body can be.
pub const MAX_BUFFERED: u64 = pylon_config::middleware::MAX_BUFFERED_BODY;

#[derive(Debug)]
struct Buffering {
    max: u64,
}

/// Marks a request whose body was read whole, with its length.
#[derive(Debug, Clone, Copy)]
struct Buffered(u64);

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let max = def.max_request_body.unwrap_or(MAX_BUFFERED);
    if max > MAX_BUFFERED {
        return Err(format!(
            "max_request_body must be at most {MAX_BUFFERED}, found {max}"
        ));
    }
    Ok(Arc::new(Buffering { max }))
}

#[async_trait]
impl Middleware for Buffering {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            upstream_request: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let declared = session
            .req_header()
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max) {
            return Ok(Flow::Reject(413, "request body too large".into()));
        }
        if session.is_body_empty() {
            return Ok(Flow::Continue);
        }
        // On before the first read: the reads fill the buffer the proxy sends upstream.
        session.enable_retry_buffering();
        let mut total: u64 = 0;
        while let Some(piece) = session.read_request_body().await? {
            total += piece.len() as u64;
            if total > self.max {
                return Ok(Flow::Reject(413, "request body too large".into()));
            }
        }
        state.extensions.insert(Buffered(total));
        Ok(Flow::Continue)
    }

    fn upstream_request(
        &self,
        _downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        if let Some(Buffered(len)) = state.extensions.get::<Buffered>() {
            // The length is known now: framed by length, whatever the client used.
            upstream.remove_header(&http::header::TRANSFER_ENCODING);
            upstream.insert_header(http::header::CONTENT_LENGTH, *len)?;
        }
        Ok(())
    }
}
