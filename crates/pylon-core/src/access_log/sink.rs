//! Where lines go: one sink per destination (a file path, or stdout), shared by every route
//! and every snapshot that names it, each with a writer thread of its own.
//!
//! A worker appends a finished line to the sink's pending buffer under a short lock: no
//! syscall, no allocation once the buffer has grown. The writer thread swaps the buffer out
//! every [`FLUSH_INTERVAL`], or as soon as it passes [`FLUSH_BYTES`], and writes it. Past
//! [`MAX_PENDING`] bytes (a stuck disk) lines are dropped and counted, so a worker never
//! waits on the disk. SIGUSR1 reopens every file ([`reopen_all`]); the exit path writes
//! what is pending ([`flush_all`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

/// How often the writer thread writes what is pending.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Pending bytes that wake the writer thread before the interval ends.
pub const FLUSH_BYTES: usize = 64 * 1024;
/// Pending bytes past which new lines are dropped (and counted) rather than queued.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Lines dropped because a sink's buffer was full or a write failed, since start.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Access log lines lost since start (the pending buffer was full, or writing failed).
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Every sink in use, to share one by destination. Dead entries are pruned when a sink is
/// opened.
static SINKS: Mutex<Vec<Weak<Sink>>> = Mutex::new(Vec::new());

/// Every destination whose writer thread still runs (the sink may be dropped already, its
/// last lines still to write), to reach them all on SIGUSR1 and at exit: when the engine
/// stops, the snapshots and their sinks may go before the exit path flushes.
static WRITERS: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// A destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

/// One destination's buffer and writer thread. Dropped with the last snapshot that uses
/// it: the thread then writes what is left, closes the file and ends.
#[derive(Debug)]
pub struct Sink {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    target: Target,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while writing; taken before `pending` when swapping, so two flushes (the
    /// thread's and the exit path's) write in the order the lines were queued.
    output: Mutex<Output>,
    reopen: AtomicBool,
}

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// The sink was dropped: write what is left and stop.
    closed: bool,
}

#[derive(Debug)]
struct Output {
    file: Option<File>,
    /// The buffer last swapped out, kept for its capacity.
    spare: Vec<u8>,
    /// A write failed and was reported; reported again only after one succeeds.
    failing: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sink {
    /// The running sink for `target`, or a new one (the file opened for appending, made if
    /// absent).
    pub fn open(target: Target) -> Result<Arc<Sink>, String> {
        let mut sinks = lock(&SINKS);
        sinks.retain(|w| w.strong_count() > 0);
        if let Some(sink) = sinks
            .iter()
            .filter_map(Weak::upgrade)
            .find(|s| s.shared.target == target)
        {
            return Ok(sink);
        }
        let file = match &target {
            Target::Stdout => None,
            Target::File(path) => Some(open_file(path)?),
        };
        let shared = Arc::new(Shared {
            target,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            output: Mutex::new(Output {
                file,
                spare: Vec::new(),
                failing: false,
            }),
            reopen: AtomicBool::new(false),
        });
        {
            let mut writers = lock(&WRITERS);
            writers.retain(|w| w.strong_count() > 0);
            writers.push(Arc::downgrade(&shared));
        }
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("pylon-access-log".into())
            .spawn(move || thread.run())
            .map_err(|e| format!("cannot start the access log writer: {e}"))?;
        let sink = Arc::new(Sink { shared });
        sinks.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    /// Queues one finished line (with its newline). Never blocks on the disk.
    pub fn push(&self, line: &[u8]) {
        let mut pending = lock(&self.shared.pending);
        let before = pending.buf.len();
        if before + line.len() > MAX_PENDING {
            drop(pending);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.buf.extend_from_slice(line);
        if before < FLUSH_BYTES && pending.buf.len() >= FLUSH_BYTES {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.wake.notify_one();
    }
}

fn open_file(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open the access log {}: {e}", path.display()))
}

impl Shared {
    /// The writer thread.
    fn run(&self) {
        loop {
            let closed = {
                let mut pending = lock(&self.pending);
                if pending.buf.len() < FLUSH_BYTES
                    && !pending.closed
                    && !self.reopen.load(Ordering::Relaxed)
                {
                    pending = self
                        .wake
                        .wait_timeout(pending, FLUSH_INTERVAL)
                        .map_or_else(|p| p.into_inner().0, |r| r.0);
                }
                pending.closed
            };
            self.flush();
            if closed {
                return;
            }
        }
    }

    /// Writes what is pending; then, when asked, reopens the file (so lines queued before
    /// a rotation land in the rotated file).
    fn flush(&self) {
        let mut output = lock(&self.output);
        let output = &mut *output;
        {
            let mut pending = lock(&self.pending);
            std::mem::swap(&mut pending.buf, &mut output.spare);
        }
        if !output.spare.is_empty() {
            let result = match &mut output.file {
                Some(file) => file.write_all(&output.spare),
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&output.spare).and_then(|()| out.flush())
                }
            };
            match result {
                Ok(()) => output.failing = false,
                Err(e) => {
                    let lost = output.spare.iter().filter(|&&b| b == b'\n').count();
                    DROPPED.fetch_add(lost as u64, Ordering::Relaxed);
                    if !std::mem::replace(&mut output.failing, true) {
                        log::error!("access log {:?}: write failed: {e}", self.target);
                    }
                }
            }
            output.spare.clear();
        }
        if self.reopen.swap(false, Ordering::Relaxed) {
            if let Target::File(path) = &self.target {
                match open_file(path) {
                    Ok(file) => output.file = Some(file),
                    Err(e) => log::error!("{e}; still writing to the file open before"),
                }
            }
        }
    }
}

/// Reopens every file sink (after logrotate renamed the files; SIGUSR1).
pub fn reopen_all() {
    for shared in live() {
        shared.reopen.store(true, Ordering::Relaxed);
        shared.wake.notify_one();
    }
}

/// Writes every pending line now, from the calling thread (the exit path).
pub fn flush_all() {
    for shared in live() {
        shared.flush();
    }
}

fn live() -> Vec<Arc<Shared>> {
    lock(&WRITERS).iter().filter_map(Weak::upgrade).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_reach_the_file_shared_by_path_and_reopened_after_a_rename() {
        let dir = std::env::temp_dir().join(format!("pylon-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let sink = Sink::open(Target::File(path.clone())).unwrap();
        let same = Sink::open(Target::File(path.clone())).unwrap();
        assert!(Arc::ptr_eq(&sink, &same));
        sink.push(b"one\n");
        flush_all();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n");
        std::fs::rename(&path, dir.join("a.log.1")).unwrap();
        sink.push(b"two\n");
        reopen_all();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !path.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.push(b"three\n");
        flush_all();
        let rotated = std::fs::read_to_string(dir.join("a.log.1")).unwrap();
        assert_eq!(rotated, "one\ntwo\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        drop((sink, same));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_line_past_the_cap_is_dropped_and_counted() {
        let sink = Sink::open(Target::File("/dev/null".into())).unwrap();
        let before = dropped_lines();
        sink.push(&vec![b'x'; MAX_PENDING + 1]);
        assert!(dropped_lines() > before);
        assert!(lock(&sink.shared.pending).buf.len() <= MAX_PENDING);
    }
}
