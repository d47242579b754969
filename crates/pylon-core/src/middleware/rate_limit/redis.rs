//! Buckets in Redis, shared by every Pylon that uses the same server and key prefix.
//!
//! One decision is one round trip: an atomic Lua script (EVALSHA; the client loads the
//! script and retries when Redis answers NOSCRIPT) that reads the Redis server's `TIME`, so
//! instances whose clocks disagree still share one timeline, applies the same GCRA step as
//! the local buckets (in microseconds) and stores the new `tat` with a TTL of the bucket's
//! debt: a key disappears exactly when its bucket is full again, so Redis holds only
//! buckets in use.
//!
//! The connection is made lazily, on the first decision (compiling a config does no I/O),
//! by a `ConnectionManager` that reconnects on its own. Each decision waits at most
//! `timeout`. When Redis fails (unreachable, timed out, an error), the failure is logged at
//! most once per [`LOG_INTERVAL`], Redis is not asked again for [`RETRY_INTERVAL`] (so a
//! dead Redis costs requests nothing), and meanwhile decisions follow `on_backend_error`:
//! `allow` decides with an in-memory bucket of the same settings (a flood stays bounded,
//! per instance), `deny` refuses.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pylon_config::middleware::{parse_redis_url, OnBackendError, RedisLimit, DEFAULT_REDIS_PREFIX};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::gcra::{Rate, Report};
use super::local::LocalBuckets;

/// How often a Redis that keeps failing is reported in the log.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);
/// How long decisions skip Redis after it failed.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long one connection attempt may take (the manager's own reconnects).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// KEYS[1]: the bucket. ARGV[1]: the interval in µs. ARGV[2]: burst.
/// Returns {1 when the request passes, else 0; the bucket's debt after the decision, in µs}.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local capacity = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
local debt = math.max(tat - now, 0)
if debt + interval > capacity then
  return {0, debt}
end
debt = debt + interval
redis.call('SET', KEYS[1], string.format('%d', now + debt), 'PX', string.format('%d', math.ceil(debt / 1000)))
return {1, debt}
";

pub struct RedisBuckets {
    client: redis::Client,
    manager: OnceLock<ConnectionManager>,
    script: Script,
    /// `prefix` + policy + `:`.
    prefix: Vec<u8>,
    /// The rate with a whole-microsecond interval.
    rate: Rate,
    timeout: Duration,
    on_error: OnBackendError,
    /// Decides while Redis is failing (with `on_backend_error: allow`).
    fallback: LocalBuckets,
    health: Health,
    /// `host:port/db`, for log lines: never the URL, which may carry a password.
    target: String,
}

impl std::fmt::Debug for RedisBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuckets")
            .field("target", &self.target)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// What a decision came to.
pub enum Outcome {
    Decided(Report),
    /// Redis failed and `on_backend_error` is `deny`.
    Unavailable,
}

impl RedisBuckets {
    pub fn new(
        settings: &RedisLimit,
        policy: &str,
        rate: Rate,
        max_keys: usize,
    ) -> Result<RedisBuckets, String> {
        let url = parse_redis_url(&settings.url)?;
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| format!("invalid Redis URL: {e}"))?;
        let mut prefix = settings
            .prefix
            .as_deref()
            .unwrap_or(DEFAULT_REDIS_PREFIX)
            .as_bytes()
            .to_vec();
        prefix.extend_from_slice(policy.as_bytes());
        prefix.push(b':');
        Ok(RedisBuckets {
            client,
            manager: OnceLock::new(),
            script: Script::new(SCRIPT),
            prefix,
            rate: rate.in_whole_micros(),
            timeout: settings.timeout,
            on_error: settings.on_backend_error,
            fallback: LocalBuckets::new(rate, max_keys),
            health: Health::new(),
            target: format!("{}:{}/{}", url.host, url.port, url.db),
        })
    }

    /// The Redis key prefix (`prefix` + policy + `:`) the caller appends the request key to.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Decides one request: `key` is the full Redis key, `local_key` the same key's hash
    /// for the fallback buckets.
    pub async fn decide(&self, key: &[u8], local_key: u64) -> Outcome {
        if self.health.usable() {
            match self.ask(key).await {
                Ok(report) => {
                    self.health.succeeded(&self.target);
                    return Outcome::Decided(report);
                }
                Err(why) => self.health.failed(&self.target, &why, self.on_error),
            }
        }
        match self.on_error {
            OnBackendError::Allow => Outcome::Decided(self.fallback.decide(local_key)),
            OnBackendError::Deny => Outcome::Unavailable,
        }
    }

    async fn ask(&self, key: &[u8]) -> Result<Report, String> {
        let mut conn = self.connection()?;
        let mut invocation = self.script.key(key);
        invocation
            .arg(self.rate.interval() / 1_000)
            .arg(self.rate.burst());
        let call = invocation.invoke_async::<(i64, i64)>(&mut conn);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok((allowed, debt_us))) => Ok(self.rate.report(
                allowed == 1,
                u64::try_from(debt_us).unwrap_or(0).saturating_mul(1_000),
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                pylon_config::duration::format_duration(self.timeout)
            )),
        }
    }

    /// The shared connection, made on first use (inside the runtime, which the manager
    /// needs for its background task).
    fn connection(&self) -> Result<ConnectionManager, String> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(RETRY_INTERVAL);
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| e.to_string())?;
        // Two first requests at once may both build one; the loser's is dropped unused.
        Ok(self.manager.get_or_init(|| manager).clone())
    }
}

/// Whether Redis is being skipped, and when the log last heard of it.
struct Health {
    epoch: Instant,
    /// Milliseconds since `epoch` before which Redis is not asked.
    skip_until: AtomicU64,
    failing: AtomicBool,
    /// Milliseconds since `epoch` of the last warning, `u64::MAX` before the first.
    last_warning: AtomicU64,
    /// Failures since the last warning.
    unreported: AtomicU64,
}

impl Health {
    fn new() -> Health {
        Health {
            epoch: Instant::now(),
            skip_until: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_warning: AtomicU64::new(u64::MAX),
            unreported: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn usable(&self) -> bool {
        self.now_ms() >= self.skip_until.load(Ordering::Relaxed)
    }

    fn failed(&self, target: &str, why: &str, on_error: OnBackendError) {
        let now = self.now_ms();
        self.skip_until
            .store(now + RETRY_INTERVAL.as_millis() as u64, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX || now.saturating_sub(last) >= LOG_INTERVAL.as_millis() as u64;
        // One request wins the right to log; the others count themselves as unreported.
        if due
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let others = self.unreported.swap(0, Ordering::Relaxed);
            let meanwhile = match on_error {
                OnBackendError::Allow => "deciding with in-memory buckets",
                OnBackendError::Deny => "refusing requests with 503",
            };
            log::warn!(
                "rate_limit: Redis at {target} failed: {why}; {meanwhile} until it answers (on_backend_error: {}){}",
                match on_error {
                    OnBackendError::Allow => "allow",
                    OnBackendError::Deny => "deny",
                },
                if others > 0 {
                    format!("; {others} more failures since the last report")
                } else {
                    String::new()
                }
            );
        } else {
            self.unreported.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn succeeded(&self, target: &str) {
        if self.failing.load(Ordering::Relaxed) && self.failing.swap(false, Ordering::Relaxed) {
            log::info!("rate_limit: Redis at {target} answers again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_logged_once_per_interval_and_skip_redis_for_a_while() {
        let h = Health::new();
        assert!(h.usable());
        h.failed("x:1/0", "refused", OnBackendError::Allow);
        assert!(!h.usable(), "Redis is skipped right after a failure");
        let first = h.last_warning.load(Ordering::Relaxed);
        assert_ne!(first, u64::MAX);
        for _ in 0..10 {
            h.failed("x:1/0", "refused", OnBackendError::Allow);
        }
        assert_eq!(
            h.last_warning.load(Ordering::Relaxed),
            first,
            "not logged again"
        );
        assert_eq!(h.unreported.load(Ordering::Relaxed), 10);
        assert!(h.failing.load(Ordering::Relaxed));
        h.succeeded("x:1/0");
        assert!(!h.failing.load(Ordering::Relaxed));
    }
}
