//! Resolver tests, on loopback only: a tiny DNS responder (built on hickory-proto's message
//! types) stands in for a nameserver, so the DNS path is exercised for real, over UDP.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA};
use hickory_resolver::proto::rr::{RData, Record, RecordType};

use super::*;

/// Names the responder knows: lower-case name without the final dot → addresses and TTL.
type Zone = HashMap<String, (Vec<IpAddr>, u32)>;

fn zone(entries: &[(&str, &[&str], u32)]) -> Zone {
    entries
        .iter()
        .map(|(name, ips, ttl)| {
            let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
            (name.to_string(), (ips, *ttl))
        })
        .collect()
}

/// A DNS server on a loopback UDP port, answering A and AAAA queries from a [`Zone`] and
/// NXDOMAIN for other names. It runs on its own thread (so that blocking tests can use it
/// too) and stops when dropped.
struct Responder {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(zone: Zone) -> Responder {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queries, stop) = (queries.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    queries.fetch_add(1, Ordering::Relaxed);
                    if let Some(reply) = answer(&zone, &buf[..len]) {
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            })
        };
        Responder {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(zone: &Zone, request: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    let query = request.queries().first()?.clone();
    let name = query.name().to_string().to_ascii_lowercase();
    let name = name.trim_end_matches('.');

    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true);
    reply.add_query(query.clone());
    match zone.get(name) {
        None => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Some((ips, ttl)) => {
            for ip in ips {
                let data = match (ip, query.query_type()) {
                    (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                    (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(query.name().clone(), *ttl, data));
            }
        }
    }
    reply.to_vec().ok()
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("pylon-dns-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn settings(nameserver: SocketAddr, hosts: Option<&Path>, strategy: LookupStrategy) -> DnsSettings {
    DnsSettings {
        nameservers: vec![nameserver],
        use_hosts_file: hosts.is_some(),
        hosts_file: hosts.map_or_else(|| PathBuf::from("/nonexistent"), Path::to_path_buf),
        timeout: Duration::from_millis(500),
        attempts: 2,
        strategy,
        cache_size: 64,
    }
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

const ALL: [LookupStrategy; 4] = [
    LookupStrategy::Ipv4ThenIpv6,
    LookupStrategy::Ipv6ThenIpv4,
    LookupStrategy::Ipv4Only,
    LookupStrategy::Ipv6Only,
];

#[test]
fn resolver_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Resolver>();
}

#[test]
fn rejects_zero_attempts_and_timeout() {
    let ns = "127.0.0.1:9".parse().unwrap();
    let mut bad = settings(ns, None, LookupStrategy::Ipv4Only);
    bad.attempts = 0;
    assert!(Resolver::new(bad).unwrap_err().contains("attempts"));
    let mut bad = settings(ns, None, LookupStrategy::Ipv4Only);
    bad.timeout = Duration::ZERO;
    assert!(Resolver::new(bad).unwrap_err().contains("timeout"));
}

#[tokio::test]
async fn ip_literals_return_at_once_whatever_the_strategy() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ns = silent.local_addr().unwrap();
    for strategy in ALL {
        let resolver = Resolver::new(settings(ns, None, strategy)).unwrap();
        for (host, expected) in [
            ("10.1.2.3", "10.1.2.3:80"),
            ("2001:db8::1", "[2001:db8::1]:80"),
            ("[::1]", "[::1]:80"),
        ] {
            let found = resolver.resolve(host, 80).await.unwrap();
            assert_eq!(found.addrs, addrs(&[expected]), "{host} {strategy:?}");
            assert_eq!(found.ttl, Duration::MAX);
        }
        let err = resolver.resolve("[not-v6]", 80).await.unwrap_err();
        assert!(err.contains("[not-v6]: not an IPv6 address"), "{err}");
    }
}

#[tokio::test]
async fn localhost_is_loopback_by_strategy_without_lookup() {
    let responder = Responder::start(Zone::new());
    let expected = [
        (LookupStrategy::Ipv4ThenIpv6, &["127.0.0.1:8080"][..]),
        (LookupStrategy::Ipv6ThenIpv4, &["[::1]:8080"][..]),
        (LookupStrategy::Ipv4Only, &["127.0.0.1:8080"][..]),
        (LookupStrategy::Ipv6Only, &["[::1]:8080"][..]),
    ];
    for (strategy, want) in expected {
        let resolver = Resolver::new(settings(responder.addr, None, strategy)).unwrap();
        for host in ["localhost", "LocalHost.", "app.localhost"] {
            let found = resolver.resolve(host, 8080).await.unwrap();
            assert_eq!(found.addrs, addrs(want), "{host} {strategy:?}");
            assert_eq!(found.ttl, Duration::MAX);
        }
    }
    assert_eq!(responder.queries(), 0);
}

const HOSTS: &str = "\
# static upstreams
127.0.0.1   localhost
10.0.0.2    api.internal api    # primary
10.0.0.1    api.internal
fd00::2     api.internal
fd00::1     API.internal.
fd00::9     v6only.internal
garbage     broken.internal
";

#[tokio::test]
async fn hosts_file_names_aliases_and_families_by_strategy() {
    let responder = Responder::start(Zone::new());
    let file = TempFile::new("hosts-strategy", HOSTS);
    let expected = [
        (
            LookupStrategy::Ipv4ThenIpv6,
            &["10.0.0.1:80", "10.0.0.2:80"][..],
        ),
        (
            LookupStrategy::Ipv6ThenIpv4,
            &["[fd00::1]:80", "[fd00::2]:80"][..],
        ),
        (
            LookupStrategy::Ipv4Only,
            &["10.0.0.1:80", "10.0.0.2:80"][..],
        ),
        (
            LookupStrategy::Ipv6Only,
            &["[fd00::1]:80", "[fd00::2]:80"][..],
        ),
    ];
    for (strategy, want) in expected {
        let resolver = Resolver::new(settings(responder.addr, Some(&file.0), strategy)).unwrap();
        let found = resolver.resolve("API.internal", 80).await.unwrap();
        assert_eq!(found.addrs, addrs(want), "{strategy:?}");
        assert_eq!(found.ttl, HOSTS_FILE_TTL);
        let alias = resolver.resolve("api", 81).await;
        if strategy == LookupStrategy::Ipv6Only {
            // `api` has only an IPv4 entry: on to DNS, which does not know it.
            assert_eq!(alias.unwrap_err(), "api: no such host");
        } else {
            assert_eq!(alias.unwrap().addrs, addrs(&["10.0.0.2:81"]));
        }
    }
    assert_eq!(
        responder.queries(),
        1,
        "only `api` under Ipv6Only asked DNS"
    );

    // A name listed only with IPv6 goes to DNS under Ipv4Only.
    let resolver = Resolver::new(settings(
        responder.addr,
        Some(&file.0),
        LookupStrategy::Ipv4Only,
    ))
    .unwrap();
    let err = resolver.resolve("v6only.internal", 80).await.unwrap_err();
    assert_eq!(err, "v6only.internal: no such host");
    let err = resolver.resolve("broken.internal", 80).await.unwrap_err();
    assert_eq!(err, "broken.internal: no such host");
}

#[tokio::test]
async fn hosts_file_is_reread_after_it_changes() {
    let responder = Responder::start(Zone::new());
    let file = TempFile::new("hosts-reread", "10.0.0.1 api.internal\n");
    let resolver = Resolver::new(settings(
        responder.addr,
        Some(&file.0),
        LookupStrategy::Ipv4ThenIpv6,
    ))
    .unwrap();
    let found = resolver.resolve("api.internal", 80).await.unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.1:80"]));

    // Same length, so only the time stamp tells the change; set it explicitly rather than
    // depend on the file system's clock granularity.
    std::fs::write(&file.0, "10.0.0.9 api.internal\n").unwrap();
    let later = SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(&file.0)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let found = resolver.resolve("api.internal", 80).await.unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.9:80"]));

    // Removed: the name is no longer known there (and DNS does not know it either).
    std::fs::remove_file(&file.0).unwrap();
    let err = resolver.resolve("api.internal", 80).await.unwrap_err();
    assert_eq!(err, "api.internal: no such host");
}

#[tokio::test]
async fn use_hosts_file_false_skips_it() {
    let responder = Responder::start(zone(&[("api.internal", &["192.0.2.7"], 60)]));
    let file = TempFile::new("hosts-skip", "10.0.0.1 api.internal\n");
    let mut settings = settings(responder.addr, Some(&file.0), LookupStrategy::Ipv4Only);
    settings.use_hosts_file = false;
    let resolver = Resolver::new(settings).unwrap();
    let found = resolver.resolve("api.internal", 80).await.unwrap();
    assert_eq!(found.addrs, addrs(&["192.0.2.7:80"]));
    assert_eq!(responder.queries(), 1);
}

#[tokio::test]
async fn dns_answers_with_the_record_ttl_by_strategy_and_caches() {
    let responder = Responder::start(zone(&[
        (
            "svc.internal",
            &["10.0.0.2", "10.0.0.1", "fd00::1", "10.0.0.2"],
            42,
        ),
        ("v4.internal", &["10.0.0.5"], 300),
    ]));
    let expected = [
        (
            LookupStrategy::Ipv4ThenIpv6,
            &["10.0.0.1:443", "10.0.0.2:443"][..],
        ),
        (LookupStrategy::Ipv6ThenIpv4, &["[fd00::1]:443"][..]),
        (
            LookupStrategy::Ipv4Only,
            &["10.0.0.1:443", "10.0.0.2:443"][..],
        ),
        (LookupStrategy::Ipv6Only, &["[fd00::1]:443"][..]),
    ];
    for (strategy, want) in expected {
        let resolver = Resolver::new(settings(responder.addr, None, strategy)).unwrap();
        let found = resolver.resolve("svc.internal", 443).await.unwrap();
        assert_eq!(found.addrs, addrs(want), "{strategy:?}");
        assert_eq!(found.ttl, Duration::from_secs(42), "{strategy:?}");

        // The second lookup is answered from hickory's cache.
        let asked = responder.queries();
        let again = resolver.resolve("svc.internal.", 443).await.unwrap();
        assert_eq!(again.addrs, found.addrs);
        assert!(again.ttl <= Duration::from_secs(42));
        assert_eq!(responder.queries(), asked, "{strategy:?}: cached");
    }

    // A name without AAAA records: a family-specific message under Ipv6Only, the IPv4
    // addresses alone when both families are asked for.
    let v6 = Resolver::new(settings(responder.addr, None, LookupStrategy::Ipv6Only)).unwrap();
    let err = v6.resolve("v4.internal", 80).await.unwrap_err();
    assert_eq!(err, "v4.internal: no IPv6 address (no AAAA record)");
    let both = Resolver::new(settings(responder.addr, None, LookupStrategy::Ipv6ThenIpv4)).unwrap();
    let found = both.resolve("v4.internal", 80).await.unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.5:80"]));
    assert_eq!(found.ttl, Duration::from_secs(300));
}

#[tokio::test]
async fn a_name_that_is_nowhere_is_an_error_naming_the_host() {
    let responder = Responder::start(zone(&[("svc.internal", &["10.0.0.1"], 60)]));
    let file = TempFile::new("hosts-nowhere", HOSTS);
    for strategy in ALL {
        let resolver = Resolver::new(settings(responder.addr, Some(&file.0), strategy)).unwrap();
        let err = resolver.resolve("nowhere.internal", 80).await.unwrap_err();
        assert_eq!(err, "nowhere.internal: no such host", "{strategy:?}");
    }
}

#[tokio::test]
async fn a_silent_nameserver_times_out_within_timeout_times_attempts() {
    // Bound but never read: queries are swallowed, nothing answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ns = silent.local_addr().unwrap();
    for strategy in [LookupStrategy::Ipv4Only, LookupStrategy::Ipv4ThenIpv6] {
        let mut settings = settings(ns, None, strategy);
        settings.timeout = Duration::from_millis(200);
        settings.attempts = 2;
        let resolver = Resolver::new(settings).unwrap();
        let started = Instant::now();
        let err = resolver.resolve("slow.internal", 80).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            err.starts_with("slow.internal: DNS lookup timed out after 400ms (2 tries of 200ms"),
            "{err}"
        );
        assert!(err.contains(&ns.to_string()), "{err}");
        assert!(took < Duration::from_millis(1000), "took {took:?}");
    }
}

#[test]
fn resolve_blocking_works_without_a_runtime() {
    let responder = Responder::start(zone(&[("svc.internal", &["10.0.0.1", "fd00::1"], 30)]));
    let resolver =
        Resolver::new(settings(responder.addr, None, LookupStrategy::Ipv4ThenIpv6)).unwrap();
    let found = resolver.resolve_blocking("svc.internal", 80).unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.1:80"]));
    assert_eq!(found.ttl, Duration::from_secs(30));
    assert_eq!(
        resolver.resolve_blocking("10.9.9.9", 80).unwrap().addrs,
        addrs(&["10.9.9.9:80"])
    );
    assert_eq!(
        resolver.resolve_blocking("gone.internal", 80).unwrap_err(),
        "gone.internal: no such host"
    );

    // The shared resolver still works afterwards, in a runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = runtime
        .block_on(resolver.resolve("svc.internal", 80))
        .unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.1:80"]));
}

#[test]
fn the_shared_resolver_outlives_the_runtime_that_first_used_it() {
    // Pingora runs services on several runtimes: hickory's connections, opened on the first
    // runtime, must not leave the resolver broken once that runtime is gone.
    let responder = Responder::start(zone(&[
        ("one.internal", &["10.0.0.1"], 30),
        ("two.internal", &["10.0.0.2"], 30),
    ]));
    let resolver = Resolver::new(settings(responder.addr, None, LookupStrategy::Ipv4Only)).unwrap();
    for (host, want) in [
        ("one.internal", "10.0.0.1:80"),
        ("two.internal", "10.0.0.2:80"),
    ] {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let found = runtime.block_on(resolver.resolve(host, 80)).unwrap();
        assert_eq!(found.addrs, addrs(&[want]));
    }
}

#[tokio::test]
async fn resolve_blocking_inside_a_runtime_does_not_panic() {
    let responder = Responder::start(zone(&[("svc.internal", &["10.0.0.1"], 30)]));
    let resolver = Resolver::new(settings(responder.addr, None, LookupStrategy::Ipv4Only)).unwrap();
    let found = resolver.resolve_blocking("svc.internal", 80).unwrap();
    assert_eq!(found.addrs, addrs(&["10.0.0.1:80"]));
}

#[test]
fn missing_nameservers_fail_dns_lookups_only() {
    // An empty list reads /etc/resolv.conf, which may or may not exist here: either way
    // literals and localhost resolve without it.
    let resolver = Resolver::new(DnsSettings {
        use_hosts_file: false,
        ..DnsSettings::default()
    })
    .unwrap();
    assert_eq!(
        resolver.resolve_blocking("localhost", 80).unwrap().addrs,
        addrs(&["127.0.0.1:80"])
    );
    assert_eq!(
        resolver.resolve_blocking("192.0.2.1", 80).unwrap().addrs,
        addrs(&["192.0.2.1:80"])
    );
}
