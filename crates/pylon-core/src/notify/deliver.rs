//! One webhook delivery: a POST over Pingora's HTTP connector (plain or TLS with OpenSSL,
//! certificates verified against the system roots), with the target's timeout per attempt
//! and its retries, waiting 0.5s, 1s, 2s, … between attempts. A delivery that fails every
//! attempt is logged and given up.

use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use pylon_config::Notification;

/// The first wait before a retry; it doubles with each.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Response bodies are read (to keep the connection reusable) up to this much.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Delivers `body` to `target`, retrying as it allows.
pub async fn with_retries(connector: &Connector, target: &Notification, body: Bytes) {
    // Validation checked the URL; parsed once here for every attempt and log line.
    let Ok(uri) = target.url.parse::<http::Uri>() else {
        log::warn!("notifications: invalid url, event not sent");
        return;
    };
    let shown = redacted(&uri);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 0..=target.retries {
        let outcome =
            tokio::time::timeout(target.timeout, post(connector, target, &uri, body.clone()))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {:?}", target.timeout)));
        match outcome {
            Ok(()) => return,
            Err(why) if attempt < target.retries => {
                log::debug!("notifications: POST {shown} failed ({why}); retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Err(why) => log::warn!(
                "notifications: POST {shown} failed {} time(s), giving up: {why}",
                target.retries + 1
            ),
        }
    }
}

/// The URL without its path and query, which for Slack and Discord hold the secret.
fn redacted(uri: &http::Uri) -> String {
    format!(
        "{}://{}/…",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    )
}

/// One attempt: Ok when the endpoint answered 2xx.
async fn post(
    connector: &Connector,
    target: &Notification,
    uri: &http::Uri,
    body: Bytes,
) -> Result<(), String> {
    let tls = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("no host")?.trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let address = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut peer = HttpPeer::new(address, tls, host.to_string());
    peer.options.connection_timeout = Some(target.timeout);
    peer.options.read_timeout = Some(target.timeout);
    peer.options.write_timeout = Some(target.timeout);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request =
        RequestHeader::build("POST", path.as_bytes(), None).map_err(|e| e.to_string())?;
    let authority = uri.authority().map_or(host, |a| a.as_str()).to_string();
    let set = |request: &mut RequestHeader, name: &str, value: &str| {
        request
            .insert_header(name.to_string(), value)
            .map_err(|e| e.to_string())
    };
    set(&mut request, "host", &authority)?;
    set(&mut request, "content-type", "application/json")?;
    set(&mut request, "content-length", &body.len().to_string())?;
    set(
        &mut request,
        "user-agent",
        concat!("pylon/", env!("CARGO_PKG_VERSION")),
    )?;
    for (name, value) in &target.headers {
        set(&mut request, name, value)?;
    }
    let (mut session, _reused) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    session
        .write_request_header(Box::new(request))
        .await
        .map_err(|e| format!("write: {e}"))?;
    session
        .write_request_body(body, true)
        .await
        .map_err(|e| format!("write: {e}"))?;
    session
        .finish_request_body()
        .await
        .map_err(|e| format!("write: {e}"))?;
    session
        .read_response_header()
        .await
        .map_err(|e| format!("read: {e}"))?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    let mut read = 0;
    while let Some(chunk) = session
        .read_response_body()
        .await
        .map_err(|e| format!("read: {e}"))?
    {
        read += chunk.len();
        if read > MAX_RESPONSE_BYTES {
            break;
        }
    }
    if read <= MAX_RESPONSE_BYTES {
        connector
            .release_http_session(session, &peer, Some(Duration::from_secs(30)))
            .await;
    }
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}
