//! The `rate_limit` middleware: a token bucket per key, in memory or in Redis.
//!
//! Semantics (Traefik's): each key's bucket holds at most `burst` tokens (default
//! `average`) and starts full; it gains one token every `period / average`, continuously. A
//! request takes a token, or is refused with 429 when there is none. So a burst of N + k
//! requests at once admits exactly `burst` of them, and over any span T at most
//! `burst + T × average / period` pass. The arithmetic is GCRA (`gcra.rs`): one number per
//! key, no timer.
//!
//! - A refused request gets 429 in the shared error format with `Retry-After` (seconds until
//!   one token is back, rounded up: waiting that long then succeeds, unless other requests
//!   of the key took the token first) and the `RateLimit-Policy` / `RateLimit` headers
//!   (`headers.rs`). With `response_headers: true`, passing requests carry the two headers
//!   too, added by the response hook to whatever answer they get (the upstream's, or an
//!   error). That is off by default: Pingora's header inserts make the two headers cost
//!   three times the decision (`bench/instructions.sh`: +1k instructions per request for
//!   the local decision, +3.2k with the headers, against 67.5k for the request).
//! - Keys (`key.rs`): `client_ip`, `header:NAME`, `consumer`, `route` or a list; a missing
//!   header or consumer counts as the client's address.
//! - One instance is one set of buckets: a named middleware used by several routes limits
//!   them together; `route` in the key separates them.
//! - Buckets live in memory (`local.rs`: sharded, bounded, idle keys evicted) or in Redis
//!   (`redis.rs`: shared by every Pylon on the same Redis, with an in-memory fallback).
//!
//! On reload (a new snapshot compiles a new instance), in-memory buckets start again full:
//! a reload forgives what clients owed. Redis buckets live on, since the new instance
//! computes the same key names; the new instance opens its own connection, and the old one
//! closes once the last request of the old snapshot is done.

mod gcra;
mod headers;
pub(super) mod key;
mod local;
mod redis;

// The engine, public for `benches/rate_limit.rs`; the middleware itself is reached through
// `compile_one`.
pub use self::gcra::{Rate, Report};
pub use self::headers::Policy;
pub use self::key::RequestKey;
pub use self::local::LocalBuckets;
pub use self::redis::{Outcome, RedisBuckets};

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use http::{header, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{
    RateLimit as Config, RateLimitBackend, DEFAULT_MAX_KEYS, DEFAULT_POLICY,
};

use self::gcra::ceil_secs;
use self::headers::{LIMIT_HEADER, POLICY_HEADER};
use super::{Flow, Hooks, Middleware, RequestState};

/// Tells instances apart in a request's notes (a route may use several limits).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct RateLimit {
    id: usize,
    key: RequestKey,
    policy: Policy,
    buckets: Buckets,
    /// Whether passing requests' responses get the `RateLimit` headers.
    response_headers: bool,
}

#[derive(Debug)]
enum Buckets {
    Local(LocalBuckets),
    Redis(Box<RedisBuckets>),
}

/// The `RateLimit` value of each limit a request passed, for the response hook. The first
/// is kept apart: a route with one limit allocates no list.
#[derive(Clone)]
struct Passed {
    first: (usize, HeaderValue),
    more: Vec<(usize, HeaderValue)>,
}

impl Passed {
    fn of(&self, id: usize) -> Option<&HeaderValue> {
        std::iter::once(&self.first)
            .chain(&self.more)
            .find(|(i, _)| *i == id)
            .map(|(_, v)| v)
    }
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    if def.average == 0 {
        return Err("average must be at least 1".into());
    }
    let burst = def.burst();
    let rate = Rate::new(def.period, def.average, burst);
    let max_keys = def.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
    let name = def.policy.as_deref().unwrap_or(DEFAULT_POLICY);
    let buckets = match (def.backend, &def.redis) {
        (RateLimitBackend::Local, _) => Buckets::Local(LocalBuckets::new(rate, max_keys)),
        (RateLimitBackend::Redis, Some(settings)) => {
            Buckets::Redis(Box::new(RedisBuckets::new(settings, name, rate, max_keys)?))
        }
        (RateLimitBackend::Redis, None) => return Err("`backend: redis` needs `redis`".into()),
    };
    Ok(Arc::new(RateLimit {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        key: RequestKey::compile(&def.key)?,
        policy: Policy::new(name, def.period, def.average, burst)?,
        buckets,
        response_headers: def.response_headers,
    }))
}

#[async_trait]
impl Middleware for RateLimit {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            response: self.response_headers,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let req = session.req_header();
        let report = match &self.buckets {
            Buckets::Local(buckets) => buckets.decide(self.key.hash(req, state)),
            Buckets::Redis(buckets) => {
                let mut name = buckets.prefix().to_vec();
                self.key.redis_key(req, state, &mut name);
                match buckets.decide(&name, self.key.hash(req, state)).await {
                    Outcome::Decided(report) => report,
                    Outcome::Unavailable => {
                        return Ok(Flow::Reject(503, "rate limit backend unavailable".into()))
                    }
                }
            }
        };
        Ok(self.verdict(&report, state))
    }

    fn response(
        &self,
        _downstream: &RequestHeader,
        response: &mut ResponseHeader,
        state: &mut RequestState,
    ) -> Result<()> {
        let Some(passed) = state.extensions.get::<Passed>() else {
            return Ok(());
        };
        if let Some(limit) = passed.of(self.id) {
            response.append_header(POLICY_HEADER, self.policy.policy())?;
            response.append_header(LIMIT_HEADER, limit.clone())?;
        }
        Ok(())
    }
}

impl RateLimit {
    /// Lets the request on (noting its `RateLimit` value for the response, when wanted), or
    /// refuses it.
    fn verdict(&self, report: &Report, state: &mut RequestState) -> Flow {
        if report.allowed && !self.response_headers {
            return Flow::Continue;
        }
        let limit = self.policy.limit(report);
        if report.allowed {
            match state.extensions.get_mut::<Passed>() {
                Some(passed) => passed.more.push((self.id, limit)),
                None => {
                    state.extensions.insert(Passed {
                        first: (self.id, limit),
                        more: Vec::new(),
                    });
                }
            }
            return Flow::Continue;
        }
        // At least one second: a refused request always has time to wait.
        let retry_after = ceil_secs(report.retry_after).max(1);
        Flow::RejectWith(
            429,
            Cow::Borrowed("rate limit exceeded"),
            vec![
                (header::RETRY_AFTER, HeaderValue::from(retry_after)),
                (
                    HeaderName::from_static("ratelimit-policy"),
                    self.policy.policy(),
                ),
                (HeaderName::from_static("ratelimit"), limit),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_refusal_carries_retry_after_and_both_headers() {
        let def = Config {
            average: 1,
            period: Duration::from_secs(60),
            burst: Some(1),
            key: Default::default(),
            policy: Some("p".into()),
            backend: RateLimitBackend::Local,
            redis: None,
            max_keys: None,
            response_headers: true,
        };
        let rl = RateLimit {
            id: 7,
            key: RequestKey::compile(&def.key).unwrap(),
            policy: Policy::new("p", def.period, 1, 1).unwrap(),
            buckets: Buckets::Local(LocalBuckets::new(Rate::new(def.period, 1, 1), 1024)),
            response_headers: true,
        };
        let Buckets::Local(b) = &rl.buckets else {
            unreachable!()
        };
        let mut state = RequestState::default();
        let first = b.decide_at(1, 0);
        assert!(matches!(rl.verdict(&first, &mut state), Flow::Continue));
        let passed = state.extensions.get::<Passed>().unwrap();
        assert_eq!(passed.of(7).unwrap(), "\"p\";r=0;t=60");
        assert!(passed.of(8).is_none());
        let second = b.decide_at(1, 20_000_000_000);
        match rl.verdict(&second, &mut state) {
            Flow::RejectWith(429, message, headers) => {
                assert_eq!(message, "rate limit exceeded");
                let get = |n: &str| headers.iter().find(|(k, _)| k == n).unwrap().1.clone();
                assert_eq!(get("retry-after"), "40");
                assert_eq!(get("ratelimit-policy"), "\"p\";q=1;w=60");
                assert_eq!(get("ratelimit"), "\"p\";r=0;t=40");
            }
            _ => panic!("not refused"),
        }
    }

    #[test]
    fn without_response_headers_a_passing_request_leaves_no_note() {
        let period = Duration::from_secs(60);
        let rl = RateLimit {
            id: 1,
            key: RequestKey::compile(&Default::default()).unwrap(),
            policy: Policy::new("p", period, 1, 2).unwrap(),
            buckets: Buckets::Local(LocalBuckets::new(Rate::new(period, 1, 2), 1024)),
            response_headers: false,
        };
        assert!(!rl.hooks().response);
        let mut state = RequestState::default();
        let report = Rate::new(period, 1, 2).take(0, 0).0;
        assert!(matches!(rl.verdict(&report, &mut state), Flow::Continue));
        assert!(state.extensions.get::<Passed>().is_none());
    }
}
