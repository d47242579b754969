//! Starts the real `pylon` binary on a config written by the test.
//!
//! Listener addresses are chosen by the harness, never fixed: the config text names them as
//! `@listen0@`, `@listen1@`, … (IPv4) and `@v6listen0@`, … (IPv6), or the test names
//! environment variables (`port_env`) that the config reads with `${VAR}`. The harness picks
//! free loopback ports, starts Pylon, and polls each listener until it accepts connections.
//! If Pylon exits during start because a port was taken in the meantime, it retries with
//! fresh ports. The process is killed and reaped on drop; its log is printed if the test
//! failed.

use super::tempdir::TempDir;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long Pylon may take to start listening (a cold debug binary on a busy 2-core CI).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const START_ATTEMPTS: usize = 3;
const MAX_LISTENERS: usize = 4;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_pylon")
}

/// Runs `pylon ARGS…` to completion (for `check`, `schema`).
pub fn run_cli(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).env_remove("RUST_LOG");
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.output().expect("run pylon")
}

/// Writes `yaml` as `pylon.yaml` in a fresh temp dir, runs `pylon check` on it, checks that
/// it is refused, and returns what it printed (stderr, then stdout).
pub fn check_refuses(yaml: &str) -> String {
    let dir = super::tempdir::TempDir::new("check");
    let path = dir.write("pylon.yaml", yaml);
    let out = run_cli(&["check", "-c", path.to_str().expect("utf-8 path")], None);
    assert!(!out.status.success(), "pylon check accepted:\n{yaml}");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

/// A free port on `ip`. The probe socket is kept in `held` until every port of a start is
/// chosen, so that one start never gets the same port twice.
pub(super) fn free_addr(ip: &str, held: &mut Vec<TcpListener>) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).expect("free port");
    let addr = listener.local_addr().expect("free port");
    held.push(listener);
    addr
}

/// How to start Pylon.
pub struct Builder {
    text: String,
    file_name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port_env: Vec<String>,
    extra_files: Vec<(String, String)>,
    bind: bool,
    config_dir: Option<String>,
}

impl Builder {
    /// Directory mode: the config file is written in the subdirectory `dir` of the temp
    /// dir (with the `file`s named `dir/…`), and Pylon runs with `-c dir`.
    pub fn config_dir(mut self, dir: &str) -> Self {
        self.config_dir = Some(dir.to_string());
        self
    }

    /// Passes `--bind 127.0.0.1:PORT` (a free port) and waits for Pylon to listen there.
    pub fn bind_flag(mut self) -> Self {
        self.bind = true;
        self
    }

    /// The config file's name (its extension picks the format).
    pub fn file_name(mut self, name: &str) -> Self {
        self.file_name = name.to_string();
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets env var `name` to a free `127.0.0.1:PORT` and waits for Pylon to listen there.
    pub fn port_env(mut self, name: &str) -> Self {
        self.port_env.push(name.to_string());
        self
    }

    /// Another file written beside the config (e.g. `.env`).
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.extra_files
            .push((name.to_string(), contents.to_string()));
        self
    }

    pub fn start(self) -> Pylon {
        let mut last_output = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = TempDir::new("pylon");
            let mut config = self.text.clone();
            let mut listeners = Vec::new();
            let mut held = Vec::new();
            for (prefix, ip) in [("@listen", "127.0.0.1"), ("@v6listen", "::1")] {
                for i in 0..MAX_LISTENERS {
                    let token = format!("{prefix}{i}@");
                    if config.contains(&token) {
                        let addr = free_addr(ip, &mut held);
                        config = config.replace(&token, &addr.to_string());
                        listeners.push(addr);
                    }
                }
            }
            let mut env = self.env.clone();
            for name in &self.port_env {
                let addr = free_addr("127.0.0.1", &mut held);
                env.push((name.clone(), addr.to_string()));
                listeners.push(addr);
            }
            let mut args = self.args.clone();
            if self.bind {
                let addr = free_addr("127.0.0.1", &mut held);
                args.extend(["--bind".to_string(), addr.to_string()]);
                listeners.push(addr);
            }
            for (name, contents) in &self.extra_files {
                dir.write(name, contents);
            }
            drop(held);
            let (config_path, config_arg) = match &self.config_dir {
                Some(sub) => {
                    let path = dir.write(&format!("{sub}/{}", self.file_name), &config);
                    (path, dir.path().join(sub))
                }
                None => {
                    let path = dir.write(&self.file_name, &config);
                    (path.clone(), path)
                }
            };
            let mut pylon = Pylon {
                child: None,
                listeners,
                dir,
                config_path,
                config_arg,
                args,
                env,
            };
            pylon.spawn();
            match pylon.wait_ready() {
                Ok(()) => return pylon,
                Err(why) => {
                    pylon.stop();
                    last_output = format!("{why}\n{}", pylon.log());
                    // A port may have been taken between our probe and Pylon's bind: try
                    // again with fresh ports, but do not loop on a config that never starts.
                    if !last_output.contains("Address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("pylon did not start: {last_output}");
    }
}

pub struct Pylon {
    child: Option<Child>,
    /// Every listener address the harness chose, in the order described in the module docs.
    pub listeners: Vec<SocketAddr>,
    pub dir: TempDir,
    pub config_path: PathBuf,
    /// What `-c` names: the config file, or its directory in directory mode.
    pub config_arg: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Pylon {
    /// Starts the process (its output appended to `pylon.log`).
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("pylon.log"))
            .expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg("-c")
            .arg(&self.config_arg)
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn pylon"));
    }

    /// Stops this Pylon and starts it again with the same command line, files and ports,
    /// waiting until it listens again.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
        if let Err(why) = self.wait_ready() {
            panic!("pylon did not start again: {why}\n{}", self.log());
        }
    }

    /// Starts Pylon on a YAML config (see the module docs for `@listenN@`).
    pub fn start(yaml: &str) -> Pylon {
        Self::builder(yaml).start()
    }

    pub fn builder(text: &str) -> Builder {
        Builder {
            text: text.to_string(),
            file_name: "pylon.yaml".to_string(),
            args: Vec::new(),
            env: Vec::new(),
            port_env: Vec::new(),
            extra_files: Vec::new(),
            bind: false,
            config_dir: None,
        }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in self.listeners.clone() {
            loop {
                if let Some(child) = self.child.as_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("pylon exited during start: {status}"));
                    }
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "pylon did not listen on {addr} within {START_TIMEOUT:?}"
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// The first listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0]
    }

    pub fn client(&self) -> super::Client {
        super::Client::new(self.addr())
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends `signal` (`"HUP"`, …) to this Pylon.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Replaces the config file as an editor does (a temp file renamed over it), with
    /// `@listenN@` standing for the listeners Pylon was started with.
    pub fn rewrite_config(&self, text: &str) {
        let mut text = text.to_string();
        for (i, addr) in self.listeners.iter().enumerate() {
            text = text.replace(&format!("@listen{i}@"), &addr.to_string());
        }
        let tmp = self.config_path.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &self.config_path).expect("replace config");
    }

    /// Waits until `log()` contains `needle` (at most 10 s); returns whether it did.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts a second Pylon on the same config with `-u`: it takes the listening sockets
    /// over from this one once this one gets SIGQUIT (Pingora's graceful upgrade).
    pub fn start_successor(&self) -> Successor {
        let log_path = self.dir.path().join("successor.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config_path)
            .arg("-u")
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn successor");
        Successor { child, log_path }
    }

    /// What Pylon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pylon.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Pylon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- pylon log ----\n{}", self.log());
        }
    }
}

/// A Pylon started with `-u` by [`Pylon::start_successor`]; killed and reaped on drop (its
/// log lives in the first one's directory).
pub struct Successor {
    child: Child,
    log_path: PathBuf,
}

impl Successor {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- successor log ----\n{}", self.log());
        }
    }
}
