//! A small blocking HTTP/1.1 client that writes exactly the bytes a test asks for, so tests
//! can send absolute-form targets, odd hosts, or connect from another loopback address
//! (127.0.0.2) to exercise `ClientIP`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// For origin answers: which origin served the request.
    pub fn served_by(&self) -> String {
        self.json()["server"].as_str().unwrap_or("").to_string()
    }

    /// For origin answers: the first value of a header the origin received.
    pub fn origin_header(&self, name: &str) -> Option<String> {
        self.json()["headers"]
            .as_array()?
            .iter()
            .find(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|k| k.eq_ignore_ascii_case(name))
            })
            .and_then(|pair| pair[1].as_str().map(str::to_string))
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    addr: SocketAddr,
    source: Option<IpAddr>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, source: None }
    }

    /// A client whose connections come from `source` (any 127.0.0.0/8 address works).
    pub fn from_source(addr: SocketAddr, source: &str) -> Client {
        Client {
            addr,
            source: Some(source.parse().expect("source ip")),
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = match self.source {
            None => TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect to pylon"),
            Some(ip) => {
                let domain = socket2::Domain::for_address(self.addr);
                let socket =
                    socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
                socket
                    .bind(&SocketAddr::new(ip, 0).into())
                    .expect("bind source address");
                socket
                    .connect_timeout(&self.addr.into(), IO_TIMEOUT)
                    .expect("connect to pylon");
                socket.into()
            }
        };
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream
    }

    /// `GET path` with `Host: localhost`.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[("Host", "localhost")])
    }

    /// `GET path` with the given Host.
    pub fn get_host(&self, host: &str, path: &str) -> Response {
        self.request("GET", path, &[("Host", host)])
    }

    /// A request with exactly these headers (plus `Connection: close` and, when there is a
    /// body, `Content-Length`).
    pub fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request_with_body(method, target, headers, b"")
    }

    pub fn request_with_body(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut raw = format!("{method} {target} HTTP/1.1\r\n");
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("Connection: close\r\n\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes, method == "HEAD")
    }

    /// Sends raw bytes (which should ask for `Connection: close`) and parses the answer.
    pub fn raw(&self, bytes: &[u8], head: bool) -> Response {
        let mut stream = self.connect();
        stream.write_all(bytes).expect("send request");
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).expect("read response");
        parse_response(&buf, head)
    }
}

impl Client {
    /// Like [`Client::raw`], but keeps what arrived when the server stops reading or resets
    /// the connection: a server refusing a body (413) may close with part of it unread.
    pub fn raw_lenient(&self, bytes: &[u8], head: bool) -> Response {
        let mut stream = self.connect();
        let _ = stream.write_all(bytes);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while let Ok(n) = stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        parse_response(&buf, head)
    }
}

/// Parses one HTTP/1.1 response (content-length, chunked, or read-to-close bodies).
pub fn parse_response(buf: &[u8], head: bool) -> Response {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response header in {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head_text = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &buf[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if head {
        Vec::new()
    } else if chunked {
        decode_chunked(rest)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn decode_chunked(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}
