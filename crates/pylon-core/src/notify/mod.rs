//! Webhook notifications (`notifications:`): events an operator cares about — a server down
//! or back, a config applied or refused, the process started or stopping — POSTed to the
//! configured URLs as JSON, Slack or Discord bodies.
//!
//! Never in the way of traffic: [`notify`] only puts the event in a bounded queue (an event
//! that finds it full is dropped and counted), and the [`NotifyService`] background service
//! delivers from it on its own runtime, each delivery with its own timeout and retries, at
//! most [`MAX_DELIVERIES`] at once. The targets are read from the serving config when an
//! event is delivered, so a reload changes them for the next event.
//!
//! Modules: `payload` (the three body shapes), `deliver` (one POST over Pingora's connector,
//! http or https with OpenSSL, and the retries).

mod deliver;
mod payload;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pylon_config::NotifyEvent;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};

use crate::SharedSnapshot;

use payload::body;

/// Events waiting for delivery, at most.
pub const QUEUE_CAPACITY: usize = 1024;
/// Deliveries in progress at once, at most (each may be waiting out its retries).
pub const MAX_DELIVERIES: usize = 16;
/// On shutdown, how long the queue gets to empty (the `stopping` event included).
const SHUTDOWN_FLUSH: std::time::Duration = std::time::Duration::from_secs(3);

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: NotifyEvent,
    pub at: SystemTime,
    /// One line for people: "upstream `api` server 127.0.0.1:3001 is down: …".
    pub message: String,
    /// The details, for machines (the `data` of the JSON body).
    pub data: Value,
}

impl Event {
    pub fn new(kind: NotifyEvent, message: impl Into<String>, data: Value) -> Event {
        Event {
            kind,
            at: SystemTime::now(),
            message: message.into(),
            data,
        }
    }
}

/// The queue between the code where events happen and the delivering service.
pub struct Notifier {
    snapshot: SharedSnapshot,
    queue: mpsc::Sender<Event>,
    receiver: Mutex<Option<mpsc::Receiver<Event>>>,
    dropped: AtomicU64,
}

static NOTIFIER: OnceLock<Arc<Notifier>> = OnceLock::new();

impl Notifier {
    /// Creates the process's notifier over the serving snapshot and installs it for
    /// [`notify`]; a second call returns the first one.
    pub fn install(snapshot: SharedSnapshot) -> Arc<Notifier> {
        NOTIFIER
            .get_or_init(|| {
                let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
                Arc::new(Notifier {
                    snapshot,
                    queue,
                    receiver: Mutex::new(Some(receiver)),
                    dropped: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// Queues `event` when a webhook of the serving config wants it. Never waits.
    pub fn send(&self, event: Event) {
        let wanted = self
            .snapshot
            .load()
            .config
            .notifications
            .iter()
            .any(|t| t.events.contains(&event.kind));
        if !wanted {
            return;
        }
        if let Err(e) = self.queue.try_send(event) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Log the first drop and then every 100th, not every one of a flood.
            if dropped % 100 == 1 {
                log::warn!("notifications: queue full, event dropped ({dropped} so far): {e}");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Queues an event for the webhooks, if notifications are installed (the binary installs
/// them; library tests do not).
pub fn notify(kind: NotifyEvent, message: impl Into<String>, data: Value) {
    if let Some(notifier) = NOTIFIER.get() {
        notifier.send(Event::new(kind, message, data));
    }
}

/// A new config serves: `config_applied`.
pub fn config_applied(generation: u64, summary: &crate::snapshot::ChangeSummary) {
    notify(
        NotifyEvent::ConfigApplied,
        format!("config generation {generation} applied; {summary}"),
        serde_json::json!({ "generation": generation, "summary": summary.to_string() }),
    );
}

/// A reload from `source` (`file change`, `SIGHUP`, `etcd change`) was refused:
/// `config_rejected`, with every error.
pub fn config_rejected(source: &str, running: u64, errors: &[String]) {
    let first = errors.first().map(String::as_str).unwrap_or("");
    notify(
        NotifyEvent::ConfigRejected,
        format!(
            "config reload ({source}) refused, {} error(s), still serving generation {running}: {first}",
            errors.len()
        ),
        serde_json::json!({ "source": source, "generation": running, "errors": errors }),
    );
}

/// Events dropped because the queue was full, since start.
pub fn dropped_events() -> u64 {
    NOTIFIER.get().map_or(0, |n| n.dropped())
}

/// Sends [`pylon_upstream`]'s health transitions as `upstream_health` events.
pub fn forward_health_events() {
    pylon_upstream::health::events::listen(|e| {
        let message = format!("upstream `{}` server {} {}", e.upstream, e.server, e.reason);
        notify(
            NotifyEvent::UpstreamHealth,
            message,
            serde_json::json!({
                "upstream": e.upstream,
                "server": e.server,
                "healthy": e.healthy,
                "reason": e.reason,
            }),
        );
    });
}

/// The background service that delivers queued events. Sends `started` when it starts and
/// `stopping` when Pingora starts shutting down, then gives the queue a few seconds to empty.
pub struct NotifyService {
    notifier: Arc<Notifier>,
    /// What `started` reports: version and listeners.
    started: Value,
}

impl NotifyService {
    pub fn new(notifier: Arc<Notifier>, started: Value) -> NotifyService {
        NotifyService { notifier, started }
    }
}

#[async_trait]
impl BackgroundService for NotifyService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(mut receiver) = self
            .notifier
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let pid = std::process::id();
        self.notifier.send(Event::new(
            NotifyEvent::Started,
            format!("Pylon {} started (pid {pid})", env!("CARGO_PKG_VERSION")),
            self.started.clone(),
        ));
        let mut dispatcher = Dispatcher::new(self.notifier.clone());
        loop {
            tokio::select! {
                event = receiver.recv() => match event {
                    Some(event) => dispatcher.dispatch(&event),
                    None => return,
                },
                _ = shutdown.changed() => break,
                // Reap finished deliveries so the set does not grow.
                Some(_) = dispatcher.deliveries.join_next(), if !dispatcher.deliveries.is_empty() => {}
            }
        }
        self.notifier.send(Event::new(
            NotifyEvent::Stopping,
            format!("Pylon (pid {pid}) is stopping"),
            serde_json::json!({ "pid": pid }),
        ));
        let flush = async {
            while let Ok(event) = receiver.try_recv() {
                dispatcher.dispatch(&event);
            }
            while dispatcher.deliveries.join_next().await.is_some() {}
        };
        if tokio::time::timeout(SHUTDOWN_FLUSH, flush).await.is_err() {
            log::warn!("notifications: stopping with deliveries still pending");
        }
    }
}

/// Turns queued events into deliveries: one task per webhook that wants the event. The
/// tasks wait for one of [`MAX_DELIVERIES`] slots themselves, so a webhook waiting out its
/// retries never stops the service from reading its queue or seeing the shutdown.
struct Dispatcher {
    notifier: Arc<Notifier>,
    /// Made at the first delivery: a connector loads the system's CA certificates (~200M
    /// instructions), which a process without webhooks should not pay for.
    connector: Option<Arc<pingora::connectors::http::Connector>>,
    slots: Arc<Semaphore>,
    deliveries: tokio::task::JoinSet<()>,
    /// This machine's name, read once.
    host: String,
}

impl Dispatcher {
    fn new(notifier: Arc<Notifier>) -> Dispatcher {
        Dispatcher {
            notifier,
            connector: None,
            slots: Arc::new(Semaphore::new(MAX_DELIVERIES)),
            deliveries: tokio::task::JoinSet::new(),
            host: hostname(),
        }
    }

    fn dispatch(&mut self, event: &Event) {
        let snapshot = self.notifier.snapshot.load_full();
        for target in &snapshot.config.notifications {
            if !target.events.contains(&event.kind) {
                continue;
            }
            // Deliveries waiting for a slot are bounded like the queue they came from.
            if self.deliveries.len() >= QUEUE_CAPACITY {
                self.notifier.dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!("notifications: too many deliveries pending, event dropped");
                continue;
            }
            let body = body(target.format, event, &self.host);
            let target = target.clone();
            let slots = self.slots.clone();
            let connector = self
                .connector
                .get_or_insert_with(|| Arc::new(pingora::connectors::http::Connector::new(None)))
                .clone();
            self.deliveries.spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                deliver::with_retries(&connector, &target, body).await;
            });
        }
    }
}

/// This machine's name, for the payload (who is talking, in a fleet).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
