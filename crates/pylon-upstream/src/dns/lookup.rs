//! The DNS step: hickory-resolver's configuration, A/AAAA queries by strategy, and turning
//! hickory's errors into the short reasons our messages give.
//!
//! Hickory's own hosts-file support is off (the hosts file is ours, consulted before DNS), and
//! so are its DNS-over-TLS/HTTPS/QUIC and DNSSEC features. Answers are cached by hickory.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

use super::{DnsSettings, LookupStrategy, Resolved};

/// Hickory's configuration and the long-lived resolver (and cache) built from it.
pub(super) struct Dns {
    config: ResolverConfig,
    opts: ResolverOpts,
    /// The shared resolver, whose cache serves [`super::Resolver::resolve`].
    pub(super) resolver: TokioResolver,
    strategy: LookupStrategy,
    timeout: Duration,
    attempts: u32,
    /// The nameservers, for error messages.
    pub(super) servers: String,
}

impl Dns {
    pub(super) fn new(settings: &DnsSettings) -> Result<Dns, String> {
        let (config, mut opts) = if settings.nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|err| format!("no nameservers: /etc/resolv.conf: {err}"))?
        } else {
            let mut servers = Vec::with_capacity(settings.nameservers.len() * 2);
            for &addr in &settings.nameservers {
                // TCP is used when a UDP answer is truncated.
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let mut server = NameServerConfig::new(addr, protocol);
                    server.trust_negative_responses = true;
                    servers.push(server);
                }
            }
            let config = ResolverConfig::from_parts(None, Vec::new(), servers);
            (config, ResolverOpts::default())
        };
        opts.timeout = settings.timeout;
        // Hickory counts retries after the first try.
        opts.attempts = settings.attempts.saturating_sub(1) as usize;
        opts.cache_size = settings.cache_size;
        opts.use_hosts_file = ResolveHosts::Never;

        let mut servers: Vec<SocketAddr> = Vec::new();
        for server in config.name_servers() {
            if !servers.contains(&server.socket_addr) {
                servers.push(server.socket_addr);
            }
        }
        let servers = servers
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let resolver = build(&config, &opts);
        Ok(Dns {
            config,
            opts,
            resolver,
            strategy: settings.strategy,
            timeout: settings.timeout,
            attempts: settings.attempts,
            servers,
        })
    }

    /// A new hickory resolver with the same configuration and an empty cache, for a
    /// short-lived runtime.
    pub(super) fn fresh_resolver(&self) -> TokioResolver {
        build(&self.config, &self.opts)
    }

    /// A and/or AAAA queries for `host` through `resolver`, bounded by `timeout × attempts`
    /// in total.
    pub(super) async fn resolve(
        &self,
        resolver: &TokioResolver,
        host: &str,
        port: u16,
    ) -> Result<Resolved, String> {
        let budget = self.timeout.saturating_mul(self.attempts);
        let lookup = async {
            match self.strategy {
                LookupStrategy::Ipv4Only => query(resolver, host, RecordType::A).await,
                LookupStrategy::Ipv6Only => query(resolver, host, RecordType::AAAA).await,
                LookupStrategy::Ipv4ThenIpv6 | LookupStrategy::Ipv6ThenIpv4 => {
                    let (v4, v6) = tokio::join!(
                        query(resolver, host, RecordType::A),
                        query(resolver, host, RecordType::AAAA)
                    );
                    either(host, v4, v6)
                }
            }
        };
        let failure = match tokio::time::timeout(budget, lookup).await {
            Ok(Ok((ips, valid_until))) => {
                let mut addrs: Vec<SocketAddr> = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .collect();
                self.strategy.order(&mut addrs);
                let ttl = ceil_to_seconds(valid_until.saturating_duration_since(Instant::now()));
                log::debug!("{host}: from DNS: {addrs:?}, ttl {ttl:?}");
                return Ok(Resolved { addrs, ttl });
            }
            Ok(Err(failure)) => failure,
            Err(_elapsed) => Failure::TimedOut,
        };
        Err(match failure {
            Failure::NoSuchHost => format!("{host}: no such host"),
            Failure::NoRecords => format!("{host}: {}", missing(self.strategy)),
            Failure::TimedOut => {
                let tries = if self.attempts == 1 { "try" } else { "tries" };
                format!(
                    "{host}: DNS lookup timed out after {budget:?} ({} {tries} of {:?}, nameservers {})",
                    self.attempts, self.timeout, self.servers
                )
            }
            Failure::Other(err) => {
                format!(
                    "{host}: DNS lookup failed: {err} (nameservers {})",
                    self.servers
                )
            }
        })
    }
}

fn build(config: &ResolverConfig, opts: &ResolverOpts) -> TokioResolver {
    TokioResolver::builder_with_config(config.clone(), TokioConnectionProvider::default())
        .with_options(opts.clone())
        .build()
}

/// Why a DNS lookup found nothing, ranked: when both families fail, the higher rank is
/// reported.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    /// The name exists but has no record of the queried type.
    NoRecords,
    TimedOut,
    Other(String),
    /// NXDOMAIN: the name does not exist at all.
    NoSuchHost,
}

impl Failure {
    fn of(err: &ResolveError) -> Failure {
        if err.is_nx_domain() {
            return Failure::NoSuchHost;
        }
        if err.is_no_records_found() {
            return Failure::NoRecords;
        }
        match err.proto().map(|proto| proto.kind()) {
            Some(ProtoErrorKind::Timeout) => Failure::TimedOut,
            Some(ProtoErrorKind::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut => {
                Failure::TimedOut
            }
            _ => Failure::Other(err.to_string()),
        }
    }
}

/// What "no records" means for a strategy.
fn missing(strategy: LookupStrategy) -> &'static str {
    match strategy {
        LookupStrategy::Ipv4Only => "no IPv4 address (no A record)",
        LookupStrategy::Ipv6Only => "no IPv6 address (no AAAA record)",
        LookupStrategy::Ipv4ThenIpv6 | LookupStrategy::Ipv6ThenIpv4 => {
            "no address (no A or AAAA record)"
        }
    }
}

/// The addresses one query found and until when they are valid.
type Answer = (Vec<IpAddr>, Instant);

/// One query for one record type; an answer without addresses counts as `NoRecords`.
async fn query(
    resolver: &TokioResolver,
    host: &str,
    record_type: RecordType,
) -> Result<Answer, Failure> {
    let lookup = resolver
        .lookup(host, record_type)
        .await
        .map_err(|err| Failure::of(&err))?;
    let ips: Vec<IpAddr> = lookup
        .iter()
        .filter_map(|data| match data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect();
    if ips.is_empty() {
        return Err(Failure::NoRecords);
    }
    Ok((ips, lookup.valid_until()))
}

/// Both families' answers, or the one that answered, or the more telling failure.
fn either(
    host: &str,
    v4: Result<Answer, Failure>,
    v6: Result<Answer, Failure>,
) -> Result<Answer, Failure> {
    match (v4, v6) {
        (Ok((mut ips, until4)), Ok((ips6, until6))) => {
            ips.extend(ips6);
            Ok((ips, until4.min(until6)))
        }
        (Ok(answer), Err(failure)) | (Err(failure), Ok(answer)) => {
            log::debug!("{host}: one address family failed: {failure:?}");
            Ok(answer)
        }
        (Err(a), Err(b)) => Err(a.max(b)),
    }
}

/// The remaining TTL in whole seconds, rounded up so that a fresh 42 s record reads 42 s.
fn ceil_to_seconds(duration: Duration) -> Duration {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ceil_to_seconds(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            ceil_to_seconds(Duration::from_millis(41_990)),
            Duration::from_secs(42)
        );
        assert_eq!(
            ceil_to_seconds(Duration::from_secs(42)),
            Duration::from_secs(42)
        );
    }

    #[test]
    fn the_more_telling_failure_wins() {
        let no = |f| Err::<Answer, Failure>(f);
        assert_eq!(
            either("h", no(Failure::NoRecords), no(Failure::NoSuchHost)),
            Err(Failure::NoSuchHost)
        );
        assert_eq!(
            either("h", no(Failure::TimedOut), no(Failure::NoRecords)),
            Err(Failure::TimedOut)
        );
        let until = Instant::now();
        let v4: IpAddr = "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            either("h", no(Failure::TimedOut), Ok((vec![v4], until))),
            Ok((vec![v4], until))
        );
    }
}
