//! A small blocking client of the admin API: one current-thread tokio runtime and hyper's
//! legacy client, plain HTTP only (the admin API listens on loopback or behind a TLS proxy
//! of the operator's choice).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{header, Method, Request, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// How long one call may take, connect to last byte.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with a call.
#[derive(Debug)]
pub enum Failure {
    /// The admin API could not be reached (or did not answer in time): exit 2.
    Unreachable(String),
    /// The API answered with an error status: exit 1.
    Api(Reply),
    /// A bad argument or file, found before anything was sent: exit 1.
    Usage(String),
}

/// An answer of the API.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// `X-Pylon-Changes` of a write: the diff.
    pub changes: Option<String>,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`null` if empty or not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Client {
    base: String,
    key: Option<String>,
    runtime: tokio::runtime::Runtime,
    http: HyperClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Client {
    /// A client of the API at `admin` (`http://host:port`, a trailing `/` or `/api/v1` is
    /// allowed), sending `key` as a bearer token.
    pub fn new(admin: &str, key: Option<&str>) -> Result<Client, Failure> {
        let mut base = admin.trim_end_matches('/').to_string();
        if let Some(stripped) = base.strip_suffix("/api/v1") {
            base = stripped.to_string();
        }
        if base.starts_with("https://") {
            return Err(Failure::Usage(format!(
                "--admin {admin}: pylon ctl speaks plain HTTP only (reach the admin API on loopback, or through a tunnel)"
            )));
        }
        if !base.starts_with("http://") {
            base = format!("http://{base}");
        }
        base.parse::<Uri>()
            .map_err(|e| Failure::Usage(format!("--admin {admin}: not a URL: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::Usage(format!("starting the client runtime: {e}")))?;
        let http = HyperClient::builder(TokioExecutor::new()).build_http();
        Ok(Client {
            base,
            key: key.map(str::to_string),
            runtime,
            http,
        })
    }

    /// `method path` with an optional JSON body; a non-2xx answer is `Failure::Api`.
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Failure> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| Failure::Usage(format!("{}{path}: not a URL: {e}", self.base)))?;
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if let Some(key) = &self.key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let bytes = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(value.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| Failure::Usage(format!("--api-key: {e}")))?;
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure::Unreachable(format!(
                "cannot reach the admin API at {}: {e} (is Pylon running with an `admin:` section? see --admin / PYLON_ADMIN)",
                self.base
            ))
        };
        let reply = self.runtime.block_on(async {
            tokio::time::timeout(TIMEOUT, async {
                let response = self.http.request(request).await.map_err(|e| {
                    use std::error::Error;
                    // The innermost cause says why (connection refused…).
                    let mut cause: &dyn Error = &e;
                    while let Some(next) = cause.source() {
                        cause = next;
                    }
                    unreachable(&cause)
                })?;
                let status = response.status().as_u16();
                let changes = response
                    .headers()
                    .get("x-pylon-changes")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| unreachable(&e))?
                    .to_bytes();
                Ok(Reply {
                    status,
                    changes,
                    body,
                })
            })
            .await
            .map_err(|_| unreachable(&format!("no answer in {}s", TIMEOUT.as_secs())))?
        })?;
        if (200..300).contains(&reply.status) {
            Ok(reply)
        } else {
            Err(Failure::Api(reply))
        }
    }
}
