//! `admin.rate_limit`: a token bucket per client address, checked before authentication so
//! that guessing credentials is slowed down too.
//!
//! The admin API sees a handful of clients, so one map behind a mutex is plenty; full
//! buckets are dropped when the map grows, so memory stays bounded whoever connects.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pylon_config::AdminRateLimit;

/// Buckets kept before full ones are dropped.
const MAX_CLIENTS: usize = 4096;

pub struct RateLimiter {
    capacity: f64,
    /// Tokens per second.
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(limit: &AdminRateLimit) -> RateLimiter {
        let average = f64::from(limit.average.max(1));
        RateLimiter {
            capacity: f64::from(limit.burst.unwrap_or(limit.average).max(1)),
            rate: average / limit.period.as_secs_f64().max(1e-3),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`; when there is none, how long until there is.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            let (capacity, rate) = (self.capacity, self.rate);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < capacity
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.rate)
            .min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_the_average() {
        let limiter = RateLimiter::new(&AdminRateLimit {
            average: 2,
            period: Duration::from_secs(1),
            burst: Some(3),
        });
        let client: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(client, t0).is_ok());
        }
        let wait = limiter.take(client, t0).err();
        assert_eq!(wait, Some(Duration::from_millis(500)));
        assert!(limiter.take(other, t0).is_ok(), "per client");
        assert!(limiter
            .take(client, t0 + Duration::from_millis(500))
            .is_ok());
        assert!(limiter
            .take(client, t0 + Duration::from_millis(500))
            .is_err());
    }
}
