//! A network camera for the tests that speaks RTSP: GStreamer's RTSP server
//! (`tests/harness/rtsp_camera.py`, run by the system Python through GI) on
//! loopback, mount `/cam`, H.264 or H.265 of a moving test picture, with
//! optional credentials (Digest by default, or Basic). It can drop (SIGKILL)
//! and come back on the same port; its parameter sets are read with a plain
//! RTSP DESCRIBE of our own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;

use super::RunWithin;
use super::process::BIND_RETRY;

/// The interpreter with the distribution's GI bindings (not a virtualenv's).
const PYTHON: &str = "/usr/bin/python3";

/// Longest the script may take to say `READY` (Python, GI and GStreamer
/// start in about a quarter of a second on an idle machine).
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest a DESCRIBE may take (the first builds and prerolls the pipeline).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long an RTSP camera may take to come up or be back: 2 s natively
/// (the issue's bound for a camera that is there), more under qemu, where
/// every step of the session is emulated.
pub fn up_within() -> Duration {
    if super::emulated() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(2)
    }
}

/// The binary recording the RTSP camera at `source` into `tmp/clips` (no
/// free-space floor), with `extra` flags.
pub fn recorder(tmp: &std::path::Path, source: &str, extra: &[&str]) -> super::Server {
    let mut args = vec!["--source", source, "--clips-min-free-mb", "0"];
    args.extend_from_slice(extra);
    super::Server::start_in(&tmp.join("clips"), &args)
}

/// What the camera sends and whom to.
#[derive(Debug, Clone)]
pub struct RtspOptions {
    /// `h264` or `h265`.
    pub codec: &'static str,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Frames from one keyframe to the next.
    pub key_int: u32,
    pub bitrate_kbps: u32,
    /// With `password`: only this user may DESCRIBE and PLAY.
    pub user: Option<String>,
    pub password: Option<String>,
    /// What the 401 asks for: `digest`, `basic` or `both` (a client may
    /// answer with either; GStreamer accepts any scheme it was given
    /// credentials for, so `digest` also takes no Basic, and `basic` no Digest).
    pub auth: &'static str,
    /// RTP over UDP only: a SETUP asking for TCP gets 461 Unsupported
    /// Transport, as from many cheap cameras.
    pub udp_only: bool,
}

impl Default for RtspOptions {
    fn default() -> Self {
        RtspOptions {
            codec: "h264",
            width: 640,
            height: 360,
            fps: 30,
            key_int: 30,
            bitrate_kbps: 1000,
            user: None,
            password: None,
            auth: "digest",
            udp_only: false,
        }
    }
}

impl RtspOptions {
    fn credentials(&self) -> Option<(&str, &str)> {
        Some((self.user.as_deref()?, self.password.as_deref()?))
    }
}

pub struct RtspCamera {
    child: Option<Child>,
    port: u16,
    opts: RtspOptions,
    /// The script's stderr over every launch (`SENT <n>` lines, warnings).
    log: tempfile::NamedTempFile,
    /// Where the current launch's part of `log` begins.
    log_start: u64,
}

/// A DESCRIBE's answer.
#[derive(Debug, Clone)]
pub struct Describe {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The SDP (empty on a 401).
    pub body: String,
}

impl Describe {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of this name, in order (a 401 may carry several
    /// `WWW-Authenticate`).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rtsp_camera.py")
}

/// Whether the script can serve `codec` here: `Err` says why not. Asked of
/// the script once per codec and test process (the first run of GStreamer
/// on a machine also builds its plugin registry, which takes a while).
fn check(codec: &'static str) -> Result<(), String> {
    static CHECKED: OnceLock<Mutex<HashMap<&'static str, Result<(), String>>>> = OnceLock::new();
    let mut checked = CHECKED.get_or_init(Default::default).lock().unwrap();
    checked
        .entry(codec)
        .or_insert_with(|| {
            let out = Command::new(PYTHON)
                .arg(script())
                .args(["--check", "--codec", codec])
                .output_within(super::CHILD_TIMEOUT)
                .map_err(|e| format!("cannot run {PYTHON}: {e}"))?;
            if out.status.success() {
                return Ok(());
            }
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.trim().lines().last().unwrap_or("").to_string();
            Err(format!(
                "GStreamer's RTSP server for {codec} through Python GI (python3-gi, \
                 gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{{base,good,ugly,bad}}): {last}"
            ))
        })
        .clone()
}

enum Launch {
    Up(Child, u16),
    /// The port could not be bound (exit 3).
    Busy,
}

impl RtspCamera {
    /// A camera on a free loopback port; `None` (after printing why) when
    /// GStreamer's RTSP server is missing; panics under `CI_REQUIRE_TOOLS=1`.
    pub fn start(opts: RtspOptions) -> Option<RtspCamera> {
        if !super::have_tool(PYTHON) {
            super::skip("the RTSP camera runs on the system Python (python3-gi)");
            return None;
        }
        if let Err(why) = check(opts.codec) {
            super::skip(&why);
            return None;
        }
        let mut cam = RtspCamera {
            child: None,
            port: 0,
            opts,
            log: tempfile::NamedTempFile::new().expect("temp file for the camera's log"),
            log_start: 0,
        };
        match cam.launch(0) {
            Launch::Up(child, port) => {
                cam.child = Some(child);
                cam.port = port;
            }
            Launch::Busy => panic!("no free port for the RTSP camera:\n{}", cam.log()),
        }
        Some(cam)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `rtsp://127.0.0.1:PORT/cam`
    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }

    /// The URL with these credentials in it (percent-encoded).
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!(
            "rtsp://{}:{}@127.0.0.1:{}/cam",
            percent_encode(user),
            percent_encode(password),
            self.port
        )
    }

    /// What the camera was last started with.
    pub fn options(&self) -> &RtspOptions {
        &self.opts
    }

    /// Whether the server process is up.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The camera drops: SIGKILL, no goodbye to its clients, and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again (stopping it first if it runs) on the same port,
    /// retrying for a while if the port is still busy.
    pub fn restart(&mut self, opts: RtspOptions) {
        self.stop();
        self.opts = opts;
        let port = self.port;
        let up = super::process::while_port_busy(|| match self.launch(port) {
            Launch::Up(child, _) => Some(child),
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

    fn launch(&mut self, port: u16) -> Launch {
        let o = &self.opts;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.log.path())
            .expect("open the camera's log");
        self.log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = writeln!(log, "--- rtsp_camera.py --port {port} {o:?}");
        let mut cmd = Command::new(PYTHON);
        cmd.arg(script())
            .args(["--port", &port.to_string(), "--codec", o.codec])
            .args(["--width", &o.width.to_string()])
            .args(["--height", &o.height.to_string()])
            .args(["--fps", &o.fps.to_string()])
            .args(["--key-int", &o.key_int.to_string()])
            .args(["--bitrate", &o.bitrate_kbps.to_string()]);
        if o.udp_only {
            cmd.arg("--udp-only");
        }
        if let Some((user, password)) = o.credentials() {
            cmd.args(["--user", user, "--password", password, "--auth", o.auth]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn rtsp_camera.py");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Read to the end: the script never writes more, but a closed
            // pipe must not be what it meets if it did.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("READY ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(p) => {
                let bound: u16 = p.parse().expect("READY <port>");
                assert!(
                    port == 0 || bound == port,
                    "asked for {port}, bound {bound}"
                );
                Launch::Up(child, bound)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // It exited before READY.
                let status = child.wait().expect("wait for rtsp_camera.py");
                if status.code() == Some(3) {
                    return Launch::Busy;
                }
                panic!("rtsp_camera.py exited ({status}):\n{}", self.log());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "rtsp_camera.py not READY within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                );
            }
        }
    }

    /// What the script wrote on stderr, over every launch.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Frames the current launch has sent while at least one client was
    /// playing (each frame once, however many clients got it), as last
    /// reported: the script says so once a second, so up to a second behind.
    pub fn frames_sent(&self) -> u64 {
        let log = std::fs::read(self.log.path()).unwrap_or_default();
        let start = (self.log_start as usize).min(log.len());
        String::from_utf8_lossy(&log[start..])
            .lines()
            .filter_map(|l| l.strip_prefix("SENT "))
            .filter_map(|n| n.trim().parse().ok())
            .next_back()
            .unwrap_or(0)
    }

    /// A DESCRIBE of `/cam` over a fresh connection. Without credentials,
    /// the server's first answer (a 401 if it wants some); with them, on a
    /// 401, once more on the same connection answering its challenge:
    /// Digest if it offers Digest, else Basic.
    pub fn describe(&self, credentials: Option<(&str, &str)>) -> std::io::Result<Describe> {
        let url = self.url();
        let conn = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(5))?;
        conn.set_read_timeout(Some(DESCRIBE_TIMEOUT))?;
        conn.set_write_timeout(Some(DESCRIBE_TIMEOUT))?;
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut out = conn;
        let mut send = |cseq: u32, auth: Option<String>| -> std::io::Result<Describe> {
            let mut req = format!(
                "DESCRIBE {url} RTSP/1.0\r\nCSeq: {cseq}\r\nAccept: application/sdp\r\n\
                 User-Agent: vr-harness\r\n"
            );
            if let Some(a) = auth {
                req.push_str(&format!("Authorization: {a}\r\n"));
            }
            req.push_str("\r\n");
            out.write_all(req.as_bytes())?;
            read_response(&mut reader)
        };
        let first = send(1, None)?;
        let Some((user, password)) = credentials else {
            return Ok(first);
        };
        if first.status != 401 {
            return Ok(first);
        }
        let challenges: Vec<&str> = first.headers_named("WWW-Authenticate").collect();
        let auth = if let Some(digest) = challenges.iter().find_map(|c| strip_scheme(c, "Digest")) {
            let p = auth_params(digest);
            let realm = p.get("realm").map(String::as_str).unwrap_or("");
            let nonce = p.get("nonce").map(String::as_str).unwrap_or("");
            let ha1 = md5_hex(format!("{user}:{realm}:{password}").as_bytes());
            let ha2 = md5_hex(format!("DESCRIBE:{url}").as_bytes());
            let response = md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes());
            format!(
                "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
                 uri=\"{url}\", response=\"{response}\""
            )
        } else {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        send(2, Some(auth))
    }

    /// The SDP the camera announces (DESCRIBE with its own credentials).
    pub fn sdp(&self) -> String {
        let d = self
            .describe(self.opts.credentials())
            .unwrap_or_else(|e| panic!("DESCRIBE {}: {e}\n{}", self.url(), self.log()));
        assert_eq!(
            d.status,
            200,
            "DESCRIBE {}: {d:?}\n{}",
            self.url(),
            self.log()
        );
        d.body
    }

    /// The parameter sets (raw NAL units) the SDP announces: `[SPS, PPS]`
    /// for H.264 (`sprop-parameter-sets`), `[VPS, SPS, PPS]` for H.265
    /// (`sprop-vps`, `sprop-sps`, `sprop-pps`).
    pub fn parameter_sets(&self) -> Vec<Vec<u8>> {
        let sdp = self.sdp();
        let fmtp = sdp
            .lines()
            .find_map(|l| l.strip_prefix("a=fmtp:"))
            .unwrap_or_else(|| panic!("no a=fmtp in the SDP:\n{sdp}"));
        let params: HashMap<&str, &str> = fmtp
            .split_once(' ')
            .map_or("", |(_, p)| p)
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .collect();
        let b64 = |v: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .unwrap_or_else(|e| panic!("parameter set {v:?}: {e}\n{sdp}"))
        };
        let sets: Vec<Vec<u8>> = if let Some(sets) = params.get("sprop-parameter-sets") {
            sets.split(',').map(b64).collect()
        } else {
            ["sprop-vps", "sprop-sps", "sprop-pps"]
                .iter()
                .map(|k| {
                    b64(params
                        .get(k)
                        .unwrap_or_else(|| panic!("no {k} in the SDP:\n{sdp}")))
                })
                .collect()
        };
        assert!(
            sets.iter().all(|s| !s.is_empty()),
            "an empty parameter set:\n{sdp}"
        );
        sets
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One RTSP response: status line, headers, and a body of `Content-Length`.
fn read_response(r: &mut impl BufRead) -> std::io::Result<Describe> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(bad("connection closed before a response".into()));
    }
    let status = line
        .strip_prefix("RTSP/1.0 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the headers".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok(Describe {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The parameters of a challenge if it is of `scheme`.
fn strip_scheme<'a>(challenge: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// `k="v", k=v` pairs of a challenge.
fn auth_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while let Some((k, after)) = rest.split_once('=') {
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        out.insert(key, value.to_string());
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// MD5 hex, for Digest authentication (RFC 2617 without qop, as
/// GStreamer's server asks): the `md-5` crate, as the root crate uses.
fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn h264_types(sets: &[Vec<u8>]) -> Vec<u8> {
        sets.iter().map(|s| s[0] & 0x1f).collect()
    }

    #[test]
    fn md5_vectors() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(b"The quick brown fox jumps over the lazy dog"),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        assert_eq!(md5_hex(&[b'a'; 1000]), "cabe45dcc9ae5b66ba86600cca6b8ba8");
    }

    #[test]
    fn challenge_params() {
        let p = auth_params(r#"realm="GStreamer RTSP Server", nonce="0a1b", stale=FALSE"#);
        assert_eq!(p["realm"], "GStreamer RTSP Server");
        assert_eq!(p["nonce"], "0a1b");
        assert_eq!(p["stale"], "FALSE");
    }

    #[test]
    fn h264_then_drop_and_back_on_the_same_port() {
        let t0 = Instant::now();
        let Some(mut cam) = RtspCamera::start(RtspOptions::default()) else {
            return;
        };
        let ready = t0.elapsed();
        let t1 = Instant::now();
        let sets = cam.parameter_sets();
        eprintln!(
            "READY after {ready:?}, first DESCRIBE answered after {:?}",
            t1.elapsed()
        );
        assert_eq!(h264_types(&sets), [7, 8], "{sets:02x?}");
        let port = cam.port();
        assert!(cam.url().ends_with(&format!(":{port}/cam")));

        cam.stop();
        assert!(!cam.running());
        assert!(cam.describe(None).is_err(), "a stopped camera answered");

        let t2 = Instant::now();
        cam.restart(RtspOptions::default());
        eprintln!("restarted after {:?}", t2.elapsed());
        assert_eq!(cam.port(), port);
        assert!(cam.running());
        assert_eq!(h264_types(&cam.parameter_sets()), [7, 8]);
    }

    #[test]
    fn h265_parameter_sets() {
        let Some(cam) = RtspCamera::start(RtspOptions {
            codec: "h265",
            ..Default::default()
        }) else {
            return;
        };
        let sets = cam.parameter_sets();
        let types: Vec<u8> = sets.iter().map(|s| (s[0] >> 1) & 0x3f).collect();
        assert_eq!(types, [32, 33, 34], "{sets:02x?}");
        assert!(cam.sdp().contains("H265/90000"));
    }

    #[test]
    fn credentials() {
        for auth in ["digest", "basic", "both"] {
            let Some(cam) = RtspCamera::start(RtspOptions {
                user: Some("cam".into()),
                password: Some("s3cr:t@".into()),
                auth,
                ..Default::default()
            }) else {
                return;
            };
            let none = cam.describe(None).unwrap();
            assert_eq!(none.status, 401, "{auth}: {none:?}");
            let schemes: Vec<&str> = none
                .headers_named("WWW-Authenticate")
                .map(|c| c.split(' ').next().unwrap())
                .collect();
            let want: &[&str] = match auth {
                "digest" => &["Digest"],
                "basic" => &["Basic"],
                _ => &["Basic", "Digest"],
            };
            assert_eq!(schemes, want, "{auth}: {none:?}");
            let wrong = cam.describe(Some(("cam", "nope"))).unwrap();
            assert_eq!(wrong.status, 401, "{auth}: {wrong:?}");
            assert_eq!(h264_types(&cam.parameter_sets()), [7, 8], "{auth}");
            assert_eq!(
                cam.url_with("cam", "s3cr:t@"),
                format!("rtsp://cam:s3cr%3At%40@127.0.0.1:{}/cam", cam.port())
            );
        }
    }

    /// Dropped while a client streams (the server's side of the connection
    /// is left in TIME_WAIT), it is back on the same port at once, and the
    /// client's next connection plays.
    #[test]
    fn dropped_under_a_client_and_back() {
        if !crate::have_tool("ffmpeg") {
            return;
        }
        let Some(mut cam) = RtspCamera::start(RtspOptions::default()) else {
            return;
        };
        let mut ffmpeg = Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(cam.url())
            .args(["-t", "30", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while cam.frames_sent() < 30 {
            assert!(Instant::now() < deadline, "never streamed:\n{}", cam.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        cam.stop();
        let t0 = Instant::now();
        cam.restart(RtspOptions::default());
        let busy = cam.log().matches("cannot bind").count();
        eprintln!("back after {:?} ({busy} busy binds)", t0.elapsed());
        assert_eq!(h264_types(&cam.parameter_sets()), [7, 8]);
        let _ = ffmpeg.kill();
        let _ = ffmpeg.wait();
    }

    /// What a client gets is a camera's stream: timestamps that only go
    /// forward, one packet a frame (a keyframe is not split in two), even
    /// when a second client joins the shared pipeline (ffmpeg's PLAY asks
    /// for `Range: npt=0.000-`, which must not rewind it for everyone).
    #[test]
    fn second_client_does_not_rewind_the_first() {
        if !crate::have_tool("ffprobe") {
            return;
        }
        for codec in ["h264", "h265"] {
            let Some(cam) = RtspCamera::start(RtspOptions {
                codec,
                ..Default::default()
            }) else {
                return;
            };
            let url = cam.url();
            let first = std::thread::spawn(move || {
                Command::new("ffprobe")
                    .args([
                        "-v",
                        "error",
                        "-rtsp_transport",
                        "tcp",
                        "-select_streams",
                        "v",
                    ])
                    .args([
                        "-show_packets",
                        "-show_entries",
                        "packet=pts,flags",
                        "-of",
                        "json",
                    ])
                    .args(["-read_intervals", "%+3"])
                    .arg(&url)
                    .output_within(Duration::from_secs(60))
                    .unwrap()
            });
            std::thread::sleep(Duration::from_millis(1500));
            let second = Command::new("ffprobe")
                .args(["-v", "error", "-rtsp_transport", "tcp", "-show_streams"])
                .arg(cam.url())
                .output_within(Duration::from_secs(60))
                .unwrap();
            assert!(second.status.success(), "{codec}: second client failed");
            let out = first.join().unwrap();
            assert!(
                out.status.success(),
                "{codec}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let pts: Vec<i64> = v["packets"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["pts"].as_i64())
                .collect();
            assert!(pts.len() >= 60, "{codec}: {} packets in 3 s", pts.len());
            let back: Vec<_> = pts.windows(2).filter(|w| w[1] <= w[0]).collect();
            assert!(
                back.is_empty(),
                "{codec}: timestamps not increasing: {back:?}"
            );
        }
    }

    /// ffmpeg plays it (with Digest credentials), and the camera counts
    /// what it sent.
    #[test]
    fn plays_and_counts_frames() {
        if !crate::have_tool("ffmpeg") {
            return;
        }
        let Some(cam) = RtspCamera::start(RtspOptions {
            user: Some("cam".into()),
            password: Some("pw".into()),
            ..Default::default()
        }) else {
            return;
        };
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i"])
            .arg(cam.url_with("cam", "pw"))
            .args(["-t", "2", "-f", "null", "-"])
            .output_within(Duration::from_secs(60))
            .unwrap();
        assert!(
            out.status.success(),
            "ffmpeg: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            cam.log()
        );
        std::thread::sleep(Duration::from_millis(1100));
        let n = cam.frames_sent();
        assert!(n >= 45, "{n} frames sent for 2 s of 30 fps:\n{}", cam.log());
    }
}
