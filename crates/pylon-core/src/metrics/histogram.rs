//! A fixed-bucket histogram recorded with relaxed atomics: one `fetch_add` for the bucket,
//! one for the sum. Buckets hold their own count (not cumulative) so that recording touches
//! one of them; the exposition adds them up.
//!
//! Values are integers in a fine unit (nanoseconds for durations, bytes for sizes) so the
//! sum is an exact atomic integer; the exposition scales it to the base unit (seconds).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Upper bounds of a histogram's buckets, in the recorded unit, strictly increasing; the
/// `+Inf` bucket is implied.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// In the recorded unit.
    pub raw: Arc<[u64]>,
    /// How many recorded units make one base unit (1e9 for nanoseconds → seconds).
    pub scale: f64,
}

impl Bounds {
    /// Bounds in seconds, recorded in nanoseconds.
    pub fn seconds(bounds: &[f64]) -> Bounds {
        Bounds {
            raw: bounds.iter().map(|s| (s * 1e9).round() as u64).collect(),
            scale: 1e9,
        }
    }

    /// Bounds in bytes.
    pub fn bytes(bounds: &[u64]) -> Bounds {
        Bounds {
            raw: bounds.into(),
            scale: 1.0,
        }
    }
}

/// A histogram's counts.
#[derive(Debug)]
pub struct Histogram {
    bounds: Bounds,
    /// One per bound, plus the `+Inf` bucket last.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: Bounds) -> Histogram {
        let counts = (0..=bounds.raw.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds,
            counts,
            sum: AtomicU64::new(0),
        }
    }

    /// Records one value (in the recorded unit).
    #[inline]
    pub fn observe(&self, value: u64) {
        // `le` buckets: a value equal to a bound belongs to it.
        let i = self.bounds.raw.partition_point(|&b| b < value);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// Records a duration.
    #[inline]
    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The cumulative counts per bound in the base unit, ending with `+Inf`
    /// (`f64::INFINITY`), and the sum in the base unit.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64) {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, count) in self.counts.iter().enumerate() {
            total += count.load(Relaxed);
            let le = self
                .bounds
                .raw
                .get(i)
                .map_or(f64::INFINITY, |&b| b as f64 / self.bounds.scale);
            out.push((le, total));
        }
        (out, self.sum.load(Relaxed) as f64 / self.bounds.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_are_cumulative_and_le_inclusive() {
        let h = Histogram::new(Bounds::seconds(&[0.1, 1.0]));
        h.observe_duration(Duration::from_millis(50));
        h.observe_duration(Duration::from_millis(100));
        h.observe_duration(Duration::from_millis(500));
        h.observe_duration(Duration::from_secs(3));
        let (buckets, sum) = h.snapshot();
        assert_eq!(buckets, vec![(0.1, 2), (1.0, 3), (f64::INFINITY, 4)]);
        assert!((sum - 3.65).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn byte_histograms_sum_exactly() {
        let h = Histogram::new(Bounds::bytes(&[100, 1000]));
        h.observe(0);
        h.observe(1000);
        h.observe(1001);
        let (buckets, sum) = h.snapshot();
        assert_eq!(buckets, vec![(100.0, 1), (1000.0, 2), (f64::INFINITY, 3)]);
        assert_eq!(sum, 2001.0);
    }
}
