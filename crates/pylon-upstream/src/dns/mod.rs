//! Resolving upstream server host names to socket addresses.
//!
//! [`Resolver::resolve`] answers from the first source that knows the name:
//!
//! 1. an IP literal (`10.0.0.1`, `2001:db8::1`, `[2001:db8::1]`) is returned as is, whatever
//!    the strategy, with a TTL of [`Duration::MAX`];
//! 2. `localhost` and `*.localhost` are loopback (RFC 6761 §6.3), never looked up: `127.0.0.1`
//!    and/or `::1` by strategy, TTL [`Duration::MAX`];
//! 3. the hosts file ([`DnsSettings::hosts_file`], unless `use_hosts_file` is off), re-read
//!    when it changes; its answers carry [`HOSTS_FILE_TTL`]. A name listed there only with
//!    addresses of a family the strategy excludes goes on to DNS, as glibc does;
//! 4. DNS through hickory-resolver: A and/or AAAA queries by strategy, answers cached by
//!    hickory (up to [`DnsSettings::cache_size`] entries) and returned with the remaining TTL
//!    of the records, rounded up to whole seconds.
//!
//! Strategies: `Ipv4ThenIpv6` and `Ipv6ThenIpv4` query both families (in parallel) and keep
//! the preferred family's addresses, falling back to the other family only when the preferred
//! one has none (as hickory and Envoy mean these names: `localhost:3000` must not put an
//! unreachable `[::1]:3000` into a pool whose server listens on IPv4 only); a failure of one
//! family is ignored when the other answers. `Ipv4Only` / `Ipv6Only` query one family. Within a family addresses are sorted
//! and deduplicated, so that the same answer always gives the same list.
//!
//! One lookup is bounded by `timeout × attempts` in total, whatever the number of
//! nameservers and search domains. Errors are plain strings that start with the host:
//! `api.internal: no such host`, `api.internal: DNS lookup timed out after 10s (…)`.

mod hosts;
mod lookup;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use hosts::{normalize_name, HostsFile};
use lookup::Dns;

/// How long one DNS query waits for an answer before it is tried again.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a query is sent before giving up (as `attempts:` in resolv.conf).
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// How many answers hickory keeps in its cache.
pub const DEFAULT_CACHE_SIZE: usize = 1024;
/// The system hosts file.
pub const DEFAULT_HOSTS_FILE: &str = "/etc/hosts";
/// The TTL given to answers from the hosts file. The file has no TTLs of its own; this tells
/// the caller how soon to ask again. (An edit is seen by the next lookup in any case.)
pub const HOSTS_FILE_TTL: Duration = Duration::from_secs(30);

/// Which address families to look up, and which comes first in [`Resolved::addrs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupStrategy {
    /// IPv4 addresses; IPv6 ones only when there is no IPv4 address.
    #[default]
    Ipv4ThenIpv6,
    /// IPv6 addresses; IPv4 ones only when there is no IPv6 address.
    Ipv6ThenIpv4,
    /// IPv4 (A records) only.
    Ipv4Only,
    /// IPv6 (AAAA records) only.
    Ipv6Only,
}

impl LookupStrategy {
    fn wants(self, ip: &IpAddr) -> bool {
        match self {
            LookupStrategy::Ipv4ThenIpv6 | LookupStrategy::Ipv6ThenIpv4 => true,
            LookupStrategy::Ipv4Only => ip.is_ipv4(),
            LookupStrategy::Ipv6Only => ip.is_ipv6(),
        }
    }

    /// Sorts `addrs` with the preferred family first, each family in address order, drops
    /// duplicates, and keeps only the preferred family when it has any address.
    fn order(self, addrs: &mut Vec<SocketAddr>) {
        let v6_first = self == LookupStrategy::Ipv6ThenIpv4;
        addrs.sort_by_key(|addr| (addr.is_ipv4() == v6_first, *addr));
        addrs.dedup();
        if let Some(first) = addrs.first().map(SocketAddr::is_ipv4) {
            addrs.retain(|a| a.is_ipv4() == first);
        }
    }
}

/// How names are resolved. The defaults are the `DEFAULT_*` constants of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Nameservers to query, in order. Empty: those of `/etc/resolv.conf`, with its search
    /// domains and `ndots` (its `timeout` and `attempts` are replaced by ours).
    pub nameservers: Vec<SocketAddr>,
    /// Whether to look in `hosts_file` before DNS.
    pub use_hosts_file: bool,
    pub hosts_file: PathBuf,
    /// How long one query waits for an answer.
    pub timeout: Duration,
    /// How many times a query is sent (at least 1).
    pub attempts: u32,
    pub strategy: LookupStrategy,
    /// Entries in hickory's answer cache (0 disables caching).
    pub cache_size: usize,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            nameservers: Vec::new(),
            use_hosts_file: true,
            hosts_file: PathBuf::from(DEFAULT_HOSTS_FILE),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
            strategy: LookupStrategy::default(),
            cache_size: DEFAULT_CACHE_SIZE,
        }
    }
}

/// The addresses of one host, with how long they may be used before asking again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Never empty; ordered by strategy, sorted and deduplicated within each family.
    pub addrs: Vec<SocketAddr>,
    /// [`Duration::MAX`] for IP literals and `localhost`, [`HOSTS_FILE_TTL`] for the hosts
    /// file, the records' remaining TTL for DNS.
    pub ttl: Duration,
}

/// Resolves host names; `Send + Sync`, meant to be shared in an `Arc`.
///
/// Hickory opens its nameserver connections in the Tokio runtime of the first
/// [`resolve`](Resolver::resolve) that needs them: call `resolve` from runtimes that live as
/// long as the resolver (and [`resolve_blocking`](Resolver::resolve_blocking), which brings
/// its own, from start-up code).
pub struct Resolver {
    strategy: LookupStrategy,
    timeout: Duration,
    attempts: u32,
    hosts: Option<HostsFile>,
    /// Why DNS cannot be used (no usable `/etc/resolv.conf`): reported by lookups that need
    /// DNS rather than by [`Resolver::new`], so that a gateway whose upstreams are all
    /// addresses or hosts-file names starts without one.
    dns: Result<Dns, String>,
}

impl Resolver {
    /// Checks the settings and prepares the resolver. Reads `/etc/resolv.conf` when no
    /// nameservers are given; if it is missing or lists none, names that need DNS fail with
    /// that reason, the rest still resolve.
    pub fn new(settings: DnsSettings) -> Result<Resolver, String> {
        if settings.attempts == 0 {
            return Err("dns: attempts must be at least 1".to_string());
        }
        if settings.timeout.is_zero() {
            return Err("dns: timeout must be more than zero".to_string());
        }
        let dns = Dns::new(&settings);
        if let Err(err) = &dns {
            log::warn!("dns: {err}; only IP addresses, localhost and the hosts file resolve");
        }
        Ok(Resolver {
            strategy: settings.strategy,
            timeout: settings.timeout,
            attempts: settings.attempts,
            hosts: settings
                .use_hosts_file
                .then(|| HostsFile::new(settings.hosts_file)),
            dns,
        })
    }

    /// Resolves `host` for connecting to `port`. IP literals return at once (TTL
    /// [`Duration::MAX`]); `localhost` and `*.localhost` resolve to loopback per RFC 6761
    /// without any lookup; then the hosts file, then DNS (see the module documentation).
    /// Errors name the host and the reason (`api.internal: no such host`).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Resolved, String> {
        if let Some(found) = self.resolve_locally(host, port)? {
            return Ok(found);
        }
        let dns = self.dns.as_ref().map_err(|err| format!("{host}: {err}"))?;
        dns.resolve(&dns.resolver, host, port).await
    }

    /// The same as [`resolve`](Resolver::resolve), for synchronous start-up code: DNS
    /// lookups run on a small current-thread runtime of their own, with a fresh hickory
    /// resolver (so no connection of the shared one is tied to that short-lived runtime).
    /// Called from inside a runtime, it does the work on a scoped thread instead of
    /// panicking, blocking the caller meanwhile.
    pub fn resolve_blocking(&self, host: &str, port: u16) -> Result<Resolved, String> {
        if let Some(found) = self.resolve_locally(host, port)? {
            return Ok(found);
        }
        let dns = self.dns.as_ref().map_err(|err| format!("{host}: {err}"))?;
        let run = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| format!("{host}: cannot start a runtime for DNS: {err}"))?;
            runtime.block_on(async {
                let resolver = dns.fresh_resolver();
                dns.resolve(&resolver, host, port).await
            })
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return run();
        }
        std::thread::scope(|scope| {
            scope
                .spawn(run)
                .join()
                .unwrap_or_else(|_| Err(format!("{host}: DNS lookup panicked")))
        })
    }

    /// Steps 1–3: literals, localhost and the hosts file. `Ok(None)` means "ask DNS".
    fn resolve_locally(&self, host: &str, port: u16) -> Result<Option<Resolved>, String> {
        if host.is_empty() {
            return Err("empty host name".to_string());
        }
        if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = inner
                .parse()
                .map_err(|_| format!("{host}: not an IPv6 address"))?;
            return Ok(Some(fixed(vec![SocketAddr::new(ip.into(), port)])));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Some(fixed(vec![SocketAddr::new(ip, port)])));
        }

        let name = normalize_name(host);
        if name == "localhost" || name.ends_with(".localhost") {
            let v4 = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
            let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port);
            let addrs = match self.strategy {
                LookupStrategy::Ipv4ThenIpv6 | LookupStrategy::Ipv4Only => vec![v4],
                LookupStrategy::Ipv6ThenIpv4 | LookupStrategy::Ipv6Only => vec![v6],
            };
            return Ok(Some(fixed(addrs)));
        }

        if let Some(hosts) = &self.hosts {
            let ips = hosts.lookup(&name);
            let mut addrs: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|ip| self.strategy.wants(ip))
                .map(|ip| SocketAddr::new(ip, port))
                .collect();
            if !addrs.is_empty() {
                self.strategy.order(&mut addrs);
                log::debug!("{host}: from {}: {addrs:?}", hosts.path().display());
                return Ok(Some(Resolved {
                    addrs,
                    ttl: HOSTS_FILE_TTL,
                }));
            }
        }
        Ok(None)
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("strategy", &self.strategy)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("hosts_file", &self.hosts.as_ref().map(HostsFile::path))
            .field(
                "nameservers",
                &self.dns.as_ref().map(|dns| dns.servers.as_str()),
            )
            .finish()
    }
}

/// An answer that never changes: literals and localhost.
fn fixed(addrs: Vec<SocketAddr>) -> Resolved {
    Resolved {
        addrs,
        ttl: Duration::MAX,
    }
}
