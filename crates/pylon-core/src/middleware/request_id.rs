//! The `request_id` middleware: every request gets an id (the client's when sane and
//! wanted, else a fresh one), sent upstream and back, and used by error bodies and logs.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::RequestId as Config;

use super::{Flow, Hooks, Middleware, RequestState};
use crate::header_names::{prepare, PreparedHeaderName};
use crate::request_id::{from_incoming, generate};

#[derive(Debug)]
struct RequestId {
    /// The name as configured, parsed once (lookups use its lowercase half), in the case
    /// to write.
    header: PreparedHeaderName,
    keep_incoming: bool,
    upstream: bool,
    response: bool,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    Ok(Arc::new(RequestId {
        header: prepare(&def.header)?,
        keep_incoming: def.keep_incoming,
        upstream: def.upstream,
        response: def.response,
    }))
}

#[async_trait]
impl Middleware for RequestId {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            upstream_request: self.upstream,
            response: self.response,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let id = if self.keep_incoming {
            let incoming = session.req_header().headers.get(self.header.name());
            from_incoming(incoming.map(|v| v.as_bytes()))
        } else {
            generate()
        };
        state.request_id = Some(id);
        Ok(Flow::Continue)
    }

    fn upstream_request(
        &self,
        _downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        if let Some(id) = &state.request_id {
            upstream.insert_header(&self.header, id.as_str())?;
        }
        Ok(())
    }

    fn response(
        &self,
        _downstream: &RequestHeader,
        response: &mut ResponseHeader,
        state: &mut RequestState,
    ) -> Result<()> {
        if let Some(id) = &state.request_id {
            response.insert_header(&self.header, id.as_str())?;
        }
        Ok(())
    }
}
