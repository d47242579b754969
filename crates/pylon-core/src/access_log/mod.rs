//! The access log: one line per finished request, written in the `logging` phase.
//!
//! A config's `access_log` compiles to an [`AccessLog`] (its format, its template split into
//! literal bytes and variables, its [`Sink`]) held by the snapshot and by each route. The
//! worker formats the line into a thread-local buffer and hands it to the sink, whose own
//! thread writes it: the request never waits for the disk.

mod format;
mod sink;

use std::cell::RefCell;
use std::sync::{Arc, LazyLock};

use pingora::prelude::*;
use pylon_config::{
    AccessLogConfig, LogFormat, LogPart, LogTemplate, LogVar, DEFAULT_JSON_TEMPLATE,
    DEFAULT_TEXT_TEMPLATE,
};

pub use format::{write_time, Entry};
pub use sink::{dropped_lines, flush_all, reopen_all};
use sink::{Sink, Target};

use crate::measured::Measured;
use crate::middleware::RequestState;

/// A compiled `access_log` setting.
#[derive(Debug)]
pub struct AccessLog {
    pieces: Vec<Piece>,
    sink: Arc<Sink>,
}

/// A piece of a line: bytes written as they are, or a variable.
#[derive(Debug)]
enum Piece {
    /// Text: literal bytes. JSON: `"key":` with the separator before it.
    Fixed(Box<[u8]>),
    Text(LogVar),
    Json(LogVar),
}

impl AccessLog {
    /// Compiles `config`, opening its sink (or sharing the running one for the same
    /// destination).
    pub fn compile(config: &AccessLogConfig) -> Result<AccessLog, String> {
        // The defaults are parsed once per process, not per route and reload (a unit test
        // keeps them parsing).
        static TEXT: LazyLock<Option<LogTemplate>> =
            LazyLock::new(|| LogTemplate::parse(DEFAULT_TEXT_TEMPLATE).ok());
        static JSON: LazyLock<Option<LogTemplate>> =
            LazyLock::new(|| LogTemplate::parse(DEFAULT_JSON_TEMPLATE).ok());
        let template = match (&config.template, config.format) {
            (Some(t), _) => t,
            (None, LogFormat::Text) => TEXT
                .as_ref()
                .ok_or("the default text template does not parse")?,
            (None, LogFormat::Json) => JSON
                .as_ref()
                .ok_or("the default JSON template does not parse")?,
        };
        let mut pieces = Vec::new();
        match config.format {
            LogFormat::Text => {
                for part in template.parts() {
                    pieces.push(match part {
                        LogPart::Literal(l) => Piece::Fixed(l.as_bytes().into()),
                        LogPart::Var(v) => Piece::Text(v.clone()),
                    });
                }
                pieces.push(Piece::Fixed(Box::new(*b"\n")));
            }
            LogFormat::Json => {
                // In JSON the literal text is dropped: the variables are the keys, each once.
                let mut seen = Vec::new();
                for var in template.vars() {
                    let name = var.name();
                    if seen.contains(&name) {
                        continue;
                    }
                    let mut key = Vec::new();
                    key.push(if seen.is_empty() { b'{' } else { b',' });
                    format::json_string(&mut key, name.as_bytes());
                    key.push(b':');
                    pieces.push(Piece::Fixed(key.into()));
                    pieces.push(Piece::Json(var.clone()));
                    seen.push(name);
                }
                pieces.push(Piece::Fixed(if seen.is_empty() {
                    Box::new(*b"{}\n")
                } else {
                    Box::new(*b"}\n")
                }));
            }
        }
        let target = if config.is_stdout() {
            Target::Stdout
        } else {
            Target::File(config.path.clone())
        };
        Ok(AccessLog {
            pieces,
            sink: Sink::open(target)?,
        })
    }

    /// Logs one finished request (the `logging` phase): `status` is what the client got
    /// (`proxy::final_status`); `upstream` the route's upstream name.
    pub fn log(
        &self,
        session: &Session,
        status: u16,
        state: &RequestState,
        measured: &Measured,
        upstream: Option<&str>,
    ) {
        let downstream = session.as_ref();
        let entry = Entry {
            req: session.req_header(),
            state,
            measured,
            status,
            upstream,
            bytes_sent: downstream.body_bytes_sent(),
            bytes_received: downstream.body_bytes_read(),
            duration: measured.elapsed(),
        };
        self.write(&entry);
    }

    /// Formats `entry` and queues the line.
    pub fn write(&self, entry: &Entry<'_>) {
        LINE.with_borrow_mut(|(line, scratch)| {
            line.clear();
            self.format(entry, line, scratch);
            self.sink.push(line);
            // A rare huge line (a long header) does not keep its memory on the thread.
            if line.capacity() > KEEP_CAPACITY {
                *line = Vec::with_capacity(INITIAL_CAPACITY);
            }
        });
    }

    fn format(&self, entry: &Entry<'_>, line: &mut Vec<u8>, scratch: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Fixed(bytes) => line.extend_from_slice(bytes),
                Piece::Text(var) => format::write_text(line, &format::value(var, entry, scratch)),
                Piece::Json(var) => format::write_json(line, &format::value(var, entry, scratch)),
            }
        }
    }
}

const INITIAL_CAPACITY: usize = 1024;
const KEEP_CAPACITY: usize = 64 * 1024;

thread_local! {
    /// The line being formatted and a scratch string for variables, reused by every
    /// request on this thread.
    static LINE: RefCell<(Vec<u8>, String)> =
        RefCell::new((Vec::with_capacity(INITIAL_CAPACITY), String::with_capacity(256)));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pingora::http::RequestHeader;
    use std::time::{Duration, UNIX_EPOCH};

    fn line(yaml_template: Option<&str>, format: LogFormat, entry: &Entry<'_>) -> String {
        let config = AccessLogConfig {
            format,
            path: "-".into(),
            template: yaml_template.map(|t| LogTemplate::parse(t).unwrap()),
        };
        let log = AccessLog::compile(&config).unwrap();
        let mut out = Vec::new();
        let mut scratch = String::new();
        log.format(entry, &mut out, &mut scratch);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_and_json_lines() {
        let mut req = RequestHeader::build("GET", b"/a?x=1", None).unwrap();
        req.insert_header("user-agent", "curl \"8\"").unwrap();
        req.insert_header("x-tenant", "acme").unwrap();
        let state = RequestState {
            client_ip: Some("10.0.0.1".parse().unwrap()),
            route: Arc::from("api"),
            trace_id: Some([0xab; 16]),
            ..RequestState::default()
        };
        let mut measured = Measured::start();
        measured.received_at = UNIX_EPOCH + Duration::from_millis(1_000_000_000_123);
        measured.attempts = 1;
        measured.upstream_addr = Some("127.0.0.1:9000".parse().unwrap());
        measured.upstream_status = Some(200);
        let entry = Entry {
            req: &req,
            state: &state,
            measured: &measured,
            status: 200,
            upstream: Some("backend"),
            bytes_sent: 5,
            bytes_received: 0,
            duration: Duration::from_micros(1_500),
        };
        assert_eq!(
            line(None, LogFormat::Text, &entry),
            "10.0.0.1 - - [2001-09-09T01:46:40.123Z] \"GET /a?x=1 HTTP/1.1\" 200 5 \"-\" \"curl \\x228\\x22\" 1.500 api backend -\n"
        );
        let json = line(
            Some("{status} {header.X-Tenant} {request_id} {duration_ms} {upstream_addr} {trace_id} {status}"),
            LogFormat::Json,
            &entry,
        );
        assert_eq!(
            json,
            "{\"status\":200,\"header.x-tenant\":\"acme\",\"request_id\":null,\"duration_ms\":1.500,\"upstream_addr\":\"127.0.0.1:9000\",\"trace_id\":\"abababababababababababababababab\"}\n"
        );
        let default: serde_json::Value =
            serde_json::from_str(&line(None, LogFormat::Json, &entry)).unwrap();
        assert_eq!(default["path"], "/a");
        assert_eq!(default["query"], "x=1");
        assert_eq!(default["upstream_connect_ms"], serde_json::Value::Null);
        assert_eq!(default["attempts"], 1);
        assert_eq!(default["user_agent"], "curl \"8\"");
    }
}
