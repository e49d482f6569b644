//! A hostile RTSP camera: anyone who can answer for a camera's address on
//! the LAN. Each [`Hostile`] plays one way of taking a client's memory or
//! time (a body that is declared huge, a head that never ends, a byte every
//! so often, a video fragment that never ends), on every connection, for
//! as long as the client reads. Counts connections and bytes sent, so a
//! test can tell the product was really fed and kept coming back.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What the camera does with a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// Answers DESCRIBE with `Content-Length: 4000000000` and sends body
    /// bytes for as long as they are read.
    HugeBody,
    /// Answers DESCRIBE with header lines that never end.
    EndlessHeaders,
    /// Answers DESCRIBE with one header line that never ends.
    EndlessHeaderLine,
    /// Answers DESCRIBE with one header line, a byte every 50 ms, forever.
    TrickledLine,
    /// A proper session (H.264 over TCP) whose video is one FU-A fragment
    /// that never ends.
    EndlessFragment,
}

/// SPS and PPS of an H.264 stream (High, level 3.0), for the SDP.
const SPROP: &str = "Z2QAHqwsaoLA9puCgIKgAAADACAAAAMD0IAA,aO4xshsA";

pub struct HostileRtsp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
}

impl HostileRtsp {
    /// Listens on a free loopback port and plays `how` to every client.
    pub fn start(how: Hostile) -> HostileRtsp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hostile camera");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, c, b) = (stop.clone(), connections.clone(), sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                c.fetch_add(1, Ordering::Relaxed);
                let (s, b) = (s.clone(), b.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, how, &s, &b);
                });
            }
        });
        HostileRtsp {
            addr,
            stop,
            connections,
            sent,
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://{}/cam", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Bytes written to clients so far (what the kernel took).
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for HostileRtsp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// One request's method and CSeq (headers read and dropped).
fn request(r: &mut impl BufRead) -> std::io::Result<Option<(String, String)>> {
    let mut line = String::new();
    let mut method = None;
    let mut cseq = String::from("0");
    loop {
        line.clear();
        if r.take(8192).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            if method.is_some() {
                return Ok(method.map(|m| (m, cseq)));
            }
            continue;
        }
        if method.is_none() {
            method = l.split(' ').next().map(str::to_string);
        } else if let Some(v) = l.strip_prefix("CSeq:") {
            cseq = v.trim().to_string();
        }
    }
}

fn serve(
    conn: TcpStream,
    how: Hostile,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    small_send_buffer(&conn);
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = Counted { inner: conn, sent };
    while let Some((method, cseq)) = request(&mut r)? {
        let ok = format!("RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n");
        match (method.as_str(), how) {
            ("OPTIONS", _) => write!(
                w,
                "{ok}Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n\r\n"
            )?,
            ("DESCRIBE", Hostile::HugeBody) => {
                write!(
                    w,
                    "{ok}Content-Type: application/sdp\r\nContent-Length: 4000000000\r\n\r\n"
                )?;
                endless(&mut w, stop, |_| vec![b'v'; 64 * 1024])?;
            }
            ("DESCRIBE", Hostile::EndlessHeaders) => {
                write!(w, "{ok}")?;
                endless(&mut w, stop, |i| format!("X-Pad-{i}: a\r\n").into_bytes())?;
            }
            ("DESCRIBE", Hostile::EndlessHeaderLine) => {
                write!(w, "{ok}X-Pad: ")?;
                endless(&mut w, stop, |_| vec![b'a'; 64 * 1024])?;
            }
            ("DESCRIBE", Hostile::TrickledLine) => {
                write!(w, "{ok}X-Pad: ")?;
                while !stop.load(Ordering::Relaxed) {
                    w.write_all(b"a")?;
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            ("DESCRIBE", Hostile::EndlessFragment) => {
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nt=0 0\r\n\
                     m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
                     a=fmtp:96 packetization-mode=1;profile-level-id=64001E;sprop-parameter-sets={SPROP}\r\n\
                     a=control:track1\r\n"
                );
                write!(
                    w,
                    "{ok}Content-Base: rtsp://127.0.0.1/cam/\r\nContent-Type: application/sdp\r\n\
                     Content-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )?;
            }
            ("SETUP", _) => write!(
                w,
                "{ok}Transport: RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=0000BEEF\r\n\
                 Session: 4242;timeout=60\r\n\r\n"
            )?,
            ("PLAY", _) => {
                write!(w, "{ok}Session: 4242\r\nRange: npt=0.000-\r\n\r\n")?;
                // One FU-A start (an IDR slice), then middles for ever, at
                // the same timestamp: an access unit that never completes.
                let mut seq = 0u16;
                endless(&mut w, stop, |i| {
                    seq = seq.wrapping_add(1);
                    let fu = if i == 0 { 0x85 } else { 0x05 };
                    let mut rtp = vec![0x80, 96, (seq >> 8) as u8, seq as u8];
                    rtp.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0xBE, 0xEF, 0x7c, fu]);
                    rtp.extend_from_slice(&[0x42; 1400]);
                    let len = rtp.len() as u16;
                    [vec![b'$', 0, (len >> 8) as u8, len as u8], rtp].concat()
                })?;
            }
            _ => write!(w, "{ok}Session: 4242\r\n\r\n")?,
        }
    }
    Ok(())
}

/// Writes what `next` makes, in turn, until the client goes or the test ends.
fn endless(
    w: &mut impl Write,
    stop: &AtomicBool,
    mut next: impl FnMut(u64) -> Vec<u8>,
) -> std::io::Result<()> {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        w.write_all(&next(i))?;
        i += 1;
    }
    Ok(())
}

/// A socket that counts what it sent.
struct Counted<'a> {
    inner: TcpStream,
    sent: &'a AtomicU64,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What the sender counts as sent is what the product read plus what sits
/// in the kernel's buffers on both ends: a small send buffer here keeps the
/// count close to what the product really took in.
fn small_send_buffer(conn: &TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = SEND_BUFFER as libc::c_int;
    // SAFETY: a valid socket and a c_int option value of the size passed.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// The hostile camera's send buffer (the kernel doubles it).
pub const SEND_BUFFER: u64 = 64 * 1024;

/// The most a receiving socket may hold unread on this machine (autotuned up
/// to `tcp_rmem`'s maximum): slack a test must allow beyond a bound.
pub fn receive_buffer_max() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(6 << 20)
}
