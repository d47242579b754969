//! The `access_log` section: one line per request, as text or JSON, to a file or stdout.
//!
//! At the top level it applies to every route (and to requests no route matched); a route
//! may turn it off (`access_log: off`) or replace it with its own map. A log template is
//! the request-variable template of transforms and headers (`{client_ip}`,
//! `{header.NAME}`, `{{` for a brace) plus variables only known once the request ended
//! (`{status}`, `{duration_ms}`, `{upstream_addr}`, …), parsed once at load.

use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::de::{did_you_mean, error_at_column};
use crate::error::ConfigError;
use crate::middleware::template::TEMPLATE_VARS;
use crate::middleware::TemplateVar;
use crate::validate::Spot;

/// Where and how access log lines are written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// `text` (one template line per request) or `json` (one object per line). Default:
    /// `text`.
    #[serde(default)]
    pub format: LogFormat,
    /// The file lines are appended to, or `-` for standard output. Reopened on SIGUSR1
    /// (for logrotate). Default: `-`.
    #[serde(default = "stdout_path")]
    pub path: PathBuf,
    /// What a line holds, with variables in single braces (`{status}`, `{header.X-Tenant}`).
    /// In JSON the variables become the keys. Default: a combined-log-like line in text,
    /// a fixed field set in JSON (see docs/observability.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<LogTemplate>,
}

fn stdout_path() -> PathBuf {
    PathBuf::from(STDOUT)
}

/// The `path` that means standard output.
pub const STDOUT: &str = "-";

impl AccessLogConfig {
    /// Whether lines go to standard output.
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == STDOUT
    }
}

/// The line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A route's `access_log`: off (`off` or `false`), or its own settings in place of the
/// top-level ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAccessLog {
    Off,
    On(AccessLogConfig),
}

impl Serialize for RouteAccessLog {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RouteAccessLog::Off => s.serialize_bool(false),
            RouteAccessLog::On(config) => config.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RouteAccessLog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RouteAccessLog;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`off`, `false`, or a map with `format`, `path` and `template`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RouteAccessLog, E> {
                if v {
                    Err(E::custom(
                        "`access_log: true` is not a setting: write `off` to turn the log off for this route, or a map with `format`, `path` and `template`",
                    ))
                } else {
                    Ok(RouteAccessLog::Off)
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RouteAccessLog, E> {
                match v {
                    "off" | "false" => Ok(RouteAccessLog::Off),
                    _ => Err(E::custom(format!(
                        "expected `off` or a map with `format`, `path` and `template`, found {v:?}"
                    ))),
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RouteAccessLog, A::Error> {
                AccessLogConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RouteAccessLog::On)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for RouteAccessLog {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RouteAccessLog".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let map = generator.subschema_for::<AccessLogConfig>();
        json_schema!({
            "description": "`off` (or `false`) turns the access log off for this route; a map replaces the top-level `access_log` for it.",
            "anyOf": [{ "enum": ["off", false] }, map]
        })
    }
}

/// A variable only an access log line knows (the request has ended), or a request variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogVar {
    /// A request variable (`{client_ip}`, `{header.NAME}`, …).
    Request(TemplateVar),
    /// `{time}`: when the request arrived, RFC 3339 UTC with milliseconds.
    Time,
    /// `{time_unix_ms}`: the same, as milliseconds since the Unix epoch.
    TimeUnixMs,
    /// `{path_and_query}`: the path with `?query` when there is one.
    PathAndQuery,
    /// `{status}`: the status the client got (0 when it went away before a response).
    Status,
    /// `{duration_ms}`: from the request header's arrival to the end of the response.
    DurationMs,
    /// `{upstream}`: the name of the route's upstream.
    Upstream,
    /// `{upstream_addr}`: the server the last attempt went to.
    UpstreamAddr,
    /// `{upstream_status}`: the status the upstream answered the last attempt with.
    UpstreamStatus,
    /// `{upstream_connect_ms}`: time to open the last attempt's connection (missing when a
    /// pooled one was reused).
    UpstreamConnectMs,
    /// `{upstream_header_ms}`: time from the last attempt's start to the upstream's response
    /// header (time to first byte).
    UpstreamHeaderMs,
    /// `{upstream_error}`: how the last failed attempt failed (`connect`, `timeout`, `reset`,
    /// `tls`, `other`).
    UpstreamError,
    /// `{attempts}`: upstream attempts made (1 + retries; 0 when none).
    Attempts,
    /// `{bytes_sent}`: response body bytes sent to the client.
    BytesSent,
    /// `{bytes_received}`: request body bytes read from the client.
    BytesReceived,
    /// `{protocol}`: `HTTP/1.1`, `HTTP/2`, …
    Protocol,
    /// `{user_agent}`: the `User-Agent` header.
    UserAgent,
    /// `{referer}`: the `Referer` header.
    Referer,
    /// `{trace_id}`: the W3C trace id, in hex, when tracing is configured.
    TraceId,
}

/// The log-only variable names, for messages and did-you-mean hints.
pub const LOG_VARS: [&str; 18] = [
    "time",
    "time_unix_ms",
    "path_and_query",
    "status",
    "duration_ms",
    "upstream",
    "upstream_addr",
    "upstream_status",
    "upstream_connect_ms",
    "upstream_header_ms",
    "upstream_error",
    "attempts",
    "bytes_sent",
    "bytes_received",
    "protocol",
    "user_agent",
    "referer",
    "trace_id",
];

impl LogVar {
    fn parse(name: &str) -> Result<LogVar, String> {
        Ok(match name {
            "time" => LogVar::Time,
            "time_unix_ms" => LogVar::TimeUnixMs,
            "path_and_query" => LogVar::PathAndQuery,
            "status" => LogVar::Status,
            "duration_ms" => LogVar::DurationMs,
            "upstream" => LogVar::Upstream,
            "upstream_addr" => LogVar::UpstreamAddr,
            "upstream_status" => LogVar::UpstreamStatus,
            "upstream_connect_ms" => LogVar::UpstreamConnectMs,
            "upstream_header_ms" => LogVar::UpstreamHeaderMs,
            "upstream_error" => LogVar::UpstreamError,
            "attempts" => LogVar::Attempts,
            "bytes_sent" => LogVar::BytesSent,
            "bytes_received" => LogVar::BytesReceived,
            "protocol" => LogVar::Protocol,
            "user_agent" => LogVar::UserAgent,
            "referer" => LogVar::Referer,
            "trace_id" => LogVar::TraceId,
            _ => match TemplateVar::parse(name) {
                Ok(var) => LogVar::Request(var),
                Err(message) if name.starts_with("header.") => return Err(message),
                Err(_) => {
                    let known = || LOG_VARS.into_iter().chain(TEMPLATE_VARS);
                    let mut m = format!("unknown variable `{{{name}}}`");
                    if let Some(hint) = did_you_mean(name, known()) {
                        m.push_str(&format!(", did you mean `{{{hint}}}`?"));
                    } else {
                        let names: Vec<&str> = known().collect();
                        m.push_str(&format!(
                            " (known: {}, header.NAME; write `{{{{` for a literal brace)",
                            names.join(", ")
                        ));
                    }
                    return Err(m);
                }
            },
        })
    }

    /// The variable's name as written (headers lowercase): a JSON line's key.
    pub fn name(&self) -> String {
        let plain = match self {
            LogVar::Request(var) => return var.name(),
            LogVar::Time => "time",
            LogVar::TimeUnixMs => "time_unix_ms",
            LogVar::PathAndQuery => "path_and_query",
            LogVar::Status => "status",
            LogVar::DurationMs => "duration_ms",
            LogVar::Upstream => "upstream",
            LogVar::UpstreamAddr => "upstream_addr",
            LogVar::UpstreamStatus => "upstream_status",
            LogVar::UpstreamConnectMs => "upstream_connect_ms",
            LogVar::UpstreamHeaderMs => "upstream_header_ms",
            LogVar::UpstreamError => "upstream_error",
            LogVar::Attempts => "attempts",
            LogVar::BytesSent => "bytes_sent",
            LogVar::BytesReceived => "bytes_received",
            LogVar::Protocol => "protocol",
            LogVar::UserAgent => "user_agent",
            LogVar::Referer => "referer",
            LogVar::TraceId => "trace_id",
        };
        plain.to_string()
    }
}

/// A piece of a log template.
pub type LogPart = crate::middleware::template::Part<LogVar>;

/// A parsed log template. `Display` gives back a source that parses to the same template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTemplate {
    parts: Vec<LogPart>,
}

/// The text template used when none is written: the combined log format, then the
/// request's duration, route, upstream and id.
pub const DEFAULT_TEXT_TEMPLATE: &str = "{client_ip} - - [{time}] \"{method} {path_and_query} {protocol}\" {status} {bytes_sent} \"{referer}\" \"{user_agent}\" {duration_ms} {route} {upstream} {request_id}";

/// The JSON keys written when no template is: each variable under its own name.
pub const DEFAULT_JSON_TEMPLATE: &str = "{time} {client_ip} {method} {host} {path} {query} {protocol} {status} {bytes_sent} {bytes_received} {duration_ms} {route} {upstream} {upstream_addr} {upstream_status} {upstream_connect_ms} {upstream_header_ms} {upstream_error} {attempts} {request_id} {trace_id} {consumer} {user_agent} {referer}";

impl LogTemplate {
    /// Parses `source`; errors carry the 1-based character column.
    pub fn parse(source: &str) -> Result<LogTemplate, (usize, String)> {
        crate::middleware::template::parse_parts(source, LogVar::parse)
            .map(|parts| LogTemplate { parts })
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[LogPart] {
        &self.parts
    }

    /// The variables, in order (a JSON line's keys).
    pub fn vars(&self) -> impl Iterator<Item = &LogVar> {
        self.parts.iter().filter_map(|p| match p {
            LogPart::Var(v) => Some(v),
            LogPart::Literal(_) => None,
        })
    }
}

impl fmt::Display for LogTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                LogPart::Literal(l) => f.write_str(&l.replace('{', "{{").replace('}', "}}"))?,
                LogPart::Var(v) => write!(f, "{{{}}}", v.name())?,
            }
        }
        Ok(())
    }
}

impl Serialize for LogTemplate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LogTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        LogTemplate::parse(&source).map_err(|(column, message)| error_at_column(column, message))
    }
}

impl JsonSchema for LogTemplate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LogTemplate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A log line with variables in single braces: the request variables ({client_ip}, {request_id}, {host}, {path}, {query}, {method}, {scheme}, {route}, {consumer}, {header.NAME}) and {time}, {time_unix_ms}, {path_and_query}, {status}, {duration_ms}, {upstream}, {upstream_addr}, {upstream_status}, {upstream_connect_ms}, {upstream_header_ms}, {upstream_error}, {attempts}, {bytes_sent}, {bytes_received}, {protocol}, {user_agent}, {referer}, {trace_id}. `{{` writes a literal brace.",
            "type": "string"
        })
    }
}

/// Checks that a file sink's directory exists (or can be made), so a typo in `path` fails
/// the load instead of losing every line.
pub(crate) fn validate(config: &AccessLogConfig, spot: &Spot<'_>, errors: &mut Vec<ConfigError>) {
    if config.is_stdout() {
        return;
    }
    if let Err(message) = check_path(&config.path) {
        errors.push(spot.key("path").error(message));
    }
}

fn check_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("expected a file path, or `-` for standard output".into());
    }
    if path.is_dir() {
        return Err(format!(
            "{} is a directory; name a file in it",
            path.display()
        ));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => return Ok(()),
    };
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log's directory {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn log_and_request_variables_parse() {
        let t = LogTemplate::parse("{status} {header.X-Tenant} {client_ip} {{x}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                LogPart::Var(LogVar::Status),
                LogPart::Literal(" ".into()),
                LogPart::Var(LogVar::Request(TemplateVar::Header("x-tenant".into()))),
                LogPart::Literal(" ".into()),
                LogPart::Var(LogVar::Request(TemplateVar::ClientIp)),
                LogPart::Literal(" {x}".into()),
            ]
        );
        assert_eq!(
            t.to_string(),
            "{status} {header.x-tenant} {client_ip} {{x}}"
        );
        assert!(LogTemplate::parse(DEFAULT_TEXT_TEMPLATE).is_ok());
        assert!(LogTemplate::parse(DEFAULT_JSON_TEMPLATE).is_ok());
    }

    #[test]
    fn unknown_variables_point_at_the_brace_with_a_hint() {
        let (column, message) = LogTemplate::parse("ok {stauts}").unwrap_err();
        assert_eq!(column, 4);
        assert!(message.contains("did you mean `{status}`"), "{message}");
        let (_, message) = LogTemplate::parse("{durtion_ms}").unwrap_err();
        assert!(message.contains("`{duration_ms}`"), "{message}");
        let (_, message) = LogTemplate::parse("{clent_ip}").unwrap_err();
        assert!(message.contains("`{client_ip}`"), "{message}");
        let (_, message) = LogTemplate::parse("{zzzzzzzz}").unwrap_err();
        assert!(message.contains("known: time,"), "{message}");
        assert_eq!(LogTemplate::parse("a}").unwrap_err().0, 2);
        assert_eq!(LogTemplate::parse("é{status").unwrap_err().0, 2);
        assert!(LogTemplate::parse("{header.}").is_err());
    }

    #[test]
    fn a_missing_directory_is_made_and_a_directory_path_refused() {
        let dir = std::env::temp_dir().join(format!("pylon-alog-{}", std::process::id()));
        let file = dir.join("sub/access.log");
        assert_eq!(check_path(&file), Ok(()));
        assert!(dir.join("sub").is_dir());
        assert!(check_path(&dir).unwrap_err().contains("is a directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
