//! Distributed tracing (config `tracing:`): W3C Trace Context in and out, sampling, and
//! spans exported over OTLP/HTTP.
//!
//! Per request, when `tracing` is configured:
//! - `request_filter`: [`Tracing::start`] reads the client's `traceparent` (an invalid one
//!   is ignored with its `tracestate`), keeps its trace id or starts a trace, draws Pylon's
//!   span id and decides sampling. The trace id goes into `RequestState::trace_id` for logs
//!   and error bodies;
//! - `upstream_request_filter`: [`RequestTrace::inject`] sends `traceparent` with a fresh
//!   span id for the upstream call as the parent (`tracestate` passes on unchanged);
//! - `logging`: [`Tracing::finish`] turns a sampled request into spans (`span`) and queues
//!   them for export (`export`).
//!
//! Without `tracing`, the proxy checks one `Option` per request and does nothing else.
//!
//! Files: `traceparent` (header format), `sampler`, `span` (assembly), `export` (queue and
//! exporter thread), `http_client` (the exporter's HTTP on hyper).

mod export;
mod http_client;
mod sampler;
mod span;
pub mod traceparent;

use std::sync::Arc;
use std::time::Instant;

use opentelemetry::InstrumentationScope;
use pingora::http::RequestHeader;
use pingora::Result;
use pylon_config::TracingConfig;

pub use export::{dropped_spans, flush_all, Exporter};
use sampler::Sampler;
pub use span::RequestInfo;
use traceparent::TraceParent;

use crate::header_names;
use crate::measured::Measured;

/// The `traceparent` header, for lookups.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");
/// The `tracestate` header, for lookups.
const TRACESTATE: http::HeaderName = http::HeaderName::from_static("tracestate");

/// The compiled `tracing:` section of a snapshot.
#[derive(Debug)]
pub struct Tracing {
    sampler: Sampler,
    /// Shared with the previous snapshot when `otlp` and the service name did not change.
    exporter: Option<Arc<Exporter>>,
    scope: InstrumentationScope,
}

/// One request's place in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTrace {
    pub trace_id: [u8; 16],
    /// The caller's span, from a valid incoming `traceparent`.
    pub parent_id: Option<[u8; 8]>,
    /// Pylon's server span.
    pub span_id: [u8; 8],
    /// The upstream call's span, sent upstream as the parent. One for all attempts of a
    /// request, so the upstream spans of a failed attempt are not left without a parent.
    pub client_span_id: Option<[u8; 8]>,
    /// When the first attempt that reached the upstream started (the client span's start).
    pub first_attempt: Option<Instant>,
    pub sampled: bool,
    /// The incoming `traceparent` was invalid or missing: a `tracestate` beside it belongs
    /// to no trace we pass on, so it is removed upstream.
    pub replace_tracestate: bool,
}

impl Tracing {
    /// Compiles the section, keeping `previous`'s exporter (its thread, queue and
    /// connections) when the export settings are unchanged.
    pub fn compile(def: &TracingConfig, previous: Option<&Tracing>) -> Result<Tracing, String> {
        let exporter = match &def.otlp {
            None => None,
            Some(otlp) => match previous
                .and_then(|p| p.exporter.as_ref())
                .filter(|e| e.config == *otlp && e.service_name == def.service_name)
            {
                Some(kept) => Some(kept.clone()),
                None => Some(Exporter::start(otlp, &def.service_name)?),
            },
        };
        Ok(Tracing {
            sampler: Sampler::new(def.sampling, def.parent_based),
            exporter,
            scope: InstrumentationScope::builder("pylon")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        })
    }

    /// The trace a request belongs to: the client's (from a valid `traceparent`; several
    /// `traceparent` headers are invalid) or a new one.
    pub fn start(&self, req: &RequestHeader) -> RequestTrace {
        let mut values = req.headers.get_all(TRACEPARENT).iter();
        let parent = match (values.next(), values.next()) {
            (Some(value), None) => TraceParent::parse(value.as_bytes()),
            _ => None,
        };
        let trace_id = parent.map_or_else(new_trace_id, |p| p.trace_id);
        RequestTrace {
            trace_id,
            parent_id: parent.map(|p| p.parent_id),
            span_id: new_span_id(),
            client_span_id: None,
            first_attempt: None,
            sampled: self.sampler.sampled(&trace_id, parent.map(|p| p.sampled())),
            replace_tracestate: parent.is_none(),
        }
    }

    /// Queues the spans of a sampled request for export (when `otlp` is configured).
    /// `info` is gathered only then: an unsampled request costs nothing more here.
    pub fn finish<'a>(
        &self,
        trace: &RequestTrace,
        info: impl FnOnce() -> RequestInfo<'a>,
        measured: &Measured,
    ) {
        let Some(exporter) = self.exporter.as_ref().filter(|_| trace.sampled) else {
            return;
        };
        let info = info();
        let mut trace = *trace;
        if trace.client_span_id.is_none() && measured.attempts > 0 {
            // The attempt failed before its request was written (connect error): its span
            // still gets an id.
            trace.client_span_id = Some(new_span_id());
        }
        let end = measured.received_at + measured.elapsed();
        let (server, client) = span::assemble(&trace, &info, measured, end, &self.scope);
        if let Some(client) = client {
            exporter.send(client);
        }
        exporter.send(server);
    }
}

impl RequestTrace {
    /// A sampled trace with the given ids, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(
        trace_id: [u8; 16],
        parent_id: Option<[u8; 8]>,
        client_span_id: Option<[u8; 8]>,
    ) -> RequestTrace {
        RequestTrace {
            trace_id,
            parent_id,
            span_id: [2; 8],
            client_span_id,
            first_attempt: None,
            sampled: true,
            replace_tracestate: false,
        }
    }

    /// Adds `traceparent` to an upstream attempt's request, naming the client span as the
    /// parent. `attempt_started` is when this attempt started (as the proxy measured it).
    pub fn inject(
        &mut self,
        upstream: &mut RequestHeader,
        attempt_started: Option<Instant>,
    ) -> Result<()> {
        let span_id = match self.client_span_id {
            Some(id) => id,
            None => {
                self.first_attempt = attempt_started;
                *self.client_span_id.insert(new_span_id())
            }
        };
        let value = traceparent::format(&self.trace_id, &span_id, self.sampled);
        upstream.insert_header(
            &*header_names::TRACEPARENT,
            http::HeaderValue::from_bytes(&value).map_err(|e| {
                pingora::Error::because(pingora::ErrorType::InternalError, "traceparent", e)
            })?,
        )?;
        if self.replace_tracestate {
            upstream.remove_header(&TRACESTATE);
        }
        Ok(())
    }

    /// The trace id in hex, for error bodies and logs.
    pub fn trace_id_hex(&self) -> String {
        traceparent::trace_id_hex(&self.trace_id)
    }
}

/// `host` of a `host[:port]` authority, an IPv6 address without its brackets (OTel's
/// `server.address`).
pub fn host_without_port(authority: &str) -> &str {
    let host = crate::request_view::host_without_port(authority);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// A random trace id; never all zeros (which means "no trace").
fn new_trace_id() -> [u8; 16] {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// A random span id; never all zeros.
fn new_span_id() -> [u8; 8] {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tracing(sampling: f64) -> Tracing {
        let def = TracingConfig {
            sampling,
            parent_based: true,
            service_name: "pylon".into(),
            otlp: None,
        };
        Tracing::compile(&def, None).unwrap()
    }

    fn request(traceparent: Option<&str>) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        if let Some(tp) = traceparent {
            req.insert_header("traceparent", tp).unwrap();
            req.insert_header("tracestate", "k=v").unwrap();
        }
        req
    }

    #[test]
    fn a_valid_parent_is_continued_and_sent_upstream_with_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let req = request(Some(incoming));
        let mut trace = tracing(0.0).start(&req);
        assert_eq!(trace.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            trace.parent_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert!(trace.sampled, "the parent's decision wins");
        let mut up = req.clone();
        trace.inject(&mut up, None).unwrap();
        let sent = up.headers["traceparent"].to_str().unwrap().to_string();
        let parsed = TraceParent::parse(sent.as_bytes()).unwrap();
        assert_eq!(parsed.trace_id, trace.trace_id);
        assert_eq!(Some(parsed.parent_id), trace.client_span_id);
        assert!(parsed.sampled());
        assert_eq!(up.headers["tracestate"], "k=v");
    }

    #[test]
    fn hosts_lose_their_port() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
    }

    #[test]
    fn an_invalid_or_missing_parent_starts_a_trace() {
        let req = request(Some(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        ));
        let mut trace = tracing(1.0).start(&req);
        assert_ne!(trace.trace_id, [0; 16]);
        assert_eq!(trace.parent_id, None);
        let mut up = req.clone();
        trace.inject(&mut up, None).unwrap();
        assert!(up.headers.get("tracestate").is_none());
        let unsampled = tracing(0.0).start(&request(None));
        assert!(!unsampled.sampled);
        assert_ne!(unsampled.trace_id, trace.trace_id);
    }
}
