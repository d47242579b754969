//! The standard `process_*` metrics, read from `/proc` at scrape time (nothing is recorded
//! in between). On a system without `/proc` they are left out.

use super::text::{Exposition, Kind};

/// Clock ticks per second of `/proc/self/stat` times: `USER_HZ`, 100 on every Linux
/// architecture Pylon builds for (reading `sysconf` would need `unsafe` or a crate).
const TICKS_PER_SECOND: f64 = 100.0;

/// Writes the process families.
pub fn write(e: &mut Exposition) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // `fields[0]` is field 3 (state): utime is field 14, stime 15, starttime 22.
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    if let (Some(user), Some(system)) = (field(14), field(15)) {
        e.family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
        );
        e.sample(
            "process_cpu_seconds_total",
            &[],
            (user + system) / TICKS_PER_SECOND,
        );
    }
    if let Some(rss) = resident_bytes() {
        e.family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
        );
        e.sample("process_resident_memory_bytes", &[], rss);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        e.family(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        );
        // The directory handle itself is one of them.
        e.sample(
            "process_open_fds",
            &[],
            fds.count().saturating_sub(1) as f64,
        );
    }
    if let (Some(start), Some(boot)) = (field(22), boot_time()) {
        e.family(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
        );
        e.sample(
            "process_start_time_seconds",
            &[],
            boot + start / TICKS_PER_SECOND,
        );
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// When the system booted (`btime` of `/proc/stat`), in seconds since the epoch; read at
/// the first scrape only (it never changes, and `/proc/stat` is long on many-CPU hosts).
fn boot_time() -> Option<f64> {
    static BOOT: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("btime "))?;
        line.split_whitespace().nth(1)?.parse().ok()
    })
}
