//! A plain request type for the tests, and the conformance data's request shape turned into
//! it the way the proxy derives its `RequestView`.
#![allow(dead_code)]

use pylon_rules::RequestView;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Default)]
pub struct TestRequest {
    pub method: String,
    pub host: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub client_ip: Option<IpAddr>,
}

impl RequestView for TestRequest {
    fn method(&self) -> &str {
        &self.method
    }
    fn host(&self) -> &str {
        &self.host
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn query(&self) -> &str {
        &self.query
    }
    fn any_header(&self, name: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| f(v))
    }
    fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

impl TestRequest {
    pub fn get(host: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        TestRequest {
            method: "GET".into(),
            host: host.into(),
            path: path.into(),
            query: query.into(),
            ..Default::default()
        }
    }
}

/// `remote_addr` as Go's `RemoteAddrStrategy` reads it: `ip:port`, or a bare IP.
fn client_ip(remote: &str) -> Option<IpAddr> {
    remote
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| remote.parse::<IpAddr>())
        .ok()
}

/// Builds the request of a conformance case. With `raw`, the request line and headers are
/// parsed as the proxy sees them: the host is the authority of an absolute-form target
/// (without userinfo) when non-empty, else the `Host` header; path and query come from the
/// target.
pub fn request_from_case(r: &Value) -> Result<TestRequest, String> {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut headers: Vec<(String, Vec<u8>)> = r
        .get("headers")
        .and_then(Value::as_array)
        .map(|hs| {
            hs.iter()
                .filter_map(|h| {
                    let pair = h.as_array()?;
                    Some((
                        pair.first()?.as_str()?.to_string(),
                        pair.get(1)?.as_str()?.as_bytes().to_vec(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let client_ip = r
        .get("remote_addr")
        .and_then(Value::as_str)
        .and_then(client_ip);
    let Some(raw) = r.get("raw").and_then(Value::as_str) else {
        return Ok(TestRequest {
            method: s("method"),
            host: s("host"),
            path: s("path"),
            query: s("query"),
            headers,
            client_ip,
        });
    };

    let mut lines = raw.split("\r\n");
    let request_line = lines.next().ok_or("raw request without a request line")?;
    let mut parts = request_line.split(' ');
    let method = parts.next().ok_or("no method")?.to_string();
    let target = parts.next().ok_or("no target")?;
    headers.clear();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or("malformed header line")?;
        headers.push((name.to_string(), value.trim().as_bytes().to_vec()));
    }
    let host_header = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();

    let (authority, path_and_query) = match target.split_once("://") {
        Some((_scheme, rest)) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            (Some(host.to_string()), &rest[end..])
        }
        None => (None, target),
    };
    let host = match authority {
        Some(h) if !h.is_empty() => h,
        _ => host_header,
    };
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let path = if path.is_empty() { "/" } else { path };
    Ok(TestRequest {
        method,
        host,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        client_ip,
    })
}
