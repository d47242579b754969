//! A route's fixed `respond:` answer, built once at compile time, and the writer every
//! response Pylon or a middleware generates goes through.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::Respond;
use tokio::io::AsyncReadExt;

use crate::middleware::{GeneratedResponse, ResponseBody};

/// Size of the chunks a streamed body (a file) is sent in.
const CHUNK: usize = 64 * 1024;

/// A `respond:` answer, built once at compile time.
#[derive(Debug)]
pub struct PreparedResponse {
    header: ResponseHeader,
    body: Bytes,
}

impl PreparedResponse {
    /// Builds the header and body. Fails only on values validation should have refused.
    pub fn new(def: &Respond) -> std::result::Result<Self, String> {
        Self::build(
            def.status,
            &def.headers,
            Bytes::from(def.body.clone().unwrap_or_default()),
        )
    }

    /// A response with this status, headers and body.
    pub fn build<'a>(
        status: u16,
        headers: impl IntoIterator<Item = (&'a String, &'a String)>,
        body: Bytes,
    ) -> std::result::Result<Self, String> {
        let mut header =
            ResponseHeader::build(status, Some(4)).map_err(|e| format!("status {status}: {e}"))?;
        for (name, value) in headers {
            header
                .append_header(name.clone(), value.as_str())
                .map_err(|e| format!("header `{name}`: {e}"))?;
        }
        header
            .insert_header(http::header::CONTENT_LENGTH, body.len())
            .map_err(|e| e.to_string())?;
        Ok(PreparedResponse { header, body })
    }

    /// A copy to send.
    pub fn response(&self) -> GeneratedResponse {
        GeneratedResponse {
            header: self.header.clone(),
            body: if self.body.is_empty() {
                ResponseBody::Empty
            } else {
                ResponseBody::Bytes(self.body.clone())
            },
        }
    }
}

/// Writes a generated response whose header the response-side middlewares already saw;
/// `on_body` is given each body piece on its way (the response-body hooks).
pub async fn write(
    session: &mut Session,
    response: GeneratedResponse,
    mut on_body: impl FnMut(&mut Option<Bytes>, bool) -> Result<()>,
) -> Result<()> {
    let head_only = session.req_header().method == http::Method::HEAD
        || matches!(response.body, ResponseBody::Empty);
    let status = response.header.status;
    // Bodies are never sent for HEAD, 204 and 304.
    let no_body = head_only
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    session
        .write_response_header(Box::new(response.header), no_body)
        .await?;
    if no_body {
        return Ok(());
    }
    match response.body {
        ResponseBody::Empty => {}
        ResponseBody::Bytes(bytes) => {
            let mut piece = Some(bytes);
            on_body(&mut piece, true)?;
            session.write_response_body(piece, true).await?;
        }
        ResponseBody::Reader(mut reader) => loop {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            let n = reader.read_buf(&mut buf).await.map_err(|e| {
                pingora::Error::because(pingora::ErrorType::ReadError, "reading the body", e)
            })?;
            let end = n == 0;
            let mut piece = (!end).then(|| buf.freeze());
            on_body(&mut piece, end)?;
            session.write_response_body(piece, end).await?;
            if end {
                break;
            }
        },
    }
    Ok(())
}
