//! An origin that reports each request piece as it arrives and holds back the end of its
//! answer until the test releases it: proof that bodies stream both ways, with channels
//! instead of sleeps.
//!
//! Every request is reported as [`Seen::Head`] (its header fields), one [`Seen::Piece`]
//! per body frame, then [`Seen::End`]. The answer (chunked) is `first-piece` at once,
//! then `rest` after [`StreamOrigin::release`].

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// How long a test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the origin saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Head(Vec<(String, String)>),
    Piece(Bytes),
    End,
}

pub struct StreamOrigin {
    pub addr: SocketAddr,
    seen: mpsc::Receiver<Seen>,
    release: tokio::sync::mpsc::UnboundedSender<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A response body fed by a channel: each message is sent as soon as it comes.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

impl StreamOrigin {
    pub fn start() -> StreamOrigin {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind origin");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("origin addr");
        let (seen_tx, seen) = mpsc::channel();
        let (release, release_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let release_rx = Arc::new(tokio::sync::Mutex::new(release_rx));
        let (shutdown, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("origin runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let mut tasks = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = &mut shutdown_rx => { tasks.abort_all(); return; }
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let seen_tx = seen_tx.clone();
                            let release_rx = release_rx.clone();
                            tasks.spawn(async move {
                                let service = service_fn(move |req| {
                                    answer(req, seen_tx.clone(), release_rx.clone())
                                });
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        StreamOrigin {
            addr,
            seen,
            release,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The next thing the origin saw; panics after [`WAIT`].
    pub fn next(&self) -> Seen {
        self.seen
            .recv_timeout(WAIT)
            .expect("the origin saw nothing in time")
    }

    /// Whether the origin saw nothing (yet): what is pending now, without waiting.
    pub fn saw_nothing(&self) -> bool {
        self.seen.try_recv().is_err()
    }

    /// Lets one held answer send its `rest`.
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}

impl Drop for StreamOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    seen: mpsc::Sender<Seen>,
    release: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<()>>>,
) -> Result<Response<ChannelBody>, hyper::Error> {
    let head = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let _ = seen.send(Seen::Head(head));
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            let _ = seen.send(Seen::Piece(data.clone()));
        }
    }
    let _ = seen.send(Seen::End);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let _ = tx.send(Bytes::from_static(b"first-piece")).await;
    tokio::spawn(async move {
        if release.lock().await.recv().await.is_some() {
            let _ = tx.send(Bytes::from_static(b"rest")).await;
        }
    });
    Ok(Response::new(ChannelBody(rx)))
}

/// Reads from `stream` until `needle` appeared in what was read; returns it all.
pub fn read_until(stream: &mut TcpStream, needle: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(needle.len()).any(|w| w == needle) {
        assert!(Instant::now() < deadline, "no {needle:?} in time");
        let n = stream.read(&mut chunk).expect("read from pylon");
        assert!(
            n > 0,
            "connection closed before {:?}: {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
    buf
}
