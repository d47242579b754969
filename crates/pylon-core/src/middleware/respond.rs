//! The `respond` middleware: a fixed response (a mock), for every request or, with `when`,
//! for those matching a rule; the others go on through the chain (Dakia's short-circuit).
//! The answer is built once, when the config is compiled (`body_file` is read then).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::RespondMiddleware as Config;
use pylon_rules::Rule;

use super::{Flow, Hooks, Middleware, RequestState};
use crate::request_view::PingoraRequest;
use crate::respond::PreparedResponse;

#[derive(Debug)]
struct Respond {
    when: Option<Rule>,
    response: PreparedResponse,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let when = def
        .when
        .as_deref()
        .map(Rule::parse)
        .transpose()
        .map_err(|e| format!("invalid rule in `when`: {}", e.message))?;
    let body = match (&def.body, &def.body_file) {
        (_, Some(path)) => Bytes::from(
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        ),
        (Some(text), None) => Bytes::from(text.clone()),
        (None, None) => Bytes::new(),
    };
    Ok(Arc::new(Respond {
        when,
        response: PreparedResponse::build(def.status, &def.headers, body)?,
    }))
}

#[async_trait]
impl Middleware for Respond {
    fn hooks(&self) -> Hooks {
        Hooks {
            request_now: true,
            ..Hooks::default()
        }
    }

    fn request_now(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        if let Some(rule) = &self.when {
            // The client address as resolved so far (an earlier `ip_filter` may have read it
            // from a trusted proxy's headers), so `ClientIP` sees the real client.
            let view = PingoraRequest::new(session.req_header(), state.client_ip);
            if !rule.matches(&view) {
                return Ok(Flow::Continue);
            }
        }
        Ok(Flow::respond(self.response.response()))
    }
}
