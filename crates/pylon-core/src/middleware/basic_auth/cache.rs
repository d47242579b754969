//! Successful password checks, remembered briefly so a client that sends the same
//! credentials on every request pays for one hash check, not one per request.
//!
//! Entries are keyed by a keyed SHA-256 of user and password (the key is random per
//! instance): never the password, and not a digest someone could match against a list of
//! common passwords hashed offline. The map is bounded: when full, expired entries go, then
//! the one closest to expiring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub type CacheKey = [u8; 32];

pub struct CheckCache {
    ttl: Duration,
    capacity: usize,
    secret: [u8; 32],
    entries: Mutex<HashMap<CacheKey, Instant>>,
}

impl fmt::Debug for CheckCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl CheckCache {
    /// A cache of `capacity` entries kept `ttl` each; a zero `ttl` remembers nothing.
    pub fn new(ttl: Duration, capacity: usize) -> Result<CheckCache, String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| format!("no OS randomness for the check cache: {e}"))?;
        Ok(CheckCache {
            ttl,
            capacity: capacity.max(1),
            secret,
            entries: Mutex::new(HashMap::new()),
        })
    }

    /// The key for one user and password. The user's length goes first so `ab`+`c` and
    /// `a`+`bc` never meet.
    pub fn key(&self, user: &[u8], password: &[u8]) -> CacheKey {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user);
        h.update(password);
        h.finalize().into()
    }

    /// Whether this key was checked successfully less than `ttl` ago.
    pub fn contains(&self, key: &CacheKey, now: Instant) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some(expires) if *expires > now => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    /// Remembers a successful check.
    pub fn insert(&self, key: CacheKey, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, expires| *expires > now);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(key, now + self.ttl);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_expire_and_stay_bounded() {
        let cache = CheckCache::new(Duration::from_secs(10), 2).unwrap();
        let t0 = Instant::now();
        let (a, b, c) = (
            cache.key(b"ann", b"pw"),
            cache.key(b"bob", b"pw"),
            cache.key(b"cid", b"pw"),
        );
        assert!(!cache.contains(&a, t0));
        cache.insert(a, t0);
        assert!(cache.contains(&a, t0 + Duration::from_secs(9)));
        assert!(!cache.contains(&a, t0 + Duration::from_secs(10)));
        cache.insert(a, t0);
        cache.insert(b, t0 + Duration::from_secs(1));
        cache.insert(c, t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        // The one closest to expiring (a) made room.
        assert!(!cache.contains(&a, t0 + Duration::from_secs(2)));
        assert!(cache.contains(&b, t0 + Duration::from_secs(2)));
        assert!(cache.contains(&c, t0 + Duration::from_secs(2)));
    }

    #[test]
    fn keys_depend_on_user_password_and_instance() {
        let cache = CheckCache::new(Duration::from_secs(1), 8).unwrap();
        assert_eq!(cache.key(b"ann", b"pw"), cache.key(b"ann", b"pw"));
        assert_ne!(cache.key(b"ann", b"pw"), cache.key(b"ann", b"pW"));
        assert_ne!(cache.key(b"ab", b"c"), cache.key(b"a", b"bc"));
        let other = CheckCache::new(Duration::from_secs(1), 8).unwrap();
        assert_ne!(cache.key(b"ann", b"pw"), other.key(b"ann", b"pw"));
        let off = CheckCache::new(Duration::ZERO, 8).unwrap();
        let k = off.key(b"ann", b"pw");
        off.insert(k, Instant::now());
        assert!(!off.contains(&k, Instant::now()));
    }
}
