//! A real single-member etcd (`/usr/bin/etcd`, Debian's `etcd-server`) on loopback
//! ephemeral client and peer ports, with its data in a temp dir; stopped by pid on drop.
//! It can be stopped and started again on the same ports and data (the same cluster, as
//! after a crash and restart).

use super::pylon::free_addr;
use super::tempdir::TempDir;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ETCD: &str = "/usr/bin/etcd";
const ETCDCTL: &str = "/usr/bin/etcdctl";
/// How long etcd may take to become healthy (a busy 2-core CI).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Etcd {
    child: Option<Child>,
    pub client: SocketAddr,
    peer: SocketAddr,
    dir: TempDir,
    starts: usize,
}

impl Etcd {
    /// Starts etcd and waits until it is healthy.
    pub fn start() -> Etcd {
        let mut held = Vec::new();
        let client = free_addr("127.0.0.1", &mut held);
        let peer = free_addr("127.0.0.1", &mut held);
        drop(held);
        let mut etcd = Etcd {
            child: None,
            client,
            peer,
            dir: TempDir::new("etcd"),
            starts: 0,
        };
        etcd.spawn();
        etcd
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("etcd-{}.log", self.starts)))
            .expect("etcd log");
        let client = format!("http://{}", self.client);
        let peer = format!("http://{}", self.peer);
        let child = Command::new(ETCD)
            .arg("--name=e2e")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=e2e={peer}"))
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn etcd (the etcd-server package: scripts/install-deps.sh)");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited during start: {status}\n{}", self.log());
            }
            if self.healthy() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy within {START_TIMEOUT:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// etcd's `/health` answers `"health":"true"`.
    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.client, Duration::from_millis(200))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.contains("\"health\":\"true\"")
    }

    /// `http://127.0.0.1:PORT`, for `config.endpoints`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Kills etcd (by its pid) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data, and waits until it is healthy.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `etcdctl ARGS…` against this etcd.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new(ETCDCTL)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    /// `etcdctl put KEY VALUE`, which must succeed.
    pub fn put(&self, key: &str, value: &str) {
        let out = self.ctl(&["put", key, value]);
        assert!(
            out.status.success(),
            "etcdctl put {key} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The value of `key`, if it exists.
    pub fn get(&self, key: &str) -> Option<String> {
        let out = self.ctl(&["get", key, "--print-value-only"]);
        assert!(out.status.success(), "etcdctl get {key} failed");
        let text = String::from_utf8_lossy(&out.stdout).trim_end().to_string();
        (!text.is_empty()).then_some(text)
    }

    /// What etcd logged (every start).
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("etcd-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- etcd log ----\n{}", self.log());
        }
    }
}
