//! Health transitions as events, for whoever wants to hear of them (the binary sends them
//! to the `notifications:` webhooks). Health code calls [`emit`] at a transition — a server
//! going down or coming back, an ejection — never per probe or per request; with no
//! listener installed it costs a load of a `OnceLock`.

use std::sync::OnceLock;

/// A server's health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// The upstream's name.
    pub upstream: String,
    /// The server as configured, with its address when that differs.
    pub server: String,
    /// Whether the balancer may pick the server after this change.
    pub healthy: bool,
    /// What happened, in words: "down: status 500 (3 failed probes)", "up again",
    /// "ejected for 30s: …".
    pub reason: String,
}

type Listener = Box<dyn Fn(HealthEvent) + Send + Sync>;

static LISTENER: OnceLock<Listener> = OnceLock::new();

/// Installs the one listener of the process; later calls are ignored (returns false).
pub fn listen(listener: impl Fn(HealthEvent) + Send + Sync + 'static) -> bool {
    LISTENER.set(Box::new(listener)).is_ok()
}

/// Reports a transition to the listener, if one is installed. Must not block: listeners
/// queue the event and return.
pub fn emit(event: impl FnOnce() -> HealthEvent) {
    if let Some(listener) = LISTENER.get() {
        listener(event());
    }
}
