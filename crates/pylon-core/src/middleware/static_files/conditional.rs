//! Validators (`ETag`, `Last-Modified`), conditional requests (RFC 9110 §13) and byte
//! ranges (RFC 9110 §14), as pure functions of the header values.

use std::time::{SystemTime, UNIX_EPOCH};

/// What a file's validators are.
#[derive(Debug, Clone)]
pub struct Validators {
    /// Strong: the bytes served for a given size and mtime are always the same.
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
}

impl Validators {
    pub fn new(size: u64, modified: Option<SystemTime>) -> Validators {
        // Size and mtime (to the nanosecond where the filesystem keeps it): a rewrite
        // that keeps both is the one case this misses, as with nginx's ETags.
        let etag = modified
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map(|d| format!("\"{size:x}-{:x}.{:x}\"", d.as_secs(), d.subsec_nanos()));
        Validators {
            etag,
            last_modified: modified,
        }
    }

    /// `Last-Modified` as sent.
    pub fn last_modified_header(&self) -> Option<String> {
        self.last_modified.map(httpdate::fmt_http_date)
    }

    /// Whether the client's copy is current: `If-None-Match` (weak comparison) when
    /// present, else `If-Modified-Since` (HTTP dates have whole seconds).
    pub fn not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if let Some(list) = if_none_match {
            let Some(etag) = &self.etag else {
                return list.trim() == "*";
            };
            return list
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag.as_str());
        }
        let (Some(since), Some(modified)) = (if_modified_since, self.last_modified) else {
            return false;
        };
        let Ok(since) = httpdate::parse_http_date(since.trim()) else {
            return false;
        };
        whole_seconds(modified) <= whole_seconds(since)
    }

    /// Whether `If-Range` allows the range: a strong ETag match, or the exact
    /// `Last-Modified` date.
    pub fn if_range_holds(&self, if_range: &str) -> bool {
        let if_range = if_range.trim();
        if if_range.starts_with('"') {
            return self.etag.as_deref() == Some(if_range);
        }
        if if_range.starts_with("W/") {
            // Weak tags never validate a range.
            return false;
        }
        match (httpdate::parse_http_date(if_range), self.last_modified) {
            (Ok(date), Some(modified)) => whole_seconds(date) == whole_seconds(modified),
            _ => false,
        }
    }
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What a `Range` header asks of a file of a given length.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable range (absent, malformed, several ranges, another unit): the whole file.
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// No byte of the file is in the range: 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. Several ranges get the whole file
/// (allowed by RFC 9110 and simpler than multipart answers); malformed ones are ignored.
pub fn parse_range(header: &str, len: u64) -> RangeAsk {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeAsk::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Too many digits for u64: a position past any file.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            None => RangeAsk::Whole,
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if len == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        // `a-`: from a to the end.
        (false, true) => match number(first) {
            None => RangeAsk::Whole,
            Some(a) if a >= len => RangeAsk::Unsatisfiable,
            Some(a) => RangeAsk::Part {
                start: a,
                end: len - 1,
            },
        },
        (false, false) => match (number(first), number(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= len {
                    RangeAsk::Unsatisfiable
                } else {
                    RangeAsk::Part {
                        start: a,
                        end: b.min(len - 1),
                    }
                }
            }
            _ => RangeAsk::Whole,
        },
        (true, true) => RangeAsk::Whole,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::time::Duration;

    #[test]
    fn ranges_of_a_100_byte_file() {
        use RangeAsk::*;
        let p = |h| parse_range(h, 100);
        assert_eq!(p("bytes=0-9"), Part { start: 0, end: 9 });
        assert_eq!(p("bytes=90-200"), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=95-"), Part { start: 95, end: 99 });
        assert_eq!(p("bytes=-10"), Part { start: 90, end: 99 });
        assert_eq!(p("bytes=-500"), Part { start: 0, end: 99 });
        assert_eq!(p("BYTES = 5-5"), Part { start: 5, end: 5 });
        assert_eq!(p("bytes=100-"), Unsatisfiable);
        assert_eq!(p("bytes=100-150"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=99999999999999999999999-"), Unsatisfiable);
        assert_eq!(p("bytes=0-1,5-6"), Whole);
        assert_eq!(p("bytes=9-1"), Whole);
        assert_eq!(p("bytes=a-b"), Whole);
        assert_eq!(p("bytes=-"), Whole);
        assert_eq!(p("items=0-1"), Whole);
        assert_eq!(p("bytes"), Whole);
        assert_eq!(parse_range("bytes=-5", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }

    #[test]
    fn conditionals_compare_etags_and_dates() {
        let modified = UNIX_EPOCH + Duration::new(1_700_000_000, 500);
        let v = Validators::new(42, Some(modified));
        let etag = v.etag.clone().unwrap();
        assert!(v.not_modified(Some(&etag), None));
        assert!(v.not_modified(Some(&format!("\"x\", W/{etag}")), None));
        assert!(v.not_modified(Some("*"), None));
        assert!(!v.not_modified(Some("\"other\""), None));
        let date = v.last_modified_header().unwrap();
        assert!(v.not_modified(None, Some(&date)));
        let earlier = httpdate::fmt_http_date(modified - Duration::from_secs(10));
        assert!(!v.not_modified(None, Some(&earlier)));
        // If-None-Match wins over If-Modified-Since.
        assert!(!v.not_modified(Some("\"other\""), Some(&date)));
        assert!(!v.not_modified(None, Some("not a date")));

        assert!(v.if_range_holds(&etag));
        assert!(!v.if_range_holds(&format!("W/{etag}")));
        assert!(v.if_range_holds(&date));
        assert!(!v.if_range_holds(&earlier));
    }
}
