//! Retries: which failures are retried, for which methods, how often, within which budget.

use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::de::did_you_mean;

/// Default number of retries after the first try.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// Most retries after the first try.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;
/// Default share of extra load retries may add.
pub const DEFAULT_RETRY_BUDGET_RATIO: f64 = 0.2;
/// Default retries per second always allowed, whatever the ratio.
pub const DEFAULT_RETRY_BUDGET_MIN_PER_SEC: u32 = 3;
/// Methods retried under `methods: idempotent` (RFC 9110 §9.2.2).
pub const IDEMPOTENT_METHODS: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/// Retrying failed requests. A retry goes to another server where there is one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retries {
    /// Retries after the first try, 0 to 10. Default: 2.
    #[serde(default = "default_attempts")]
    #[schemars(range(max = 10))]
    pub attempts: u32,
    /// Failures that are retried: `connect_failure` (for every method: the request never
    /// left), `timeout`, `reset` (the connection closed mid-request) and statuses 500 to
    /// 599. Default: `[connect_failure]`.
    #[serde(default = "default_on")]
    #[schemars(length(min = 1))]
    pub on: Vec<RetryOn>,
    /// Methods retried on failures other than `connect_failure`: `idempotent` (GET, HEAD,
    /// OPTIONS, TRACE, PUT, DELETE), `all`, or a list of methods. Default: `idempotent`.
    #[serde(default)]
    pub methods: RetryMethods,
    /// Cap on the extra load retries add. Default: `{ ratio: 0.2, min_per_sec: 3 }`.
    #[serde(default)]
    pub budget: RetryBudget,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            attempts: DEFAULT_RETRY_ATTEMPTS,
            on: default_on(),
            methods: RetryMethods::default(),
            budget: RetryBudget::default(),
        }
    }
}

fn default_attempts() -> u32 {
    DEFAULT_RETRY_ATTEMPTS
}
fn default_on() -> Vec<RetryOn> {
    vec![RetryOn::ConnectFailure]
}

/// A failure that may be retried. Written `connect_failure`, `timeout`, `reset`, or a status
/// code from 500 to 599; a list may mix them: `[connect_failure, timeout, 502, 503]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryOn {
    /// The connection to the server could not be made (the request never left).
    ConnectFailure,
    /// The server did not answer in time (`connect_timeout` excluded: that is a connect
    /// failure).
    Timeout,
    /// The connection was reset or closed mid-request.
    Reset,
    /// The server answered with this status, 500 to 599.
    Status(u16),
}

const RETRY_ON_NAMES: [&str; 3] = ["connect_failure", "timeout", "reset"];
const RETRY_ON_EXPECTING: &str =
    "`connect_failure`, `timeout`, `reset` or a status from 500 to 599";

impl fmt::Display for RetryOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryOn::ConnectFailure => f.write_str("connect_failure"),
            RetryOn::Timeout => f.write_str("timeout"),
            RetryOn::Reset => f.write_str("reset"),
            RetryOn::Status(code) => write!(f, "{code}"),
        }
    }
}

impl Serialize for RetryOn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryOn::Status(code) => s.serialize_u16(*code),
            other => s.collect_str(other),
        }
    }
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OnVisitor;
        impl Visitor<'_> for OnVisitor {
            type Value = RetryOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(RETRY_ON_EXPECTING)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RetryOn, E> {
                match u16::try_from(v) {
                    Ok(code @ 500..=599) => Ok(RetryOn::Status(code)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RetryOn, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RetryOn, E> {
                // A `${VAR}` substitution gives a status as text.
                if let Ok(code) = v.trim().parse::<u64>() {
                    return self.visit_u64(code);
                }
                match v {
                    "connect_failure" => Ok(RetryOn::ConnectFailure),
                    "timeout" => Ok(RetryOn::Timeout),
                    "reset" => Ok(RetryOn::Reset),
                    _ => {
                        let mut m = format!("expected {RETRY_ON_EXPECTING}, found {v:?}");
                        if let Some(hint) = did_you_mean(v, RETRY_ON_NAMES) {
                            m.push_str(&format!(", did you mean `{hint}`?"));
                        }
                        Err(E::custom(m))
                    }
                }
            }
        }
        d.deserialize_any(OnVisitor)
    }
}

impl JsonSchema for RetryOn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetryOn".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A failure to retry: `connect_failure`, `timeout`, `reset`, or a status from 500 to 599.",
            "anyOf": [
                { "type": "string", "enum": RETRY_ON_NAMES },
                { "type": "integer", "minimum": 500, "maximum": 599 }
            ]
        })
    }
}

/// The methods retried on failures other than `connect_failure`. Written `"idempotent"`,
/// `"all"`, or a list of methods (`[GET, POST]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum RetryMethods {
    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE.
    #[default]
    Idempotent,
    /// Every method.
    All,
    /// These methods.
    List(Vec<String>),
}

impl RetryMethods {
    /// Whether requests with `method` may be retried (methods compare case-insensitively).
    pub fn allows(&self, method: &str) -> bool {
        match self {
            RetryMethods::Idempotent => IDEMPOTENT_METHODS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method)),
            RetryMethods::All => true,
            RetryMethods::List(list) => list.iter().any(|m| m.eq_ignore_ascii_case(method)),
        }
    }
}

impl Serialize for RetryMethods {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryMethods::Idempotent => s.serialize_str("idempotent"),
            RetryMethods::All => s.serialize_str("all"),
            RetryMethods::List(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RetryMethods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MethodsVisitor;
        impl<'de> Visitor<'de> for MethodsVisitor {
            type Value = RetryMethods;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`idempotent`, `all` or a list of methods")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RetryMethods, E> {
                match v {
                    "idempotent" => Ok(RetryMethods::Idempotent),
                    "all" => Ok(RetryMethods::All),
                    _ => {
                        let mut m = format!(
                            "expected `idempotent`, `all` or a list of methods, found {v:?}"
                        );
                        if let Some(hint) = did_you_mean(v, ["idempotent", "all"]) {
                            m.push_str(&format!(", did you mean `{hint}`?"));
                        } else {
                            m.push_str(&format!(" (write one method as a list: [{v}])"));
                        }
                        Err(E::custom(m))
                    }
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RetryMethods, A::Error> {
                let mut list = Vec::new();
                while let Some(method) = seq.next_element::<String>()? {
                    list.push(method);
                }
                Ok(RetryMethods::List(list))
            }
        }
        d.deserialize_any(MethodsVisitor)
    }
}

impl JsonSchema for RetryMethods {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RetryMethods".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "`idempotent` (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), `all`, or a list of methods.",
            "anyOf": [
                { "type": "string", "enum": ["idempotent", "all"] },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

/// A cap on retries, so that a failing upstream is not buried under them: retries may add
/// at most `ratio` of the requests as extra load, plus `min_per_sec` retries per second.
// `ratio` is an `f64`, compared by its bits (a total equality), which keeps `Eq` on the
// whole config; the loader only returns ratios from 0.0 to 1.0.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryBudget {
    /// Share of extra load retries may add, 0.0 to 1.0: 0.2 allows one retry per five
    /// requests. Default: 0.2.
    #[serde(default = "default_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ratio: f64,
    /// Retries per second always allowed, whatever the ratio (so that low traffic can
    /// retry). Default: 3.
    #[serde(default = "default_min_per_sec")]
    pub min_per_sec: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: DEFAULT_RETRY_BUDGET_RATIO,
            min_per_sec: DEFAULT_RETRY_BUDGET_MIN_PER_SEC,
        }
    }
}

impl PartialEq for RetryBudget {
    fn eq(&self, other: &Self) -> bool {
        self.ratio.to_bits() == other.ratio.to_bits() && self.min_per_sec == other.min_per_sec
    }
}

impl Eq for RetryBudget {}

fn default_ratio() -> f64 {
    DEFAULT_RETRY_BUDGET_RATIO
}
fn default_min_per_sec() -> u32 {
    DEFAULT_RETRY_BUDGET_MIN_PER_SEC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_allowed() {
        assert!(RetryMethods::Idempotent.allows("GET"));
        assert!(RetryMethods::Idempotent.allows("delete"));
        assert!(!RetryMethods::Idempotent.allows("POST"));
        assert!(RetryMethods::All.allows("POST"));
        let list = RetryMethods::List(vec!["POST".into()]);
        assert!(list.allows("post"));
        assert!(!list.allows("GET"));
    }

    #[test]
    fn budget_equality_is_total() {
        let a = RetryBudget::default();
        assert_eq!(a, RetryBudget::default());
        let nan = RetryBudget {
            ratio: f64::NAN,
            ..a
        };
        assert_eq!(nan, nan);
        assert_ne!(nan, a);
    }
}
