//! Span export: finished spans go into a bounded queue the proxy's workers never wait on
//! (a full queue drops the span and counts it, [`dropped_spans`]); one background thread
//! takes them in batches (`max_batch`, or whatever waited `interval`) and hands each batch
//! to opentelemetry-otlp's `SpanExporter`, which encodes OTLP (protobuf or JSON) and posts
//! it with Pylon's hyper client.
//!
//! Why not the SDK's `BatchSpanProcessor`: it takes spans from the SDK's `Span` API, while
//! Pylon assembles finished `SpanData` (explicit ids and times, from what the proxy
//! measured) in the logging phase; a queue and a loop of our own is smaller than adapting
//! to the processor, and lets the drop count be read as a plain counter.
//!
//! The thread owns a small tokio runtime (one worker) for the HTTP client. It stops when the
//! last handle is dropped (a reload that changed `otlp`), after sending what is queued. At
//! exit, [`flush_all`] has every live exporter send what it holds, so the spans of the last
//! requests before a shutdown or an upgrade are not lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use pylon_config::{OtlpConfig, OtlpProtocol};

use super::http_client::HyperClient;

/// Spans dropped because the export queue was full, since start (all exporters).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Spans dropped because the export queue was full, since the process started: the
/// collector is down or slower than the traffic. For the metrics endpoint.
pub fn dropped_spans() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Every exporter started, for [`flush_all`]; dead ones are pruned as new ones start.
static LIVE: Mutex<Vec<Weak<Exporter>>> = Mutex::new(Vec::new());

/// What the exporter thread receives. Spans are unboxed on purpose: nearly every message is
/// one, and boxing would cost an allocation per span for the sake of the rare flush.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Span(SpanData),
    /// Export what is waiting now, then answer.
    Flush(SyncSender<()>),
}

/// Has every live exporter export what it holds, waiting at most `timeout` in all. For the
/// process's exit path.
pub fn flush_all(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let live: Vec<Arc<Exporter>> = LIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    'exporters: for exporter in live {
        let (ack, acked) = mpsc::sync_channel(1);
        let mut request = Msg::Flush(ack);
        // The queue may be full of spans the thread is working through: retry until there
        // is room or the time is up.
        loop {
            match exporter.queue.try_send(request) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    request = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return,
                // This exporter's thread is gone; the others may still have spans.
                Err(TrySendError::Disconnected(_)) => continue 'exporters,
            }
        }
        if acked
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_err()
        {
            log::warn!("tracing: spans still being exported at exit are lost");
            return;
        }
    }
}

/// The sending end of one exporter thread.
#[derive(Debug)]
pub struct Exporter {
    queue: SyncSender<Msg>,
    /// What this exporter was built from: a reload keeps it when these are unchanged.
    pub(super) config: OtlpConfig,
    pub(super) service_name: String,
}

impl Exporter {
    /// Builds the OTLP exporter and starts its thread.
    pub fn start(config: &OtlpConfig, service_name: &str) -> Result<Arc<Exporter>, String> {
        let protocol = match config.protocol {
            OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
            OtlpProtocol::HttpJson => Protocol::HttpJson,
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(HyperClient::new(config.timeout))
            .with_endpoint(config.endpoint.clone())
            .with_protocol(protocol)
            .with_timeout(config.timeout)
            .with_headers(config.headers.clone().into_iter().collect())
            .build()
            .map_err(|e| format!("tracing.otlp: cannot build the exporter: {e}"))?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(service_name.to_string())
                .with_attributes([KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))])
                .build(),
        );
        let (queue, spans) = mpsc::sync_channel(config.max_queue);
        // One worker keeps pooled connections' tasks running between exports (so a
        // connection the collector closed is noticed before it is reused); the exporter
        // thread itself drives each export with `block_on`.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pylon-otlp-io")
            .enable_all()
            .build()
            .map_err(|e| format!("tracing.otlp: cannot start the exporter's runtime: {e}"))?;
        let settings = (config.max_batch, config.interval, config.endpoint.clone());
        std::thread::Builder::new()
            .name("pylon-otlp".into())
            .spawn(move || run(runtime, exporter, spans, settings))
            .map_err(|e| format!("tracing.otlp: cannot start the exporter thread: {e}"))?;
        let exporter = Arc::new(Exporter {
            queue,
            config: config.clone(),
            service_name: service_name.to_string(),
        });
        let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|e| e.strong_count() > 0);
        live.push(Arc::downgrade(&exporter));
        Ok(exporter)
    }

    /// Queues a finished span; never waits. A full queue drops it (counted).
    pub fn send(&self, span: SpanData) {
        if self.queue.try_send(Msg::Span(span)).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The exporter thread: batches by size or time, exports, until every sender is gone.
fn run(
    runtime: tokio::runtime::Runtime,
    exporter: opentelemetry_otlp::SpanExporter,
    spans: Receiver<Msg>,
    (max_batch, interval, endpoint): (usize, Duration, String),
) {
    let mut batch = Vec::with_capacity(max_batch.min(1024));
    let mut failing = false;
    let mut export = |batch: &mut Vec<SpanData>| {
        if batch.is_empty() {
            return;
        }
        let count = batch.len();
        match runtime.block_on(exporter.export(std::mem::take(batch))) {
            Ok(()) => {
                if failing {
                    log::info!("tracing: exporting spans to {endpoint} works again");
                }
                failing = false;
            }
            // Logged once per outage, not once per batch.
            Err(e) if !failing => {
                failing = true;
                log::warn!("tracing: {count} spans not exported to {endpoint}: {e}");
            }
            Err(e) => log::debug!("tracing: {count} spans not exported to {endpoint}: {e}"),
        }
    };
    let mut deadline = Instant::now() + interval;
    loop {
        match spans.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Msg::Span(span)) => {
                batch.push(span);
                if batch.len() >= max_batch {
                    export(&mut batch);
                }
            }
            Ok(Msg::Flush(ack)) => {
                export(&mut batch);
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                export(&mut batch);
                deadline = Instant::now() + interval;
            }
            Err(RecvTimeoutError::Disconnected) => {
                export(&mut batch);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::measured::Measured;
    use crate::tracing::{span, RequestInfo, RequestTrace};
    use opentelemetry::InstrumentationScope;

    fn a_span() -> SpanData {
        let trace = RequestTrace::for_test([1; 16], None, None);
        let measured = Measured::start();
        let scope = InstrumentationScope::builder("pylon").build();
        let info = RequestInfo {
            method: "GET",
            ..RequestInfo::default()
        };
        span::assemble(&trace, &info, &measured, measured.received_at, &scope).0
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // A collector that accepts connections and never answers: the first export hangs
        // for `timeout`, the queue (1 span) fills, and the rest is dropped at once.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let config = OtlpConfig {
            endpoint: format!("http://{}/v1/traces", silent.local_addr().unwrap()),
            max_queue: 1,
            max_batch: 1,
            timeout: Duration::from_secs(30),
            ..OtlpConfig::default()
        };
        let exporter = Exporter::start(&config, "test").unwrap();
        let before = dropped_spans();
        let started = Instant::now();
        for _ in 0..10 {
            exporter.send(a_span());
        }
        assert!(started.elapsed() < Duration::from_secs(5), "send waited");
        // At most one span in the exporter's hands and one in the queue.
        assert!(
            dropped_spans() - before >= 8,
            "{}",
            dropped_spans() - before
        );
    }
}
