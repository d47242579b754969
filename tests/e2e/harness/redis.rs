//! A real `redis-server` (Debian's package) on a loopback ephemeral port with its own temp
//! dir, stopped by pid on drop.
//!
//! Started as `redis-server --port P --bind 127.0.0.1 --save "" --appendonly no --dir TMP`
//! (nothing persisted), then polled with `PING` until it answers `PONG`. Never the system's
//! Redis on 6379. [`Redis::command`] speaks RESP directly, so tests need no client crate.

use super::tempdir::TempDir;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;

pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl Redis {
    /// Starts a fresh server on a free port.
    pub fn start() -> Redis {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            match Self::start_on(port) {
                Ok(redis) => return redis,
                // The port may have been taken between the probe and redis' bind.
                Err(why) => last = why,
            }
        }
        panic!("redis-server did not start: {last}");
    }

    /// Starts a server on this port (to bring a stopped one back where clients expect it).
    pub fn start_on(port: u16) -> Result<Redis, String> {
        let dir = TempDir::new("redis");
        let log = std::fs::File::create(dir.path().join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot run redis-server ({e}): install it (scripts/install-deps.sh)")
            })?;
        let mut redis = Redis {
            child: Some(child),
            port,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = redis.child.as_mut().map(Child::try_wait) {
                let log = redis.log();
                redis.child = None;
                return Err(format!("redis-server exited: {status}\n{log}"));
            }
            if redis.try_command(&["PING"]).as_deref() == Ok("PONG") {
                return Ok(redis);
            }
            if Instant::now() > deadline {
                redis.stop();
                return Err(format!("no PONG within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command; its reply as text (a status, a number, a string, or an array's
    /// items joined by newlines; a nil reply is `(nil)`).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args)
            .unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
    }

    fn try_command(&self, args: &[&str]) -> Result<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut raw = format!("*{}\r\n", args.len());
        for a in args {
            raw.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream
            .write_all(raw.as_bytes())
            .map_err(|e| e.to_string())?;
        read_reply(&mut BufReader::new(stream))
    }

    /// Stops the server (kill by pid, then reap).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

fn read_reply(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_string()),
        "-" => Err(rest.to_string()),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad length {rest:?}"))?;
            if len < 0 {
                return Ok("(nil)".into());
            }
            let mut buf = vec![0; len as usize + 2];
            r.read_exact(&mut buf).map_err(|e| e.to_string())?;
            buf.truncate(len as usize);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        "*" => {
            let n: i64 = rest.parse().map_err(|_| format!("bad count {rest:?}"))?;
            let items = (0..n.max(0))
                .map(|_| read_reply(r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(items.join("\n"))
        }
        _ => Err(format!("unexpected reply {line:?}")),
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
