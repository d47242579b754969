//! The `static` middleware: serves files under a root directory for GET and HEAD, with
//! index files, content types, validators and 304s, single byte ranges, an optional
//! listing, and a fallback to the route's upstream (`try_upstream`) when nothing matches.
//!
//! Files are streamed from disk (a `tokio::fs::File` limited to the length announced),
//! never read whole. Paths never leave the root: see [`path`].

mod conditional;
mod listing;
mod path;

use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use http::HeaderValue;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::StaticFiles as Config;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use self::conditional::{parse_range, RangeAsk, Validators};
use self::path::{BadPath, Relative};
use super::{Flow, GeneratedResponse, Hooks, Middleware, RequestState, ResponseBody};

#[derive(Debug)]
struct StaticFiles {
    /// Canonical, so containment checks compare like with like.
    root: PathBuf,
    index: Vec<String>,
    /// Without a trailing slash; `None` for none or `/`.
    strip_prefix: Option<String>,
    try_upstream: bool,
    directory_listing: bool,
    cache_control: Option<HeaderValue>,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let root = std::fs::canonicalize(&def.root)
        .map_err(|e| format!("cannot read {}: {e}", def.root.display()))?;
    let strip_prefix = def
        .strip_prefix
        .as_deref()
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let cache_control = def
        .cache_control
        .as_deref()
        .map(HeaderValue::from_str)
        .transpose()
        .map_err(|e| format!("cache_control: {e}"))?;
    Ok(Arc::new(StaticFiles {
        root,
        index: def.index.clone(),
        strip_prefix,
        try_upstream: def.try_upstream,
        directory_listing: def.directory_listing,
        cache_control,
    }))
}

/// The parts of the request this middleware reads, owned so no borrow of the session
/// lives across the file system's awaits.
struct Ask {
    head: bool,
    path: String,
    query: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    range: Option<String>,
    if_range: Option<String>,
}

impl Ask {
    fn of(session: &Session) -> Ask {
        let req = session.req_header();
        let get = |name: header::HeaderName| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ask {
            head: req.method == http::Method::HEAD,
            path: req.uri.path().to_string(),
            query: req.uri.query().map(str::to_string),
            if_none_match: get(header::IF_NONE_MATCH),
            if_modified_since: get(header::IF_MODIFIED_SINCE),
            range: get(header::RANGE),
            if_range: get(header::IF_RANGE),
        }
    }
}

/// What a checked path names under the root.
enum Lookup {
    File(PathBuf),
    Dir(PathBuf),
    /// Nothing servable: absent, not a regular file, or outside the root.
    Missing,
    Forbidden,
}

fn lookup_error(e: std::io::Error) -> Result<Lookup> {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => Ok(Lookup::Missing),
        ErrorKind::PermissionDenied => Ok(Lookup::Forbidden),
        _ => Err(pingora::Error::because(
            pingora::ErrorType::InternalError,
            "static: looking up a file",
            e,
        )),
    }
}

impl StaticFiles {
    /// Resolves `candidate` and checks it stays under the root.
    async fn lookup(&self, candidate: &Path) -> Result<Lookup> {
        let canonical = match tokio::fs::canonicalize(candidate).await {
            Ok(c) => c,
            Err(e) => return lookup_error(e),
        };
        // A symlink inside the root pointing outside resolves outside: treated as absent,
        // so its target is neither served nor revealed.
        if !path::contained(&self.root, &canonical) {
            return Ok(Lookup::Missing);
        }
        match tokio::fs::metadata(&canonical).await {
            Ok(m) if m.is_dir() => Ok(Lookup::Dir(canonical)),
            Ok(m) if m.is_file() => Ok(Lookup::File(canonical)),
            // Sockets, FIFOs, devices: never served.
            Ok(_) => Ok(Lookup::Missing),
            Err(e) => lookup_error(e),
        }
    }

    /// No file answers: the upstream with `try_upstream`, else 404.
    fn missing(&self) -> Flow {
        if self.try_upstream {
            Flow::Continue
        } else {
            Flow::Reject(404, "not found".into())
        }
    }

    /// The common headers of a file answer.
    fn file_header(&self, status: u16, v: &Validators) -> Result<ResponseHeader> {
        let mut h = ResponseHeader::build(status, Some(8))?;
        if let Some(etag) = &v.etag {
            h.insert_header(header::ETAG, etag.as_str())?;
        }
        if let Some(date) = v.last_modified_header() {
            h.insert_header(header::LAST_MODIFIED, date)?;
        }
        if let Some(cc) = &self.cache_control {
            h.insert_header(header::CACHE_CONTROL, cc.clone())?;
        }
        h.insert_header(header::ACCEPT_RANGES, "bytes")?;
        Ok(h)
    }

    async fn serve_file(&self, ask: &Ask, file_path: &Path) -> Result<Flow> {
        let io_error = |e| {
            pingora::Error::because(
                pingora::ErrorType::InternalError,
                "static: reading a file",
                e,
            )
        };
        let mut file = match tokio::fs::File::open(file_path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(self.missing()),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Ok(Flow::Reject(403, "forbidden".into()))
            }
            Err(e) => return Err(io_error(e)),
        };
        // Read from the open file, so size and validators describe the bytes sent.
        let meta = file.metadata().await.map_err(io_error)?;
        let len = meta.len();
        let validators = Validators::new(len, meta.modified().ok());
        if validators.not_modified(
            ask.if_none_match.as_deref(),
            ask.if_modified_since.as_deref(),
        ) {
            let header = self.file_header(304, &validators)?;
            return Ok(Flow::respond(GeneratedResponse {
                header,
                body: ResponseBody::Empty,
            }));
        }
        let range = match (&ask.range, &ask.if_range) {
            // The client's partial copy is stale: it needs the whole new file.
            (Some(_), Some(if_range)) if !validators.if_range_holds(if_range) => RangeAsk::Whole,
            (Some(range), _) => parse_range(range, len),
            (None, _) => RangeAsk::Whole,
        };
        let (status, start, count) = match range {
            RangeAsk::Whole => (200, 0, len),
            RangeAsk::Part { start, end } => (206, start, end - start + 1),
            RangeAsk::Unsatisfiable => {
                let mut header = self.file_header(416, &validators)?;
                header.insert_header(header::CONTENT_RANGE, format!("bytes */{len}"))?;
                header.insert_header(header::CONTENT_LENGTH, 0)?;
                return Ok(Flow::respond(GeneratedResponse {
                    header,
                    body: ResponseBody::Empty,
                }));
            }
        };
        let mut header = self.file_header(status, &validators)?;
        header.insert_header(header::CONTENT_TYPE, content_type(file_path))?;
        header.insert_header(header::CONTENT_LENGTH, count)?;
        if status == 206 {
            let end = start + count - 1;
            header.insert_header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"))?;
        }
        if ask.head || count == 0 {
            return Ok(Flow::respond(GeneratedResponse {
                header,
                body: ResponseBody::Empty,
            }));
        }
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await.map_err(io_error)?;
        }
        // `take`: never more than the Content-Length announced, even if the file grows.
        Ok(Flow::respond(GeneratedResponse {
            header,
            body: ResponseBody::Reader(Box::pin(file.take(count))),
        }))
    }

    async fn serve_dir(&self, ask: &Ask, rel: &Relative, dir: &Path) -> Result<Flow> {
        if !rel.trailing_slash {
            // Relative links in the page resolve against the slash form. Leading slashes
            // are collapsed so `//host` never becomes a protocol-relative Location.
            let mut location = format!("/{}/", ask.path.trim_start_matches('/'));
            if let Some(q) = &ask.query {
                location.push('?');
                location.push_str(q);
            }
            let mut header = ResponseHeader::build(301, Some(2))?;
            header.insert_header(header::LOCATION, location)?;
            return Ok(Flow::respond(GeneratedResponse::with_body(
                header,
                Bytes::new(),
            )?));
        }
        for name in &self.index {
            match self.lookup(&dir.join(name)).await? {
                Lookup::File(file) => return self.serve_file(ask, &file).await,
                Lookup::Forbidden => return Ok(Flow::Reject(403, "forbidden".into())),
                Lookup::Dir(_) | Lookup::Missing => {}
            }
        }
        if !self.directory_listing {
            return Ok(self.missing());
        }
        let html = listing::render(dir, &ask.path).await.map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "static: listing", e)
        })?;
        let mut header = ResponseHeader::build(200, Some(2))?;
        header.insert_header(header::CONTENT_TYPE, "text/html; charset=utf-8")?;
        Ok(Flow::respond(GeneratedResponse::with_body(
            header,
            Bytes::from(html),
        )?))
    }
}

/// The type by extension; text types say they are UTF-8.
fn content_type(path: &Path) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let essence = mime.essence_str();
    if mime.type_() == mime_guess::mime::TEXT || essence == "application/javascript" {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}

#[async_trait]
impl Middleware for StaticFiles {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, _state: &mut RequestState) -> Result<Flow> {
        let method = &session.req_header().method;
        if method != http::Method::GET && method != http::Method::HEAD {
            if self.try_upstream {
                return Ok(Flow::Continue);
            }
            return Ok(Flow::RejectWith(
                405,
                "method not allowed".into(),
                vec![(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"))],
            ));
        }
        let ask = Ask::of(session);
        let rel = match path::relative(&ask.path, self.strip_prefix.as_deref()) {
            Ok(rel) => rel,
            Err(BadPath::Refused) => return Ok(Flow::Reject(400, "bad path".into())),
            Err(BadPath::NotUnderPrefix) => return Ok(self.missing()),
        };
        match self.lookup(&rel.under(&self.root)).await? {
            // `/file.txt/` names a directory that is not there.
            Lookup::File(_) if rel.trailing_slash => Ok(self.missing()),
            Lookup::File(file) => self.serve_file(&ask, &file).await,
            Lookup::Dir(dir) => self.serve_dir(&ask, &rel, &dir).await,
            Lookup::Missing => Ok(self.missing()),
            Lookup::Forbidden => Ok(Flow::Reject(403, "forbidden".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn content_types_by_extension() {
        let t = |p: &str| content_type(Path::new(p));
        assert_eq!(t("a.html"), "text/html; charset=utf-8");
        assert_eq!(t("a.css"), "text/css; charset=utf-8");
        assert_eq!(t("a.js"), "text/javascript; charset=utf-8");
        assert_eq!(t("a.json"), "application/json");
        assert_eq!(t("a.png"), "image/png");
        assert_eq!(t("a.unknownext"), "application/octet-stream");
    }
}
