//! Probes against real sockets on 127.0.0.1: a tiny HTTP/1.1 responder written here, whose
//! answer the test changes while it runs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;

/// Answers every request with the current `status` (0: reads the request, never answers)
/// and keeps each request head it receives.
struct Responder {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    async fn start(status: u16) -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (st, rq, ct) = (
            Arc::clone(&status),
            Arc::clone(&requests),
            Arc::clone(&count),
        );
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (st, rq, ct) = (Arc::clone(&st), Arc::clone(&rq), Arc::clone(&ct));
                tokio::spawn(serve(stream, st, rq, ct));
            }
        });
        Responder {
            addr,
            status,
            requests,
            count,
            task,
        }
    }

    fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn last_request(&self) -> String {
        self.requests
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    status: Arc<AtomicU16>,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    requests
        .lock()
        .expect("lock")
        .push(String::from_utf8_lossy(&head).into_owned());
    count.fetch_add(1, Ordering::SeqCst);
    let status = status.load(Ordering::SeqCst);
    if status == 0 {
        // Never answer: hold the connection until the prober gives up and closes it.
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                return;
            }
        }
        return;
    }
    let response =
        format!("HTTP/1.1 {status} Whatever\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn http_check(expected: Vec<StatusMatch>) -> ActiveCheck {
    ActiveCheck {
        kind: ProbeKind::Http {
            method: "GET".into(),
            path: "/healthz".into(),
            host: None,
            headers: Vec::new(),
            expected,
        },
        interval: Duration::from_millis(20),
        timeout: Duration::from_secs(2),
        healthy_threshold: 1,
        unhealthy_threshold: 1,
    }
}

fn tcp_check() -> ActiveCheck {
    ActiveCheck {
        kind: ProbeKind::Tcp,
        ..http_check(Vec::new())
    }
}

fn peer(addr: SocketAddr) -> HttpPeer {
    HttpPeer::new(addr, false, String::new())
}

/// Waits for `cond`, polling, and fails the test after `limit`.
async fn eventually(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn tcp_probe_connects_to_a_listening_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connector = Connector::new(None);
    assert_eq!(probe(&tcp_check(), &peer(addr), &connector).await, Ok(()));
}

#[tokio::test]
async fn tcp_probe_to_a_closed_port_fails_to_connect() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let connector = Connector::new(None);
    let err = probe(&tcp_check(), &peer(addr), &connector)
        .await
        .expect_err("closed port");
    assert!(err.starts_with("connect"), "{err}");
    assert_eq!(err, "connect refused");
}

#[tokio::test]
async fn http_probe_follows_the_status() {
    let responder = Responder::start(200).await;
    let connector = Connector::new(None);
    let check = http_check(Vec::new());
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Ok(())
    );
    responder.set(500);
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Err("status 500".to_string())
    );
    responder.set(204);
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Ok(()),
        "empty expected = any 2xx"
    );
    responder.set(302);
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Err("status 302".to_string())
    );
    assert_eq!(
        responder.count.load(Ordering::SeqCst),
        4,
        "one request per probe"
    );
}

#[tokio::test]
async fn http_probe_accepts_the_expected_codes_and_classes() {
    let responder = Responder::start(302).await;
    let connector = Connector::new(None);
    let p = peer(responder.addr);
    let probe_with = |expected| {
        let check = http_check(expected);
        let (p, connector) = (&p, &connector);
        async move { probe(&check, p, connector).await }
    };
    assert!(probe_with(vec![StatusMatch::Class(3)]).await.is_ok());
    assert!(probe_with(vec![StatusMatch::Class(2)]).await.is_err());
    assert!(
        probe_with(vec![StatusMatch::Class(2), StatusMatch::Code(302)])
            .await
            .is_ok()
    );
    assert!(probe_with(vec![StatusMatch::Code(301)]).await.is_err());
    responder.set(404);
    assert!(probe_with(vec![StatusMatch::Code(404)]).await.is_ok());
    assert_eq!(
        probe_with(vec![StatusMatch::Class(2)]).await,
        Err("status 404".to_string())
    );
}

#[test]
fn status_matches() {
    assert!(StatusMatch::Class(2).matches(200) && StatusMatch::Class(2).matches(299));
    assert!(!StatusMatch::Class(2).matches(300) && !StatusMatch::Class(2).matches(199));
    assert!(StatusMatch::Code(418).matches(418) && !StatusMatch::Code(418).matches(419));
}

#[tokio::test]
async fn http_probe_sends_the_configured_request() {
    let responder = Responder::start(200).await;
    let connector = Connector::new(None);
    let check = ActiveCheck {
        kind: ProbeKind::Http {
            method: "HEAD".into(),
            path: "/status?full=1".into(),
            host: Some("health.example".into()),
            headers: vec![
                ("X-Probe".into(), "yes".into()),
                ("User-Agent".into(), "tester".into()),
            ],
            expected: vec![StatusMatch::Code(200)],
        },
        ..http_check(Vec::new())
    };
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Ok(())
    );
    let request = responder.last_request().to_ascii_lowercase();
    assert!(
        request.starts_with("head /status?full=1 http/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nhost: health.example\r\n"),
        "{request}"
    );
    assert!(request.contains("\r\nx-probe: yes\r\n"), "{request}");
    assert!(request.contains("\r\nuser-agent: tester\r\n"), "{request}");
    assert_eq!(
        request.matches("user-agent").count(),
        1,
        "replaced, not repeated: {request}"
    );
    assert!(request.contains("\r\nconnection: close\r\n"), "{request}");

    // Without a configured host, the probed address is the Host.
    let check = http_check(Vec::new());
    assert_eq!(
        probe(&check, &peer(responder.addr), &connector).await,
        Ok(())
    );
    let request = responder.last_request().to_ascii_lowercase();
    assert!(
        request.starts_with("get /healthz http/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nhost: {}\r\n", responder.addr)),
        "{request}"
    );
    assert!(
        request.contains("\r\nuser-agent: pylon-health-check/"),
        "{request}"
    );
}

#[tokio::test]
async fn http_probe_times_out_on_a_silent_server() {
    let responder = Responder::start(0).await;
    let connector = Connector::new(None);
    let check = ActiveCheck {
        timeout: Duration::from_millis(300),
        ..http_check(Vec::new())
    };
    let started = Instant::now();
    let result = probe(&check, &peer(responder.addr), &connector).await;
    assert_eq!(result, Err("timed out after 300ms".to_string()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the check's timeout"
    );
    assert_eq!(
        responder.count.load(Ordering::SeqCst),
        1,
        "the request did arrive"
    );
}

#[tokio::test]
async fn invalid_probe_requests_are_reported() {
    let responder = Responder::start(200).await;
    let connector = Connector::new(None);
    let mut check = http_check(Vec::new());
    check.kind = ProbeKind::Http {
        method: "GET".into(),
        path: "/".into(),
        host: None,
        headers: vec![("X-Bad".into(), "line\nbreak".into())],
        expected: Vec::new(),
    };
    let err = probe(&check, &peer(responder.addr), &connector)
        .await
        .expect_err("bad header");
    assert!(err.starts_with("invalid probe header `X-Bad`"), "{err}");
}

fn target(check: ActiveCheck, addr: SocketAddr) -> CheckTarget {
    CheckTarget {
        upstream: "api".into(),
        check: Arc::new(check),
        server: Arc::new(ServerState::new(addr, 1, addr.to_string())),
        peer: peer(addr),
    }
}

#[test]
fn record_probe_applies_the_thresholds_both_ways() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 3001));
    let check = ActiveCheck {
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        ..tcp_check()
    };
    let t = target(check, addr);
    let healthy = || t.server.active_healthy.load(Ordering::SeqCst);
    let down: Result<(), String> = Err("status 500".into());
    let up: Result<(), String> = Ok(());

    assert_eq!(record_probe(&t, &down), None);
    assert_eq!(record_probe(&t, &down), None);
    assert_eq!(
        record_probe(&t, &up),
        None,
        "a success breaks the failure streak"
    );
    assert_eq!(record_probe(&t, &down), None);
    assert_eq!(record_probe(&t, &down), None);
    assert!(healthy());
    assert_eq!(record_probe(&t, &down), Some(false), "3rd failure in a row");
    assert!(!healthy());
    assert_eq!(
        record_probe(&t, &down),
        None,
        "the transition is reported once"
    );
    assert_eq!(t.server.probe_failures.load(Ordering::SeqCst), 4);

    assert_eq!(record_probe(&t, &up), None);
    assert_eq!(
        record_probe(&t, &down),
        None,
        "a failure breaks the success streak"
    );
    assert_eq!(record_probe(&t, &up), None);
    assert!(!healthy());
    assert_eq!(record_probe(&t, &up), Some(true), "2nd success in a row");
    assert!(healthy());
    assert_eq!(record_probe(&t, &up), None);
}

#[test]
fn zero_thresholds_count_as_one() {
    let addr = SocketAddr::from(([127, 0, 0, 1], 3001));
    let check = ActiveCheck {
        healthy_threshold: 0,
        unhealthy_threshold: 0,
        ..tcp_check()
    };
    let t = target(check, addr);
    assert_eq!(record_probe(&t, &Err("x".into())), Some(false));
    assert_eq!(record_probe(&t, &Ok(())), Some(true));
}

#[tokio::test]
async fn the_service_takes_a_server_out_and_back_and_stops_on_shutdown() {
    let responder = Responder::start(200).await;
    let check = ActiveCheck {
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        ..http_check(Vec::new())
    };
    let t = target(check, responder.addr);
    let server = Arc::clone(&t.server);
    // The target set changes at run time, as with reloads: it starts empty.
    let targets: Arc<Mutex<Vec<CheckTarget>>> = Arc::new(Mutex::new(Vec::new()));
    let list = Arc::clone(&targets);
    let service = Arc::new(HealthCheckService::new(Arc::new(move || {
        list.lock().map(|l| l.clone()).unwrap_or_default()
    })));
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.start(shutdown).await }
    });

    targets.lock().expect("lock").push(t);
    let count = Arc::clone(&responder.count);
    eventually("the first probes", Duration::from_secs(5), || {
        count.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(server.active_healthy.load(Ordering::SeqCst));

    responder.set(500);
    let s = Arc::clone(&server);
    eventually("the server to leave", Duration::from_secs(5), || {
        !s.active_healthy.load(Ordering::SeqCst)
    })
    .await;
    assert!(!server.is_healthy(now_ms()));

    responder.set(200);
    let s = Arc::clone(&server);
    eventually("the server to come back", Duration::from_secs(5), || {
        s.active_healthy.load(Ordering::SeqCst)
    })
    .await;
    assert!(server.next_probe_ms.load(Ordering::SeqCst) > 0, "scheduled");

    stop.send(true).expect("the service listens");
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the service stops on shutdown")
        .expect("no panic");
}

#[tokio::test]
async fn the_service_paces_probes_by_the_interval() {
    let responder = Responder::start(200).await;
    let check = ActiveCheck {
        interval: Duration::from_millis(200),
        ..http_check(Vec::new())
    };
    let t = target(check, responder.addr);
    // The same server listed twice (two upstreams sharing it) is still probed once per round.
    let list = vec![t.clone(), t];
    let service = Arc::new(
        HealthCheckService::new(Arc::new(move || list.clone())).with_max_concurrent_probes(1),
    );
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.start(shutdown).await }
    });
    let count = Arc::clone(&responder.count);
    eventually("two probes", Duration::from_secs(5), || {
        count.load(Ordering::SeqCst) >= 2
    })
    .await;
    let started = Instant::now();
    eventually("four probes", Duration::from_secs(5), || {
        count.load(Ordering::SeqCst) >= 4
    })
    .await;
    // Two more probes take at least two intervals (the lower bound alone is safe to assert).
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    drop(stop); // a dropped sender also stops the service
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("the service stops when its shutdown sender is gone")
        .expect("no panic");
}

mod tls;
