//! Durations as users write them: `"30s"`, `"250ms"`, `"2m"`, `"1h"`, compounds like
//! `"1m30s"`, and bare seconds (`30`, `0.5`, or the string `"30"`). They serialise back to
//! the compound form (`"1m30s"`), which parses to the same value.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserializer, Serializer};

/// What a duration looks like, for error messages (`expected …, found "fast"`).
pub(crate) const EXPECTING: &str = r#"a duration like "30s", "250ms" or a number of seconds"#;

/// Units, longest suffix first so `ms` is not read as `m` + `s`.
const UNITS: [(&str, u128); 8] = [
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
];

/// Parses `"1m30s"`, `"250ms"`, `"1.5h"` or bare seconds `"30"` / `"0.5"`.
/// Units: `d`, `h`, `m`, `s`, `ms`, `us` (or `µs`), `ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return from_secs_f64(secs);
        }
    }
    let mut nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let Some((unit, scale)) = UNITS.iter().find(|(u, _)| after.starts_with(u)) else {
            return Err(format!(
                "unknown unit in {text:?} (use h, m, s, ms, us or ns)"
            ));
        };
        let value =
            parse_number(number, *scale).ok_or_else(|| format!("bad number in {text:?}"))?;
        nanos = nanos
            .checked_add(value)
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = &after[unit.len()..];
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too long"))?;
    // The remainder is below 1e9 and fits a u32.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// `"12"` or `"1.5"` times `scale` nanoseconds, exactly for the integer part.
fn parse_number(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let whole = if int.is_empty() {
        0
    } else {
        int.parse::<u128>().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    if !frac.is_empty() {
        let fraction: f64 = format!("0.{frac}").parse().ok()?;
        nanos = nanos.checked_add((fraction * scale as f64).round() as u128)?;
    }
    Some(nanos)
}

fn from_secs_f64(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{secs} is not a valid number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{secs} seconds is too long"))
}

/// Formats as the largest units that are exact: `90s` → `"1m30s"`, `0.25s` → `"250ms"`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let mut nanos = d.as_nanos();
    let mut out = String::new();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if nanos >= scale {
            out.push_str(&format!("{}{unit}", nanos / scale));
            nanos %= scale;
        }
    }
    out
}

struct DurationVisitor;

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        u64::try_from(v)
            .map(Duration::from_secs)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        from_secs_f64(v).map_err(|_| E::invalid_value(Unexpected::Float(v), &self))
    }
}

/// `#[serde(with = "…")]` for `Duration` fields.
pub(crate) mod required {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// `#[serde(with = "…")]` for `Option<Duration>` fields.
pub(crate) mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        struct OptionVisitor;
        impl<'de> Visitor<'de> for OptionVisitor {
            type Value = Option<Duration>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(DurationVisitor).map(Some)
            }
        }
        d.deserialize_option(OptionVisitor)
    }
}

/// The JSON Schema of a duration as users write it: a string like `"30s"` or a number of
/// seconds. `${VAR}` strings are allowed too, since substitution happens before typing.
pub(crate) struct DurationSchema;

impl JsonSchema for DurationSchema {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: a string of numbers with units h, m, s, ms, us, ns \
                (\"30s\", \"250ms\", \"1m30s\"), or a number of seconds.",
            "anyOf": [
                {
                    "type": "string",
                    "pattern": "^(([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|µs|ns))+|[0-9]+(\\.[0-9]+)?)$|\\$\\{",
                },
                { "type": "number", "minimum": 0 }
            ],
            "examples": ["30s", "250ms", "1m30s", 5]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_compounds_and_bare_seconds() {
        let cases = [
            ("30s", Duration::from_secs(30)),
            ("250ms", Duration::from_millis(250)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1h2m3s4ms", Duration::new(3723, 4_000_000)),
            ("1.5h", Duration::from_secs(5400)),
            ("0.5s", Duration::from_millis(500)),
            ("10us", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("30", Duration::from_secs(30)),
            ("0.25", Duration::from_millis(250)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "",
            "fast",
            "5x",
            "s",
            "1..5s",
            "-5s",
            "5 s",
            "99999999999999999999999h",
            "1e3",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(3600), "1h"),
            (Duration::new(1, 5), "1s5ns"),
        ] {
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }
}
