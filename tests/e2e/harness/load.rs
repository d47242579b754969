//! A bounded load loop for "no request fails while …" tests: threads send `GET /` until told
//! to stop, counting answers and failures (a connection error, a cut answer, or a status
//! other than 200).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Never runs longer than this, whatever the test does.
const MAX_RUN: Duration = Duration::from_secs(120);

pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `threads` loops against `addr`. With `keep_alive`, each connection carries up to 100
    /// requests (so connections are also opened during the change under test); without,
    /// every request has its own connection.
    pub fn start(addr: SocketAddr, threads: usize, keep_alive: bool) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || run(addr, keep_alive, &stop, &ok, &failed))
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            threads,
        }
    }

    /// Stops the loops; returns (answered 200, failed).
    pub fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("load thread");
        }
        (
            self.ok.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }

    /// Answers so far.
    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }
}

fn run(
    addr: SocketAddr,
    keep_alive: bool,
    stop: &AtomicBool,
    ok: &AtomicUsize,
    failed: &AtomicUsize,
) {
    let deadline = Instant::now() + MAX_RUN;
    let per_connection = if keep_alive { 100 } else { 1 };
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let Ok(stream) = TcpStream::connect(addr) else {
            failed.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        for _ in 0..per_connection {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match one_request(&mut writer, &mut reader, keep_alive) {
                Ok(200) => ok.fetch_add(1, Ordering::SeqCst),
                _ => {
                    failed.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            };
        }
    }
}

fn one_request(
    writer: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    keep_alive: bool,
) -> std::io::Result<u16> {
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    writer.write_all(format!("GET / HTTP/1.1\r\nHost: localhost\r\n{close}\r\n").as_bytes())?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if header == "\r\n" {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(status)
}
