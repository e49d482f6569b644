//! A network camera for the tests: an HTTP server on loopback streaming
//! `multipart/x-mixed-replace` JPEGs at a steady rate, as an IP camera or an
//! ESP32-CAM does, with faults on demand (hang mid-part, a part over the
//! binary's cap, closing the connection) and optional Basic credentials.

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

pub struct MjpegCamera {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Connections accepted so far.
    connections: Arc<AtomicU32>,
    /// Frames sent so far, over all connections.
    frames: Arc<AtomicU64>,
}

impl MjpegCamera {
    /// Serves `jpegs` in a loop at `fps`; with `user:pass`, only to those.
    pub fn start(jpegs: Vec<Vec<u8>>, fps: u32, credentials: Option<&str>) -> MjpegCamera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Stream));
        let connections = Arc::new(AtomicU32::new(0));
        let frames = Arc::new(AtomicU64::new(0));
        let auth = credentials.map(|c| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(c)
            )
        });
        let jpegs = Arc::new(jpegs);
        let (m, n, f) = (mode.clone(), connections.clone(), frames.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                n.fetch_add(1, Ordering::Relaxed);
                let (jpegs, auth, f, m) = (jpegs.clone(), auth.clone(), f.clone(), m.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &jpegs, fps, &m, auth.as_deref(), &f);
                });
            }
        });
        MjpegCamera {
            addr,
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

fn serve(
    conn: TcpStream,
    jpegs: &[Vec<u8>],
    fps: u32,
    mode: &Mutex<Mode>,
    auth: Option<&str>,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut authorized = auth.is_none();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let (Some(want), Some(v)) = (auth, line.strip_prefix("Authorization: ")) {
            authorized |= v == want;
        }
    }
    let mut out = conn;
    if !authorized {
        out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
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
