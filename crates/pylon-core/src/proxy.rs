//! The one `ProxyHttp` implementation. It only dispatches: each phase hands its work to the
//! compiled snapshot, in the order of the table in `docs/architecture.md`.
//!
//! | phase | Pylon does |
//! | --- | --- |
//! | `new_ctx` | take the snapshot once; start the clock |
//! | `request_filter` | find the listener, match the route (404 if none), answer `respond:` routes |
//! | `upstream_peer` | pick a healthy server (not one this request already tried), wait for a `max_connections` slot, build the peer with the route's timeouts |
//! | `upstream_request_filter` | `X-Forwarded-For/-Proto/-Host`, `host_header` |
//! | `upstream_response_filter` | latency (least_time), outcome (outlier detection), retry on listed statuses |
//! | `fail_to_connect` / `error_while_proxy` | outcome, retry policy and budget |
//! | `fail_to_proxy` | map the error to 502/503/504/4xx with the JSON error body |

use crate::forwarded;
use crate::hash_key;
use crate::request_id;
use crate::request_view::{request_host, PingoraRequest};
use crate::respond::write_json_error;
use crate::snapshot::{RouteRuntime, RouteTarget, RouteUpstream, SharedSnapshot, Snapshot};
use crate::upstream::{SelectError, Selection};
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::upstreams::peer::HttpPeer;
use pingora::ErrorType;
use pylon_upstream::balance::Algorithm;
use pylon_upstream::health::passive::Outcome;
use pylon_upstream::server::now_ms;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request state.
pub struct RequestCtx {
    /// The world this request lives in, taken once.
    snapshot: Arc<Snapshot>,
    /// The matched route, once `request_filter` found it.
    route: Option<Arc<RouteRuntime>>,
    client_ip: Option<IpAddr>,
    /// When the request arrived; read only by routes with a total `timeout`.
    started: Option<Instant>,
    /// The endpoint of the current attempt (dropping it ends its in-flight count).
    selection: Option<Selection>,
    /// When the current attempt started, for the latency EWMA.
    attempt_started: Option<Instant>,
    /// Endpoints earlier attempts used.
    tried: Vec<SocketAddr>,
    /// Retries granted so far.
    retries: u32,
    /// `upstream_response_filter` decided to retry this response's status.
    retrying_status: bool,
    /// A more precise message than the status's reason for Pylon's own error responses.
    error_message: Option<&'static str>,
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

/// What kind of failure an error after connecting was, for retries and outlier detection.
fn failure_kind(e: &Error) -> Option<&'static str> {
    use ErrorType::*;
    match e.etype() {
        ReadTimedout | WriteTimedout => Some("timeout"),
        ConnectionClosed | ReadError | WriteError | ConnectError | InvalidHTTPHeader | H1Error
        | H2Error => Some("reset"),
        _ => None,
    }
}

impl RequestCtx {
    fn upstream(&self) -> Option<&RouteUpstream> {
        match self.route.as_deref().map(|r| &r.target) {
            Some(RouteTarget::Upstream(up)) => Some(up),
            _ => None,
        }
    }

    /// Reports the current attempt's outcome to outlier detection.
    fn record_outcome(&self, outcome: Outcome) {
        let (Some(up), Some(sel)) = (self.upstream(), self.selection.as_ref()) else {
            return;
        };
        if let Some(policy) = &up.pool.outlier {
            let endpoints = up.pool.endpoints();
            policy.record(
                &up.pool.name,
                &sel.endpoint.state,
                outcome,
                endpoints.states(),
                now_ms(),
            );
        }
    }

    /// Takes a retry if the route has attempts left and the pool's budget allows one.
    fn take_retry(&mut self) -> bool {
        let Some(up) = self.upstream() else {
            return false;
        };
        if self.retries >= up.retry.attempts || !up.pool.budget.try_retry(now_ms()) {
            return false;
        }
        self.retries += 1;
        true
    }

    fn remaining(&self) -> Option<Duration> {
        let total = self.upstream()?.total_timeout?;
        Some(total.saturating_sub(self.started.map_or(Duration::ZERO, |s| s.elapsed())))
    }
}

#[async_trait]
impl ProxyHttp for PylonProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            snapshot: self.snapshot.load_full(),
            route: None,
            client_ip: None,
            started: None,
            selection: None,
            attempt_started: None,
            tried: Vec::new(),
            retries: 0,
            retrying_status: false,
            error_message: None,
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
        if matches!(&route.target, RouteTarget::Upstream(up) if up.total_timeout.is_some()) {
            // The clock is read only for routes that need it; routing took microseconds.
            ctx.started = Some(Instant::now());
        }
        ctx.route = Some(route);
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(up) = ctx.upstream() else {
            return Error::e_explain(ErrorType::InternalError, "no upstream for this route");
        };
        let pool = up.pool.clone();
        let now = now_ms();
        match ctx.selection.take() {
            // A retry: remember where the last attempt went, so this one goes elsewhere.
            Some(previous) => ctx.tried.push(previous.endpoint.state.address),
            None => pool.budget.record_request(now),
        }
        let remaining = ctx.remaining();
        if remaining.is_some_and(|r| r.is_zero()) {
            return Error::e_explain(ErrorType::ReadTimedout, "route timeout spent")
                .map_err(|e| e.into_up());
        }
        let key = pool
            .hash_key
            .as_ref()
            .and_then(|k| hash_key::extract(k, session.req_header(), ctx.client_ip));
        let selection = match pool.select(key.as_deref(), &ctx.tried, now).await {
            Ok(selection) => selection,
            Err(why) => {
                ctx.error_message = Some(match why {
                    SelectError::NoServer | SelectError::NoHealthy => "no healthy server",
                    SelectError::Busy => "upstream busy",
                });
                return Error::e_explain(
                    ErrorType::HTTPStatus(503),
                    format!("upstream `{}`: {why:?}", pool.name),
                );
            }
        };
        let mut peer = Box::new(selection.endpoint.peer.clone());
        let Some(up) = ctx.upstream() else {
            return Error::e_explain(ErrorType::InternalError, "route changed");
        };
        if up.custom_timeouts {
            let o = &mut peer.options;
            o.connection_timeout = Some(up.timeouts.connect);
            o.read_timeout = Some(up.timeouts.read);
            o.write_timeout = Some(up.timeouts.write);
            o.idle_timeout = up.timeouts.idle;
        }
        if let Some(left) = remaining {
            // The route's total timeout caps every wait of this attempt.
            let o = &mut peer.options;
            for t in [
                &mut o.connection_timeout,
                &mut o.read_timeout,
                &mut o.write_timeout,
            ] {
                *t = Some(t.map_or(left, |t| t.min(left)));
            }
        }
        // Only least_time reads latencies; other balancers skip the clock.
        ctx.attempt_started = (pool.algorithm == Algorithm::LeastTime).then(Instant::now);
        ctx.selection = Some(selection);
        Ok(peer)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let host = request_host(session.req_header());
        forwarded::apply(upstream_request, ctx.client_ip, "http", Some(host))?;
        if let Some(host) = ctx
            .selection
            .as_ref()
            .and_then(|s| s.endpoint.host_header.as_deref())
        {
            upstream_request.insert_header(http::header::HOST, host)?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream_response.status.as_u16();
        if let (Some(sel), Some(started)) = (ctx.selection.as_ref(), ctx.attempt_started) {
            sel.endpoint.state.record_latency(started.elapsed());
        }
        if let Some(outcome) = ctx
            .upstream()
            .and_then(|up| up.pool.outlier.as_ref())
            .map(|o| o.outcome_for_status(status))
        {
            ctx.record_outcome(outcome);
        }
        let retry_this = ctx.upstream().is_some_and(|up| {
            up.retry.retries_status(status) && up.retry.method_allowed(&session.req_header().method)
        }) && !session.as_ref().retry_buffer_truncated();
        if retry_this && ctx.take_retry() {
            ctx.retrying_status = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(status),
                format!("status {status}: retrying"),
            )
            .map_err(|e| e.into_up());
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if ctx.remaining().is_some_and(|r| r.is_zero()) {
            return Error::e_explain(ErrorType::ReadTimedout, "route timeout spent")
                .map_err(|e| e.into_up());
        }
        Ok(None)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.record_outcome(Outcome::Failure("connect failure"));
        // The request never left: retrying is safe whatever the method.
        let allowed = ctx.upstream().is_some_and(|up| up.retry.on_connect_failure);
        e.set_retry(allowed && ctx.take_retry());
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if std::mem::take(&mut ctx.retrying_status) {
            e.set_retry(true);
            return e;
        }
        // Nothing can be sent again once the client has a response header, nor when the
        // body went out beyond what Pingora buffers for retries.
        let replayable =
            session.response_written().is_none() && !session.as_ref().retry_buffer_truncated();
        let kind = failure_kind(&e);
        // A pooled keep-alive connection the server closed is not the server's fault.
        if kind.is_some() && !(client_reused && kind == Some("reset")) {
            ctx.record_outcome(Outcome::Failure(kind.unwrap_or("error")));
        }
        let method = &session.req_header().method;
        let wanted = ctx.upstream().is_some_and(|up| {
            up.retry.method_allowed(method)
                && match kind {
                    Some("timeout") => up.retry.on_timeout,
                    Some("reset") => up.retry.on_reset,
                    _ => false,
                }
        });
        if replayable && wanted && ctx.take_retry() {
            e.set_retry(true);
        } else if replayable && client_reused && method.is_idempotent() {
            // Pingora's own rule: a request that failed on a reused connection may be
            // resent on a fresh one (the pooled connection was stale).
            e.retry.decide_reuse(client_reused);
        } else {
            e.set_retry(false);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let Some((code, mut message)) = classify_error(e) else {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        if let Some(precise) = ctx.error_message {
            message = precise;
        }
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
