//! Maps the `server:` section onto Pingora's `ServerConf` and wires the proxy service.
//!
//! Pylon's defaults differ from Pingora's where Pingora's would surprise an operator: the pid
//! file and upgrade socket are named after Pylon, and the graceful-shutdown grace period is
//! [`DEFAULT_GRACE_PERIOD`] instead of Pingora's five minutes.

use pingora::listeners::ListenerConfig;
use pingora::protocols::l4::stream::{L4BufferSettings, DEFAULT_L4_WRITE_BUFFER_SIZE};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use pylon_config::{Config, DnsConfig, ServerConfig};
use pylon_core::metrics::connections::Counted;
use pylon_core::middleware::jwt::JwksRefreshService;
use pylon_core::upstream::dns_refresh::DnsRefreshService;
use pylon_core::{PylonProxy, SharedSnapshot};
use pylon_upstream::dns::{DnsSettings, LookupStrategy, Resolver};
use pylon_upstream::health::active::{CheckTarget, HealthCheckService};
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_PID_FILE: &str = "/tmp/pylon.pid";
pub const DEFAULT_UPGRADE_SOCK: &str = "/tmp/pylon_upgrade.sock";
/// How long a gracefully stopping Pylon keeps serving before it starts closing.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// How long it then waits for in-flight requests before exiting.
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The read buffer Pingora puts in front of each client connection. Pingora's default (64 KiB)
/// stays allocated for as long as a keep-alive connection is idle, about 64 of the 89 KiB an
/// idle connection held. Pingora's HTTP/1 reader reads into its own header and body buffers,
/// so this extra buffer only added a copy: without it a request is read straight from the
/// socket into them (docs/benchmarks.md, "Memory per idle connection").
pub const LISTENER_READ_BUFFER: usize = 0;

/// The most tries Pingora may make for one request: the first plus at most 10 retries.
pub const MAX_TRIES: usize = 11;

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
    // Pylon's retry policy decides each retry; this only bounds the loop (first try plus the
    // most retries `retries.attempts` allows).
    conf.max_retries = MAX_TRIES;
    conf
}

/// The resolver for server host names, from the `dns:` section.
pub fn resolver(dns: &DnsConfig) -> Result<Resolver, String> {
    Resolver::new(DnsSettings {
        nameservers: dns.nameservers.clone(),
        use_hosts_file: dns.use_hosts_file,
        hosts_file: dns.hosts_file.clone(),
        timeout: dns.timeout,
        attempts: dns.attempts,
        strategy: match dns.strategy {
            pylon_config::LookupStrategy::Ipv4ThenIpv6 => LookupStrategy::Ipv4ThenIpv6,
            pylon_config::LookupStrategy::Ipv6ThenIpv4 => LookupStrategy::Ipv6ThenIpv4,
            pylon_config::LookupStrategy::Ipv4Only => LookupStrategy::Ipv4Only,
            pylon_config::LookupStrategy::Ipv6Only => LookupStrategy::Ipv6Only,
        },
        cache_size: dns.cache_size,
    })
}

/// What keeps the running config up to date.
pub enum Follow {
    /// The config files (watched, and SIGHUP).
    File(crate::reload::ReloadService),
    /// An etcd prefix (watched, and SIGHUP).
    Etcd(crate::etcd::EtcdWatch),
}

/// Builds the Pingora server: one proxy service listening on every listener, plus the
/// background services (active health checks, DNS refresh, `jwt` JWKS refresh, config
/// reload or etcd watch, the admin API, the metrics listener).
pub fn build_server(
    config: &Config,
    snapshot: SharedSnapshot,
    resolver: Arc<Resolver>,
    follow: Follow,
    admin: Option<pylon_admin::AdminService>,
    metrics: Option<pylon_admin::MetricsService>,
    opt: Opt,
) -> Server {
    let conf = server_conf(&config.server, opt.daemon);
    // Process-wide, set before any request is parsed (a `server` change needs a restart).
    pingora::http::set_preserve_header_case(config.server.preserve_header_case == Some(true));
    // Nothing in Pylon asks a stream how long its reads waited: not timing them saves
    // clock reads on every request (vendor/pingora-core/PYLON-PATCH.md).
    pingora::protocols::l4::stream::set_track_read_pending_time(false);
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    // `http_proxy_service_with_name`, with the app wrapped to count client connections.
    let mut proxy = pingora::proxy::HttpProxy::new(
        PylonProxy::new(snapshot.clone()),
        server.configuration.clone(),
    );
    proxy.handle_init_modules();
    let mut service = Service::new("pylon".to_string(), Counted::new(proxy));
    for listener in &config.listeners {
        service.add_listener(ListenerConfig::tcp(listener.address.to_string()).l4_buffer(
            L4BufferSettings::new(LISTENER_READ_BUFFER, DEFAULT_L4_WRITE_BUFFER_SIZE),
        ));
        log::info!(
            "listener `{}` on http://{}",
            listener.name,
            listener.address
        );
    }
    server.add_service(service);

    // Webhooks: the queue is installed before the services that report events start.
    let notifier = pylon_core::notify::Notifier::install(snapshot.clone());
    pylon_core::notify::forward_health_events();
    let started = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "generation": snapshot.load().generation,
        "listeners": config.listeners.iter()
            .map(|l| serde_json::json!({ "name": l.name, "address": l.address.to_string() }))
            .collect::<Vec<_>>(),
    });
    server.add_service(background_service(
        "notifications",
        pylon_core::notify::NotifyService::new(notifier, started),
    ));

    let for_checks = snapshot.clone();
    let targets = Arc::new(move || {
        let mut targets: Vec<CheckTarget> = Vec::new();
        for pool in for_checks.load().upstreams.values() {
            pool.check_targets(&mut targets);
        }
        targets
    });
    server.add_service(background_service(
        "health checks",
        HealthCheckService::new(targets),
    ));
    server.add_service(background_service(
        "dns refresh",
        DnsRefreshService::new(snapshot, resolver, config.dns.refresh),
    ));
    // Fetches the JWKS of every live `jwt` middleware: at start, then on its schedule.
    server.add_service(background_service("jwks refresh", JwksRefreshService));
    server.add_service(background_service(
        "access log reopen",
        crate::signals::ReopenLogsTask,
    ));
    match follow {
        Follow::File(reload) => server.add_service(background_service(
            "config reload",
            crate::reload::ReloadTask(Arc::new(reload)),
        )),
        Follow::Etcd(watch) => server.add_service(background_service(
            "etcd watch",
            crate::etcd::EtcdTask(Arc::new(watch)),
        )),
    };
    if let Some(admin) = admin {
        server.add_service(background_service("admin api", admin));
    }
    if let Some(metrics) = metrics {
        server.add_service(background_service("metrics", metrics));
    }
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
            // Not a `ServerConf` field: build_server sets it in pingora-http (tested end to
            // end by `header_names_are_normalised_unless_preserve_header_case_is_on`).
            preserve_header_case: Some(true),
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
        assert_eq!(conf.max_retries, MAX_TRIES);
    }
}
