//! The `forward_auth` middleware: asks an external service whether the request may pass.
//!
//! The auth request is `GET url` with `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto` and
//! `-For` (the client's hop appended, as upstreams get it) set by Pylon, plus the
//! configured `request_headers` copied from the client. Pylon's `X-Forwarded-*` values
//! always win over ones the client sent.
//!
//! - 2xx: the request goes on; each `response_headers` name is removed from it, then set to
//!   the auth answer's values (so a client can never supply them itself);
//! - any other status: the auth answer (status, headers, body up to `max_response_body`)
//!   goes back to the client as it is, minus hop-by-hop headers;
//! - no answer within `timeout`: 504; unreachable, broken or oversized answer: 502. The
//!   request never passes unchecked.
//!
//! Connections to the auth service are kept alive and shared by all requests (hyper's
//! pooled client).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::Result;
use pylon_config::middleware::{AuthUrl, ForwardAuth as Config};

use super::{Flow, GeneratedResponse, Hooks, Middleware, RequestState};
use crate::forwarded::push_ip;
use crate::request_view::request_host;

/// How long an idle connection to the auth service is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers about one connection, not the message: never copied from an auth answer.
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "trailers",
];

#[derive(Debug)]
struct ForwardAuth {
    client: Client<HttpConnector, Empty<Bytes>>,
    uri: Uri,
    /// The URL without its query, for log lines (a query may hold a token).
    label: String,
    timeout: Duration,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    max_body: usize,
}

pub fn compile(def: &Config) -> Result<Arc<dyn Middleware>, String> {
    let url = AuthUrl::parse(&def.url)?;
    let uri = format!("http://{}{}", url.authority, url.path_and_query)
        .parse::<Uri>()
        .map_err(|e| format!("invalid url {:?}: {e}", def.url))?;
    let names = |list: &[String]| {
        list.iter()
            .map(|n| {
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|_| format!("invalid header name {n:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(def.timeout));
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector);
    Ok(Arc::new(ForwardAuth {
        client,
        label: format!("http://{}{}", url.authority, uri.path()),
        uri,
        timeout: def.timeout,
        request_headers: names(&def.request_headers)?,
        response_headers: names(&def.response_headers)?,
        max_body: def.max_response_body,
    }))
}

/// What the auth service said.
enum Answer {
    /// 2xx, with its headers.
    Allow(HeaderMap),
    /// Anything else, to send back as it is.
    Deny(StatusCode, HeaderMap, Bytes),
}

impl ForwardAuth {
    /// The auth request for `req`.
    fn auth_request(
        &self,
        req: &RequestHeader,
        state: &RequestState,
    ) -> Result<Request<Empty<Bytes>>, String> {
        let mut headers = HeaderMap::new();
        for name in &self.request_headers {
            for value in req.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let value = |bytes: &[u8]| {
            HeaderValue::from_bytes(bytes)
                .map_err(|_| "a request value cannot be sent in a header".to_string())
        };
        headers.insert(X_FORWARDED_METHOD, value(req.method.as_str().as_bytes())?);
        headers.insert(X_FORWARDED_URI, value(req.raw_path())?);
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(state.scheme));
        let host = request_host(req);
        if !host.is_empty() {
            headers.insert(X_FORWARDED_HOST, value(host.as_bytes())?);
        } else {
            headers.remove(X_FORWARDED_HOST);
        }
        let mut chain = String::new();
        for prior in req.headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(s) = prior.to_str() {
                if !s.trim().is_empty() {
                    chain.push_str(s.trim());
                    chain.push_str(", ");
                }
            }
        }
        if let Some(ip) = state.peer_ip {
            push_ip(&mut chain, ip);
        }
        let chain = chain.trim_end_matches([',', ' ']);
        if chain.is_empty() {
            headers.remove(X_FORWARDED_FOR);
        } else {
            headers.insert(X_FORWARDED_FOR, value(chain.as_bytes())?);
        }
        let mut auth = Request::get(self.uri.clone())
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        *auth.headers_mut() = headers;
        Ok(auth)
    }

    /// Sends the auth request and reads the whole answer (bounded); `Err` says why there is
    /// no usable answer (unreachable, connection broken, body too large).
    async fn ask(&self, auth: Request<Empty<Bytes>>) -> Result<Answer, String> {
        let response = self.client.request(auth).await.map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            format!("{e}{cause}")
        })?;
        let (parts, body) = response.into_parts();
        // Read even on 2xx, so the connection goes back to the pool.
        let body = Limited::new(body, self.max_body)
            .collect()
            .await
            .map_err(|e| {
                format!(
                    "the answer's body could not be read ({e}; limit {} bytes)",
                    self.max_body
                )
            })?
            .to_bytes();
        Ok(if parts.status.is_success() {
            Answer::Allow(parts.headers)
        } else {
            Answer::Deny(parts.status, parts.headers, body)
        })
    }

    /// The auth service's refusal, as the client gets it.
    fn denial(status: StatusCode, headers: HeaderMap, body: Bytes) -> Result<GeneratedResponse> {
        let connection_named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
            .collect();
        let mut header = ResponseHeader::build(status, Some(headers.len() + 1))?;
        for (name, value) in &headers {
            let framing = [CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING, UPGRADE].contains(name);
            if framing || HOP_BY_HOP.contains(&name.as_str()) || connection_named.contains(name) {
                continue;
            }
            header.append_header(name.clone(), value.clone())?;
        }
        GeneratedResponse::with_body(header, body)
    }
}

#[async_trait]
impl Middleware for ForwardAuth {
    fn hooks(&self) -> Hooks {
        Hooks {
            request: true,
            ..Hooks::default()
        }
    }

    async fn request(&self, session: &mut Session, state: &mut RequestState) -> Result<Flow> {
        let auth = match self.auth_request(session.req_header(), state) {
            Ok(auth) => auth,
            Err(why) => {
                log::warn!("forward_auth {}: {why}", self.label);
                return Ok(Flow::Reject(400, "bad request".into()));
            }
        };
        let answer = match tokio::time::timeout(self.timeout, self.ask(auth)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(why)) => {
                log::warn!("forward_auth {}: {why}", self.label);
                return Ok(Flow::Reject(
                    502,
                    "auth service unreachable or failed".into(),
                ));
            }
            Err(_) => {
                log::warn!(
                    "forward_auth {}: no answer within {:?}",
                    self.label,
                    self.timeout
                );
                return Ok(Flow::Reject(504, "auth service timed out".into()));
            }
        };
        match answer {
            Answer::Allow(headers) => {
                let req = session.req_header_mut();
                for name in &self.response_headers {
                    req.remove_header(name);
                    for value in headers.get_all(name) {
                        req.append_header(name.clone(), value.clone())?;
                    }
                }
                Ok(Flow::Continue)
            }
            Answer::Deny(status, headers, body) => {
                Ok(Flow::respond(Self::denial(status, headers, body)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn def() -> Config {
        Config {
            url: "http://127.0.0.1:9/auth?x=1".into(),
            request_headers: vec!["Authorization".into()],
            ..Config::default()
        }
    }

    fn compiled() -> ForwardAuth {
        let url = AuthUrl::parse(&def().url).unwrap();
        ForwardAuth {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            uri: format!("http://{}{}", url.authority, url.path_and_query)
                .parse()
                .unwrap(),
            label: String::new(),
            timeout: Duration::from_secs(1),
            request_headers: vec![HeaderName::from_static("authorization")],
            response_headers: Vec::new(),
            max_body: 10,
        }
    }

    #[test]
    fn the_auth_request_describes_the_client_request() {
        assert!(compile(&def()).is_ok());
        let mut req = RequestHeader::build("POST", b"/api/x?y=1", None).unwrap();
        req.append_header("Host", "app.example").unwrap();
        req.append_header("Authorization", "Bearer t").unwrap();
        req.append_header("Cookie", "c=1").unwrap();
        req.append_header("X-Forwarded-For", "203.0.113.1").unwrap();
        req.append_header("X-Forwarded-Method", "GET").unwrap();
        let state = RequestState {
            peer_ip: Some("10.0.0.9".parse().unwrap()),
            scheme: "http",
            ..RequestState::default()
        };
        let auth = compiled().auth_request(&req, &state).unwrap();
        assert_eq!(auth.method(), "GET");
        assert_eq!(auth.uri(), "http://127.0.0.1:9/auth?x=1");
        let h = auth.headers();
        assert_eq!(h["x-forwarded-method"], "POST");
        assert_eq!(h["x-forwarded-uri"], "/api/x?y=1");
        assert_eq!(h["x-forwarded-host"], "app.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-for"], "203.0.113.1, 10.0.0.9");
        assert_eq!(h["authorization"], "Bearer t");
        assert!(h.get("cookie").is_none());
        assert_eq!(h.get_all("x-forwarded-method").iter().count(), 1);
    }

    #[test]
    fn denials_keep_the_message_and_drop_connection_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("www-authenticate", HeaderValue::from_static("Bearer"));
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        let r =
            ForwardAuth::denial(StatusCode::FORBIDDEN, headers, Bytes::from_static(b"no")).unwrap();
        assert_eq!(r.header.status, 403);
        assert_eq!(r.header.headers["www-authenticate"], "Bearer");
        assert_eq!(r.header.headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(r.header.headers["content-length"], "2");
        for gone in ["connection", "x-private", "transfer-encoding", "keep-alive"] {
            assert!(r.header.headers.get(gone).is_none(), "{gone}");
        }
    }
}
