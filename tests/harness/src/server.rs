//! The real binary on a free port, its log, and the requests tests send it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Response, START_TIMEOUT, command, request, unsafe_kill, wait_timeout};

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub clips: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts the binary on a free port with a fresh clips directory.
    pub fn start(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let clips = tmp.path().join("clips");
        let mut s = Server::start_in(&clips, args);
        s._tmp = Some(tmp);
        s
    }

    /// Starts the binary with a given clips directory (for restarts).
    pub fn start_in(clips: &Path, args: &[&str]) -> Server {
        Server::start_wrapped(clips, args, &[])
    }

    /// Starts the binary with extra environment variables (secrets, `VR_*`).
    pub fn start_env(clips: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(clips, args, &[], env)
    }

    /// Starts the binary under a wrapper command (e.g. `prlimit --nofile=…`).
    pub fn start_wrapped(clips: &Path, args: &[&str], wrap: &[&str]) -> Server {
        Server::launch(clips, args, wrap, &[])
    }

    fn launch(clips: &Path, args: &[&str], wrap: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = if wrap.is_empty() {
            command()
        } else {
            let inner = command();
            let mut c = Command::new(wrap[0]);
            c.args(&wrap[1..])
                .arg(inner.get_program())
                .args(inner.get_args());
            for (k, _) in std::env::vars() {
                if k.starts_with("VR_") {
                    c.env_remove(k);
                }
            }
            c
        };
        cmd.envs(env.iter().copied());
        cmd.args(["--port", "0", "--host", "127.0.0.1", "--clips-dir"])
            .arg(clips)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn video-recorder");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("VRTEST_ECHO").is_some() {
                    eprintln!("[server] {line}");
                }
                if let Some(rest) = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1))
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim().to_string());
                }
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            log,
            clips: clips.to_path_buf(),
            _tmp: None,
        }
    }

    /// Keeps a temporary directory alive as long as the server.
    pub fn keep(&mut self, tmp: tempfile::TempDir) {
        self._tmp = Some(tmp);
    }

    /// Resident memory of the server process in KiB (under a runner, the
    /// emulator's, which holds the guest's memory).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Waits until the log contains `needle`, or panics after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        self.wait_log_since(0, needle, timeout)
    }

    /// How much has been logged so far: a mark for `wait_log_since`.
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits until what was logged after `mark` (a `log_len`) holds
    /// `needle`; returns that part of the log.
    pub fn wait_log_since(&self, mark: usize, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log().get(mark..).unwrap_or_default().to_string();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never said {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The ring buffer logged the deletion of each of these clips (the log
    /// is read from the server's stderr by a thread: it may lag the files).
    pub fn assert_deleted(&self, ids: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for old in ids {
            loop {
                let log = self.log();
                if log
                    .lines()
                    .any(|l| l.contains("deleted oldest clip") && l.contains(old.as_str()))
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no deletion logged for {old}:\n{log}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    /// Any method, no body.
    pub fn call(&self, method: &str, path: &str) -> Response {
        request(self.addr, method, path, &[], b"")
    }

    /// The server's process id (under a runner, the runner's: the same
    /// process for qemu-user).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("Content-Type", "application/json")]
        };
        request(self.addr, "POST", path, headers, body.as_bytes())
    }

    /// Waits until `/status` satisfies `pred`, or panics after `timeout`.
    pub fn wait_status(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.get("/status").json();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last status: {s:#}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends a signal and waits for the exit status.
    pub fn signal(&mut self, sig: i32) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // Under a runner the child is the runner (qemu), which forwards signals.
        unsafe_kill(pid, sig);
        wait_timeout(&mut self.child, Duration::from_secs(60)).expect("server did not exit")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
