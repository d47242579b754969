//! Responses Pylon writes itself: a route's fixed `respond:` answer, and the shared JSON
//! error format (`{"error": "...", "request_id": "..."}`) used for 404, 502, 504 and friends.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::Respond;

/// A `respond:` answer, built once at compile time.
#[derive(Debug)]
pub struct PreparedResponse {
    header: ResponseHeader,
    body: Bytes,
}

impl PreparedResponse {
    /// Builds the header and body. Fails only on values validation should have refused.
    pub fn new(def: &Respond) -> std::result::Result<Self, String> {
        let body = Bytes::from(def.body.clone().unwrap_or_default());
        let mut header = ResponseHeader::build(def.status, Some(def.headers.len() + 1))
            .map_err(|e| format!("status {}: {e}", def.status))?;
        for (name, value) in &def.headers {
            header
                .append_header(name.clone(), value.as_str())
                .map_err(|e| format!("header `{name}`: {e}"))?;
        }
        header
            .insert_header(http::header::CONTENT_LENGTH, body.len())
            .map_err(|e| e.to_string())?;
        Ok(PreparedResponse { header, body })
    }

    /// Writes the response to the client.
    pub async fn write(&self, session: &mut Session) -> Result<()> {
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(
                Box::new(self.header.clone()),
                head_only || self.body.is_empty(),
            )
            .await?;
        if !head_only && !self.body.is_empty() {
            session
                .write_response_body(Some(self.body.clone()), true)
                .await?;
        }
        Ok(())
    }
}

/// Builds the shared JSON error body.
pub fn error_body(message: &str, request_id: &str) -> Bytes {
    let body = serde_json::json!({ "error": message, "request_id": request_id });
    Bytes::from(body.to_string())
}

/// Writes a JSON error response to the client.
pub async fn write_json_error(
    session: &mut Session,
    status: u16,
    message: &str,
    request_id: &str,
) -> Result<()> {
    let body = error_body(message, request_id);
    let mut header = ResponseHeader::build(status, Some(3))?;
    header.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    header.insert_header("x-request-id", request_id)?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
