//! Span assembly: a sampled request becomes a SERVER span (the request as Pylon saw it) and,
//! when it went upstream, a CLIENT child span (the upstream call over all its attempts, whose
//! id is the parent id sent upstream in `traceparent`; address and outcome are the last
//! attempt's). Built once, in the logging phase, from what
//! the proxy measured; attribute names follow OpenTelemetry's HTTP semantic conventions.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::RequestTrace;
use crate::measured::Measured;

/// What the spans say about the request, gathered by the proxy's logging phase.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo<'a> {
    pub method: &'a str,
    /// The path, without the query (which may carry secrets).
    pub path: &'a str,
    pub scheme: &'static str,
    /// The `Host` the client asked for, without its port.
    pub host: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The matched route's name; empty when none matched.
    pub route: &'a str,
    pub client_ip: Option<IpAddr>,
    pub request_id: Option<&'a str>,
    /// The route's upstream, when it has one.
    pub upstream: Option<&'a str>,
    /// The status the client got (0: the client went away first).
    pub status: u16,
}

/// The request's SERVER span and, when an upstream attempt was made, its CLIENT span.
/// `end` is when the request finished.
pub fn assemble(
    trace: &RequestTrace,
    info: &RequestInfo<'_>,
    measured: &Measured,
    end: SystemTime,
    scope: &InstrumentationScope,
) -> (SpanData, Option<SpanData>) {
    let trace_id = TraceId::from_bytes(trace.trace_id);
    let context = |span_id: [u8; 8]| {
        SpanContext::new(
            trace_id,
            SpanId::from_bytes(span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        )
    };
    let name: Cow<'static, str> = if info.route.is_empty() {
        Cow::Owned(info.method.to_string())
    } else {
        Cow::Owned(format!("{} {}", info.method, info.route))
    };
    let mut attributes = vec![
        KeyValue::new("http.request.method", info.method.to_string()),
        KeyValue::new("url.path", info.path.to_string()),
        KeyValue::new("url.scheme", info.scheme),
    ];
    if !info.route.is_empty() {
        attributes.push(KeyValue::new("http.route", info.route.to_string()));
    }
    if info.status != 0 {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(info.status),
        ));
    }
    if let Some(ip) = info.client_ip {
        attributes.push(KeyValue::new("client.address", ip.to_string()));
    }
    if let Some(host) = info.host {
        attributes.push(KeyValue::new("server.address", host.to_string()));
    }
    if let Some(agent) = info.user_agent {
        attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
    }
    if let Some(id) = info.request_id {
        attributes.push(KeyValue::new("pylon.request_id", id.to_string()));
    }
    if let Some(upstream) = info.upstream {
        attributes.push(KeyValue::new("pylon.upstream", upstream.to_string()));
    }
    // OTel: a server span is an error for 5xx only (4xx is the client's doing).
    let status = if info.status >= 500 {
        Status::error(format!("status {}", info.status))
    } else {
        Status::Unset
    };
    let server = SpanData {
        span_context: context(trace.span_id),
        parent_span_id: trace.parent_id.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: trace.parent_id.is_some(),
        span_kind: SpanKind::Server,
        name,
        start_time: measured.received_at,
        end_time: end.max(measured.received_at),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    };
    let client = match (trace.client_span_id, measured.attempts) {
        (Some(client_id), 1..) => Some(client_span(
            trace, client_id, info, measured, end, scope, &context,
        )),
        _ => None,
    };
    (server, client)
}

fn client_span(
    trace: &RequestTrace,
    client_id: [u8; 8],
    info: &RequestInfo<'_>,
    measured: &Measured,
    end: SystemTime,
    scope: &InstrumentationScope,
    context: &dyn Fn([u8; 8]) -> SpanContext,
) -> SpanData {
    // The call started (its first attempt) this long after the request arrived.
    let offset = trace
        .first_attempt
        .or(measured.attempt_started)
        .map_or(Duration::ZERO, |s| {
            s.saturating_duration_since(measured.received)
        });
    let start = measured.received_at + offset;
    let mut attributes = vec![KeyValue::new(
        "http.request.method",
        info.method.to_string(),
    )];
    if let Some(addr) = measured.upstream_addr {
        attributes.push(KeyValue::new("server.address", addr.ip().to_string()));
        attributes.push(KeyValue::new("server.port", i64::from(addr.port())));
        attributes.push(KeyValue::new("network.peer.address", addr.ip().to_string()));
        attributes.push(KeyValue::new("network.peer.port", i64::from(addr.port())));
    }
    if let Some(status) = measured.upstream_status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(kind) = measured.upstream_error {
        attributes.push(KeyValue::new("error.type", kind));
    }
    if measured.attempts > 1 {
        // OTel's name for the attempt number of a resent request.
        attributes.push(KeyValue::new(
            "http.request.resend_count",
            i64::from(measured.attempts - 1),
        ));
    }
    if let Some(upstream) = info.upstream {
        attributes.push(KeyValue::new("pylon.upstream", upstream.to_string()));
    }
    // OTel: a client span is an error for any status >= 400, or when no answer came.
    let status = match (measured.upstream_status, measured.upstream_error) {
        (Some(s), _) if s >= 400 => Status::error(format!("status {s}")),
        (None, Some(kind)) => Status::error(kind),
        _ => Status::Unset,
    };
    SpanData {
        span_context: context(client_id),
        parent_span_id: SpanId::from_bytes(trace.span_id),
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Owned(info.method.to_string()),
        start_time: start,
        end_time: end.max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use opentelemetry::Value;

    fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn a_proxied_request_makes_a_server_span_and_its_client_child() {
        let trace = RequestTrace::for_test([7; 16], Some([1; 8]), Some([3; 8]));
        let mut measured = Measured::start();
        measured.attempt("10.0.0.5:8080".parse().unwrap(), std::time::Instant::now());
        measured.upstream_answered(503);
        let info = RequestInfo {
            method: "GET",
            path: "/api/x",
            scheme: "http",
            route: "api",
            status: 503,
            upstream: Some("app"),
            ..RequestInfo::default()
        };
        let end = measured.received_at + Duration::from_millis(5);
        let scope = InstrumentationScope::builder("pylon").build();
        let (server, client) = assemble(&trace, &info, &measured, end, &scope);
        assert_eq!(server.name, "GET api");
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(server.parent_span_id, SpanId::from_bytes([1; 8]));
        assert!(server.parent_span_is_remote);
        assert_eq!(server.span_context.span_id(), SpanId::from_bytes([2; 8]));
        assert_eq!(attr(&server, "http.route"), Some(&Value::from("api")));
        assert_eq!(
            attr(&server, "http.response.status_code"),
            Some(&Value::I64(503))
        );
        assert!(matches!(server.status, Status::Error { .. }));
        let client = client.unwrap();
        assert_eq!(client.span_kind, SpanKind::Client);
        assert_eq!(client.span_context.span_id(), SpanId::from_bytes([3; 8]));
        assert_eq!(client.parent_span_id, SpanId::from_bytes([2; 8]));
        assert_eq!(client.span_context.trace_id(), TraceId::from_bytes([7; 16]));
        assert_eq!(attr(&client, "server.port"), Some(&Value::I64(8080)));
        assert!(client.start_time >= server.start_time && client.end_time <= server.end_time);
    }

    #[test]
    fn an_unmatched_request_is_named_by_its_method_and_has_no_client_span() {
        let trace = RequestTrace::for_test([7; 16], None, None);
        let measured = Measured::start();
        let info = RequestInfo {
            method: "POST",
            status: 404,
            ..RequestInfo::default()
        };
        let scope = InstrumentationScope::builder("pylon").build();
        let (server, client) = assemble(&trace, &info, &measured, SystemTime::now(), &scope);
        assert_eq!(server.name, "POST");
        assert_eq!(server.parent_span_id, SpanId::INVALID);
        assert!(!server.parent_span_is_remote);
        assert_eq!(server.status, Status::Unset);
        assert!(client.is_none());
    }
}
