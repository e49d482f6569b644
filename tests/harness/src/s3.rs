//! A real S3 API server for the upload tests: moto in server mode
//! (`moto_server`, from the CI venv) on a free loopback port, which can stop
//! and come back on the same port (empty: moto keeps nothing), with a few
//! S3 calls of our own to look at what arrived (path-style, SigV4-signed);
//! and a TCP proxy that damages the body of the first PUTs on their way.
//!
//! moto checks no signature, but without an `Authorization` header a
//! request is anonymous, and reading or overwriting an existing object
//! anonymously is a 403; so we sign, as a real client does. It verifies no
//! `Content-MD5` nor `x-amz-checksum-*` either: a damaged body is stored as
//! it came, and only its ETag (the body's MD5) tells.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::client::{Response, try_request};
use super::process::BIND_RETRY;

/// Longest moto may take to answer its first request (about 0.6 s on an
/// idle machine: Python importing moto and Flask).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const REGION: &str = "us-east-1";

/// An access key: its id and secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    pub id: String,
    pub secret: String,
}

impl Key {
    pub fn new(id: &str, secret: &str) -> Key {
        Key {
            id: id.into(),
            secret: secret.into(),
        }
    }
}

/// Where `.ci/run` installs moto (its `$VENV`).
fn ci_venv() -> PathBuf {
    if let Some(v) = std::env::var_os("VR_CI_VENV") {
        return PathBuf::from(v);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    cache.join("video-recorder-ci/venv")
}

fn executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$VR_MOTO_SERVER`, else `moto_server` on `PATH`, else the CI venv's.
fn moto_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VR_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("moto_server"))
            .find(|p| executable(p))
    });
    on_path.or_else(|| Some(ci_venv().join("bin/moto_server")).filter(|p| executable(p)))
}

/// A loopback port nobody listens on just now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

enum Launch {
    Up(Child),
    /// The port could not be bound.
    Busy,
}

/// `moto_server` on a free loopback port.
pub struct S3Server {
    program: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    port: u16,
    /// What the harness signs with: any key while moto checks none; the
    /// IAM user's once it does (`start_iam`).
    pub key: Key,
    /// IAM on: readiness is a TCP connect (an HTTP probe would use up one
    /// of moto's unauthenticated requests).
    iam: bool,
    /// moto's output (a line a request) over every launch.
    log: tempfile::NamedTempFile,
}

impl S3Server {
    /// moto on a free loopback port, answering; `None` (after printing why)
    /// when moto is missing; panics under `CI_REQUIRE_TOOLS=1`.
    pub fn start() -> Option<S3Server> {
        S3Server::start_with_env(&[])
    }

    /// Like `start`, with these in moto's environment, e.g.
    /// `S3_UPLOAD_PART_MIN_SIZE` (bytes; 5 MiB by default) to allow small
    /// parts in a multipart upload. They are read when moto starts, and kept
    /// for `restart`.
    pub fn start_with_env(env: &[(&str, &str)]) -> Option<S3Server> {
        let Some(program) = moto_server() else {
            super::skip(
                "moto_server not found ($VR_MOTO_SERVER, PATH, or the CI venv): \
                 pip install \"moto[server]\" (.ci/run does, in its venv)",
            );
            return None;
        };
        let mut s3 = S3Server {
            program,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
            port: 0,
            key: Key::new("test", "test"),
            iam: env
                .iter()
                .any(|(k, _)| *k == "INITIAL_NO_AUTH_ACTION_COUNT"),
            log: tempfile::NamedTempFile::new().expect("temp file for moto's log"),
        };
        // A port free a moment ago may be taken by the time moto binds it.
        for _ in 0..5 {
            let port = free_port();
            if let Launch::Up(child) = s3.launch(port) {
                s3.child = Some(child);
                s3.port = port;
                return Some(s3);
            }
        }
        panic!("no free port for moto_server:\n{}", s3.log());
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Whether the server process is up.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What moto printed, over every launch.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The server goes away (SIGKILL) with everything in it, and is waited for.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (stopping it first if it runs) on the same port,
    /// retrying for a while if the port is still busy. It comes back
    /// empty: buckets are to be created again.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port;
        let up = super::process::while_port_busy(|| match self.launch(port) {
            Launch::Up(child) => Some(child),
            Launch::Busy => None,
        });
        match up {
            Some(child) => self.child = Some(child),
            None => panic!(
                "port {port} still busy after {BIND_RETRY:?}:\n{}",
                self.log()
            ),
        }
    }

    /// Runs moto on `port` and waits until it answers `GET /`.
    fn launch(&mut self, port: u16) -> Launch {
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log.path())
            .expect("open moto's log");
        let start = log.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        let _ = writeln!(log, "--- moto_server -p {port} {:?}", self.env);
        let mut child = Command::new(&self.program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("moto's log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.program.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log();
                let this = log.get(start..).unwrap_or("");
                if this.contains("already in use") {
                    return Launch::Busy;
                }
                panic!("moto_server exited ({status}):\n{log}");
            }
            let ready = if self.iam {
                TcpStream::connect(addr).is_ok()
            } else {
                try_request(addr, "GET", "/", &[], b"").is_ok_and(|r| r.status == 200)
            };
            if ready {
                return Launch::Up(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "moto_server not answering within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A signed request to this server: `path` unencoded (`/bucket/key`),
    /// `query` as pairs (unencoded; a flag such as `uploads` with "").
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        signed_request(self.addr(), &self.key, method, path, query, headers, body).unwrap_or_else(
            |e| {
                panic!(
                    "{method} {path} {query:?} to moto: {e}\n{}",
                    self.log_tail()
                )
            },
        )
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn expect_ok(&self, what: &str, r: &Response) {
        assert!(
            (200..300).contains(&r.status),
            "{what}: {} {}\n{}",
            r.status,
            r.text(),
            self.log_tail()
        );
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

mod front;
mod gate;
mod iam;
mod look;
mod proxy;
pub mod recorder;
mod stub;
mod wire;

pub use front::TlsFront;
pub use gate::Head;
pub use proxy::{CORRUPT_AT, Checks, CorruptingProxy, Look};
pub use stub::{Behaviour, StubS3};
pub use wire::amz_date;
use wire::*;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_modes;
