//! The black-box test harness: real origin servers, the real `pylon` binary, and a small
//! HTTP/1.1 client that can say exactly what goes on the wire.
//!
//! Everything binds loopback ephemeral ports; processes are reaped on drop; readiness is
//! polled, never slept for.

#![allow(dead_code)]

pub mod client;
pub mod configs;
pub mod etcd;
pub mod load;
pub mod origin;
pub mod pki;
pub mod pylon;
pub mod redis;
pub mod stream_origin;
pub mod tempdir;
pub mod webhook;

pub use client::Client;

/// A loopback address nothing listens on (a port the OS just handed out and took back):
/// a dead server for tests of connect failures.
pub fn closed_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}
/// A plain TCP server on a loopback port for tests that must see or write raw bytes: each
/// accepted connection gets its own thread running `serve`. It lives as long as the test
/// binary (threads blocked in `accept` hold nothing else).
pub fn raw_server(
    serve: impl Fn(std::net::TcpStream) + Send + Sync + 'static,
) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind raw server");
    let addr = listener.local_addr().expect("raw server address");
    let serve = std::sync::Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

pub use origin::Origin;
pub use pylon::Pylon;
