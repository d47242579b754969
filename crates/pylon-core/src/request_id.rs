//! Request ids for error bodies and logs: the client's `X-Request-ID` when it sent a sane
//! one, else a fresh id.
//!
//! Fresh ids are 32 hex digits: a per-process random prefix (from the clock and pid at start)
//! and a counter, so they are unique within and, in practice, across processes, and cost one
//! atomic add. The `request_id` middleware (configurable header, always-on) builds on this.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header the id travels in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest incoming id we keep; longer ones are replaced.
const MAX_INCOMING_LEN: usize = 128;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn process_prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        // splitmix64 over clock and pid: start times a nanosecond apart give unrelated ids.
        let mut z = nanos ^ (u64::from(std::process::id()) << 32);
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `n` as 16 lower-case hex digits.
fn hex16(n: u64) -> [u8; 16] {
    let mut digits = [0u8; 16];
    for (i, digit) in digits.iter_mut().enumerate() {
        *digit = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    digits
}

/// The process prefix's digits, written once.
fn prefix_hex() -> &'static [u8; 16] {
    static DIGITS: OnceLock<[u8; 16]> = OnceLock::new();
    DIGITS.get_or_init(|| hex16(process_prefix()))
}

/// A fresh, unique request id.
pub fn generate() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Written by hand: `format!` costs several times more, on every request; the prefix
    // half is the same for every id, so only the counter is converted.
    let mut id = Vec::with_capacity(32);
    id.extend_from_slice(prefix_hex());
    id.extend_from_slice(&hex16(n));
    // Always ASCII hex, so never the fallback.
    String::from_utf8(id).unwrap_or_default()
}

/// The incoming id if it is printable ASCII of sane length, else a fresh one.
pub fn from_incoming(incoming: Option<&[u8]>) -> String {
    match incoming {
        Some(v)
            if !v.is_empty()
                && v.len() <= MAX_INCOMING_LEN
                && v.iter().all(|b| b.is_ascii_graphic()) =>
        {
            String::from_utf8_lossy(v).into_owned()
        }
        _ => generate(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_ids_are_unique_hex() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        // The counter is the second half, in order.
        let a_n = u64::from_str_radix(&a[16..], 16).unwrap();
        let b_n = u64::from_str_radix(&b[16..], 16).unwrap();
        assert!(b_n > a_n);
        assert_eq!(a[..16], format!("{:016x}", process_prefix()));
    }

    #[test]
    fn sane_incoming_id_is_kept_and_junk_replaced() {
        assert_eq!(from_incoming(Some(b"abc-123")), "abc-123");
        assert_ne!(from_incoming(Some(b"bad id")), "bad id");
        assert_eq!(from_incoming(Some(&[b'a'; 200])).len(), 32);
        assert_eq!(from_incoming(None).len(), 32);
    }
}
