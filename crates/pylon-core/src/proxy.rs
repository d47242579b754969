//! The one `ProxyHttp` implementation. It only dispatches: each phase hands its work to the
//! compiled snapshot, in the order of the table in `docs/architecture.md`.
//!
//! | phase | Pylon does |
//! | --- | --- |
//! | `new_ctx` | take the snapshot once |
//! | `request_filter` | find the listener, match the route (404 if none), run the route's middlewares (request side; any may answer), answer `respond:` routes |
//! | `request_body_filter` | the middlewares' request-body hooks (body limits) |
//! | `upstream_peer` | pick a healthy server (not one this request already tried), wait for a `max_connections` slot, build the peer with the route's timeouts |
//! | `upstream_request_filter` | `X-Forwarded-For/-Proto/-Host`, `host_header`, then the middlewares' upstream-request hooks (transforms, headers) |
//! | `upstream_response_filter` | latency (least_time), outcome (outlier detection), retry on listed statuses |
//! | `response_filter` / `response_body_filter` | the middlewares' response hooks, in reverse order |
//! | `fail_to_connect` / `error_while_proxy` | outcome, retry policy and budget |
//! | `fail_to_proxy` | map the error to 502/503/504/4xx in the shared error format, through the response hooks |
//! | `logging` | the middlewares' logging hooks, the request's spans (tracing), the access log line, metrics |

use crate::forwarded;
use crate::hash_key;
use crate::hop_by_hop;
use crate::measured::Measured;
use crate::middleware::{Flow, GeneratedResponse, RequestState};
use crate::request_id;
use crate::request_view::{request_host, PingoraRequest};
use crate::respond;
use crate::snapshot::{RouteRuntime, RouteTarget, RouteUpstream, SharedSnapshot, Snapshot};
use crate::upstream::{SelectError, Selection};
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::FailToProxy;
use pingora::upstreams::peer::{HttpPeer, HttpUpstreamRequestPolicy};
use pingora::ErrorType;
use pylon_upstream::balance::Algorithm;
use pylon_upstream::health::passive::Outcome;
use pylon_upstream::server::{ms_at, now_ms};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-request state.
pub struct RequestCtx {
    /// The world this request lives in, taken once.
    snapshot: Arc<Snapshot>,
    /// The matched route, once `request_filter` found it.
    route: Option<Arc<RouteRuntime>>,
    /// What the middlewares read and write.
    state: RequestState,
    /// How many of the route's middlewares ran their request side (their response side
    /// runs).
    ran: usize,
    /// When the request arrived; read only by routes with a total `timeout`.
    started: Option<Instant>,
    /// The endpoint of the current attempt (dropping it ends its in-flight count).
    selection: Option<Selection>,
    /// Timings and outcome, for least_time's latency EWMA and the `logging` consumers.
    measured: Measured,
    /// Endpoints earlier attempts used.
    tried: Vec<SocketAddr>,
    /// Retries granted so far.
    retries: u32,
    /// `upstream_response_filter` decided to retry this response's status.
    retrying_status: bool,
    /// A more precise message than the status's reason for Pylon's own error responses.
    error_message: Option<&'static str>,
    /// This request's trace, when `tracing` is configured.
    trace: Option<crate::tracing::RequestTrace>,
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

/// The request id for a response Pylon writes itself: the `request_id` middleware's, else
/// the client's `X-Request-ID` when sane, else a fresh one.
fn request_id_of(session: &Session, state: &RequestState) -> String {
    if let Some(id) = &state.request_id {
        return id.clone();
    }
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

/// How an upstream attempt failed, as metrics and logs name it: `connect` (refused,
/// unreachable, connect timeout), `timeout` (read/write), `reset` (closed or broken
/// connection, bad response), `tls` (handshake or certificate) or `other`.
pub fn upstream_error_kind(e: &Error) -> &'static str {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | BindError
        | SocketError | ConnectProxyFailure => "connect",
        TLSHandshakeFailure | TLSHandshakeTimedout | InvalidCert | HandshakeError
        | TLSWantX509Lookup => "tls",
        ReadTimedout | WriteTimedout => "timeout",
        ConnectionClosed | ReadError | WriteError | InvalidHTTPHeader | H1Error | H2Error
        | H2Downgrade | InvalidH2 => "reset",
        _ => "other",
    }
}

/// The status the client got: the response header Pylon wrote, else the error's status
/// (0 when the client went away before any response).
pub fn final_status(session: &Session, e: Option<&Error>) -> u16 {
    if let Some(header) = session.response_written() {
        return header.status.as_u16();
    }
    e.and_then(classify_error).map_or(0, |(code, _)| code)
}

impl RequestCtx {
    /// What the proxy measured of this request so far.
    pub fn measured(&self) -> &Measured {
        &self.measured
    }

    fn upstream(&self) -> Option<&RouteUpstream> {
        match self.route.as_deref().map(|r| &r.target) {
            Some(RouteTarget::Upstream(up)) => Some(up),
            _ => None,
        }
    }

    /// Notes how an upstream attempt failed (for logs and spans) and, when `counted`,
    /// counts it in the metrics.
    fn upstream_failed(&mut self, e: &Error, counted: bool) {
        let kind = upstream_error_kind(e);
        self.measured.upstream_error = Some(kind);
        if let Some(route) = self.route.as_ref().filter(|_| counted) {
            route.metrics.upstream_error(kind);
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

    /// Sends a response Pylon or a middleware generated, through the response side of
    /// the middlewares that ran.
    async fn send(&mut self, session: &mut Session, mut response: GeneratedResponse) -> Result<()> {
        let Some(route) = self.route.clone() else {
            return respond::write(session, response, |_, _| Ok(())).await;
        };
        let ran = self.ran;
        route.chain.response(
            ran,
            session.req_header(),
            &mut response.header,
            &mut self.state,
        )?;
        let state = &mut self.state;
        respond::write(session, response, |body, end| {
            route.chain.response_body(ran, body, end, state)
        })
        .await
    }

    /// Sends an error in the shared format, with `headers` the status needs.
    async fn send_error(
        &mut self,
        session: &mut Session,
        status: u16,
        message: &str,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    ) -> Result<()> {
        let id = request_id_of(session, &self.state);
        // Kept so the error log line of this request names the id its client saw.
        self.state.request_id.get_or_insert_with(|| id.clone());
        let trace_id = self.trace.as_ref().map(|t| t.trace_id_hex());
        let mut response = self.snapshot.error_pages.response(
            Some(session.req_header()),
            status,
            message,
            &id,
            trace_id.as_deref(),
        )?;
        response
            .header
            .insert_header(request_id::REQUEST_ID_HEADER, id)?;
        for (name, value) in headers {
            response.header.insert_header(name, value)?;
        }
        self.send(session, response).await
    }

    /// What the request's spans say about it (tracing, sampled requests only).
    fn span_info<'a>(
        &'a self,
        session: &'a Session,
        status: u16,
    ) -> crate::tracing::RequestInfo<'a> {
        let req = session.req_header();
        let header = |name| req.headers.get(name).and_then(|v| v.to_str().ok());
        crate::tracing::RequestInfo {
            method: req.method.as_str(),
            path: req.uri.path(),
            scheme: self.state.scheme,
            host: Some(request_host(req))
                .filter(|h| !h.is_empty())
                .map(crate::tracing::host_without_port),
            user_agent: header(http::header::USER_AGENT),
            route: &self.state.route,
            client_ip: self.state.client_ip,
            request_id: self.state.request_id.as_deref(),
            upstream: self.upstream().map(|u| u.pool.name.as_str()),
            status,
        }
    }

    fn remaining(&self) -> Option<Duration> {
        let total = self.upstream()?.total_timeout?;
        Some(total.saturating_sub(self.started.map_or(Duration::ZERO, |s| s.elapsed())))
    }
}

#[async_trait]
impl ProxyHttp for PylonProxy {
    type CTX = RequestCtx;

    /// Pingora adds a response-compression module, switched off, by default; it still makes
    /// a context and runs four filters on every request (~400 instructions). Pylon does not
    /// compress yet, so it adds no module (a compression feature will add it where used).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            snapshot: self.snapshot.load_full(),
            route: None,
            state: RequestState {
                scheme: "http",
                ..RequestState::default()
            },
            ran: 0,
            started: None,
            selection: None,
            measured: Measured::start(),
            tried: Vec::new(),
            retries: 0,
            retrying_status: false,
            error_message: None,
            trace: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.state.peer_ip = peer;
        ctx.state.client_ip = peer;
        if let Some(tracing) = &ctx.snapshot.tracing {
            let trace = tracing.start(session.req_header());
            ctx.state.trace_id = Some(trace.trace_id);
            ctx.trace = Some(trace);
        }
        let local = session.server_addr().and_then(|a| a.as_inet()).copied();
        let route = ctx.snapshot.listener_for(local).and_then(|listener| {
            let view = PingoraRequest::new(session.req_header(), peer);
            listener.router.find(&view).cloned()
        });
        let Some(route) = route else {
            ctx.send_error(session, 404, "no route", Vec::new()).await?;
            return Ok(true);
        };
        ctx.state.route = route.name.clone();
        ctx.route = Some(route.clone());
        if !route.chain.is_empty() {
            // `ctx.ran` is kept up to date as the chain goes, so that when a request hook
            // fails the middlewares before it still get their response and logging hooks.
            let answer = route
                .chain
                .request(session, &mut ctx.state, &mut ctx.ran)
                .await?;
            if !matches!(answer, Flow::Continue) {
                route.metrics.answered(ctx.ran);
            }
            match answer {
                Flow::Continue => {}
                Flow::Respond(response) => {
                    ctx.send(session, *response).await?;
                    return Ok(true);
                }
                Flow::Reject(status, message) => {
                    ctx.send_error(session, status, &message, Vec::new())
                        .await?;
                    return Ok(true);
                }
                Flow::RejectWith(status, message, headers) => {
                    ctx.send_error(session, status, &message, headers).await?;
                    return Ok(true);
                }
            }
        }
        match &route.target {
            RouteTarget::Respond(response) => {
                ctx.send(session, response.response()).await?;
                return Ok(true);
            }
            RouteTarget::Middlewares => {
                ctx.send_error(session, 404, "not found", Vec::new())
                    .await?;
                return Ok(true);
            }
            RouteTarget::Upstream(up) if up.total_timeout.is_some() => {
                // The clock is read only for routes that need it.
                ctx.started = Some(Instant::now());
            }
            RouteTarget::Upstream(_) => {}
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(route) = &ctx.route {
            route
                .chain
                .request_body(ctx.ran, body, end_of_stream, &mut ctx.state)?;
        }
        Ok(())
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
        // One clock reading for the balancer's and the budget's milliseconds and the
        // attempt's start.
        let attempt_started = Instant::now();
        let now = ms_at(attempt_started);
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
            .and_then(|k| hash_key::extract(k, session.req_header(), ctx.state.client_ip));
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
        if !hop_by_hop::has_hop_by_hop(session.req_header()) {
            // Nothing for Pingora's hop-by-hop pass to strip: skip it (see `hop_by_hop`).
            peer.options.http_upstream_request_policy = HttpUpstreamRequestPolicy::preserve();
        }
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
        // The attempt starts once a server is chosen: after the wait when it queued.
        let attempt_started = if selection.queued {
            Instant::now()
        } else {
            attempt_started
        };
        ctx.measured
            .attempt(selection.endpoint.state.address, attempt_started);
        ctx.selection = Some(selection);
        Ok(peer)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Pingora replays the body read so far to a retry: its count starts again.
        ctx.state.start_attempt();
        let host = request_host(session.req_header());
        // X-Forwarded-For gets the hop this connection came from, whatever the client
        // address middlewares settled on.
        forwarded::apply(upstream_request, ctx.state.peer_ip, "http", Some(host))?;
        if let Some(host) = ctx
            .selection
            .as_ref()
            .and_then(|s| s.endpoint.host_header.as_deref())
        {
            upstream_request.insert_header(http::header::HOST, host)?;
        }
        if let Some(trace) = &mut ctx.trace {
            trace.inject(upstream_request, ctx.measured.attempt_started)?;
        }
        if let Some(route) = ctx.route.as_ref().filter(|r| !r.chain.is_empty()) {
            route.chain.upstream_request(
                ctx.ran,
                session.req_header(),
                upstream_request,
                &ctx.state,
            )?;
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
        let header_time = ctx.measured.upstream_answered(status);
        if let (Some(up), Some(sel), Some(time)) =
            (ctx.upstream(), ctx.selection.as_ref(), header_time)
        {
            // Only least_time reads latencies.
            if up.pool.algorithm == Algorithm::LeastTime {
                sel.endpoint.state.record_latency(time);
            }
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

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(route) = ctx.route.as_ref().filter(|r| !r.chain.is_empty()) {
            route.chain.response(
                ctx.ran,
                session.req_header(),
                upstream_response,
                &mut ctx.state,
            )?;
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(route) = &ctx.route {
            route
                .chain
                .response_body(ctx.ran, body, end_of_stream, &mut ctx.state)?;
        }
        Ok(None)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(route) = &ctx.route {
            route.chain.logging(ctx.ran, e, &mut ctx.state);
        }
        let status = final_status(session, e);
        let access_log = ctx
            .route
            .as_ref()
            .map_or(&ctx.snapshot.access_log, |r| &r.access_log);
        // One clock read: spans, the access log and metrics report the same duration; a
        // second, of the wall clock, only for the consumers that print a time.
        let traced = ctx.snapshot.tracing.is_some() && ctx.trace.is_some();
        ctx.measured.finish(traced || access_log.is_some());
        if let (Some(tracing), Some(trace)) = (&ctx.snapshot.tracing, &ctx.trace) {
            tracing.finish(trace, || ctx.span_info(session, status), &ctx.measured);
        }
        if let Some(log) = access_log {
            let upstream = ctx.upstream().map(|up| up.pool.name.as_str());
            log.log(session, status, &ctx.state, &ctx.measured, upstream);
        }
        crate::metrics::record(
            ctx.route.as_deref().map(|r| &r.metrics),
            session.req_header().method.as_str(),
            status,
            &ctx.measured,
            session.as_ref().body_bytes_read(),
            session.as_ref().body_bytes_sent(),
        );
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        ctx.measured.connected(reused);
        Ok(())
    }

    /// The request as Pingora's error log lines describe it, with the route and the request
    /// id (the one the client got in the error body), so a log line and a client's report
    /// meet.
    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        let mut summary = session.as_ref().request_summary();
        if !ctx.state.route.is_empty() {
            summary.push_str(", route: ");
            summary.push_str(&ctx.state.route);
        }
        if let Some(id) = &ctx.state.request_id {
            summary.push_str(", request_id: ");
            summary.push_str(id);
        }
        if let Some(trace) = &ctx.trace {
            summary.push_str(", trace_id: ");
            summary.push_str(&trace.trace_id_hex());
        }
        summary
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
        ctx.upstream_failed(&e, true);
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
        // The client's side of the connection failing is not the upstream's error.
        ctx.upstream_failed(&e, *e.esource() == ErrorSource::Upstream);
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
            if let Err(write_error) = ctx.send_error(session, code, message, Vec::new()).await {
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
