//! Distributed tracing through the binary: W3C `traceparent`/`tracestate` continued, started
//! and replaced; sampling; spans exported over OTLP/HTTP (protobuf and JSON) to a small
//! receiver in this file that decodes what it got; the trace id in error bodies and logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;

use crate::harness::configs::one_upstream;
use crate::harness::pylon::check_refuses;
use crate::harness::raw_server;
use crate::harness::{Origin, Pylon};

/// Export requests received: their headers and decoded body.
type Received = Mutex<Vec<(Vec<(String, String)>, ExportTraceServiceRequest)>>;

/// An OTLP/HTTP traces receiver: records every `POST /v1/traces`, decoded by its
/// `Content-Type`, with its headers, and answers 200.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Received>,
}

impl Receiver {
    fn start() -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = got.clone();
        let addr = raw_server(move |stream| serve(stream, &store));
        Receiver { addr, got }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Every span received so far, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let got = self.got.lock().unwrap();
        let mut spans = Vec::new();
        for (_, request) in got.iter() {
            for rs in &request.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| {
                        r.attributes
                            .iter()
                            .find(|kv| kv.key == "service.name")
                            .and_then(|kv| string_value(kv.value.as_ref()?.value.as_ref()?))
                    })
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    spans.extend(ss.spans.iter().map(|s| (service.clone(), s.clone())));
                }
            }
        }
        spans
    }

    /// Waits (at most 10 s) until spans of `trace_id` of both kinds arrived.
    fn wait_trace(&self, trace_id: &[u8], kinds: &[SpanKind]) -> Vec<(String, Span)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<_> = self
                .spans()
                .into_iter()
                .filter(|(_, s)| s.trace_id == trace_id)
                .collect();
            if kinds
                .iter()
                .all(|k| spans.iter().any(|(_, s)| s.kind == *k as i32))
            {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "spans of trace {} not exported; got {:#?}",
                hex(trace_id),
                self.spans()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The headers of the first export request.
    fn first_headers(&self) -> Vec<(String, String)> {
        self.got.lock().unwrap()[0].0.clone()
    }
}

/// One connection: keep-alive requests, each recorded and answered 200.
fn serve(stream: TcpStream, store: &Received) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let request_line = line.trim().to_string();
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(request_line, "POST /v1/traces HTTP/1.1");
        let decoded = if header("content-type").contains("json") {
            serde_json::from_slice(&body).unwrap()
        } else {
            ExportTraceServiceRequest::decode(body.as_slice()).unwrap()
        };
        store.lock().unwrap().push((headers, decoded));
        writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    }
}

fn string_value(v: &Value) -> Option<String> {
    match v {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.clone())
}

fn kind(spans: &[(String, Span)], kind: SpanKind) -> Span {
    spans
        .iter()
        .find(|(_, s)| s.kind == kind as i32)
        .map(|(_, s)| s.clone())
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The trace id, parent id and flags of a `traceparent`, checked to be well formed.
fn parts(traceparent: &str) -> (String, String, String) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent}");
    assert_eq!(fields[0], "00", "{traceparent}");
    assert_eq!(fields[1].len(), 32, "{traceparent}");
    assert_eq!(fields[2].len(), 16, "{traceparent}");
    assert!(
        traceparent[3..]
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{traceparent}"
    );
    assert_ne!(fields[1], "0".repeat(32));
    assert_ne!(fields[2], "0".repeat(16));
    (fields[1].into(), fields[2].into(), fields[3].into())
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn config(servers: &str, tracing: &str) -> String {
    format!("{}\ntracing:\n{tracing}\n", one_upstream(servers, "", ""))
}

#[test]
fn a_sampled_incoming_trace_is_continued_upstream_and_exported() {
    let origin = Origin::start("app");
    let receiver = Receiver::start();
    let pylon = Pylon::start(&config(
        &format!("[\"{}\"]", origin.address()),
        &format!(
            "  service_name: edge\n  otlp: {{ endpoint: \"{}\", interval: 50ms, headers: {{ x-otlp-token: secret }} }}",
            receiver.endpoint()
        ),
    ));
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = pylon.client().request(
        "GET",
        "/items?q=1",
        &[
            ("traceparent", &incoming),
            ("tracestate", "vendor=abc,other=1"),
            ("user-agent", "trace-test"),
        ],
    );
    assert_eq!(r.status, 200);
    let sent = r
        .origin_header("traceparent")
        .expect("traceparent upstream");
    let (trace, parent, flags) = parts(&sent);
    assert_eq!(trace, TRACE, "the trace goes on");
    assert_ne!(parent, PARENT, "Pylon's span is the upstream's parent");
    assert_eq!(flags, "01");
    assert_eq!(
        r.origin_header("tracestate").as_deref(),
        Some("vendor=abc,other=1")
    );

    let spans = receiver.wait_trace(&unhex(TRACE), &[SpanKind::Server, SpanKind::Client]);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let server = kind(&spans, SpanKind::Server);
    let client = kind(&spans, SpanKind::Client);
    assert!(spans.iter().all(|(service, _)| service == "edge"));
    assert_eq!(server.name, "GET all");
    assert_eq!(
        server.parent_span_id,
        unhex(PARENT),
        "the caller is the parent"
    );
    assert_eq!(
        attr(&server, "http.route"),
        Some(Value::StringValue("all".into()))
    );
    assert_eq!(
        attr(&server, "http.request.method"),
        Some(Value::StringValue("GET".into()))
    );
    assert_eq!(
        attr(&server, "url.path"),
        Some(Value::StringValue("/items".into()))
    );
    assert_eq!(
        attr(&server, "http.response.status_code"),
        Some(Value::IntValue(200))
    );
    assert_eq!(
        attr(&server, "user_agent.original"),
        Some(Value::StringValue("trace-test".into()))
    );
    assert_eq!(
        attr(&server, "pylon.upstream"),
        Some(Value::StringValue("app".into()))
    );
    assert_eq!(
        client.span_id,
        unhex(&parent),
        "the client span is what the origin saw"
    );
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(
        attr(&client, "server.port"),
        Some(Value::IntValue(i64::from(origin.addr.port())))
    );
    assert_eq!(
        attr(&client, "http.response.status_code"),
        Some(Value::IntValue(200))
    );
    assert!(client.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(client.end_time_unix_nano <= server.end_time_unix_nano);
    let headers = receiver.first_headers();
    assert!(
        headers.contains(&("x-otlp-token".into(), "secret".into())),
        "{headers:?}"
    );
    assert!(headers.contains(&("content-type".into(), "application/x-protobuf".into())));
}

#[test]
fn a_trace_starts_when_the_request_has_none_or_an_invalid_one() {
    let origin = Origin::start("app");
    let receiver = Receiver::start();
    let pylon = Pylon::start(&config(
        &format!("[\"{}\"]", origin.address()),
        &format!(
            "  sampling: 1.0\n  otlp: {{ endpoint: \"{}\", protocol: http/json, interval: 50ms }}",
            receiver.endpoint()
        ),
    ));
    let c = pylon.client();
    let r = c.get("/new");
    let (trace, parent, flags) = parts(&r.origin_header("traceparent").expect("started"));
    assert_eq!(flags, "01");
    let spans = receiver.wait_trace(&unhex(&trace), &[SpanKind::Server, SpanKind::Client]);
    let server = kind(&spans, SpanKind::Server);
    assert!(server.parent_span_id.is_empty(), "a root span: {server:?}");
    assert_eq!(kind(&spans, SpanKind::Client).span_id, unhex(&parent));
    assert!(receiver
        .first_headers()
        .contains(&("content-type".into(), "application/json".into())));

    // Uppercase hex is invalid: a new trace replaces it, and its tracestate goes with it.
    let invalid = format!("00-{}-{PARENT}-01", TRACE.to_uppercase());
    let r = c.request(
        "GET",
        "/",
        &[("traceparent", &invalid), ("tracestate", "k=v")],
    );
    let (trace2, _, _) = parts(&r.origin_header("traceparent").expect("replaced"));
    assert_ne!(trace2, TRACE.to_string());
    assert_ne!(trace2, trace);
    assert_eq!(r.origin_header("tracestate"), None);
}

#[test]
fn unsampled_traces_are_propagated_but_not_exported() {
    let origin = Origin::start("app");
    let receiver = Receiver::start();
    let pylon = Pylon::start(&config(
        &format!("[\"{}\"]", origin.address()),
        &format!(
            "  sampling: 0\n  otlp: {{ endpoint: \"{}\", interval: 50ms }}",
            receiver.endpoint()
        ),
    ));
    let c = pylon.client();
    let r = c.get("/unsampled");
    let (unsampled, _, flags) = parts(&r.origin_header("traceparent").expect("propagated"));
    assert_eq!(flags, "00", "not sampled");
    // An unsampled caller is followed too.
    let r = c.request(
        "GET",
        "/",
        &[(
            "traceparent",
            &format!("00-{}-{PARENT}-00", "ab".repeat(16)),
        )],
    );
    assert!(r.origin_header("traceparent").unwrap().ends_with("-00"));
    // Positive control: a sampled caller is followed (parent_based), so the exporter works.
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = c.request("GET", "/", &[("traceparent", &incoming)]);
    assert!(r.origin_header("traceparent").unwrap().ends_with("-01"));
    receiver.wait_trace(&unhex(TRACE), &[SpanKind::Server]);
    std::thread::sleep(Duration::from_millis(200));
    let spans = receiver.spans();
    assert!(
        spans.iter().all(|(_, s)| s.trace_id == unhex(TRACE)),
        "only the sampled trace is exported (not {unsampled}): {spans:#?}"
    );
}

#[test]
fn a_dead_upstreams_502_names_the_trace_in_body_span_and_log() {
    let dead = crate::harness::closed_addr();
    let receiver = Receiver::start();
    let pylon = Pylon::start(&config(
        &format!("[\"{dead}\"]"),
        &format!(
            "  otlp: {{ endpoint: \"{}\", interval: 50ms }}",
            receiver.endpoint()
        ),
    ));
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = pylon.client().request(
        "GET",
        "/",
        &[("traceparent", &incoming), ("accept", "application/json")],
    );
    assert_eq!(r.status, 502);
    let body = r.json();
    assert_eq!(body["trace_id"], TRACE, "{body}");
    assert!(
        body["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    let text = pylon.client().request(
        "GET",
        "/",
        &[("traceparent", &incoming), ("accept", "text/plain")],
    );
    assert!(
        text.text().contains(&format!("trace id: {TRACE}")),
        "{}",
        text.text()
    );

    let spans = receiver.wait_trace(&unhex(TRACE), &[SpanKind::Server, SpanKind::Client]);
    let server = kind(&spans, SpanKind::Server);
    assert_eq!(
        attr(&server, "http.response.status_code"),
        Some(Value::IntValue(502))
    );
    assert_eq!(
        server.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    let client = kind(&spans, SpanKind::Client);
    assert_eq!(
        attr(&client, "error.type"),
        Some(Value::StringValue("connect".into()))
    );
    assert_eq!(
        client.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert!(
        pylon.wait_for_log(&format!("trace_id: {TRACE}")),
        "the error log line names the trace:\n{}",
        pylon.log()
    );
}

#[test]
fn a_retried_call_is_one_client_span_that_every_attempt_names_as_parent() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    a.force_status(503);
    let receiver = Receiver::start();
    let yaml = format!(
        "{}\ntracing:\n  otlp: {{ endpoint: \"{}\", interval: 50ms }}\n",
        one_upstream(
            &format!("[\"{}\", \"{}\"]", a.address(), b.address()),
            "    retries: { attempts: 2, on: [503] }",
            ""
        ),
        receiver.endpoint()
    );
    let pylon = Pylon::start(&yaml);
    // Round robin: at least one of two requests goes to `a` first and is retried on `b`.
    let mut sent = Vec::new();
    for i in 0..2 {
        let trace = format!("{i:032x}").replace('0', "7");
        let incoming = format!("00-{trace}-{PARENT}-01");
        let r = pylon
            .client()
            .request("GET", "/", &[("traceparent", &incoming)]);
        assert_eq!(r.served_by(), "b");
        let (_, parent, _) = parts(&r.origin_header("traceparent").unwrap());
        sent.push((trace, parent));
    }
    assert!(a.hits() >= 1, "a was never tried");
    let mut retried = 0;
    for (trace, parent) in &sent {
        let spans = receiver.wait_trace(&unhex(trace), &[SpanKind::Server, SpanKind::Client]);
        assert_eq!(spans.len(), 2, "one client span per request: {spans:#?}");
        let client = kind(&spans, SpanKind::Client);
        assert_eq!(
            client.span_id,
            unhex(parent),
            "b saw the client span as its parent"
        );
        assert_eq!(
            attr(&client, "http.response.status_code"),
            Some(Value::IntValue(200))
        );
        assert_eq!(
            attr(&client, "server.port"),
            Some(Value::IntValue(i64::from(b.addr.port())))
        );
        if attr(&client, "http.request.resend_count") == Some(Value::IntValue(1)) {
            retried += 1;
        }
    }
    assert!(retried >= 1, "no request was retried");
    assert_eq!(
        retried,
        a.hits(),
        "each request `a` failed was retried once"
    );
}

#[test]
fn a_collector_that_is_down_costs_requests_nothing() {
    let origin = Origin::start("app");
    let dead = crate::harness::closed_addr();
    let pylon = Pylon::start(&config(
        &format!("[\"{}\"]", origin.address()),
        &format!("  otlp: {{ endpoint: \"http://{dead}/v1/traces\", interval: 50ms }}"),
    ));
    let c = pylon.client();
    for _ in 0..20 {
        assert_eq!(c.get("/").status, 200);
    }
    assert!(
        pylon.wait_for_log("spans not exported"),
        "the failed export is logged:\n{}",
        pylon.log()
    );
    assert_eq!(c.get("/").status, 200);
}

#[test]
fn without_tracing_headers_pass_through_untouched() {
    let origin = Origin::start("app");
    let pylon = Pylon::start(&one_upstream(
        &format!("[\"{}\"]", origin.address()),
        "",
        "",
    ));
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = pylon.client().request(
        "GET",
        "/",
        &[("traceparent", &incoming), ("tracestate", "k=v")],
    );
    assert_eq!(r.origin_header("traceparent"), Some(incoming));
    assert_eq!(r.origin_header("tracestate").as_deref(), Some("k=v"));
}

#[test]
fn a_reload_changes_sampling_and_moves_the_exporter() {
    let origin = Origin::start("app");
    let (first, second) = (Receiver::start(), Receiver::start());
    let servers = format!("[\"{}\"]", origin.address());
    let tracing = |sampling: &str, receiver: &Receiver| {
        config(
            &servers,
            &format!(
                "  sampling: {sampling}\n  parent_based: false\n  otlp: {{ endpoint: \"{}\", interval: 50ms }}",
                receiver.endpoint()
            ),
        )
    };
    let pylon = Pylon::start(&tracing("0", &first));
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = pylon
        .client()
        .request("GET", "/", &[("traceparent", &incoming)]);
    assert!(
        r.origin_header("traceparent").unwrap().ends_with("-00"),
        "parent_based: false, sampling 0 overrules the caller"
    );
    pylon.rewrite_config(&tracing("1.0", &second));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = pylon
            .client()
            .request("GET", "/", &[("traceparent", &incoming)]);
        if r.origin_header("traceparent").unwrap().ends_with("-01") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reload did not apply:\n{}",
            pylon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    second.wait_trace(&unhex(TRACE), &[SpanKind::Server]);
    assert!(first.spans().is_empty(), "the old exporter got nothing");
}

#[test]
fn bad_tracing_settings_are_refused_with_their_place() {
    let out = check_refuses(&config(
        "[\"127.0.0.1:9\"]",
        "  sampling: 2\n  otlp: { endpoint: \"https://collector:4318/v1/traces\" }",
    ));
    assert!(
        out.contains("tracing.sampling") && out.contains("from 0.0 to 1.0"),
        "{out}"
    );
    assert!(
        out.contains("tracing.otlp.endpoint") && out.contains("https is not supported"),
        "{out}"
    );
    assert!(out.contains("pylon.yaml:"), "{out}");
}

#[test]
fn spans_still_queued_at_shutdown_are_exported_before_exit() {
    let origin = Origin::start("app");
    let receiver = Receiver::start();
    // An interval far longer than the test: only the exit flush can send the spans.
    let mut pylon = Pylon::start(&config(
        &format!("[\"{}\"]", origin.address()),
        &format!(
            "  otlp: {{ endpoint: \"{}\", interval: 1h }}",
            receiver.endpoint()
        ),
    ));
    let incoming = format!("00-{TRACE}-{PARENT}-01");
    let r = pylon
        .client()
        .request("GET", "/", &[("traceparent", &incoming)]);
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        receiver.spans().is_empty(),
        "nothing is exported before the hour is up"
    );
    pylon.signal("TERM");
    assert!(
        pylon.wait_exit(Duration::from_secs(20)).is_some(),
        "pylon stops"
    );
    let spans = receiver.wait_trace(&unhex(TRACE), &[SpanKind::Server, SpanKind::Client]);
    assert_eq!(spans.len(), 2, "{spans:#?}");
}
