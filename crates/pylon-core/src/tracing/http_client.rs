//! The OTLP exporter's HTTP client on hyper, which Pylon already links (for
//! `forward_auth`): the opentelemetry crates' own clients would bring reqwest and a second
//! TLS stack. Plain HTTP only (config refuses `https://` endpoints); connections are kept
//! alive between exports.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A collector's answer is a small status message; anything larger is cut off.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Sends export requests with a deadline per request.
#[derive(Debug)]
pub struct HyperClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HyperClient {
    pub fn new(timeout: Duration) -> HyperClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HyperClient { client, timeout }
    }
}

#[async_trait::async_trait]
impl HttpClient for HyperClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = request.map(Full::new);
        let exchange = async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::from(format!("no answer within {:?}", self.timeout)))?
    }
}
