//! A network camera for the tests: an HTTP server on loopback streaming
//! `multipart/x-mixed-replace` JPEGs at a steady rate, as an IP camera or an
//! ESP32-CAM does, with faults on demand (hang mid-part, a part over the
//! binary's cap, closing the connection) and optional credentials: Basic,
//! or Digest (MD5, `qop=auth`, RFC 7616) as most IP cameras ask, where the
//! client can only answer after a 401 has given it a nonce, and every
//! answer is checked.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every connection sends from its next frame on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Stream,
    /// Half a part, then silence (the camera hangs).
    Hang,
    /// Parts of 9 MiB (over the binary's 8 MiB cap).
    Oversize,
    /// The connection closes.
    Close,
}

/// Whom the camera serves.
#[derive(Debug, Clone)]
enum Gate {
    Open,
    /// The exact `Authorization` value.
    Basic(String),
    Digest {
        user: String,
        pass: String,
    },
}

pub struct MjpegCamera {
    pub addr: SocketAddr,
    /// 401s sent, and Digest answers that checked out.
    pub challenged: Arc<AtomicU32>,
    pub digest_ok: Arc<AtomicU32>,
    mode: Arc<Mutex<Mode>>,
    /// Connections accepted so far.
    connections: Arc<AtomicU32>,
    /// Frames sent so far, over all connections.
    frames: Arc<AtomicU64>,
}

impl MjpegCamera {
    /// Serves `jpegs` in a loop at `fps`; with `user:pass`, only to those.
    pub fn start(jpegs: Vec<Vec<u8>>, fps: u32, credentials: Option<&str>) -> MjpegCamera {
        let gate = match credentials {
            None => Gate::Open,
            Some(c) => {
                use base64::Engine;
                Gate::Basic(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(c)
                ))
            }
        };
        MjpegCamera::launch(jpegs, fps, gate)
    }

    /// Serves only to `user`/`pass` through Digest.
    pub fn start_digest(jpegs: Vec<Vec<u8>>, fps: u32, user: &str, pass: &str) -> MjpegCamera {
        let gate = Gate::Digest {
            user: user.into(),
            pass: pass.into(),
        };
        MjpegCamera::launch(jpegs, fps, gate)
    }

    fn launch(jpegs: Vec<Vec<u8>>, fps: u32, gate: Gate) -> MjpegCamera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Stream));
        let connections = Arc::new(AtomicU32::new(0));
        let frames = Arc::new(AtomicU64::new(0));
        let challenged = Arc::new(AtomicU32::new(0));
        let digest_ok = Arc::new(AtomicU32::new(0));
        let jpegs = Arc::new(jpegs);
        let (m, n, f) = (mode.clone(), connections.clone(), frames.clone());
        let (ch, ok) = (challenged.clone(), digest_ok.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let i = n.fetch_add(1, Ordering::Relaxed);
                let (jpegs, gate, f, m) = (jpegs.clone(), gate.clone(), f.clone(), m.clone());
                let (ch, ok) = (ch.clone(), ok.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &jpegs, fps, &m, &gate, &f, (i, &ch, &ok));
                });
            }
        });
        MjpegCamera {
            addr,
            challenged,
            digest_ok,
            mode,
            connections,
            frames,
        }
    }

    pub fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}{}/stream", self.addr)
    }

    /// What every connection sends from its next frame on.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }
}

/// The nonce the `n`th connection is challenged with: a client can only
/// know it from that 401.
fn nonce(n: u32) -> String {
    md5_hex(&format!("vr-test-camera nonce {n}"))
}

fn md5_hex(s: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `name="value"` or `name=value` from a Digest header's parameters.
fn param<'a>(v: &'a str, name: &str) -> Option<&'a str> {
    v.split(',').find_map(|kv| {
        let (k, val) = kv.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| val.trim().trim_matches('"'))
    })
}

/// Whether a Digest answer to one of our nonces is right for `user`/`pass`
/// and this request.
fn digest_checks(v: &str, user: &str, pass: &str, method: &str, target: &str, issued: u32) -> bool {
    let Some(v) = v.strip_prefix("Digest ") else {
        return false;
    };
    let (Some(u), Some(n), Some(uri), Some(resp)) = (
        param(v, "username"),
        param(v, "nonce"),
        param(v, "uri"),
        param(v, "response"),
    ) else {
        return false;
    };
    let known = (0..issued).any(|i| nonce(i) == n);
    let (nc, cnonce, qop) = (
        param(v, "nc").unwrap_or(""),
        param(v, "cnonce").unwrap_or(""),
        param(v, "qop").unwrap_or(""),
    );
    let ha1 = md5_hex(&format!("{user}:cam:{pass}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let want = md5_hex(&format!("{ha1}:{n}:{nc}:{cnonce}:{qop}:{ha2}"));
    known && u == user && uri == target && qop == "auth" && resp == want
}

fn serve(
    conn: TcpStream,
    jpegs: &[Vec<u8>],
    fps: u32,
    mode: &Mutex<Mode>,
    gate: &Gate,
    sent: &AtomicU64,
    (conn_no, challenged, digest_ok): (u32, &AtomicU32, &AtomicU32),
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut authorized = matches!(gate, Gate::Open);
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if request_line.is_empty() {
            request_line = line.to_string();
        }
        let Some(v) = line.strip_prefix("Authorization: ") else {
            continue;
        };
        match gate {
            Gate::Open => {}
            Gate::Basic(want) => authorized |= v == want,
            Gate::Digest { user, pass } => {
                let mut parts = request_line.split(' ');
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if digest_checks(v, user, pass, method, target, conn_no) {
                    authorized = true;
                    digest_ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let mut out = conn;
    if !authorized {
        challenged.fetch_add(1, Ordering::Relaxed);
        let how = match gate {
            Gate::Digest { .. } => format!(
                "Digest realm=\"cam\", qop=\"auth\", algorithm=MD5, nonce=\"{}\"",
                nonce(conn_no)
            ),
            _ => "Basic realm=\"cam\"".to_string(),
        };
        out.write_all(
            format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {how}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )?;
        return Ok(());
    }
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=\"cam frame\"\r\n\
          Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )?;
    let period = Duration::from_secs(1) / fps;
    for jpeg in jpegs.iter().cycle() {
        let head = |len: usize| {
            format!("--cam frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n")
        };
        let now = *mode.lock().unwrap();
        match now {
            Mode::Hang => {
                out.write_all(head(jpeg.len()).as_bytes())?;
                out.write_all(&jpeg[..jpeg.len() / 2])?;
                std::thread::sleep(Duration::from_secs(600));
                return Ok(());
            }
            Mode::Oversize => {
                let big = 9 << 20;
                out.write_all(head(big).as_bytes())?;
                let mut body = jpeg.clone();
                body.resize(big, 0);
                out.write_all(&body)?;
            }
            Mode::Close => return Ok(()),
            Mode::Stream => {
                out.write_all(head(jpeg.len()).as_bytes())?;
                out.write_all(jpeg)?;
                out.write_all(b"\r\n")?;
            }
        }
        sent.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(period);
    }
    Ok(())
}
