//! The `RateLimit-Policy` and `RateLimit` response headers, in the form of
//! draft-ietf-httpapi-ratelimit-headers-10 (structured-field lists, one item per policy):
//!
//! ```text
//! RateLimit-Policy: "default";q=50;w=30
//! RateLimit: "default";r=12;t=23
//! ```
//!
//! A token bucket is described as the quota it restores in full: `q` is `burst` and `w` the
//! seconds an empty bucket takes to refill (`burst × period / average`, rounded up). With
//! the default `burst` (= `average`), that is `average` per `period`, as configured. `r` is
//! the tokens left, `t` the seconds until the bucket is full again (rounded up); the next
//! request passes whenever `r` > 0.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;

use super::gcra::{ceil_secs, Report};

pub const POLICY_HEADER: &str = "RateLimit-Policy";
pub const LIMIT_HEADER: &str = "RateLimit";

/// A policy's name and its prepared `RateLimit-Policy` value.
#[derive(Debug)]
pub struct Policy {
    value: HeaderValue,
    /// `"name";r=`, the start of every `RateLimit` value.
    limit_start: Vec<u8>,
}

impl Policy {
    /// `name` is checked by the config (letters, digits and `-_.:/`: no quoting needed).
    pub fn new(name: &str, period: Duration, average: u64, burst: u64) -> Result<Policy, String> {
        let refill_ns = u128::from(burst) * period.as_nanos();
        let window = refill_ns.div_ceil(u128::from(average.max(1)) * 1_000_000_000);
        let value = format!("\"{name}\";q={burst};w={}", window.max(1));
        Ok(Policy {
            value: HeaderValue::from_str(&value)
                .map_err(|_| format!("invalid policy name {name:?}"))?,
            limit_start: format!("\"{name}\";r=").into_bytes(),
        })
    }

    /// `RateLimit-Policy`.
    pub fn policy(&self) -> HeaderValue {
        self.value.clone()
    }

    /// `RateLimit` after this decision. Written by hand into one buffer: it is made for
    /// every request that passes.
    pub fn limit(&self, report: &Report) -> HeaderValue {
        let mut out = Vec::with_capacity(self.limit_start.len() + 24);
        out.extend_from_slice(&self.limit_start);
        push_number(&mut out, report.remaining);
        out.extend_from_slice(b";t=");
        push_number(&mut out, ceil_secs(report.reset));
        // The name was checked when the policy was built; the rest is digits.
        HeaderValue::from_maybe_shared(Bytes::from(out))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// Appends `n` in decimal.
fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy_and_limit_values() {
        let p = Policy::new("default", Duration::from_secs(60), 1000, 100).unwrap();
        assert_eq!(p.policy(), "\"default\";q=100;w=6");
        let p = Policy::new("per-ip", Duration::from_secs(1), 3, 3).unwrap();
        assert_eq!(p.policy(), "\"per-ip\";q=3;w=1");
        let p = Policy::new("slow", Duration::from_secs(3600), 1, 5).unwrap();
        assert_eq!(p.policy(), "\"slow\";q=5;w=18000");
        let report = Report {
            allowed: true,
            remaining: 4,
            reset: Duration::from_millis(3_600_001),
            retry_after: Duration::ZERO,
        };
        assert_eq!(p.limit(&report), "\"slow\";r=4;t=3601");
        let empty = Report {
            allowed: false,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(p.limit(&empty), "\"slow\";r=0;t=0");
        let mut out = Vec::new();
        push_number(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }
}
