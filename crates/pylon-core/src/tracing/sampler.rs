//! Which traces are recorded: the caller's decision when there is one (parent-based), else
//! a share of trace ids. The ratio test reads the trace id's low 63 bits like OpenTelemetry's
//! `TraceIdRatioBased`, so Pylon and the services behind it, sampling at the same ratio,
//! keep the same traces.

/// A compiled sampling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// Trace ids whose low 63 bits are below this are sampled (2^63 at ratio 1.0: all).
    bound: u64,
    parent_based: bool,
}

impl Sampler {
    /// `ratio` from 0.0 to 1.0 (checked at load).
    pub fn new(ratio: f64, parent_based: bool) -> Sampler {
        let ratio = ratio.clamp(0.0, 1.0);
        Sampler {
            // Truncation is intended: the bound is a threshold on 63 random bits.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            bound: (ratio * (1u64 << 63) as f64) as u64,
            parent_based,
        }
    }

    /// Whether to record the trace `trace_id`, given the caller's sampled flag when the
    /// request carried a valid `traceparent`.
    pub fn sampled(&self, trace_id: &[u8; 16], parent_sampled: Option<bool>) -> bool {
        if let (true, Some(parent)) = (self.parent_based, parent_sampled) {
            return parent;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        (u64::from_be_bytes(low) >> 1) < self.bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(low: u64) -> [u8; 16] {
        let mut id = [0xabu8; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    #[test]
    fn ratio_is_decided_by_the_trace_id_alone() {
        let half = Sampler::new(0.5, false);
        // Low 63 bits just under and at half of the range.
        assert!(half.sampled(&id(((1u64 << 62) - 1) << 1), None));
        assert!(!half.sampled(&id(1u64 << 63), None));
        // The same id always gets the same answer.
        for low in [1u64, 42, u64::MAX / 3, u64::MAX] {
            assert_eq!(half.sampled(&id(low), None), half.sampled(&id(low), None));
        }
        assert!(Sampler::new(1.0, false).sampled(&id(u64::MAX), None));
        assert!(!Sampler::new(0.0, false).sampled(&id(0), None));
        // Roughly the ratio over many ids.
        let quarter = Sampler::new(0.25, false);
        let kept = (0..10_000u64)
            .filter(|i| quarter.sampled(&id(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), None))
            .count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
    }

    #[test]
    fn a_callers_decision_wins_when_parent_based() {
        let never = Sampler::new(0.0, true);
        assert!(never.sampled(&id(5), Some(true)));
        assert!(!never.sampled(&id(5), None));
        let always = Sampler::new(1.0, true);
        assert!(!always.sampled(&id(5), Some(false)));
        // Not parent-based: the ratio decides whatever the caller said.
        assert!(Sampler::new(1.0, false).sampled(&id(5), Some(false)));
    }
}
