//! Health: active checks (probes sent to every server) and passive health (outlier
//! ejection of servers that fail real requests).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::DurationSchema;

/// Default time between two probes of a server.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Default time a probe may take.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of passed probes in a row that make a server healthy.
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 2;
/// Default number of failed probes in a row that make a server unhealthy.
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Default path of HTTP probes.
pub const DEFAULT_CHECK_PATH: &str = "/";
/// Default method of HTTP probes.
pub const DEFAULT_CHECK_METHOD: &str = "GET";
/// Default statuses that pass an HTTP probe: 2xx and 3xx.
pub const DEFAULT_EXPECTED_STATUS: [StatusMatch; 2] =
    [StatusMatch::Class(2), StatusMatch::Class(3)];
/// Default number of failed requests in a row that eject a server.
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Default statuses that count as a failed request for passive health.
pub const DEFAULT_FAILURE_STATUSES: [u16; 3] = [502, 503, 504];
/// Default time a server is ejected for the first time.
pub const DEFAULT_EJECTION_TIME: Duration = Duration::from_secs(30);
/// Default cap on the (doubling) ejection time.
pub const DEFAULT_MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// Default most servers of an upstream ejected at once, in percent.
pub const DEFAULT_MAX_EJECTED_PERCENT: u8 = 50;

/// Active health checks: every `interval`, each server is probed; `unhealthy_threshold`
/// failures in a row take it out of the rotation, `healthy_threshold` passes bring it back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The probe: `http` (a request, judged by its status), `https` (the same over TLS, with
    /// the server's TLS options) or `tcp` (a connection that opens). Default: `http`.
    #[serde(rename = "type", default)]
    pub kind: CheckType,
    /// Time between two probes of a server. Default: 10s.
    #[serde(default = "default_interval", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub interval: Duration,
    /// Time a probe may take; less than `interval`. Default: 2s.
    #[serde(default = "default_timeout", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub timeout: Duration,
    /// Passed probes in a row that make an unhealthy server healthy; at least 1. Default: 2.
    #[serde(default = "default_healthy_threshold")]
    #[schemars(range(min = 1))]
    pub healthy_threshold: u32,
    /// Failed probes in a row that make a healthy server unhealthy; at least 1. Default: 3.
    #[serde(default = "default_unhealthy_threshold")]
    #[schemars(range(min = 1))]
    pub unhealthy_threshold: u32,
    /// HTTP probes: the path requested, starting with `/`. Default: `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// HTTP probes: the method. Default: `GET`.
    #[serde(default = "default_method")]
    pub method: String,
    /// HTTP probes: the `Host` header. Default: the server's host (name or IP address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// HTTP probes: statuses that pass, each a code (`200`) or a class (`"2xx"`).
    /// Default: `["2xx", "3xx"]`.
    #[serde(default = "default_expected_status")]
    #[schemars(length(min = 1))]
    pub expected_status: Vec<StatusMatch>,
    /// HTTP probes: extra request headers, name to value. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Probe this port instead of the server's. Default: the server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            kind: CheckType::default(),
            interval: DEFAULT_CHECK_INTERVAL,
            timeout: DEFAULT_CHECK_TIMEOUT,
            healthy_threshold: DEFAULT_HEALTHY_THRESHOLD,
            unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            path: DEFAULT_CHECK_PATH.into(),
            method: DEFAULT_CHECK_METHOD.into(),
            host: None,
            expected_status: DEFAULT_EXPECTED_STATUS.to_vec(),
            headers: BTreeMap::new(),
            port: None,
        }
    }
}

fn default_interval() -> Duration {
    DEFAULT_CHECK_INTERVAL
}
fn default_timeout() -> Duration {
    DEFAULT_CHECK_TIMEOUT
}
fn default_healthy_threshold() -> u32 {
    DEFAULT_HEALTHY_THRESHOLD
}
fn default_unhealthy_threshold() -> u32 {
    DEFAULT_UNHEALTHY_THRESHOLD
}
fn default_path() -> String {
    DEFAULT_CHECK_PATH.into()
}
fn default_method() -> String {
    DEFAULT_CHECK_METHOD.into()
}
fn default_expected_status() -> Vec<StatusMatch> {
    DEFAULT_EXPECTED_STATUS.to_vec()
}

/// The kind of probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckType {
    /// An HTTP request; passes on an expected status.
    #[default]
    Http,
    /// An HTTP request over TLS (with the server's TLS options); passes on an expected status.
    Https,
    /// A TCP connection; passes when it opens.
    Tcp,
}

/// A status, or a class of statuses, that passes an HTTP probe. Written as a code (`200`)
/// or a class (`"2xx"` to `"5xx"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusMatch {
    /// Exactly this status, 100 to 599.
    Code(u16),
    /// Every status of this class, 1 to 5 (`2` is 200 to 299).
    Class(u8),
}

impl StatusMatch {
    /// Whether `status` matches.
    pub fn matches(&self, status: u16) -> bool {
        match *self {
            StatusMatch::Code(code) => status == code,
            StatusMatch::Class(class) => status / 100 == u16::from(class),
        }
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusMatch::Code(code) => write!(f, "{code}"),
            StatusMatch::Class(class) => write!(f, "{class}xx"),
        }
    }
}

const STATUS_EXPECTING: &str = r#"a status from 100 to 599 or a class "1xx" to "5xx""#;

impl Serialize for StatusMatch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusMatch::Code(code) => s.serialize_u16(*code),
            StatusMatch::Class(_) => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for StatusMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl Visitor<'_> for StatusVisitor {
            type Value = StatusMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(STATUS_EXPECTING)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusMatch, E> {
                match u16::try_from(v) {
                    Ok(code @ 100..=599) => Ok(StatusMatch::Code(code)),
                    _ => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusMatch, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusMatch, E> {
                // A `${VAR}` substitution may give a code as text.
                if let Ok(code) = v.trim().parse::<u64>() {
                    return self.visit_u64(code);
                }
                match v.as_bytes() {
                    [class @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
                        Ok(StatusMatch::Class(class - b'0'))
                    }
                    _ => Err(E::invalid_value(Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(StatusVisitor)
    }
}

impl JsonSchema for StatusMatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusMatch".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A status code (100 to 599) or a class of statuses (\"2xx\").",
            "anyOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "string", "pattern": "^[1-5][xX][xX]$|\\$\\{" }
            ],
            "examples": [200, "2xx"]
        })
    }
}

/// Passive health (outlier detection): a server whose requests fail
/// `consecutive_failures` times in a row is ejected for `ejection_time`, doubled on each
/// ejection up to `max_ejection_time`, and comes back when the time is up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassiveHealth {
    /// Failed requests in a row that eject a server; at least 1. Default: 5.
    #[serde(default = "default_consecutive_failures")]
    #[schemars(range(min = 1))]
    pub consecutive_failures: u32,
    /// Response statuses that count as a failure (besides connection errors and timeouts).
    /// Default: `[502, 503, 504]`.
    #[serde(default = "default_failure_statuses")]
    pub failure_statuses: Vec<u16>,
    /// How long a server is ejected the first time; each new ejection doubles it.
    /// Default: 30s.
    #[serde(default = "default_ejection_time", with = "crate::duration::required")]
    #[schemars(with = "DurationSchema")]
    pub ejection_time: Duration,
    /// Cap on the ejection time; at least `ejection_time`. Default: 5m.
    #[serde(
        default = "default_max_ejection_time",
        with = "crate::duration::required"
    )]
    #[schemars(with = "DurationSchema")]
    pub max_ejection_time: Duration,
    /// Most servers of the upstream ejected at once, in percent (0 to 100); one server may
    /// always be ejected. Default: 50.
    #[serde(default = "default_max_ejected_percent")]
    #[schemars(range(max = 100))]
    pub max_ejected_percent: u8,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            consecutive_failures: DEFAULT_CONSECUTIVE_FAILURES,
            failure_statuses: DEFAULT_FAILURE_STATUSES.to_vec(),
            ejection_time: DEFAULT_EJECTION_TIME,
            max_ejection_time: DEFAULT_MAX_EJECTION_TIME,
            max_ejected_percent: DEFAULT_MAX_EJECTED_PERCENT,
        }
    }
}

fn default_consecutive_failures() -> u32 {
    DEFAULT_CONSECUTIVE_FAILURES
}
fn default_failure_statuses() -> Vec<u16> {
    DEFAULT_FAILURE_STATUSES.to_vec()
}
fn default_ejection_time() -> Duration {
    DEFAULT_EJECTION_TIME
}
fn default_max_ejection_time() -> Duration {
    DEFAULT_MAX_EJECTION_TIME
}
fn default_max_ejected_percent() -> u8 {
    DEFAULT_MAX_EJECTED_PERCENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_match() {
        assert!(StatusMatch::Class(2).matches(204));
        assert!(!StatusMatch::Class(2).matches(302));
        assert!(StatusMatch::Code(418).matches(418));
        assert!(!StatusMatch::Code(418).matches(419));
        assert_eq!(StatusMatch::Class(5).to_string(), "5xx");
        assert!(DEFAULT_EXPECTED_STATUS.iter().any(|m| m.matches(301)));
    }
}
