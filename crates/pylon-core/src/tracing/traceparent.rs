//! The W3C Trace Context `traceparent` header (level 1): parsing what a client sent and
//! writing what Pylon sends upstream. `tracestate` is opaque to Pylon: passed on as is when
//! the `traceparent` beside it is valid, dropped with it when not.

/// A parsed `traceparent`: who called us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    /// The caller's span: the parent of Pylon's server span.
    pub parent_id: [u8; 8],
    /// The trace flags; bit 0 is "sampled".
    pub flags: u8,
}

/// Length of a version `00` value: `00-` + 32 + `-` + 16 + `-` + 2.
pub const LEN: usize = 55;

impl TraceParent {
    /// Whether the caller sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Reads a `traceparent` value; `None` when it is not valid, so a new trace starts.
    /// A future version is read by its first four fields when what follows them starts
    /// with `-`, as the spec asks; version `ff` is never valid.
    pub fn parse(value: &[u8]) -> Option<TraceParent> {
        let value = value.trim_ascii();
        if value.len() < LEN {
            return None;
        }
        let version = hex_byte(value[0], value[1])?;
        match version {
            0 if value.len() != LEN => return None,
            0xff => return None,
            _ if value.len() > LEN && value[LEN] != b'-' => return None,
            _ => {}
        }
        if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(value[3 + 2 * i], value[4 + 2 * i])?;
        }
        let mut parent_id = [0u8; 8];
        for (i, b) in parent_id.iter_mut().enumerate() {
            *b = hex_byte(value[36 + 2 * i], value[37 + 2 * i])?;
        }
        let flags = hex_byte(value[53], value[54])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }
}

/// The version `00` value naming `span_id` in `trace_id` as the parent.
pub fn format(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> [u8; LEN] {
    let mut out = [b'-'; LEN];
    out[0] = b'0';
    out[1] = b'0';
    hex_into(trace_id, &mut out[3..35]);
    hex_into(span_id, &mut out[36..52]);
    out[53] = b'0';
    out[54] = if sampled { b'1' } else { b'0' };
    out
}

/// Lowercase hex of `bytes` into `out` (twice as long).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

/// A trace id as the 32 lowercase hex digits logs and error bodies show.
pub fn trace_id_hex(trace_id: &[u8; 16]) -> String {
    let mut out = [0u8; 32];
    hex_into(trace_id, &mut out);
    out.iter().map(|&b| char::from(b)).collect()
}

/// One byte from two lowercase hex digits (uppercase is invalid in `traceparent`).
fn hex_byte(high: u8, low: u8) -> Option<u8> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(digit(high)? << 4 | digit(low)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SPEC: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_example_reads_and_writes_back() {
        let tp = TraceParent::parse(SPEC.as_bytes()).unwrap();
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.trace_id[15], 0x36);
        assert_eq!(
            tp.parent_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert!(tp.sampled());
        let written = format(&tp.trace_id, &tp.parent_id, true);
        assert_eq!(std::str::from_utf8(&written).unwrap(), SPEC);
        let unsampled = format(&tp.trace_id, &tp.parent_id, false);
        assert!(unsampled.ends_with(b"-00"));
        assert_eq!(
            trace_id_hex(&tp.trace_id),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn flags_other_than_sampled_are_kept_and_unsampled_reads() {
        let tp =
            TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        assert!(!tp.sampled());
        let tp =
            TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09").unwrap();
        assert!(tp.sampled());
        assert_eq!(tp.flags, 9);
    }

    #[test]
    fn future_versions_are_read_by_their_first_fields() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(TraceParent::parse(v.as_bytes()).is_some());
        let longer = format!("{v}-what-the-future-holds");
        assert!(TraceParent::parse(longer.as_bytes()).is_some());
        let glued = format!("{v}x");
        assert!(TraceParent::parse(glued.as_bytes()).is_none());
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            // version ff
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // version 00 with something after
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // all-zero trace id, all-zero parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // uppercase hex
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            // not hex, wrong separators, too short
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "",
            "garbage",
        ] {
            assert_eq!(TraceParent::parse(bad.as_bytes()), None, "{bad}");
        }
        // Surrounding whitespace is not part of the value.
        assert!(TraceParent::parse(format!(" {SPEC} ").as_bytes()).is_some());
    }
}
