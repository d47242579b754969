//! A real origin server for tests: hyper on tokio, on a loopback ephemeral port, in its own
//! thread and runtime; plain HTTP or TLS (optionally requiring a client certificate).
//!
//! Every answer is JSON describing what the origin received: its `server` id, `method`,
//! `path`, `query`, `headers` (as `[name, value]` pairs, in order), `body`, `conn` (the
//! number of the TCP connection, to observe keep-alive) and `client_cert` (the CN of the
//! client certificate, over TLS). Special paths:
//! `/status/N` answers with status N; `/slow/MS` waits MS milliseconds first; `/health`
//! answers with the status set by [`Origin::set_health`] (200 at start). [`Origin::force_status`]
//! makes every other path answer with one status, [`Origin::set_delay`] slows every answer.
//! A query parameter `set_header=Name:Value` (repeatable, percent-encoded) adds that header
//! to the answer, for tests of response-side middlewares.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod, SslVerifyMode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// TLS settings of an origin.
pub struct TlsOrigin {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, a client certificate signed by this CA is required.
    pub client_ca: Option<PathBuf>,
}

/// What tests can change or observe while the origin runs.
pub struct Control {
    health: AtomicU16,
    forced: AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicUsize,
}

pub struct Origin {
    pub id: String,
    pub addr: SocketAddr,
    control: Arc<Control>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Origin {
    /// Starts a plain HTTP origin that names itself `id` in every answer.
    pub fn start(id: &str) -> Origin {
        Self::start_on(id, "127.0.0.1:0", None)
    }

    /// Starts a TLS origin.
    pub fn start_tls(id: &str, tls: TlsOrigin) -> Origin {
        Self::start_on(id, "127.0.0.1:0", Some(tls))
    }

    /// Starts an origin on a given address (e.g. `[::1]:0`, or a port to reuse).
    pub fn start_on(id: &str, bind: &str, tls: Option<TlsOrigin>) -> Origin {
        let std_listener = std::net::TcpListener::bind(bind).expect("bind origin");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("origin addr");
        let acceptor = tls.map(|t| {
            let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("ssl");
            b.set_certificate_chain_file(&t.cert).expect("cert");
            b.set_private_key_file(&t.key, SslFiletype::PEM)
                .expect("key");
            if let Some(ca) = &t.client_ca {
                b.set_ca_file(ca).expect("client ca");
                b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
            }
            Arc::new(b.build())
        });
        let control = Arc::new(Control {
            health: AtomicU16::new(200),
            forced: AtomicU16::new(0),
            delay_ms: AtomicU64::new(0),
            hits: AtomicUsize::new(0),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server_id = id.to_string();
        let ctl = control.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("origin runtime");
            rt.block_on(serve(std_listener, server_id, acceptor, ctl, rx));
        });
        Origin {
            id: id.to_string(),
            addr,
            control,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The status `/health` answers with from now on.
    pub fn set_health(&self, status: u16) {
        self.control.health.store(status, Ordering::SeqCst);
    }

    /// Every path but `/health` answers with `status` from now on (0 = normal answers).
    pub fn force_status(&self, status: u16) {
        self.control.forced.store(status, Ordering::SeqCst);
    }

    /// Every answer waits this long first.
    pub fn set_delay(&self, delay: Duration) {
        self.control
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests answered so far (health probes included).
    pub fn hits(&self) -> usize {
        self.control.hits.load(Ordering::SeqCst)
    }

    /// Stops listening and closes every connection: from now on connections are refused.
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(
    std_listener: std::net::TcpListener,
    id: String,
    acceptor: Option<Arc<SslAcceptor>>,
    control: Arc<Control>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
    let connections = Arc::new(AtomicUsize::new(0));
    let id = Arc::new(id);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                // Dropping the listener and aborting the tasks closes every connection.
                tasks.abort_all();
                return;
            }
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let conn = connections.fetch_add(1, Ordering::Relaxed) + 1;
                let id = id.clone();
                let control = control.clone();
                let acceptor = acceptor.clone();
                tasks.spawn(async move {
                    match acceptor {
                        None => {
                            let service = service_fn(move |req| answer(req, id.clone(), conn, None, control.clone()));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            let Ok(ssl) = Ssl::new(acceptor.context()) else { return };
                            let Ok(mut tls) = tokio_openssl::SslStream::new(ssl, stream) else { return };
                            if Pin::new(&mut tls).accept().await.is_err() {
                                return;
                            }
                            let client_cn = tls.ssl().peer_certificate().and_then(|c| {
                                c.subject_name()
                                    .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                                    .next()
                                    .and_then(|e| e.data().to_string().ok())
                            });
                            let client_cn = Arc::new(client_cn);
                            let service = service_fn(move |req| {
                                answer(req, id.clone(), conn, (*client_cn).clone(), control.clone())
                            });
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                });
            }
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    id: Arc<String>,
    conn: usize,
    client_cert: Option<String>,
    control: Arc<Control>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    control.hits.fetch_add(1, Ordering::SeqCst);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes();
    let mut status = 200u16;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code.parse().unwrap_or(400);
    }
    if path == "/health" {
        status = control.health.load(Ordering::SeqCst);
    } else if control.forced.load(Ordering::SeqCst) != 0 {
        status = control.forced.load(Ordering::SeqCst);
    }
    let delay = control.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let json = serde_json::json!({
        "server": *id,
        "method": method,
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "conn": conn,
        "client_cert": client_cert,
    });
    let mut resp = Response::new(Full::new(Bytes::from(json.to_string())));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    for pair in query.split('&') {
        let Some(spec) = pair.strip_prefix("set_header=") else {
            continue;
        };
        let spec = spec
            .replace("%3A", ":")
            .replace("%20", " ")
            .replace("%2C", ",");
        if let Some((name, value)) = spec.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(value),
            ) {
                resp.headers_mut().append(n, v);
            }
        }
    }
    Ok(resp)
}
