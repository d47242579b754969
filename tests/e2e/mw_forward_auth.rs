//! `forward_auth` through the binary, against a real auth server started by the test (std
//! threads on 127.0.0.1:0, keep-alive HTTP/1.1) that records every request it receives:
//! what it is sent, allow (headers copied), deny (its answer returned as is), and the
//! failures that must fail closed: down (502), too slow (504), too large (502).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::pylon::check_refuses;
use crate::harness::{Client, Origin, Pylon};

/// One request the auth server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    /// Which connection (1, 2, …) it came on.
    conn: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .count()
    }
}

/// The auth server. It decides by the request's `Authorization`:
/// `Bearer good` → 200 with `X-User: alice`, `X-Role: a` and `X-Role: b`, `X-Internal: 1`;
/// `Bearer nouser` → 204 with no user; `Bearer slow` → 200 after 3 s; `Bearer big` → 403
/// with a 100 KB body; `Bearer login` → 302 to `/login`; anything else → 401 with
/// `WWW-Authenticate`, two cookies and a body.
struct AuthServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl AuthServer {
    fn start() -> AuthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            for stream in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let conn = conns.fetch_add(1, Ordering::SeqCst) + 1;
                let log = log.clone();
                std::thread::spawn(move || serve(stream, conn, &log));
            }
        });
        AuthServer { addr, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://{}/check?from=pylon", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves requests on one connection until the client closes it.
fn serve(stream: TcpStream, conn: usize, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let seen = Seen {
            method,
            target,
            headers,
            conn,
        };
        let length: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let auth = seen.header("authorization").unwrap_or("").to_string();
        log.lock().unwrap().push(seen);
        let answer = match auth.as_str() {
            "Bearer good" => "HTTP/1.1 200 OK\r\nX-User: alice\r\nX-Role: a\r\nX-Role: b\r\nX-Internal: 1\r\nContent-Length: 2\r\n\r\nok".to_string(),
            "Bearer nouser" => "HTTP/1.1 204 No Content\r\n\r\n".to_string(),
            "Bearer slow" => {
                std::thread::sleep(Duration::from_secs(3));
                "HTTP/1.1 200 OK\r\nX-User: late\r\nContent-Length: 0\r\n\r\n".to_string()
            }
            "Bearer big" => format!("HTTP/1.1 403 Forbidden\r\nContent-Length: 100000\r\n\r\n{}", "x".repeat(100_000)),
            "Bearer login" => "HTTP/1.1 302 Found\r\nLocation: /login?next=%2Fapp\r\nContent-Length: 0\r\n\r\n".to_string(),
            _ => {
                let body = "{\"error\":\"denied by auth\"}";
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"auth\"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Type: application/json\r\nConnection: keep-alive\r\nKeep-Alive: timeout=30\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

struct Setup {
    pylon: Pylon,
    origin: Origin,
    auth: AuthServer,
}

/// Routes: `/app` (asks the auth server; copies `X-User` and `X-Role`), `/down` (an auth
/// URL nobody listens on), `/short` (a 1 s timeout).
fn setup() -> Setup {
    let origin = Origin::start("app");
    let auth = AuthServer::start();
    let dead = crate::harness::closed_addr();
    let yaml = format!(
        r#"
listeners: [{{ name: web, address: "@listen0@" }}]
upstreams:
  app: {{ servers: ["{origin}"] }}
middlewares:
  auth:
    forward_auth:
      url: "{url}"
      request_headers: [Authorization, Cookie, X-Tenant]
      response_headers: [X-User, X-Role]
routes:
  - name: app
    rule: "PathPrefix(`/app`)"
    upstream: app
    middlewares: [auth]
  - name: down
    rule: "PathPrefix(`/down`)"
    upstream: app
    middlewares: [{{ forward_auth: {{ url: "http://{dead}/check" }} }}]
  - name: short
    rule: "PathPrefix(`/short`)"
    upstream: app
    middlewares: [{{ forward_auth: {{ url: "{url}", timeout: 1s }} }}]
"#,
        origin = origin.address(),
        url = auth.url(),
    );
    Setup {
        pylon: Pylon::start(&yaml),
        origin,
        auth,
    }
}

fn send(
    c: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> crate::harness::client::Response {
    let mut h = vec![("Host", "shop.example")];
    h.extend_from_slice(headers);
    c.request(method, path, &h)
}

#[test]
fn allowed_requests_go_on_with_the_auth_headers() {
    let s = setup();
    let c = s.pylon.client();
    // The client's own X-User is dropped: only the auth service's reaches the upstream.
    let r = send(
        &c,
        "GET",
        "/app/orders",
        &[("Authorization", "Bearer good"), ("X-User", "mallory")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = r.json()["headers"].clone();
    let values = |name: &str| -> Vec<String> {
        headers
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|p| p[1].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(values("x-user"), ["alice"]);
    assert_eq!(values("x-role"), ["a", "b"]);
    // Not listed in response_headers: not copied.
    assert!(values("x-internal").is_empty());
    // The client's Authorization goes on to the upstream (forward_auth does not remove it).
    assert_eq!(values("authorization"), ["Bearer good"]);
    // A 2xx without the header: the client's is removed all the same.
    let r = send(
        &c,
        "GET",
        "/app",
        &[("Authorization", "Bearer nouser"), ("X-User", "mallory")],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.origin_header("x-user"), None);
    assert_eq!(s.origin.hits(), 2);
}

#[test]
fn the_auth_service_is_told_about_the_request() {
    let s = setup();
    let c = s.pylon.client();
    let r = send(
        &c,
        "POST",
        "/app/items?page=2",
        &[
            ("Authorization", "Bearer good"),
            ("Cookie", "session=abc"),
            ("X-Tenant", "t1"),
            ("X-Other", "not copied"),
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Method", "DELETE"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = s.auth.seen();
    assert_eq!(seen.len(), 1);
    let a = &seen[0];
    assert_eq!(a.method, "GET");
    assert_eq!(a.target, "/check?from=pylon");
    assert_eq!(a.header("host"), Some(s.auth.addr.to_string().as_str()));
    assert_eq!(a.header("x-forwarded-method"), Some("POST"));
    assert_eq!(
        a.count("x-forwarded-method"),
        1,
        "the client's value is replaced"
    );
    assert_eq!(a.header("x-forwarded-uri"), Some("/app/items?page=2"));
    assert_eq!(a.header("x-forwarded-host"), Some("shop.example"));
    assert_eq!(a.header("x-forwarded-proto"), Some("http"));
    assert_eq!(a.header("x-forwarded-for"), Some("198.51.100.7, 127.0.0.1"));
    assert_eq!(a.header("authorization"), Some("Bearer good"));
    assert_eq!(a.header("cookie"), Some("session=abc"));
    assert_eq!(a.header("x-tenant"), Some("t1"));
    assert_eq!(a.header("x-other"), None);
    assert_eq!(a.header("content-length").unwrap_or("0"), "0");
}

#[test]
fn denials_come_back_as_the_auth_service_wrote_them() {
    let s = setup();
    let c = s.pylon.client();
    let r = send(&c, "GET", "/app", &[("Authorization", "Bearer bad")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"auth\""));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let cookies: Vec<_> = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(r.text(), "{\"error\":\"denied by auth\"}");
    // The auth service's connection headers are its own, not the client's.
    assert_eq!(r.header("keep-alive"), None);
    let r = send(&c, "GET", "/app", &[]);
    assert_eq!(r.status, 401);
    let r = send(&c, "GET", "/app", &[("Authorization", "Bearer login")]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/login?next=%2Fapp"));
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn an_unreachable_auth_service_fails_closed_with_502() {
    let s = setup();
    let r = send(
        &s.pylon.client(),
        "GET",
        "/down",
        &[("Authorization", "Bearer good")],
    );
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"], "auth service unreachable or failed");
    assert_eq!(s.origin.hits(), 0);
    let log = s.pylon.log();
    assert!(log.contains("forward_auth http://"), "{log}");
    assert!(
        !log.contains("Bearer good"),
        "a credential is in the log:\n{log}"
    );
}

#[test]
fn a_slow_auth_service_fails_closed_with_504() {
    let s = setup();
    let r = send(
        &s.pylon.client(),
        "GET",
        "/short",
        &[("Authorization", "Bearer slow")],
    );
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "auth service timed out");
    assert_eq!(s.origin.hits(), 0);
    // The same route still works for an answer in time.
    let r = send(
        &s.pylon.client(),
        "GET",
        "/short",
        &[("Authorization", "Bearer good")],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn an_oversized_auth_answer_fails_closed_with_502() {
    let s = setup();
    let r = send(
        &s.pylon.client(),
        "GET",
        "/app",
        &[("Authorization", "Bearer big")],
    );
    assert_eq!(r.status, 502);
    assert_eq!(s.origin.hits(), 0);
}

#[test]
fn connections_to_the_auth_service_are_kept_alive() {
    let s = setup();
    let c = s.pylon.client();
    for _ in 0..5 {
        assert_eq!(
            send(&c, "GET", "/app", &[("Authorization", "Bearer good")]).status,
            200
        );
        assert_eq!(
            send(&c, "GET", "/app", &[("Authorization", "Bearer bad")]).status,
            401
        );
    }
    let seen = s.auth.seen();
    assert_eq!(seen.len(), 10);
    let connections = seen.iter().map(|a| a.conn).max().unwrap();
    assert!(
        connections < 10,
        "one connection per auth request: {connections}"
    );
}

#[test]
fn check_refuses_bad_forward_auth_configs_at_their_place() {
    let base = "listeners: [{ name: web, address: \"127.0.0.1:0\" }]\nupstreams: { app: { servers: [\"127.0.0.1:9\"] } }\nroutes:\n  - name: r\n    rule: \"PathPrefix(`/`)\"\n    upstream: app\n    middlewares:\n";
    let text = check_refuses(&format!(
        "{base}      - forward_auth:\n          url: \"auth.internal/check\"\n          request_headers: [\"X Bad\"]\n          response_headers: [Content-Length]\n"
    ));
    for want in [
        "pylon.yaml:9:16: routes[0].middlewares[0].forward_auth.url: invalid url \"auth.internal/check\": the scheme must be `http://`",
        "pylon.yaml:10:29: routes[0].middlewares[0].forward_auth.request_headers[0]: invalid header name \"X Bad\"",
        "pylon.yaml:11:30: routes[0].middlewares[0].forward_auth.response_headers[0]: `Content-Length` describes a connection",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let text = check_refuses(&format!(
        "{base}      - forward_auth: {{ url: \"http://a:b@auth/\" }}\n"
    ));
    assert!(
        text.contains("user info (`user@`) is not allowed"),
        "{text}"
    );
}
