//! The middleware pipeline: one trait with a hook per phase, and the [`Chain`] a route's
//! middlewares compile into once per snapshot.
//!
//! Order, also drawn in `docs/architecture.md`:
//! - **request side**, in list order: each middleware's [`Middleware::request_now`] or
//!   [`Middleware::request`]; the first that answers ends it (later middlewares and the
//!   upstream are skipped);
//! - **request body**, in list order, as pieces stream upstream;
//! - **upstream request**, in list order, on each attempt's copy of the request, after
//!   Pylon's own `X-Forwarded-*` headers (so a middleware may change those);
//! - **response side**, in reverse list order (the first middleware sees the response
//!   last, as in an onion), for the upstream's response and for every response Pylon or a
//!   middleware generates. When middleware *i* answers, the response side runs for
//!   middlewares *i−1 … 0*: the ones that already ran, not the one that answered;
//! - **logging**, in list order, once the response is done or failed, for those that ran.

mod api_key;
mod basic_auth;
pub use basic_auth::{verify_password, CheckCache};
mod buffering;
mod concurrency_limit;
mod cors;
mod forward_auth;
mod headers;
mod ip_filter;
pub mod jwt;
mod limits;
pub mod rate_limit;
mod redirect;
mod request_id;
mod respond;
mod static_files;
mod transform;
pub mod vars;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Debug;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, Result};
use pylon_config::{Middleware as MiddlewareDef, MiddlewareRef};

/// Per-request values middlewares read and write. Lives in the proxy's request context.
#[derive(Debug, Default)]
pub struct RequestState {
    /// The connection's peer address.
    pub peer_ip: Option<IpAddr>,
    /// The client's address: the peer's, or one read from forwarding headers sent by a
    /// trusted proxy (`ip_filter`'s `trusted_proxies`).
    pub client_ip: Option<IpAddr>,
    /// The request id, once the `request_id` middleware set one (error bodies and logs
    /// fall back to the incoming header or a fresh id).
    pub request_id: Option<String>,
    /// The matched route's name.
    pub route: Arc<str>,
    /// `http` or `https`, as the client connected.
    pub scheme: &'static str,
    /// Request-body bytes of the current upstream attempt so far: counted by the chain
    /// before the body hooks run, restarted by [`RequestState::start_attempt`] (Pingora
    /// replays the bytes already read at the start of a retry).
    pub body_bytes: u64,
    /// Who the request was authenticated as (`basic_auth`'s user, `api_key`'s consumer,
    /// `jwt`'s subject), for later middlewares (`rate_limit`'s `consumer` key) and logs.
    pub consumer: Option<Arc<str>>,
    /// The W3C trace id this request belongs to, when tracing is configured (taken from
    /// the incoming `traceparent` or started by Pylon); for logs and error bodies.
    pub trace_id: Option<[u8; 16]>,
    /// Values middlewares share with later ones.
    pub extensions: http::Extensions,
}

impl RequestState {
    /// A new upstream attempt begins: its body is counted from zero.
    pub fn start_attempt(&mut self) {
        self.body_bytes = 0;
    }
}

/// What a request hook decided.
pub enum Flow {
    /// Go on to the next middleware, then the upstream.
    Continue,
    /// Answer with this response; the request side ends here.
    Respond(Box<GeneratedResponse>),
    /// Refuse with this status and message, in the shared error format (JSON/HTML/text,
    /// or the configured error page); the request side ends here.
    Reject(u16, Cow<'static, str>),
    /// Like `Reject`, with headers the status needs (`Allow` on a 405).
    RejectWith(
        u16,
        Cow<'static, str>,
        Vec<(http::HeaderName, http::HeaderValue)>,
    ),
}

impl Flow {
    /// Answer with `response`.
    pub fn respond(response: GeneratedResponse) -> Flow {
        Flow::Respond(Box::new(response))
    }
}

/// A response Pylon or a middleware writes itself.
pub struct GeneratedResponse {
    pub header: ResponseHeader,
    pub body: ResponseBody,
}

/// A body read as it is sent (a file being served).
pub type BodyReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// The body of a generated response.
pub enum ResponseBody {
    Empty,
    Bytes(Bytes),
    /// Read to its end and sent in chunks (the header carries the length).
    Reader(BodyReader),
}

impl GeneratedResponse {
    /// A response with a fixed body and `Content-Length`.
    pub fn with_body(mut header: ResponseHeader, body: Bytes) -> Result<Self> {
        header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        Ok(GeneratedResponse {
            header,
            body: if body.is_empty() {
                ResponseBody::Empty
            } else {
                ResponseBody::Bytes(body)
            },
        })
    }

    /// An empty response with this status and `Content-Length: 0`.
    pub fn empty(status: u16) -> Result<Self> {
        Self::with_body(ResponseHeader::build(status, Some(2))?, Bytes::new())
    }
}

/// Which hooks a middleware implements; the chain calls only those.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hooks {
    pub request: bool,
    /// [`Middleware::request_now`] instead of [`Middleware::request`].
    pub request_now: bool,
    pub request_body: bool,
    pub upstream_request: bool,
    pub response: bool,
    pub response_body: bool,
    pub logging: bool,
}

/// A compiled middleware. Each hook is documented like Pingora's phases: when it runs and
/// what happens by default. Hooks a middleware does not list in [`Middleware::hooks`] are
/// never called.
#[async_trait]
pub trait Middleware: Send + Sync + Debug {
    /// The hooks this middleware implements.
    fn hooks(&self) -> Hooks;

    /// In this phase the request header has arrived and matched the route; nothing has
    /// been sent upstream. The middleware may change the downstream request (later
    /// middlewares, and the upstream, see the change), record values in `state`, or answer
    /// with [`Flow::Respond`], which ends the request side.
    ///
    /// By default the request goes on.
    async fn request(&self, _session: &mut Session, _state: &mut RequestState) -> Result<Flow> {
        Ok(Flow::Continue)
    }

    /// The same phase for a middleware that decides without waiting (no I/O, no lock to wait
    /// for): called instead of [`Middleware::request`] when [`Hooks::request_now`] is set,
    /// with the same contract, and without the future an `async` hook allocates on every
    /// request.
    ///
    /// By default the request goes on.
    fn request_now(&self, _session: &mut Session, _state: &mut RequestState) -> Result<Flow> {
        Ok(Flow::Continue)
    }

    /// In this phase a piece of the request body is on its way upstream (`body` is `None`
    /// at the end). An error ends the request with its status (`413`).
    ///
    /// By default the piece passes unchanged.
    fn request_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _state: &mut RequestState,
    ) -> Result<()> {
        Ok(())
    }

    /// In this phase the request is about to be sent upstream: `upstream` is this
    /// attempt's copy (a retry starts again from the downstream request), with Pylon's
    /// `X-Forwarded-*` headers already set. `downstream` is the request as the client sent
    /// it (after request-side changes).
    ///
    /// By default the request goes as is.
    fn upstream_request(
        &self,
        _downstream: &RequestHeader,
        _upstream: &mut RequestHeader,
        _state: &RequestState,
    ) -> Result<()> {
        Ok(())
    }

    /// In this phase a response header is about to go to the client: the upstream's, or
    /// one Pylon or a middleware generated (an error, a redirect, a preflight answer).
    ///
    /// By default it goes as is.
    fn response(
        &self,
        _downstream: &RequestHeader,
        _response: &mut ResponseHeader,
        _state: &mut RequestState,
    ) -> Result<()> {
        Ok(())
    }

    /// In this phase a piece of the response body is on its way to the client.
    ///
    /// By default it passes unchanged.
    fn response_body(
        &self,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        _state: &mut RequestState,
    ) -> Result<()> {
        Ok(())
    }

    /// In this phase the request is over (`error` says why it failed, if it did). For
    /// bookkeeping: releasing slots, counting.
    ///
    /// By default nothing happens.
    fn logging(&self, _error: Option<&Error>, _state: &mut RequestState) {}
}

/// A route's middlewares, compiled, in order.
#[derive(Debug, Default, Clone)]
pub struct Chain {
    entries: Vec<(Arc<dyn Middleware>, Hooks)>,
}

/// Compiles one middleware definition.
pub fn compile_one(def: &MiddlewareDef) -> Result<Arc<dyn Middleware>, String> {
    match def {
        MiddlewareDef::Transform(c) => transform::compile(c),
        MiddlewareDef::RequestId(c) => request_id::compile(c),
        MiddlewareDef::Headers(c) => headers::compile(c),
        MiddlewareDef::Cors(c) => cors::compile(c),
        MiddlewareDef::IpFilter(c) => ip_filter::compile(c),
        MiddlewareDef::Redirect(c) => redirect::compile(c),
        MiddlewareDef::Respond(c) => respond::compile(c),
        MiddlewareDef::Static(c) => static_files::compile(c),
        MiddlewareDef::Limits(c) => limits::compile(c),
        MiddlewareDef::Buffering(c) => buffering::compile(c),
        MiddlewareDef::BasicAuth(c) => basic_auth::compile(c),
        MiddlewareDef::ApiKey(c) => api_key::compile(c),
        MiddlewareDef::Jwt(c) => jwt::compile(c),
        MiddlewareDef::ForwardAuth(c) => forward_auth::compile(c),
        MiddlewareDef::RateLimit(c) => rate_limit::compile(c),
        MiddlewareDef::ConcurrencyLimit(c) => concurrency_limit::compile(c),
    }
}

/// The named middlewares of a config, compiled once so routes that share a name share one
/// instance (and its state, such as a rate limiter's buckets).
pub type Named = HashMap<String, Arc<dyn Middleware>>;

impl Chain {
    /// Compiles a route's list; `named` holds the compiled top-level instances.
    pub fn compile(list: &[MiddlewareRef], named: &Named) -> Result<Chain, String> {
        let mut entries = Vec::with_capacity(list.len());
        for item in list {
            let mw = match item {
                MiddlewareRef::Named(name) => named
                    .get(name)
                    .cloned()
                    .ok_or_else(|| format!("unknown middleware `{name}`"))?,
                MiddlewareRef::Inline(def) => compile_one(def)
                    .map_err(|e| format!("middleware `{}`: {e}", def.type_name()))?,
            };
            let hooks = mw.hooks();
            entries.push((mw, hooks));
        }
        Ok(Chain { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first middleware (tests compare instances across reloads).
    #[cfg(test)]
    pub(crate) fn first(&self) -> Option<&Arc<dyn Middleware>> {
        self.entries.first().map(|(mw, _)| mw)
    }

    /// The middlewares whose request side ran (the first `ran`) that implement `hook`.
    fn ran<'c>(
        &'c self,
        ran: usize,
        hook: impl Fn(&Hooks) -> bool + 'c,
    ) -> impl DoubleEndedIterator<Item = &'c Arc<dyn Middleware>> + 'c {
        self.entries[..ran.min(self.entries.len())]
            .iter()
            .filter(move |(_, hooks)| hook(hooks))
            .map(|(mw, _)| mw)
    }

    /// Runs the request side, counting in `ran` the middlewares whose request side ran (as
    /// it goes, so the count is right when a hook fails). One that answers or fails is not
    /// counted: its response side is skipped. Returns the answer, if one answered.
    pub async fn request(
        &self,
        session: &mut Session,
        state: &mut RequestState,
        ran: &mut usize,
    ) -> Result<Flow> {
        for (i, (mw, hooks)) in self.entries.iter().enumerate() {
            *ran = i;
            let flow = if hooks.request_now {
                mw.request_now(session, state)?
            } else if hooks.request {
                mw.request(session, state).await?
            } else {
                continue;
            };
            match flow {
                Flow::Continue => {}
                answer => return Ok(answer),
            }
        }
        *ran = self.entries.len();
        Ok(Flow::Continue)
    }

    /// Counts the piece, then runs the request-body hooks of the first `ran` middlewares,
    /// in order.
    pub fn request_body(
        &self,
        ran: usize,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        state: &mut RequestState,
    ) -> Result<()> {
        if let Some(piece) = body {
            state.body_bytes += piece.len() as u64;
        }
        for mw in self.ran(ran, |h| h.request_body) {
            mw.request_body(body, end_of_stream, state)?;
        }
        Ok(())
    }

    /// The upstream-request hooks, in order.
    pub fn upstream_request(
        &self,
        ran: usize,
        downstream: &RequestHeader,
        upstream: &mut RequestHeader,
        state: &RequestState,
    ) -> Result<()> {
        for mw in self.ran(ran, |h| h.upstream_request) {
            mw.upstream_request(downstream, upstream, state)?;
        }
        Ok(())
    }

    /// The response hooks of the first `ran` middlewares, in reverse order.
    pub fn response(
        &self,
        ran: usize,
        downstream: &RequestHeader,
        response: &mut ResponseHeader,
        state: &mut RequestState,
    ) -> Result<()> {
        for mw in self.ran(ran, |h| h.response).rev() {
            mw.response(downstream, response, state)?;
        }
        Ok(())
    }

    /// The response-body hooks of the first `ran` middlewares, in reverse order.
    pub fn response_body(
        &self,
        ran: usize,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        state: &mut RequestState,
    ) -> Result<()> {
        for mw in self.ran(ran, |h| h.response_body).rev() {
            mw.response_body(body, end_of_stream, state)?;
        }
        Ok(())
    }

    /// The logging hooks of the first `ran` middlewares, in order.
    pub fn logging(&self, ran: usize, error: Option<&Error>, state: &mut RequestState) {
        for mw in self.ran(ran, |h| h.logging) {
            mw.logging(error, state);
        }
    }
}
