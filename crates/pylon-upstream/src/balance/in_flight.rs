//! The in-flight count of a server, kept by a guard.
//!
//! least_conn and least_time read how many requests each server is carrying. Counting
//! with a guard that decrements on drop keeps the count right on every path out of a
//! request — success, error, retry on another server, client gone, task cancelled —
//! without the proxy having to remember to decrement.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::ServerState;

impl ServerState {
    /// Marks a request started (in_flight += 1); the returned guard ends it on drop
    /// (in_flight -= 1).
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            server: Arc::clone(self),
        }
    }
}

/// A request in flight to one server; dropping it ends the request.
#[derive(Debug)]
#[must_use = "the request counts as finished as soon as the guard is dropped"]
pub struct InFlight {
    server: Arc<ServerState>,
}

impl InFlight {
    /// The server the request went to.
    pub fn server(&self) -> &Arc<ServerState> {
        &self.server
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.server.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use crate::balance::tests::servers;
    use std::sync::Arc;

    #[test]
    fn the_guard_counts_a_request_until_dropped() {
        let servers = servers(&[1]);
        let first = servers[0].start_request();
        let second = servers[0].start_request();
        assert_eq!(servers[0].in_flight(), 2);
        assert!(Arc::ptr_eq(first.server(), &servers[0]));
        drop(first);
        assert_eq!(servers[0].in_flight(), 1);
        drop(second);
        assert_eq!(servers[0].in_flight(), 0);
    }

    #[test]
    fn counts_stay_exact_across_threads() {
        let servers = servers(&[1]);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        let _guard = servers[0].start_request();
                    }
                });
            }
        });
        assert_eq!(servers[0].in_flight(), 0);
    }
}
