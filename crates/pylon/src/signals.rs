//! SIGUSR1 reopens the access log files, as a Pingora background service: logrotate
//! renames a file, then signals (`postrotate kill -USR1 …`), and new lines land in a fresh
//! file at the same path. Pingora itself only uses SIGUSR1 between the processes of a
//! daemon start (a parent waiting for its child), never in the serving process.

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// Listens for SIGUSR1 until shutdown.
pub struct ReopenLogsTask;

#[async_trait]
impl BackgroundService for ReopenLogsTask {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1());
        let mut signal = match signal {
            Ok(signal) => signal,
            Err(e) => {
                log::error!("cannot listen for SIGUSR1, access logs will not be reopened: {e}");
                return;
            }
        };
        log::info!("access log: SIGUSR1 reopens the log files");
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = signal.recv() => {
                    log::info!("SIGUSR1: reopening the access log files");
                    pylon_core::access_log::reopen_all();
                }
            }
        }
    }
}
