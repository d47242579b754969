//! The one `ProxyHttp` implementation. It only dispatches: each phase hands its work to the
//! compiled snapshot, in the order of the table in `docs/architecture.md`.
//!
//! | phase | Pylon does |
//! | --- | --- |
//! | `new_ctx` | take the snapshot once |
//! | `request_filter` | find the listener, match the route (404 if none), answer `respond:` routes |
//! | `upstream_peer` | pick a server from the route's pool |
//! | `upstream_request_filter` | `X-Forwarded-For/-Proto/-Host` |
//! | `fail_to_connect` | no retries yet: the retry policy decides this later |
//! | `fail_to_proxy` | map the error to 502/504/4xx with the JSON error body |

use crate::forwarded;
use crate::request_id;
use crate::request_view::{request_host, PingoraRequest};
use crate::respond::write_json_error;
use crate::snapshot::{RouteRuntime, RouteTarget, SharedSnapshot, Snapshot};
use async_trait::async_trait;
use pingora::http::RequestHeader;
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;
use std::net::IpAddr;
use std::sync::Arc;

/// Per-request state.
pub struct RequestCtx {
    /// The world this request lives in, taken once.
    snapshot: Arc<Snapshot>,
    /// The matched route, once `request_filter` found it.
    route: Option<Arc<RouteRuntime>>,
    client_ip: Option<IpAddr>,
}

/// Pylon's proxy: reads the current snapshot for every request.
pub struct PylonProxy {
    snapshot: SharedSnapshot,
}

impl PylonProxy {
    pub fn new(snapshot: SharedSnapshot) -> Self {
        PylonProxy { snapshot }
    }
}

/// The request id for a response Pylon writes itself.
fn request_id_of(session: &Session) -> String {
    let incoming = session
        .req_header()
        .headers
        .get(request_id::REQUEST_ID_HEADER)
        .map(|v| v.as_bytes());
    request_id::from_incoming(incoming)
}

/// Status and message for an error that ended a request, or `None` when the client is gone.
fn classify_error(e: &Error) -> Option<(u16, &'static str)> {
    use ErrorType::*;
    let upstream = *e.esource() == ErrorSource::Upstream;
    match e.etype() {
        HTTPStatus(code) => Some((*code, status_message(*code))),
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout if upstream => {
            Some((504, "upstream timed out"))
        }
        _ => match e.esource() {
            ErrorSource::Upstream => Some((502, "upstream unreachable or failed")),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed => None,
                ReadTimedout => Some((408, "request timeout")),
                _ => Some((400, "bad request")),
            },
            ErrorSource::Internal | ErrorSource::Unset => Some((500, "internal error")),
        },
    }
}

fn status_message(code: u16) -> &'static str {
    http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}

#[async_trait]
impl ProxyHttp for PylonProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            snapshot: self.snapshot.load_full(),
            route: None,
            client_ip: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let local = session.server_addr().and_then(|a| a.as_inet()).copied();
        let route = ctx.snapshot.listener_for(local).and_then(|listener| {
            let view = PingoraRequest::new(session.req_header(), ctx.client_ip);
            listener.router.find(&view).cloned()
        });
        let Some(route) = route else {
            let id = request_id_of(session);
            write_json_error(session, 404, "no route", &id).await?;
            return Ok(true);
        };
        if let RouteTarget::Respond(response) = &route.target {
            response.write(session).await?;
            return Ok(true);
        }
        ctx.route = Some(route);
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let pool = match ctx.route.as_deref().map(|r| &r.target) {
            Some(RouteTarget::Upstream(pool)) => pool,
            _ => return Error::e_explain(ErrorType::InternalError, "no upstream for this route"),
        };
        match pool.select() {
            Some(server) => Ok(Box::new(server.peer.clone())),
            None => Error::e_explain(
                ErrorType::HTTPStatus(503),
                format!("upstream `{}` has no server", pool.name),
            ),
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let host = request_host(session.req_header());
        forwarded::apply(upstream_request, ctx.client_ip, "http", Some(host))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        _ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Retries (with budgets and a different server) belong to the retry policy.
        e.set_retry(false);
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let Some((code, message)) = classify_error(e) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        // Once the response header went out, a status can no longer be sent.
        if session.response_written().is_none() {
            let id = request_id_of(session);
            if let Err(write_error) = write_json_error(session, code, message, &id).await {
                log::debug!("could not send the error response: {write_error}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_from_upstream_are_504_and_connect_failures_502() {
        let timeout = Error::explain(ErrorType::ReadTimedout, "slow").into_up();
        assert_eq!(classify_error(&timeout).map(|c| c.0), Some(504));
        let refused = Error::explain(ErrorType::ConnectRefused, "refused").into_up();
        assert_eq!(classify_error(&refused).map(|c| c.0), Some(502));
        let client_gone = Error::explain(ErrorType::ConnectionClosed, "bye").into_down();
        assert_eq!(classify_error(&client_gone), None);
        let client_slow = Error::explain(ErrorType::ReadTimedout, "slow client").into_down();
        assert_eq!(classify_error(&client_slow).map(|c| c.0), Some(408));
        let garbage = Error::explain(ErrorType::InvalidHTTPHeader, "junk").into_down();
        assert_eq!(classify_error(&garbage).map(|c| c.0), Some(400));
    }
}
