//! Verified tokens, remembered briefly so a client repeating its token skips the signature
//! check (an RSA verification costs tens of microseconds; a lookup, well under one).
//!
//! - Keyed by the token's SHA-256, never the token itself: the cache holds no credential.
//! - Bounded: least-recently-used entries go first, in shards so threads rarely meet on
//!   one lock.
//! - An entry ends at its `until` (the token's `exp`, or the TTL, whichever comes first),
//!   and belongs to one generation of the JWKS keys: once the keys change (a key rotated
//!   out), tokens verified with the old set are checked again. The caller still checks
//!   `exp`/`nbf` against the clock on every hit.
//! - Only successes are stored: failures cannot fill it.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use super::verify::Verified;

/// Shards for caches large enough to split.
const SHARDS: usize = 16;

/// One remembered token.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub verified: Arc<Verified>,
    /// Unix seconds after which the entry is not used.
    pub until: f64,
    /// The JWKS key generation it was verified with (0 without a JWKS).
    pub generation: u64,
}

pub struct TokenCache {
    shards: Vec<Mutex<LruCache<[u8; 32], CachedToken>>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache of at most `size` tokens (`size` > 0).
    pub fn new(size: usize) -> TokenCache {
        let shards = if size >= SHARDS * 4 { SHARDS } else { 1 };
        let per_shard = NonZeroUsize::new(size.div_ceil(shards)).unwrap_or(NonZeroUsize::MIN);
        TokenCache {
            shards: (0..shards)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
        }
    }

    fn shard(&self, hash: &[u8; 32]) -> &Mutex<LruCache<[u8; 32], CachedToken>> {
        &self.shards[usize::from(hash[0]) % self.shards.len()]
    }

    /// The token verified under `generation`, if remembered and not past its `until` at
    /// `now`. A stale entry is dropped.
    pub fn get(&self, hash: &[u8; 32], generation: u64, now: f64) -> Option<Arc<Verified>> {
        // A panic elsewhere cannot leave an entry half-written: take the map as it is.
        let mut shard = self
            .shard(hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh = match shard.get(hash) {
            None => return None,
            Some(e) => (e.generation == generation && now < e.until).then(|| e.verified.clone()),
        };
        if fresh.is_none() {
            shard.pop(hash);
        }
        fresh
    }

    pub fn insert(&self, hash: [u8; 32], entry: CachedToken) {
        self.shard(&hash)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(hash, entry);
    }

    /// Tokens held, across shards.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}
