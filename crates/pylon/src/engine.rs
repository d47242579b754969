//! Maps the `server:` section onto Pingora's `ServerConf` and wires the proxy service.
//!
//! Pylon's defaults differ from Pingora's where Pingora's would surprise an operator: the pid
//! file and upgrade socket are named after Pylon, and the graceful-shutdown grace period is
//! [`DEFAULT_GRACE_PERIOD`] instead of Pingora's five minutes.

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pylon_config::{Config, ServerConfig};
use pylon_core::{PylonProxy, SharedSnapshot};
use std::time::Duration;

pub const DEFAULT_PID_FILE: &str = "/tmp/pylon.pid";
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/pylon_upgrade.sock";
/// How long a gracefully stopping Pylon keeps serving before it starts closing.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// How long it then waits for in-flight requests before exiting.
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Whole seconds, rounding up so that `500ms` does not become "no grace at all".
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Pingora's engine settings from the `server:` section (and `--daemon`).
pub fn server_conf(server: &ServerConfig, daemon: bool) -> ServerConf {
    let mut conf = ServerConf::default();
    if let Some(threads) = server.threads {
        conf.threads = threads.max(1);
    }
    if let Some(work_stealing) = server.work_stealing {
        conf.work_stealing = work_stealing;
    }
    conf.grace_period_seconds = Some(ceil_secs(
        server.grace_period.unwrap_or(DEFAULT_GRACE_PERIOD),
    ));
    conf.graceful_shutdown_timeout_seconds = Some(ceil_secs(
        server
            .graceful_shutdown_timeout
            .unwrap_or(DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT),
    ));
    if let Some(size) = server.upstream_keepalive_pool_size {
        conf.upstream_keepalive_pool_size = size;
    }
    conf.pid_file = server
        .pid_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_PID_FILE.to_string());
    conf.upgrade_sock = server
        .upgrade_sock
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_UPGRADE_SOCK.to_string());
    conf.error_log = server.error_log.as_ref().map(|p| p.display().to_string());
    conf.daemon = server.daemon || daemon;
    conf.user = server.user.clone();
    conf.group = server.group.clone();
    // Retries are Pylon's decision (retry policy per route), never Pingora's default 16.
    conf.max_retries = 1;
    conf
}

/// Builds the Pingora server with one proxy service listening on every listener.
pub fn build_server(config: &Config, snapshot: SharedSnapshot, opt: Opt) -> Server {
    let conf = server_conf(&config.server, opt.daemon);
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        PylonProxy::new(snapshot),
        "pylon",
    );
    for listener in &config.listeners {
        service.add_tcp(&listener.address.to_string());
        log::info!(
            "listener `{}` on http://{}",
            listener.name,
            listener.address
        );
    }
    server.add_service(service);
    server
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn every_server_setting_reaches_pingora() {
        let server = ServerConfig {
            threads: Some(3),
            work_stealing: Some(false),
            grace_period: Some(Duration::from_millis(1500)),
            graceful_shutdown_timeout: Some(Duration::from_secs(7)),
            upstream_keepalive_pool_size: Some(64),
            pid_file: Some(PathBuf::from("/run/p.pid")),
            error_log: Some(PathBuf::from("/var/log/p.err")),
            daemon: true,
            upgrade_sock: Some(PathBuf::from("/run/p.sock")),
            user: Some("nobody".into()),
            group: Some("nogroup".into()),
        };
        let conf = server_conf(&server, false);
        assert_eq!(conf.threads, 3);
        assert!(!conf.work_stealing);
        assert_eq!(conf.grace_period_seconds, Some(2));
        assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(7));
        assert_eq!(conf.upstream_keepalive_pool_size, 64);
        assert_eq!(conf.pid_file, "/run/p.pid");
        assert_eq!(conf.error_log.as_deref(), Some("/var/log/p.err"));
        assert!(conf.daemon);
        assert_eq!(conf.upgrade_sock, "/run/p.sock");
        assert_eq!(conf.user.as_deref(), Some("nobody"));
        assert_eq!(conf.group.as_deref(), Some("nogroup"));
    }

    #[test]
    fn defaults_are_pylons_not_pingoras() {
        let conf = server_conf(&ServerConfig::default(), true);
        assert_eq!(conf.threads, 1);
        assert!(conf.daemon, "--daemon turns daemon mode on");
        assert_eq!(conf.pid_file, DEFAULT_PID_FILE);
        assert_eq!(conf.upgrade_sock, DEFAULT_UPGRADE_SOCK);
        assert_eq!(conf.grace_period_seconds, Some(5));
        assert_eq!(conf.graceful_shutdown_timeout_seconds, Some(10));
        assert_eq!(conf.max_retries, 1);
    }
}
