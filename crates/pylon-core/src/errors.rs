//! Pylon's own error responses (404 no route, 502, 503, 504, 413, 403 from a middleware…)
//! in one format: JSON `{"error", "status", "request_id", "trace_id"}` for clients that accept JSON
//! (and those that say nothing), a short HTML page for browsers, plain text otherwise;
//! or a custom page from `error_pages`, by status or class.

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use pylon_config::middleware::parse_status_key;
use pylon_config::ErrorPage;

use crate::middleware::GeneratedResponse;

/// A custom error page, loaded once.
#[derive(Debug)]
struct Page {
    first: u16,
    last: u16,
    body: String,
    content_type: String,
}

/// The error pages of a snapshot.
#[derive(Debug, Default)]
pub struct ErrorPages {
    /// Exact statuses first, then classes, so `"503"` wins over `"5xx"`.
    pages: Vec<Page>,
}

impl ErrorPages {
    /// Loads the configured pages (reading `body_file`s now, not per request).
    pub fn new<'a>(
        defs: impl IntoIterator<Item = (&'a String, &'a ErrorPage)>,
    ) -> Result<ErrorPages, String> {
        let mut pages = Vec::new();
        for (key, def) in defs {
            let (first, last) =
                parse_status_key(key).ok_or_else(|| format!("invalid error page key {key:?}"))?;
            let body = match (&def.body, &def.body_file) {
                (_, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
                    format!("error page {key}: cannot read {}: {e}", file.display())
                })?,
                (Some(body), None) => body.clone(),
                (None, None) => String::new(),
            };
            pages.push(Page {
                first,
                last,
                body,
                content_type: def
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "text/html; charset=utf-8".into()),
            });
        }
        pages.sort_by_key(|p| p.last - p.first);
        Ok(ErrorPages { pages })
    }

    /// The error response for `status`, negotiated against the request's `Accept`.
    /// `trace_id` (hex) is shown when tracing is on.
    pub fn response(
        &self,
        req: Option<&RequestHeader>,
        status: u16,
        message: &str,
        request_id: &str,
        trace_id: Option<&str>,
    ) -> Result<GeneratedResponse> {
        let (content_type, body) = match self
            .pages
            .iter()
            .find(|p| (p.first..=p.last).contains(&status))
        {
            Some(page) => (
                page.content_type.clone(),
                page.body
                    .replace("{status}", &status.to_string())
                    .replace("{error}", &escape_html(message))
                    .replace("{request_id}", &escape_html(request_id))
                    .replace("{trace_id}", trace_id.unwrap_or("")),
            ),
            None => default_body(accepted(req), status, message, request_id, trace_id),
        };
        let mut header = ResponseHeader::build(status, Some(4))?;
        header.insert_header(http::header::CONTENT_TYPE, content_type)?;
        header.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        GeneratedResponse::with_body(header, Bytes::from(body))
    }
}

/// What the client wants an error in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Html,
    Text,
}

/// The best of JSON, HTML and text by the `Accept` header's q-values; JSON when the
/// header is absent or accepts anything equally (API clients rarely send one).
fn accepted(req: Option<&RequestHeader>) -> Kind {
    let Some(accept) = req
        .and_then(|r| r.headers.get(http::header::ACCEPT))
        .and_then(|v| v.to_str().ok())
    else {
        return Kind::Json;
    };
    let mut best = (Kind::Json, -1.0f32, 0u8);
    for item in accept.split(',') {
        let mut params = item.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        // Specific types beat wildcards at equal q.
        let (kind, specificity) = match media.as_str() {
            "application/json" | "application/problem+json" => (Kind::Json, 2),
            "text/html" | "application/xhtml+xml" => (Kind::Html, 2),
            "text/plain" => (Kind::Text, 2),
            "application/*" => (Kind::Json, 1),
            "text/*" => (Kind::Text, 1),
            "*/*" => (Kind::Json, 0),
            _ => continue,
        };
        if q > 0.0 && (q > best.1 || (q == best.1 && specificity > best.2)) {
            best = (kind, q, specificity);
        }
    }
    if best.1 < 0.0 {
        // Nothing we can produce was asked for; JSON is as good as anything.
        return Kind::Json;
    }
    best.0
}

fn default_body(
    kind: Kind,
    status: u16,
    message: &str,
    request_id: &str,
    trace_id: Option<&str>,
) -> (String, String) {
    match kind {
        Kind::Json => {
            let mut body = serde_json::json!({
                "error": message,
                "status": status,
                "request_id": request_id,
            });
            if let Some(trace_id) = trace_id {
                body["trace_id"] = trace_id.into();
            }
            ("application/json".into(), body.to_string())
        }
        Kind::Html => {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            // A trace id is hex: nothing to escape.
            let trace = trace_id.map_or(String::new(), |t| format!(", trace id: {t}"));
            let body = format!(
                "<!doctype html>\n<html><head><title>{status} {reason}</title></head>\n<body><h1>{status} {reason}</h1>\n<p>{}</p>\n<p><small>request id: {}{trace}</small></p></body></html>\n",
                escape_html(message),
                escape_html(request_id)
            );
            ("text/html; charset=utf-8".into(), body)
        }
        Kind::Text => (
            "text/plain; charset=utf-8".into(),
            match trace_id {
                Some(t) => format!("{status} {message}\nrequest id: {request_id}\ntrace id: {t}\n"),
                None => format!("{status} {message}\nrequest id: {request_id}\n"),
            },
        ),
    }
}

/// Escapes text for HTML element content and attribute values (error pages, directory
/// listings).
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn with_accept(accept: &str) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        r.insert_header("accept", accept).unwrap();
        r
    }

    #[test]
    fn negotiation_prefers_the_clients_best_type() {
        assert_eq!(accepted(None), Kind::Json);
        assert_eq!(accepted(Some(&with_accept("*/*"))), Kind::Json);
        assert_eq!(
            accepted(Some(&with_accept(
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            ))),
            Kind::Html
        );
        assert_eq!(accepted(Some(&with_accept("text/plain"))), Kind::Text);
        assert_eq!(
            accepted(Some(&with_accept("text/html;q=0.5, application/json"))),
            Kind::Json
        );
        assert_eq!(accepted(Some(&with_accept("image/png"))), Kind::Json);
    }

    #[test]
    fn pages_by_status_beat_pages_by_class() {
        let five = ErrorPage {
            body: Some("class {status}".into()),
            body_file: None,
            content_type: Some("text/plain".into()),
        };
        let exact = ErrorPage {
            body: Some("exact {status} {error} <{request_id}> {trace_id}".into()),
            ..five.clone()
        };
        let defs = [("5xx".to_string(), five), ("503".to_string(), exact)];
        let pages = ErrorPages::new(defs.iter().map(|(k, v)| (k, v))).unwrap();
        let body = |status| match pages
            .response(None, status, "x<y", "id", Some("abc"))
            .unwrap()
            .body
        {
            crate::middleware::ResponseBody::Bytes(b) => String::from_utf8(b.to_vec()).unwrap(),
            _ => String::new(),
        };
        assert_eq!(body(503), "exact 503 x&lt;y <id> abc");
        assert_eq!(body(502), "class 502");
        assert!(body(404).contains("\"status\":404"));
        assert!(body(404).contains("\"trace_id\":\"abc\""));
    }

    #[test]
    fn every_format_names_the_trace_when_there_is_one() {
        let json = default_body(Kind::Json, 502, "m", "r", Some("4bf9")).1;
        assert!(json.contains("\"trace_id\":\"4bf9\""), "{json}");
        assert!(!default_body(Kind::Json, 502, "m", "r", None)
            .1
            .contains("trace_id"));
        assert!(default_body(Kind::Html, 502, "m", "r", Some("4bf9"))
            .1
            .contains("trace id: 4bf9"));
        assert!(default_body(Kind::Text, 502, "m", "r", Some("4bf9"))
            .1
            .contains("trace id: 4bf9\n"));
    }
}
