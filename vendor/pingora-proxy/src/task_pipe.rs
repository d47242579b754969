// PYLON PATCH (whole file): the pipes between the two halves of a proxied HTTP/1 exchange.
//
// `proxy_1to1` runs its downstream half and its upstream half in one `try_join!` and passes
// `HttpTask`s between them. Pingora used two `tokio::sync::mpsc` channels, made per request:
// an `Arc`'d channel and a first block of 32 slots allocated for each, and every message
// went through a semaphore (a mutex taken to give a permit back), an atomic block list and
// an `AtomicWaker` — about 3,500 instructions and a few dozen atomic operations per request,
// for at most a handful of messages between two futures of the same task.
//
// A `TaskPipe` is what that use needs and no more: one bounded queue with one sender and one
// receiver, living in `proxy_1to1`'s own frame (the halves borrow it: no allocation, no
// reference count), its few slots inline, behind an uncontended mutex (two futures of one
// task are never polled at the same time; the mutex only makes that safe to state).
// Behaviour kept from the channel: `send` waits for room; `reserve` waits for room and a
// `Permit` holds it until used or dropped; the receiver sees `None` once the sender is
// dropped and the queue is empty; sends fail once the receiver is dropped, and values still
// queued are dropped with it.

use std::fmt;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// A bounded single-sender, single-receiver queue of `N` slots; [`TaskPipe::halves`] gives
/// its two ends.
pub(crate) struct TaskPipe<T, const N: usize> {
    state: Mutex<State<T, N>>,
}

struct State<T, const N: usize> {
    /// A ring: `len` values from `head`.
    slots: [Option<T>; N],
    head: usize,
    len: usize,
    /// Slots promised to a [`Permit`] not yet used.
    reserved: usize,
    sender_alive: bool,
    receiver_alive: bool,
    /// The receiver waiting for a value (or for the sender to go).
    receiver_waker: Option<Waker>,
    /// The sender waiting for room (or for the receiver to go).
    sender_waker: Option<Waker>,
}

impl<T, const N: usize> State<T, N> {
    fn has_room(&self) -> bool {
        self.len + self.reserved < N
    }

    fn push(&mut self, value: T) {
        debug_assert!(self.len < N);
        let tail = (self.head + self.len) % N;
        self.slots[tail] = Some(value);
        self.len += 1;
    }

    fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head].take();
        self.head = (self.head + 1) % N;
        self.len -= 1;
        value
    }
}

/// Stores `cx`'s waker in `slot`, cloning only when it is a different one.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl<T, const N: usize> TaskPipe<T, N> {
    pub(crate) fn new() -> Self {
        TaskPipe {
            state: Mutex::new(State {
                slots: std::array::from_fn(|_| None),
                head: 0,
                len: 0,
                reserved: 0,
                sender_alive: true,
                receiver_alive: true,
                receiver_waker: None,
                sender_waker: None,
            }),
        }
    }

    /// The pipe's two ends. Call once: dropping an end closes that side for good.
    pub(crate) fn halves(&self) -> (Sender<'_, T, N>, Receiver<'_, T, N>) {
        (Sender { pipe: self }, Receiver { pipe: self })
    }

    fn lock(&self) -> MutexGuard<'_, State<T, N>> {
        // A panic while holding the lock leaves the queue consistent (no method panics
        // between two of its updates), so the state is used as is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiver is gone: the value could not be sent (it is given back).
pub(crate) struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task pipe closed: the receiving half is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// Why [`Sender::try_reserve`] gave no permit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryReserveError {
    /// Every slot is taken or promised.
    Full,
    /// The receiver is gone.
    Closed,
}

impl fmt::Display for TryReserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryReserveError::Full => "task pipe full",
            TryReserveError::Closed => "task pipe closed: the receiving half is gone",
        })
    }
}

impl std::error::Error for TryReserveError {}

/// The sending end.
pub(crate) struct Sender<'p, T, const N: usize> {
    pipe: &'p TaskPipe<T, N>,
}

impl<'p, T, const N: usize> Sender<'p, T, N> {
    /// Sends `value`, waiting for room; fails (giving it back) once the receiver is gone.
    pub(crate) async fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.reserve().await {
            Ok(permit) => {
                permit.send(value);
                Ok(())
            }
            Err(SendError(())) => Err(SendError(value)),
        }
    }

    /// A promise of one slot, waiting for room; fails once the receiver is gone.
    pub(crate) async fn reserve(&self) -> Result<Permit<'p, T, N>, SendError<()>> {
        poll_fn(|cx| {
            let mut state = self.pipe.lock();
            if !state.receiver_alive {
                return Poll::Ready(Err(SendError(())));
            }
            if state.has_room() {
                state.reserved += 1;
                return Poll::Ready(Ok(Permit { pipe: self.pipe }));
            }
            register(&mut state.sender_waker, cx);
            Poll::Pending
        })
        .await
    }

    /// A promise of one slot if there is room now.
    pub(crate) fn try_reserve(&self) -> Result<Permit<'p, T, N>, TryReserveError> {
        let mut state = self.pipe.lock();
        if !state.receiver_alive {
            return Err(TryReserveError::Closed);
        }
        if !state.has_room() {
            return Err(TryReserveError::Full);
        }
        state.reserved += 1;
        Ok(Permit { pipe: self.pipe })
    }

    /// Whether the receiver is gone.
    pub(crate) fn is_closed(&self) -> bool {
        !self.pipe.lock().receiver_alive
    }
}

impl<T, const N: usize> Drop for Sender<'_, T, N> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.pipe.lock();
            state.sender_alive = false;
            state.receiver_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// One slot promised to the sender: [`Permit::send`] fills it without waiting; dropped
/// unused, the slot is free again.
pub(crate) struct Permit<'p, T, const N: usize> {
    pipe: &'p TaskPipe<T, N>,
}

impl<T, const N: usize> fmt::Debug for Permit<'_, T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

impl<T, const N: usize> Permit<'_, T, N> {
    /// Queues `value` in the promised slot (dropped at once if the receiver is gone).
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut state = self.pipe.lock();
            state.reserved -= 1;
            if state.receiver_alive {
                state.push(value);
            }
            state.receiver_waker.take()
        };
        // The slot is used: the drop below must not give it back again.
        std::mem::forget(self);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T, const N: usize> Drop for Permit<'_, T, N> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.pipe.lock();
            state.reserved -= 1;
            state.sender_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The receiving end.
pub(crate) struct Receiver<'p, T, const N: usize> {
    pipe: &'p TaskPipe<T, N>,
}

impl<T, const N: usize> Receiver<'_, T, N> {
    /// The next value; `None` once the sender is gone and nothing is left.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| {
            let (value, waker) = {
                let mut state = self.pipe.lock();
                match state.pop() {
                    // A slot came free: a sender waiting for room may go on.
                    Some(value) => (value, state.sender_waker.take()),
                    None if !state.sender_alive => return Poll::Ready(None),
                    None => {
                        register(&mut state.receiver_waker, cx);
                        return Poll::Pending;
                    }
                }
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            Poll::Ready(Some(value))
        })
        .await
    }
}

impl<T, const N: usize> Drop for Receiver<'_, T, N> {
    fn drop(&mut self) {
        let (queued, waker) = {
            let mut state = self.pipe.lock();
            state.receiver_alive = false;
            let mut queued = Vec::new();
            while let Some(value) = state.pop() {
                queued.push(value);
            }
            (queued, state.sender_waker.take())
        };
        // Values are dropped outside the lock: their drop may do anything.
        drop(queued);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod pylon_patch_task_pipe_tests {
    use super::*;
    use futures::FutureExt;
    use std::sync::Arc;

    type Pipe = TaskPipe<u32, 2>;

    #[test]
    fn values_arrive_in_order_and_none_follows_the_senders_drop() {
        let pipe = Pipe::new();
        let (tx, mut rx) = pipe.halves();
        assert!(tx.send(1).now_or_never().unwrap().is_ok());
        assert!(tx.send(2).now_or_never().unwrap().is_ok());
        assert_eq!(rx.recv().now_or_never(), Some(Some(1)));
        assert!(tx.send(3).now_or_never().unwrap().is_ok());
        drop(tx);
        // Queued values are still delivered after the sender is gone, then `None`.
        assert_eq!(rx.recv().now_or_never(), Some(Some(2)));
        assert_eq!(rx.recv().now_or_never(), Some(Some(3)));
        assert_eq!(rx.recv().now_or_never(), Some(None));
    }

    #[test]
    fn a_full_pipe_makes_the_sender_wait_until_a_value_is_taken() {
        let pipe = Pipe::new();
        let (tx, mut rx) = pipe.halves();
        tx.send(1).now_or_never().unwrap().unwrap();
        tx.send(2).now_or_never().unwrap().unwrap();
        assert!(tx.send(3).now_or_never().is_none(), "no room: send waits");
        assert_eq!(tx.try_reserve().unwrap_err(), TryReserveError::Full);
        assert_eq!(rx.recv().now_or_never(), Some(Some(1)));
        tx.send(3).now_or_never().unwrap().unwrap();
        assert_eq!(rx.recv().now_or_never(), Some(Some(2)));
        assert_eq!(rx.recv().now_or_never(), Some(Some(3)));
        assert!(
            rx.recv().now_or_never().is_none(),
            "empty with a live sender: recv waits"
        );
    }

    #[test]
    fn a_permit_holds_its_slot_until_used_or_dropped() {
        let pipe = Pipe::new();
        let (tx, mut rx) = pipe.halves();
        let first = tx.try_reserve().unwrap();
        let second = tx.reserve().now_or_never().unwrap().unwrap();
        assert_eq!(tx.try_reserve().unwrap_err(), TryReserveError::Full);
        drop(first);
        let third = tx.try_reserve().expect("a dropped permit frees its slot");
        second.send(7);
        third.send(8);
        assert_eq!(rx.recv().now_or_never(), Some(Some(7)));
        assert_eq!(rx.recv().now_or_never(), Some(Some(8)));
    }

    #[test]
    fn sends_fail_once_the_receiver_is_gone_and_queued_values_are_dropped() {
        let counted = Arc::new(());
        let pipe = TaskPipe::<Arc<()>, 2>::new();
        let (tx, rx) = pipe.halves();
        tx.send(counted.clone()).now_or_never().unwrap().unwrap();
        assert_eq!(Arc::strong_count(&counted), 2);
        assert!(!tx.is_closed());
        drop(rx);
        assert_eq!(
            Arc::strong_count(&counted),
            1,
            "the queued value went with the receiver"
        );
        assert!(tx.is_closed());
        let refused = tx
            .send(counted.clone())
            .now_or_never()
            .unwrap()
            .unwrap_err();
        assert_eq!(Arc::strong_count(&refused.0), 2, "the value is given back");
        assert_eq!(tx.try_reserve().unwrap_err(), TryReserveError::Closed);
        assert!(tx.reserve().now_or_never().unwrap().is_err());
    }

    #[tokio::test]
    async fn a_waiting_receiver_and_a_waiting_sender_are_woken() {
        let pipe = Pipe::new();
        let (tx, mut rx) = pipe.halves();
        // The two halves run as one task's two futures, as in `proxy_1to1`: the receiver
        // waits first, the sender outruns it and has to wait for room, and both finish.
        let producer = async {
            for i in 0..100 {
                tx.send(i).await.unwrap();
                tokio::task::yield_now().await;
            }
            drop(tx);
        };
        let consumer = async {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
                if v % 3 == 0 {
                    tokio::task::yield_now().await;
                    tokio::task::yield_now().await;
                }
            }
            got
        };
        let ((), got) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(producer, consumer)
        })
        .await
        .expect("neither half is left waiting");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
