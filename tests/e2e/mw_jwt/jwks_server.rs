//! A JWKS endpoint for the tests: a real HTTP/1.1 server (plain, or TLS with a given
//! certificate) on a loopback ephemeral port, in its own thread, answering every request
//! with the status and body the test set last, and counting the requests it read.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};

struct Shared {
    answer: Mutex<(u16, String)>,
    hits: AtomicUsize,
    stop: AtomicBool,
}

pub struct JwksServer {
    pub addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JwksServer {
    /// Serves `body` with 200 until told otherwise.
    pub fn start(body: &str) -> JwksServer {
        Self::start_with(body, None)
    }

    /// The same over TLS with this certificate chain and key (PEM files).
    pub fn start_tls(body: &str, cert: &Path, key: &Path) -> JwksServer {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("ssl");
        b.set_certificate_chain_file(cert).expect("cert");
        b.set_private_key_file(key, SslFiletype::PEM).expect("key");
        Self::start_with(body, Some(b.build()))
    }

    fn start_with(body: &str, tls: Option<SslAcceptor>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind jwks server");
        let addr = listener.local_addr().expect("jwks addr");
        let shared = Arc::new(Shared {
            answer: Mutex::new((200, body.to_string())),
            hits: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let is_tls = tls.is_some();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                match &tls {
                    None => serve(stream, &s),
                    // A client that refuses the certificate ends here, unserved.
                    Some(acceptor) => {
                        if let Ok(tls_stream) = acceptor.accept(stream) {
                            serve(tls_stream, &s);
                        }
                    }
                }
            }
        });
        JwksServer {
            addr,
            tls: is_tls,
            shared,
            thread: Some(thread),
        }
    }

    /// The URL of the key set (`https://localhost:PORT/…` over TLS).
    pub fn url(&self) -> String {
        if self.tls {
            format!(
                "https://localhost:{}/.well-known/jwks.json",
                self.addr.port()
            )
        } else {
            format!("http://{}/.well-known/jwks.json", self.addr)
        }
    }

    /// From now on, answer with `status` and `body`.
    pub fn set(&self, status: u16, body: &str) {
        *self.shared.answer.lock().unwrap() = (status, body.to_string());
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: impl Read + Write, shared: &Shared) {
    // Read the request head; the body of a GET is empty.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let (status, body) = shared.answer.lock().unwrap().clone();
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
