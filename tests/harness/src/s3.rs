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

/// The credentials the harness signs with (moto takes any).
const ACCESS_KEY: &str = "test";
const SECRET_KEY: &str = "test";
const REGION: &str = "us-east-1";

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
            if try_request(addr, "GET", "/", &[], b"").is_ok_and(|r| r.status == 200) {
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
        signed_request(self.addr(), method, path, query, headers, body).unwrap_or_else(|e| {
            panic!(
                "{method} {path} {query:?} to moto: {e}\n{}",
                self.log_tail()
            )
        })
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

    /// CreateBucket (path style).
    pub fn create_bucket(&self, name: &str) {
        let r = self.call("PUT", &format!("/{name}"), &[], &[], b"");
        self.expect_ok(&format!("create bucket {name}"), &r);
    }

    /// Every object's key and size (ListObjectsV2, all pages), in key order.
    pub fn list(&self, bucket: &str) -> Vec<(String, u64)> {
        self.list_paged(bucket, 1000)
    }

    fn list_paged(&self, bucket: &str, page: usize) -> Vec<(String, u64)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("list-type", "2"), ("max-keys", page.as_str())];
            if let Some(t) = &token {
                q.push(("continuation-token", t));
            }
            let r = self.call("GET", &format!("/{bucket}"), &q, &[], b"");
            self.expect_ok(&format!("list {bucket}"), &r);
            let xml = r.text();
            for c in elements(&xml, "Contents") {
                let key = element(c, "Key").unwrap_or_else(|| panic!("no Key in {c}"));
                let size = element(c, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no Size in {c}"));
                out.push((key, size));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            token = Some(
                element(&xml, "NextContinuationToken")
                    .unwrap_or_else(|| panic!("truncated, no NextContinuationToken: {xml}")),
            );
        }
    }

    /// GetObject: the bytes, or `None` if there is no such key.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = self.call("GET", &format!("/{bucket}/{key}"), &[], &[], b"");
        if r.status == 404 {
            return None;
        }
        self.expect_ok(&format!("get {bucket}/{key}"), &r);
        Some(r.body)
    }

    /// HeadObject: size and ETag (without its quotes: the MD5 in hex for a
    /// single PUT, `<md5 of the parts' MD5s>-<parts>` after a multipart
    /// upload), or `None` if there is no such key.
    pub fn head(&self, bucket: &str, key: &str) -> Option<(u64, String)> {
        let r = self.call("HEAD", &format!("/{bucket}/{key}"), &[], &[], b"");
        if r.status == 404 {
            return None;
        }
        self.expect_ok(&format!("head {bucket}/{key}"), &r);
        let size = r
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("HEAD {bucket}/{key}: no Content-Length: {r:?}"));
        let etag = r
            .header("ETag")
            .unwrap_or_else(|| panic!("HEAD {bucket}/{key}: no ETag: {r:?}"));
        Some((size, etag.trim_matches('"').to_string()))
    }

    /// The multipart uploads begun and neither completed nor aborted: key
    /// and upload id (ListMultipartUploads, all pages).
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<(String, String)> {
        self.multipart_uploads_paged(bucket, 1000)
    }

    fn multipart_uploads_paged(&self, bucket: &str, page: usize) -> Vec<(String, String)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q = vec![("uploads", ""), ("max-uploads", page.as_str())];
            if let Some((k, u)) = &markers {
                q.push(("key-marker", k));
                q.push(("upload-id-marker", u));
            }
            let r = self.call("GET", &format!("/{bucket}"), &q, &[], b"");
            self.expect_ok(&format!("list multipart uploads in {bucket}"), &r);
            let xml = r.text();
            for u in elements(&xml, "Upload") {
                let key = element(u, "Key").unwrap_or_else(|| panic!("no Key in {u}"));
                let id = element(u, "UploadId").unwrap_or_else(|| panic!("no UploadId in {u}"));
                out.push((key, id));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            let next = |tag| {
                element(&xml, tag)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| panic!("truncated, no {tag}: {xml}"))
            };
            markers = Some((next("NextKeyMarker"), next("NextUploadIdMarker")));
        }
    }

    /// The parts an upload holds so far: number and size (ListParts, all
    /// pages), in part order.
    pub fn parts(&self, bucket: &str, key: &str, upload_id: &str) -> Vec<(u32, u64)> {
        self.parts_paged(bucket, key, upload_id, 1000)
    }

    fn parts_paged(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        page: usize,
    ) -> Vec<(u32, u64)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut q = vec![("uploadId", upload_id), ("max-parts", page.as_str())];
            if let Some(m) = &marker {
                q.push(("part-number-marker", m));
            }
            let r = self.call("GET", &format!("/{bucket}/{key}"), &q, &[], b"");
            self.expect_ok(&format!("list parts of {bucket}/{key} {upload_id}"), &r);
            let xml = r.text();
            for p in elements(&xml, "Part") {
                let n = element(p, "PartNumber").and_then(|s| s.parse().ok());
                let size = element(p, "Size").and_then(|s| s.parse().ok());
                let (Some(n), Some(size)) = (n, size) else {
                    panic!("no PartNumber or Size in {p}");
                };
                out.push((n, size));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            marker = Some(
                element(&xml, "NextPartNumberMarker")
                    .unwrap_or_else(|| panic!("truncated, no NextPartNumberMarker: {xml}")),
            );
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

mod proxy;
mod wire;

pub use proxy::{CORRUPT_AT, CorruptingProxy};
use wire::*;

#[cfg(test)]
mod tests;
