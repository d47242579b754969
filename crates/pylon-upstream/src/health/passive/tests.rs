//! Outlier detection, on explicit clocks: every `now_ms` is chosen by the test.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::*;

const T: u64 = 10_000;

fn policy() -> OutlierPolicy {
    OutlierPolicy {
        consecutive_failures: 3,
        failure_statuses: vec![502, 503, 504],
        ejection_time: Duration::from_millis(T),
        max_ejection_time: Duration::from_millis(6 * T),
        max_ejected_percent: 50,
    }
}

fn pool(n: u16) -> Vec<Arc<ServerState>> {
    (0..n)
        .map(|i| {
            let address = SocketAddr::from(([127, 0, 0, 1], 3001 + i));
            Arc::new(ServerState::new(address, 1, address.to_string()))
        })
        .collect()
}

const FAIL: Outcome = Outcome::Failure("status 503");

/// Reports `times` failures at `now`; returns whether the last one ejected.
fn fail(
    policy: &OutlierPolicy,
    server: &ServerState,
    pool: &[Arc<ServerState>],
    now: u64,
    times: u32,
) -> bool {
    let mut ejected = false;
    for _ in 0..times {
        ejected = policy.record("api", server, FAIL, pool, now);
    }
    ejected
}

/// Ejects `server` at `now` and returns the ejection's length.
fn eject(policy: &OutlierPolicy, server: &ServerState, pool: &[Arc<ServerState>], now: u64) -> u64 {
    assert!(
        fail(policy, server, pool, now, policy.consecutive_failures),
        "ejected at {now}"
    );
    server.ejected_until_ms.load(Ordering::Relaxed) - now
}

#[test]
fn ejects_after_consecutive_failures_and_comes_back_by_itself() {
    let (p, servers) = (policy(), pool(2));
    let s = &servers[0];
    let now = 1_000;
    assert!(!p.record("api", s, FAIL, &servers, now));
    assert!(!p.record("api", s, FAIL, &servers, now));
    assert!(s.is_healthy(now));
    assert!(
        p.record("api", s, FAIL, &servers, now),
        "the 3rd failure ejects"
    );
    assert!(!s.is_healthy(now) && s.is_ejected(now + T - 1));
    assert_eq!(s.ejected_until_ms.load(Ordering::Relaxed), now + T);
    assert_eq!(s.ejection_count.load(Ordering::Relaxed), 1);
    assert_eq!(s.consecutive_failures.load(Ordering::Relaxed), 0);
    assert!(
        s.is_healthy(now + T),
        "back when the ejection ends, no probe needed"
    );
    assert!(servers[1].is_healthy(now), "others untouched");
}

#[test]
fn a_success_resets_the_streak() {
    let (p, servers) = (policy(), pool(2));
    let s = &servers[0];
    assert!(!fail(&p, s, &servers, 1_000, 2));
    assert!(!p.record("api", s, Outcome::Success, &servers, 1_000));
    assert_eq!(s.consecutive_failures.load(Ordering::Relaxed), 0);
    assert!(!fail(&p, s, &servers, 1_000, 2));
    assert!(s.is_healthy(1_000));
    assert!(fail(&p, s, &servers, 1_000, 1));
}

#[test]
fn failures_of_requests_in_flight_during_an_ejection_do_not_count() {
    let (p, servers) = (policy(), pool(2));
    let s = &servers[0];
    eject(&p, s, &servers, 1_000);
    assert!(!fail(&p, s, &servers, 1_500, 10));
    assert_eq!(
        s.ejected_until_ms.load(Ordering::Relaxed),
        1_000 + T,
        "not extended"
    );
    assert!(
        !fail(&p, s, &servers, 1_000 + T, 2),
        "a fresh streak after the return"
    );
}

#[test]
fn back_off_doubles_for_repeat_offenders_and_is_capped() {
    let (p, servers) = (policy(), pool(2));
    let s = &servers[0];
    let mut now = 1_000;
    let mut lengths = Vec::new();
    for _ in 0..5 {
        let length = eject(&p, s, &servers, now);
        lengths.push(length);
        now += length; // fails again as soon as it is back
    }
    assert_eq!(lengths, [T, 2 * T, 4 * T, 6 * T, 6 * T]);
}

#[test]
fn time_in_service_forgives_past_ejections() {
    let (p, servers) = (policy(), pool(2));
    let s = &servers[0];
    let mut now = 1_000;
    now += eject(&p, s, &servers, now); // 1 ejection
    now += eject(&p, s, &servers, now); // 2 ejections: the next would be 4T
    assert_eq!(p.ejection_count(s, now), 2);
    // One and a half periods in service forgive one ejection.
    now += T + T / 2;
    assert_eq!(p.ejection_count(s, now), 1);
    let length = eject(&p, s, &servers, now);
    assert_eq!(length, 2 * T);
    now += length;
    // Now count 2 again; three periods in service forgive both (and no more).
    now += 3 * T;
    assert_eq!(p.ejection_count(s, now), 0);
    assert_eq!(eject(&p, s, &servers, now), T);
}

#[test]
fn max_ejected_percent_keeps_part_of_the_pool_in_service() {
    let (p, servers) = (policy(), pool(4));
    let now = 1_000;
    assert_eq!(eject(&p, &servers[0], &servers, now), T);
    assert!(
        fail(&p, &servers[1], &servers, now, 3),
        "2 of 4 is 50%: allowed"
    );
    assert!(
        !fail(&p, &servers[2], &servers, now, 3),
        "3 of 4 is 75%: refused"
    );
    assert!(!fail(&p, &servers[2], &servers, now + 1, 5));
    assert!(servers[2].is_healthy(now + 1));
    // The streak was kept: once the first ejections end, its next failure ejects it.
    assert!(p.record("api", &servers[2], FAIL, &servers, now + T));
}

#[test]
fn one_server_may_always_be_ejected() {
    let mut p = policy();
    p.max_ejected_percent = 0;
    let servers = pool(4);
    assert!(fail(&p, &servers[0], &servers, 1_000, 3));
    assert!(
        !fail(&p, &servers[1], &servers, 1_000, 3),
        "a second one may not"
    );
    let single = pool(1);
    assert!(
        fail(&p, &single[0], &single, 1_000, 3),
        "nor does a pool of one keep its server"
    );
}

#[test]
fn failure_statuses_decide_the_outcome() {
    let p = policy();
    assert!(p.is_failure_status(503) && p.is_failure_status(502) && p.is_failure_status(504));
    assert!(!p.is_failure_status(500) && !p.is_failure_status(200) && !p.is_failure_status(404));
    assert_eq!(p.outcome_for_status(503), Outcome::Failure("status 503"));
    assert_eq!(p.outcome_for_status(500), Outcome::Success);
    assert_eq!(status_reason(100), "status 100");
    assert_eq!(status_reason(599), "status 599");
    assert_eq!(status_reason(42), "invalid status");
    assert_eq!(status_reason(600), "invalid status");
}

#[test]
fn zero_thresholds_turn_ejection_off() {
    let servers = pool(2);
    let mut p = policy();
    p.consecutive_failures = 0;
    assert!(!fail(&p, &servers[0], &servers, 1_000, 100));
    let mut p = policy();
    p.ejection_time = Duration::ZERO;
    assert!(!fail(&p, &servers[0], &servers, 1_000, 100));
    assert!(servers[0].is_healthy(1_000));
}

#[test]
fn concurrent_failures_eject_once() {
    let p = Arc::new(policy());
    let servers = Arc::new(pool(2));
    let ejections: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (p, servers) = (Arc::clone(&p), Arc::clone(&servers));
                scope.spawn(move || {
                    (0..100)
                        .filter(|_| p.record("api", &servers[0], FAIL, &servers, 1_000))
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    assert_eq!(ejections, 1);
}
