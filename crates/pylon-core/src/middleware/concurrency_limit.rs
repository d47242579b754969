//! The `concurrency_limit` middleware: at most `max` requests of one key in flight; the
//! excess waits up to `queue_timeout` for a slot, first come first served, then gets 503
//! (`too many requests in flight`, without `Retry-After`: when a slot frees depends on
//! other requests, so no wait could be promised).
//!
//! Each key has a semaphore of `max` permits, in a sharded map keyed by the request key's
//! hash. A request holds its permit from its request hook until it is over: the permit
//! sits in the request's state and is dropped by the logging hook, which Pingora runs for
//! every request whose request side ran — answered, failed upstream, or abandoned by the
//! client. Being dropped with the request's state besides guarantees the slot comes back
//! even on a path that skips the logging hook (an error in a later middleware's request
//! hook), so no path leaks a slot.
//!
//! A key is idle when nothing but the map holds its semaphore (no permit out, no request
//! waiting): idle keys are swept whenever a shard has doubled since its last sweep, so
//! memory follows the keys in flight, not every key ever seen. On reload the new instance
//! starts with free slots while requests of the old snapshot finish on the old one: for a
//! moment, up to twice `max` may be in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use pingora::proxy::Session;
use pingora::{Error, Result};
use pylon_config::middleware::ConcurrencyLimit as Config;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::rate_limit::key::{shard_of, PrehashedState, RequestKey, SHARDS};
use super::{Flow, Hooks, Middleware, RequestState};

/// A shard never sweeps below this many keys.
const MIN_SWEEP: usize = 16;

/// Tells instances apart in a request's held slots.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct ConcurrencyLimit {
    id: usize,
    key: RequestKey,
    slots: Slots,
    queue_timeout: Duration,
}

/// The slots of every key in use.
#[derive(Debug)]
struct Slots {
    max: u32,
    shards: Box<[Mutex<Shard>]>,
}

#[derive(Debug, Default)]
struct Shard {
    keys: HashMap<u64, Arc<Semaphore>, PrehashedState>,
    sweep_at: usize,
}

/// The slots a request holds, released when it ends (or when its state is dropped).
#[derive(Clone, Default)]
struct Held(Vec<(usize, Arc<OwnedSemaphorePermit>)>);

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    if def.max == 0 {
        return Err("max must be at least 1".into());
    }
    Ok(Arc::new(ConcurrencyLimit {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        key: RequestKey::compile(&def.key)?,
        slots: Slots::new(def.max),
        queue_timeout: def.queue_timeout,
    }))
}

impl Slots {
    fn new(max: u32) -> Slots {
        Slots {
            max,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        keys: HashMap::default(),
                        sweep_at: MIN_SWEEP,
                    })
                })
                .collect(),
        }
    }

    /// The semaphore of this key (made when new). Cloned under the shard's lock, so a sweep
    /// never takes a key someone is about to wait on.
    fn of(&self, key: u64) -> Arc<Semaphore> {
        let mut shard = self.shards[shard_of(key)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sem) = shard.keys.get(&key) {
            return sem.clone();
        }
        if shard.keys.len() >= shard.sweep_at {
            shard.keys.retain(|_, sem| Arc::strong_count(sem) > 1);
            shard.sweep_at = (shard.keys.len() * 2).max(MIN_SWEEP);
        }
        let sem = Arc::new(Semaphore::new(self.max as usize));
        shard.keys.insert(key, sem.clone());
        sem
    }

    /// A slot of this key: at once, or within `wait`; `None` when none freed in time.
    async fn acquire(&self, key: u64, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let sem = self.of(key);
        match sem.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if wait.is_zero() => None,
            // The semaphore is never closed, so an error can only be the timeout.
            Err(_) => tokio::time::timeout(wait, sem.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        }
    }

    /// How many keys are held (in use or not yet swept).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).keys.len())
            .sum()
    }
}

#[async_trait]
impl Middleware for ConcurrencyLimit {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            logging: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let key = self.key.hash(session.req_header(), state);
        let Some(permit) = self.slots.acquire(key, self.queue_timeout).await else {
            return Ok(Flow::Reject(503, "too many requests in flight".into()));
        };
        let permit = (self.id, Arc::new(permit));
        match state.extensions.get_mut::<Held>() {
            Some(held) => held.0.push(permit),
            None => {
                state.extensions.insert(Held(vec![permit]));
            }
        }
        Ok(Flow::Continue)
    }

    fn logging(&self, _error: Option<&Error>, state: &mut RequestState) {
        if let Some(held) = state.extensions.get_mut::<Held>() {
            // Dropping the permit frees the slot (and wakes the first waiter).
            held.0.retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn concurrency_limit_slots_per_key_wait_and_come_back() {
        let slots = Arc::new(Slots::new(2));
        let a1 = slots.acquire(1, Duration::ZERO).await.unwrap();
        let _a2 = slots.acquire(1, Duration::ZERO).await.unwrap();
        assert!(slots.acquire(1, Duration::ZERO).await.is_none());
        assert!(slots.acquire(1, Duration::from_millis(20)).await.is_none());
        // Another key has its own slots.
        assert!(slots.acquire(2, Duration::ZERO).await.is_some());
        // A waiter gets the slot freed while it waits.
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.acquire(1, Duration::from_secs(10)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a1);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn concurrency_limit_idle_keys_are_evicted() {
        let slots = Slots::new(1);
        let held: Vec<_> = distinct_keys(0..100).map(|k| slots.of(k)).collect();
        for i in 0..100_000u64 {
            // Each request takes its key's slot and ends at once.
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            assert!(slots.acquire(key, Duration::ZERO).await.is_some());
        }
        // Only keys in use (the 100 held above) and a few not yet swept remain.
        let len = slots.len();
        assert!(len < 100 + SHARDS * MIN_SWEEP * 2, "{len} keys held");
        // Keys in use were never swept: a key's semaphore stays the one its users hold.
        for (k, sem) in distinct_keys(0..100).zip(&held) {
            assert!(Arc::ptr_eq(&slots.of(k), sem));
        }
    }

    fn distinct_keys(range: std::ops::Range<u64>) -> impl Iterator<Item = u64> {
        range.map(|i| (i + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9))
    }
}
