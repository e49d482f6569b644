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

/// One S3 request over a fresh connection (`Connection: close`), signed
/// with SigV4 (`UNSIGNED-PAYLOAD`) as `test`/`test` in us-east-1.
fn signed_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let host = addr.to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let amz_date = amz_date(now);
    let payload = "UNSIGNED-PAYLOAD";
    let mut signed: Vec<(&str, &str)> = vec![
        ("host", &host),
        ("x-amz-content-sha256", payload),
        ("x-amz-date", &amz_date),
    ];
    signed.extend_from_slice(headers);
    let uri = uri_encode(path, false);
    let query = canonical_query(query);
    let authorization = sigv4(
        method, &uri, &query, &signed, payload, &amz_date, ACCESS_KEY, SECRET_KEY,
    );
    let target = if query.is_empty() {
        uri
    } else {
        format!("{uri}?{query}")
    };
    let mut all: Vec<(&str, &str)> = signed[1..].to_vec();
    all.push(("Authorization", &authorization));
    // moto reads a body sent as a form (curl's default type) as text, and
    // one that is not UTF-8 hangs the request; say what it is.
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        all.push(("Content-Type", "application/octet-stream"));
    }
    try_request(addr, method, &target, &all, body)
}

/// `YYYYMMDDTHHMMSSZ` for seconds since 1970 (UTC).
fn amz_date(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Days to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// SigV4's URI encoding: all but the unreserved characters, and `/` too
/// unless it separates a path's segments.
fn uri_encode(s: &str, slash: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' if !slash => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The query string, encoded and sorted: what is sent and what is signed.
fn canonical_query(query: &[(&str, &str)]) -> String {
    let sorted: BTreeMap<String, String> = query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `Authorization` header of AWS Signature Version 4 for S3:
/// `uri` and `query` already canonical, every header in `headers` signed.
#[allow(clippy::too_many_arguments)]
fn sigv4(
    method: &str,
    uri: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    amz_date: &str,
    access_key: &str,
    secret_key: &str,
) -> String {
    let canon: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let canonical_headers: String = canon.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = canon.keys().cloned().collect::<Vec<_>>().join(";");
    let request =
        format!("{method}\n{uri}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let day = &amz_date[..8];
    let scope = format!("{day}/{REGION}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret_key}").as_bytes(), day.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, \
         SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// The insides of every `<tag>…</tag>` in `xml`, in order (not nested in
/// itself; S3's answers never are).
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The text of the first `<tag>` (entities decoded), `""` for `<tag/>`.
fn element(xml: &str, tag: &str) -> Option<String> {
    let first = elements(xml, tag).into_iter().next().map(unescape);
    first.or_else(|| xml.contains(&format!("<{tag}/>")).then(String::new))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Where in a PUT's body the proxy damages a byte (the last byte of a
/// shorter body).
pub const CORRUPT_AT: usize = 100;

/// A TCP proxy to `upstream` on a free loopback port that flips one byte
/// (`CORRUPT_AT` into the body) of the first `n` PUT requests with a
/// `Content-Length` body, passing everything else through unchanged.
/// Requests are read head by head, so a connection may carry several; a
/// chunked body is passed on as it is, with the rest of its connection,
/// and not counted. Answers come back as they are.
pub struct CorruptingProxy {
    addr: SocketAddr,
    corrupted: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

impl CorruptingProxy {
    pub fn start(upstream: SocketAddr, corrupt_puts: usize) -> CorruptingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let corrupted = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (count, stop) = (corrupted.clone(), done.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = proxy_connection(conn, upstream, corrupt_puts, &count);
                });
            }
        });
        CorruptingProxy {
            addr,
            corrupted,
            done,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many PUT bodies it has damaged so far.
    pub fn corrupted(&self) -> usize {
        self.corrupted.load(Ordering::SeqCst)
    }
}

impl Drop for CorruptingProxy {
    /// No new connections (those open go on until they close).
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn proxy_connection(
    client: TcpStream,
    upstream: SocketAddr,
    limit: usize,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream)?;
    // Answers: byte for byte, and the client's end closes with upstream's.
    let (mut up_r, mut client_w) = (up.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    let mut up_w = up;
    let result = forward_requests(&mut reader, &mut up_w, limit, count);
    let _ = up_w.shutdown(Shutdown::Write);
    result
}

fn forward_requests(
    reader: &mut BufReader<TcpStream>,
    up: &mut TcpStream,
    limit: usize,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    loop {
        // The head, as sent.
        let mut head = Vec::new();
        loop {
            let start = head.len();
            if reader.read_until(b'\n', &mut head)? == 0 {
                // The client closed (between requests, or cut one short).
                up.write_all(&head)?;
                return Ok(());
            }
            let line = &head[start..];
            if line == b"\r\n" || line == b"\n" {
                // Blank lines before a request line are allowed: skip them.
                if start == 0 {
                    head.clear();
                    continue;
                }
                break;
            }
            if head.len() > 1 << 20 {
                return Err(std::io::Error::other("request head over 1 MiB"));
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.lines();
        let method = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        let mut length: u64 = 0;
        let mut chunked = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
        up.write_all(&head)?;
        if chunked {
            // Unchanged, and no more heads to look at: the rest as it comes.
            std::io::copy(reader, up)?;
            return Ok(());
        }
        let target = (method == "PUT" && length > 0).then(|| (CORRUPT_AT as u64).min(length - 1));
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while sent < length {
            let want = buf.len().min((length - sent) as usize);
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(t) = target
                && (sent..sent + n as u64).contains(&t)
                && count
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                        (c < limit).then_some(c + 1)
                    })
                    .is_ok()
            {
                buf[(t - sent) as usize] ^= 0xff;
            }
            up.write_all(&buf[..n])?;
            sent += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Md5;

    const BUCKET: &str = "vr-test-bucket";

    fn md5_hex(b: &[u8]) -> String {
        hex(&Md5::digest(b))
    }

    /// Bytes that differ from one place to the next.
    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
            .collect()
    }

    fn put(s3: &S3Server, key: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
        s3.call("PUT", &format!("/{BUCKET}/{key}"), &[], headers, body)
    }

    #[test]
    fn hmac_sha256_vectors() {
        // RFC 4231, test cases 1, 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// AWS's own example (S3 GetObject, "Authenticating Requests: Using
    /// the Authorization Header", the first of the examples).
    #[test]
    fn sigv4_is_the_one_in_the_aws_example() {
        let empty = hex(&Sha256::digest(b""));
        let auth = sigv4(
            "GET",
            "/test.txt",
            "",
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", &empty),
                ("x-amz-date", "20130524T000000Z"),
            ],
            &empty,
            "20130524T000000Z",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn dates_and_encodings() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_782_400 + 86_399), "20000229T235959Z");
        assert_eq!(amz_date(4_102_444_800 - 1), "20991231T235959Z");
        assert_eq!(uri_encode("/b/a b+c/é~", false), "/b/a%20b%2Bc/%C3%A9~");
        assert_eq!(
            canonical_query(&[("uploads", ""), ("max-uploads", "1"), ("key-marker", "a/b")]),
            "key-marker=a%2Fb&max-uploads=1&uploads="
        );
        let xml = "<R><IsTruncated>false</IsTruncated><Prefix/><Contents><Key>a&amp;b</Key>\
                   <Size>3</Size></Contents><Contents><Key>c</Key><Size>4</Size></Contents></R>";
        assert_eq!(elements(xml, "Contents").len(), 2);
        assert_eq!(element(xml, "Key").as_deref(), Some("a&b"));
        assert_eq!(element(xml, "Prefix").as_deref(), Some(""));
        assert_eq!(element(xml, "Nope"), None);
    }

    /// A bucket, objects in it listed, read and looked at; what moto does
    /// with `If-None-Match: *` and with unsigned requests; and back on the
    /// same port, empty.
    #[test]
    fn objects_listed_read_and_gone_after_a_restart() {
        let t0 = Instant::now();
        let Some(mut s3) = S3Server::start() else {
            return;
        };
        eprintln!("moto answering after {:?}", t0.elapsed());
        assert_eq!(s3.endpoint(), format!("http://127.0.0.1:{}", s3.port()));
        s3.create_bucket(BUCKET);
        assert!(s3.list(BUCKET).is_empty());
        let (a, b) = (pattern(3000, 1), pattern(17, 2));
        for (key, body) in [("cam/2026-01-02/a.mp4", &a), ("cam/b.json", &b)] {
            let r = put(&s3, key, body, &[]);
            assert_eq!(r.status, 200, "{}", r.text());
            // A single PUT's ETag is its body's MD5.
            let etag = r.header("ETag").unwrap().trim_matches('"').to_string();
            assert_eq!(etag, md5_hex(body));
        }
        let want = vec![
            ("cam/2026-01-02/a.mp4".to_string(), 3000),
            ("cam/b.json".to_string(), 17),
        ];
        assert_eq!(s3.list(BUCKET), want);
        assert_eq!(s3.list_paged(BUCKET, 1), want, "one key a page");
        assert_eq!(s3.get(BUCKET, "cam/2026-01-02/a.mp4").unwrap(), a);
        assert_eq!(
            s3.head(BUCKET, "cam/2026-01-02/a.mp4"),
            Some((3000, md5_hex(&a)))
        );
        assert_eq!(s3.get(BUCKET, "cam/nope.mp4"), None);
        assert_eq!(s3.head(BUCKET, "cam/nope.mp4"), None);

        // If-None-Match: * is honoured: no overwrite.
        let again = put(&s3, "cam/b.json", &a, &[("If-None-Match", "*")]);
        assert_eq!(again.status, 412, "{}", again.text());
        assert!(
            again.text().contains("PreconditionFailed"),
            "{}",
            again.text()
        );
        assert_eq!(s3.get(BUCKET, "cam/b.json").unwrap(), b);
        let new = put(&s3, "cam/c.json", &b, &[("If-None-Match", "*")]);
        assert_eq!(new.status, 200, "{}", new.text());

        // Without an Authorization header moto takes a request as anonymous:
        // an existing object is then forbidden (a missing one is a 404).
        let anon = |m, k: &str| try_request(s3.addr(), m, &format!("/{BUCKET}/{k}"), &[], b"");
        assert_eq!(anon("GET", "cam/b.json").unwrap().status, 403);
        assert_eq!(anon("GET", "cam/nope.json").unwrap().status, 404);

        let port = s3.port();
        s3.stop();
        assert!(!s3.running());
        assert!(try_request(s3.addr(), "GET", "/", &[], b"").is_err());
        // Someone else on the port until moto has found it busy: the
        // restart waits it out.
        let squatter = TcpListener::bind(s3.addr()).unwrap();
        let log = s3.log.path().to_path_buf();
        let held = std::thread::spawn(move || {
            let deadline = Instant::now() + READY_TIMEOUT;
            while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("already in use")) {
                assert!(Instant::now() < deadline, "moto never found the port busy");
                std::thread::sleep(Duration::from_millis(20));
            }
            drop(squatter);
        });
        let t1 = Instant::now();
        s3.restart();
        eprintln!("restarted after {:?} (once busy)", t1.elapsed());
        held.join().unwrap();
        assert_eq!(s3.port(), port);
        assert!(s3.running());
        let r = s3.call(
            "GET",
            &format!("/{BUCKET}"),
            &[("list-type", "2")],
            &[],
            b"",
        );
        assert_eq!(r.status, 404, "the bucket is gone: {}", r.text());
        assert!(r.text().contains("NoSuchBucket"), "{}", r.text());
        s3.create_bucket(BUCKET);
        assert!(s3.list(BUCKET).is_empty());
    }

    /// Begins an upload of `parts` and returns its id and the parts' ETags.
    fn upload_parts(s3: &S3Server, key: &str, parts: &[Vec<u8>]) -> (String, Vec<String>) {
        let path = format!("/{BUCKET}/{key}");
        let r = s3.call("POST", &path, &[("uploads", "")], &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        let id = element(&r.text(), "UploadId").unwrap();
        let etags = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let n = (i + 1).to_string();
                let q = [("partNumber", n.as_str()), ("uploadId", id.as_str())];
                let r = s3.call("PUT", &path, &q, &[], p);
                assert_eq!(r.status, 200, "part {n}: {}", r.text());
                r.header("ETag").unwrap().to_string()
            })
            .collect();
        (id, etags)
    }

    fn complete(s3: &S3Server, key: &str, id: &str, etags: &[String]) -> Response {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            let e = e.replace('"', "&quot;");
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
                i + 1
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let q = [("uploadId", id)];
        let h = [("Content-Type", "application/xml")];
        s3.call("POST", &format!("/{BUCKET}/{key}"), &q, &h, xml.as_bytes())
    }

    /// Uploads in progress and their parts are listed (over pages); parts
    /// under 5 MiB complete only with `S3_UPLOAD_PART_MIN_SIZE` lowered, and
    /// the object's ETag is the MD5 of the parts' MD5s, then `-<parts>`.
    #[test]
    fn multipart_uploads_and_their_parts() {
        let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
            return;
        };
        s3.create_bucket(BUCKET);
        assert!(s3.multipart_uploads(BUCKET).is_empty());
        let parts = vec![pattern(2048, 1), pattern(2048, 2), pattern(100, 3)];
        let key = "cam/2026-01-02/m.mp4";
        let (id, etags) = upload_parts(&s3, key, &parts);
        let (other, _) = upload_parts(&s3, "cam/z.mp4", &parts[..1]);
        let mut uploads = vec![(key.to_string(), id.clone()), ("cam/z.mp4".into(), other)];
        uploads.sort();
        let mut listed = s3.multipart_uploads(BUCKET);
        listed.sort();
        assert_eq!(listed, uploads);
        let mut paged = s3.multipart_uploads_paged(BUCKET, 1);
        paged.sort();
        assert_eq!(paged, uploads, "one upload a page");
        let want = vec![(1, 2048), (2, 2048), (3, 100)];
        assert_eq!(s3.parts(BUCKET, key, &id), want);
        assert_eq!(s3.parts_paged(BUCKET, key, &id, 1), want, "one part a page");

        let r = complete(&s3, key, &id, &etags);
        assert_eq!(r.status, 200, "{}", r.text());
        let md5s: Vec<u8> = parts.iter().flat_map(|p| Md5::digest(p).to_vec()).collect();
        let etag = format!("{}-3", md5_hex(&md5s));
        let (size, got) = s3.head(BUCKET, key).unwrap();
        assert_eq!((size, got), (4196, etag));
        assert_eq!(s3.get(BUCKET, key).unwrap(), parts.concat());
        assert_eq!(s3.multipart_uploads(BUCKET).len(), 1, "the other is open");

        // moto's own minimum (5 MiB, as AWS), checked at completion only.
        let Some(strict) = S3Server::start() else {
            return;
        };
        strict.create_bucket(BUCKET);
        let (id, etags) = upload_parts(&strict, key, &parts);
        assert_eq!(strict.parts(BUCKET, key, &id).len(), 3);
        let r = complete(&strict, key, &id, &etags);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("EntityTooSmall"), "{}", r.text());
    }

    /// Through the proxy to moto: the first PUT is stored with one byte
    /// changed (and its ETag says so), the next one as sent, and a GET
    /// comes back unchanged.
    #[test]
    fn the_proxy_damages_the_first_put_only() {
        let Some(s3) = S3Server::start() else {
            return;
        };
        s3.create_bucket(BUCKET);
        let proxy = CorruptingProxy::start(s3.addr(), 1);
        assert_eq!(proxy.endpoint(), format!("http://{}", proxy.addr()));
        let body = pattern(5000, 7);
        let via = |m, key: &str, b: &[u8]| {
            signed_request(proxy.addr(), m, &format!("/{BUCKET}/{key}"), &[], &[], b).unwrap()
        };
        let first = via("PUT", "one.mp4", &body);
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(proxy.corrupted(), 1);
        let stored = s3.get(BUCKET, "one.mp4").unwrap();
        assert_eq!(stored.len(), body.len());
        let diff: Vec<usize> = (0..body.len()).filter(|&i| stored[i] != body[i]).collect();
        assert_eq!(diff, [CORRUPT_AT]);
        let etag = first.header("ETag").unwrap().trim_matches('"');
        assert_eq!(etag, md5_hex(&stored));
        assert_ne!(etag, md5_hex(&body), "the ETag tells");

        let second = via("PUT", "two.mp4", &body);
        assert_eq!(second.status, 200, "{}", second.text());
        assert_eq!(proxy.corrupted(), 1);
        assert_eq!(s3.get(BUCKET, "two.mp4").unwrap(), body);
        let got = via("GET", "two.mp4", b"");
        assert_eq!((got.status, got.body), (200, body));
    }

    /// What a stand-in upstream got: method and body, request by request.
    type Seen = Vec<(String, Vec<u8>)>;

    /// A stand-in upstream on keep-alive: reads requests one after another
    /// on one connection (a `Content-Length` body, or a chunked one up to
    /// its last chunk), answers each, and hands back (method, body as sent).
    fn keep_alive_upstream(requests: usize) -> (SocketAddr, std::sync::mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut out = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            let mut got = Vec::new();
            for _ in 0..requests {
                let mut lines = Vec::new();
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    if l == "\r\n" {
                        break;
                    }
                    lines.push(l.trim_end().to_string());
                }
                let method = lines[0].split(' ').next().unwrap().to_string();
                let len = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map(|v| v.parse().unwrap());
                let mut body = Vec::new();
                match len {
                    Some(n) => {
                        body.resize(n, 0);
                        r.read_exact(&mut body).unwrap();
                    }
                    None => {
                        while !body.ends_with(b"\r\n0\r\n\r\n") {
                            r.read_until(b'\n', &mut body).unwrap();
                        }
                    }
                }
                got.push((method, body));
                out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
            }
            tx.send(got).unwrap();
        });
        (addr, rx)
    }

    /// Several requests on one connection: only the first two PUTs' bodies
    /// change, each in one byte (the last of a short one); a chunked PUT
    /// passes as sent and is not counted.
    #[test]
    fn the_proxy_follows_requests_on_one_connection() {
        let (up, rx) = keep_alive_upstream(4);
        let proxy = CorruptingProxy::start(up, 2);
        let (long, short) = (pattern(300, 1), pattern(50, 2));
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = |m: &str, n: usize| {
            format!("{m} /x HTTP/1.1\r\nHost: h\r\nContent-Length: {n}\r\n\r\n")
        };
        let mut sent = Vec::new();
        for (m, b) in [
            ("POST", &long),
            ("PUT", &short),
            ("PUT", &long),
            ("PUT", &long),
        ] {
            sent.extend_from_slice(head(m, b.len()).as_bytes());
            sent.extend_from_slice(b);
        }
        c.write_all(&sent).unwrap();
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut back = vec![0; answer.len() * 4];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, answer.repeat(4));
        assert_eq!(proxy.corrupted(), 2);

        c.shutdown(Shutdown::Write).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let flipped = |b: &[u8], at: usize| {
            let mut v = b.to_vec();
            v[at] ^= 0xff;
            v
        };
        let want = vec![
            ("POST".to_string(), long.clone()),
            ("PUT".to_string(), flipped(&short, short.len() - 1)),
            ("PUT".to_string(), flipped(&long, CORRUPT_AT)),
            ("PUT".to_string(), long.clone()),
        ];
        assert_eq!(got, want);

        // A chunked PUT, with damage still to do: passed on as it is.
        let (up, rx) = keep_alive_upstream(1);
        let proxy = CorruptingProxy::start(up, 1);
        let mut body = b"c8\r\n".to_vec();
        body.extend_from_slice(&pattern(200, 3));
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c.write_all(b"PUT /y HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        c.write_all(&body).unwrap();
        let mut one = vec![0; answer.len()];
        c.read_exact(&mut one).unwrap();
        assert_eq!(one, answer);
        c.shutdown(Shutdown::Write).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(got, vec![("PUT".to_string(), body)]);
        assert_eq!(proxy.corrupted(), 0, "a chunked body is not counted");
    }
}
