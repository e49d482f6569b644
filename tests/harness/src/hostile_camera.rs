//! A network camera that attacks, for the tests: every connection plays a
//! script of steps (bytes sent once, bytes sent forever as fast as TCP
//! takes them, a stall), chosen by the connection's number. What a
//! well-behaved camera does is `mjpeg_server`; this one lies.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// One step of a connection's script.
#[derive(Debug, Clone)]
pub enum Step {
    Send(Vec<u8>),
    /// These bytes again and again until the client hangs up.
    Forever(Vec<u8>),
    /// Silence with the connection open (the camera hangs).
    Hold,
}

pub struct HostileCamera {
    pub addr: SocketAddr,
    connections: Arc<AtomicU32>,
    sent: Arc<AtomicU64>,
}

/// The boundary every answer here uses.
pub const BOUNDARY: &str = "b";

impl HostileCamera {
    /// Serves the `n`-th connection (from 0) what `script(n)` says.
    pub fn start(script: impl Fn(u32) -> Vec<Step> + Send + Sync + 'static) -> HostileCamera {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (connections, sent) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU64::new(0)));
        let (n, total, script) = (connections.clone(), sent.clone(), Arc::new(script));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let steps = script(n.fetch_add(1, Ordering::Relaxed));
                let total = total.clone();
                std::thread::spawn(move || {
                    let _ = play(conn, &steps, &total);
                });
            }
        });
        HostileCamera {
            addr,
            connections,
            sent,
        }
    }

    pub fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}{}/stream", self.addr)
    }

    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Bytes written to every connection so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

fn play(conn: TcpStream, steps: &[Step], sent: &AtomicU64) -> std::io::Result<()> {
    // The request's head first, as a camera would.
    let mut reader = BufReader::new(conn.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let mut out = conn;
    for step in steps {
        match step {
            Step::Send(bytes) => {
                out.write_all(bytes)?;
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            Step::Forever(bytes) => loop {
                out.write_all(bytes)?;
                sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            },
            Step::Hold => {
                // Until the client gives up (its read of nothing errs or ends).
                let mut buf = [0u8; 64];
                let _ = out.set_read_timeout(Some(Duration::from_secs(600)));
                while std::io::Read::read(&mut reader.get_mut(), &mut buf)? > 0 {}
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A real JPEG of `w` x `h` with a pattern in it.
pub fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let px: Vec<u8> = (0..usize::from(w) * usize::from(h))
        .flat_map(|i| [(i * 7) as u8, (i * 3) as u8, 90])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 80)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .expect("encode a test JPEG");
    out
}

/// A 200 answer opening an MJPEG stream.
pub fn mjpeg_head() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\
         Cache-Control: no-cache\r\n\r\n"
    )
    .into_bytes()
}

/// One part holding `jpeg`, with its length.
pub fn part(jpeg: &[u8]) -> Vec<u8> {
    let mut p = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.len()
    )
    .into_bytes();
    p.extend_from_slice(jpeg);
    p.extend_from_slice(b"\r\n");
    p
}

/// Where a JPEG's SOF segment is (its 0xFF), if it has one before SOS.
fn sof_at(jpeg: &[u8]) -> Option<usize> {
    let mut pos = 2;
    while pos + 4 <= jpeg.len() && jpeg[pos] == 0xFF {
        let marker = jpeg[pos + 1];
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return Some(pos);
        }
        if marker == 0xDA {
            return None;
        }
        pos += 2 + (usize::from(jpeg[pos + 2]) << 8 | usize::from(jpeg[pos + 3]));
    }
    None
}

/// The size a JPEG's SOF says.
pub fn sof_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    let at = sof_at(jpeg)?;
    let be = |i: usize| u32::from(*jpeg.get(i).unwrap_or(&0)) << 8 | u32::from(jpeg[i + 1]);
    Some((be(at + 7), be(at + 5)))
}

/// `jpeg` with its SOF saying `w`x`h` (the data stays as it was: a lie).
pub fn with_sof_size(mut jpeg: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
    let at = sof_at(&jpeg).expect("a JPEG with SOF");
    jpeg[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
    jpeg[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    jpeg
}

/// CPU time (user + system) a process has used, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sof_sizes_read_and_lie() {
        // SOI, APP0 (4 bytes), SOF0 of 8 bytes (16x32), SOS.
        let j = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xC0, 0, 11, 8, 0, 32, 0, 16, 1, 1, 0x11, 0,
            0xFF, 0xDA, 0, 2, 0xFF, 0xD9,
        ];
        assert_eq!(sof_size(&j), Some((16, 32)));
        assert_eq!(
            sof_size(&with_sof_size(j, 65535, 65535)),
            Some((65535, 65535))
        );
        assert!(cpu_time(std::process::id()) < Duration::from_secs(3600));
    }
}
