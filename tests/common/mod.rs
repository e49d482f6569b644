//! Shared by the integration tests: runs the real binary on a free port and
//! speaks HTTP to it with a small client of our own (no client crate needed).
#![allow(dead_code)]

pub mod creds;
pub mod fakecam;
pub mod mjpeg_server;
pub mod preload;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Slow enough for the aarch64 binary under qemu-user.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: `VRTEST_BIN` (e.g. the aarch64 build) or cargo's.
pub fn binary() -> PathBuf {
    std::env::var_os("VRTEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_video-recorder")))
}

/// A command running the binary, through `VRTEST_RUNNER` (e.g.
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu`) when set.
pub fn command() -> Command {
    let runner = std::env::var("VRTEST_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    let mut cmd = match parts.next() {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.args(parts);
            c.arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    // Our own settings come only from what each test passes.
    for (k, _) in std::env::vars() {
        if k.starts_with("VR_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The names in a directory, sorted (none if it does not exist).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Longest a child process of a test may run before it is killed and the
/// test fails: a hung tool must not hang the suite.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// `output()` and `status()` with a deadline: the child is killed, and the
/// test fails with what it printed, when it runs past `limit`.
pub trait RunWithin {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output>;
    fn status_within(&mut self, limit: Duration) -> std::io::Result<std::process::ExitStatus>;
}

impl RunWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<std::process::Output> {
        let mut child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut v = Vec::new();
                let _ = r.read_to_end(&mut v);
                v
            })
        };
        let out = drain(Box::new(child.stdout.take().unwrap()));
        let err = drain(Box::new(child.stderr.take().unwrap()));
        let status = match wait_timeout(&mut child, limit) {
            Some(st) => st,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let (o, e) = (out.join().unwrap(), err.join().unwrap());
                panic!(
                    "{:?} ran past {limit:?}; killed. stdout:\n{}\nstderr:\n{}",
                    self.get_program(),
                    String::from_utf8_lossy(&o),
                    String::from_utf8_lossy(&e)
                );
            }
        };
        Ok(std::process::Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        })
    }

    fn status_within(&mut self, limit: Duration) -> std::io::Result<std::process::ExitStatus> {
        let mut child = self.spawn()?;
        match wait_timeout(&mut child, limit) {
            Some(st) => Ok(st),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{:?} ran past {limit:?}; killed", self.get_program());
            }
        }
    }
}

/// Skips a test that cannot run on this machine, saying why; under
/// `CI_REQUIRE_TOOLS=1` (CI) a skip is a failure, so none passes as green.
pub fn skip(why: &str) {
    if std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("cannot run here (CI_REQUIRE_TOOLS=1): {why}");
    }
    eprintln!("SKIP: {why}");
}

/// True when the binary runs under an emulator (qemu-user), where timing
/// bounds must be loose.
pub fn emulated() -> bool {
    std::env::var_os("VRTEST_RUNNER").is_some_and(|r| !r.is_empty())
}

/// True when a system tool is present. Missing: skip with a reason on a
/// laptop, but fail when `CI_REQUIRE_TOOLS=1` (CI sets it), so no skip passes as green.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{tool} is required (CI_REQUIRE_TOOLS=1) but not installed");
        }
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

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
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
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

    /// The ring buffer logged the deletion of each of these clips.
    pub fn assert_deleted(&self, ids: &[String]) {
        let log = self.log();
        for old in ids {
            assert!(
                log.lines()
                    .any(|l| l.contains("deleted oldest clip") && l.contains(old.as_str())),
                "no deletion logged for {old}:\n{log}"
            );
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

fn unsafe_kill(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like `request`, but a refused or broken connection is an error, not a panic.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let s = TcpStream::connect(addr)?;
    exchange(s, addr, method, path, headers, body)
}

/// Like `try_request`, from a given local address (any of 127.0.0.0/8 on
/// loopback): several clients on one machine.
pub fn request_from(
    src: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let s = connect_from(src, addr)?;
    exchange(s, addr, method, path, headers, b"")
}

/// A TCP connection to `addr` whose local end is bound to `src`.
pub fn connect_from(src: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let (std::net::IpAddr::V4(src), SocketAddr::V4(dst)) = (src, addr) else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket we own, bound and connected with sized addresses;
    // closed on error, else handed to TcpStream, which owns it from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let local = sin(src, 0);
        let remote = sin(*dst.ip(), dst.port());
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

fn exchange(
    mut s: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    if find(&raw, b"\r\n\r\n").is_none() {
        return Err(std::io::Error::other("no complete answer"));
    }
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Response {
    let end = find(raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..eol]);
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A part of the MJPEG stream as a real client sees it.
pub struct Part {
    pub jpeg: Vec<u8>,
    pub timestamp: f64,
}

/// A real MJPEG client: parses `multipart/x-mixed-replace` by boundary and
/// `Content-Length`, as browsers and ffmpeg do.
pub struct MjpegClient {
    reader: BufReader<TcpStream>,
    boundary: String,
    pub content_type: String,
}

impl MjpegClient {
    pub fn connect(addr: SocketAddr, path: &str) -> Result<MjpegClient, Response> {
        MjpegClient::connect_with(addr, path, &[])
    }

    pub fn connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<MjpegClient, Response> {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let status: u16 = head[0].split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = head[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if status != 200 {
            let mut body = Vec::new();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            body.resize(len, 0);
            let _ = reader.read_exact(&mut body);
            return Err(Response {
                status,
                headers,
                body,
            });
        }
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .expect("content-type");
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .expect("boundary")
            .trim_matches('"')
            .to_string();
        Ok(MjpegClient {
            reader,
            boundary,
            content_type,
        })
    }

    /// Reads the next part: skips to the boundary line, then headers, then body.
    pub fn next_part(&mut self) -> std::io::Result<Part> {
        let marker = format!("--{}", self.boundary);
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.trim_end() == marker {
                break;
            }
        }
        let mut len = None;
        let mut ts = f64::NAN;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("x-timestamp") {
                    ts = v.trim().parse().unwrap_or(f64::NAN);
                }
            }
        }
        let len = len.expect("part without Content-Length");
        let mut jpeg = vec![0; len];
        self.reader.read_exact(&mut jpeg)?;
        Ok(Part {
            jpeg,
            timestamp: ts,
        })
    }
}

/// ffprobe's view of a clip's video stream and format, as JSON.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output_within(CHILD_TIMEOUT)
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Our own reader's view (`video-recorder probe FILE`).
pub fn own_probe(path: &Path) -> serde_json::Value {
    let out = command()
        .arg("probe")
        .arg(path)
        .output_within(CHILD_TIMEOUT)
        .expect("run probe");
    assert!(
        out.status.success(),
        "probe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

/// An MJPEG file made by ffmpeg (`testsrc2`), `frames` long.
pub fn make_mjpeg(dir: &Path, width: u32, height: u32, fps: u32, frames: u32) -> PathBuf {
    let path = dir.join(format!("in-{width}x{height}-{fps}.mjpeg"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={fps}"))
        .args([
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "mjpeg",
            "-q:v",
            "5",
            "-f",
            "mjpeg",
        ])
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    path
}
