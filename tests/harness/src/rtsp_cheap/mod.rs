//! A cheap RTSP camera of our own, not GStreamer: the ways real cheap
//! cameras differ, on purpose, so the product is tested end to end against
//! each. It sends a real H.264 stream (`stream`: ffmpeg's, looped, paced in
//! real time, 90 kHz timestamps that keep increasing) and:
//! - announces its parameter sets badly ([`Sdp`]): an fmtp ending with `;`,
//!   or none in the SDP at all; they come in band before every IDR (or,
//!   with `in_band: false`, only in that fmtp);
//! - starts every session mid-GOP (the first picture is not an IDR) at the
//!   middle fragment of a picture, each fragmented as FU-A at a 1,500-byte
//!   MTU;
//! - speaks UDP only (461 Unsupported Transport to a TCP SETUP), or also TCP;
//! - loses a packet a GOP if asked ([`CheapOptions::lose_at`]);
//! - keeps a session only while PLAY or GET_PARAMETER refresh it within its
//!   `timeout` (an OPTIONS does not), and otherwise drops it: stops sending
//!   and closes the connection.
//!
//! Every request is logged with its time, so a test can tell when the
//! keepalives came against each deadline.

mod session;
pub mod stream;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the SDP announces the parameter sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sdp {
    /// `sprop-parameter-sets` in an fmtp that ends with `;`.
    TrailingSemicolon,
    /// An fmtp ending with `;` and no `sprop-parameter-sets`: in band only.
    NoSprop,
    /// No fmtp line at all: in band only.
    NoFmtp,
}

#[derive(Debug, Clone)]
pub struct CheapOptions {
    pub sdp: Sdp,
    /// A SETUP asking for TCP gets 461 Unsupported Transport.
    pub udp_only: bool,
    /// The session's `timeout` (seconds): not refreshed (by PLAY or
    /// GET_PARAMETER) within it, the session is dropped.
    pub timeout_sec: u32,
    /// Where in the stream a session starts: not an IDR.
    pub start_frame: usize,
    /// A lossy network: one packet (a middle fragment) of the picture at
    /// this position in every GOP is never sent. Its sequence number is
    /// used, so the client sees the gap.
    pub lose_at: Option<usize>,
    /// SPS and PPS before every IDR; without them, only the SDP has them
    /// (with `Sdp::TrailingSemicolon`, a client must read that fmtp).
    pub in_band: bool,
}

impl Default for CheapOptions {
    fn default() -> Self {
        CheapOptions {
            sdp: Sdp::NoSprop,
            udp_only: true,
            timeout_sec: 60,
            start_frame: 20,
            lose_at: None,
            in_band: true,
        }
    }
}

/// A request the camera answered, or a session it dropped.
#[derive(Debug, Clone)]
pub struct Event {
    /// Since the camera first started.
    pub at: Duration,
    pub session: u64,
    /// The method, or `EXPIRED` when a session was dropped.
    pub what: String,
    /// Whether it refreshed the session's timeout.
    pub refreshed: bool,
}

/// What every launch of the camera shares with the test.
#[derive(Default)]
pub(crate) struct Shared {
    events: Mutex<Vec<Event>>,
    sessions: AtomicU64,
    frames: AtomicU64,
    lost: AtomicU64,
    /// The first two payload bytes of each session's first packet.
    first_packets: Mutex<Vec<[u8; 2]>>,
    /// For `Event::at`.
    epoch: std::sync::OnceLock<Instant>,
}

impl Shared {
    pub(crate) fn note(&self, session: u64, what: &str, refreshed: bool) {
        let at = self.epoch.get_or_init(Instant::now).elapsed();
        self.events.lock().unwrap().push(Event {
            at,
            session,
            what: what.to_string(),
            refreshed,
        });
    }
}

struct Running {
    stop: Arc<AtomicBool>,
    /// Every connection's socket, shut down when the camera stops.
    conns: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub struct CheapCamera {
    addr: SocketAddr,
    opts: CheapOptions,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl CheapCamera {
    /// A camera on a free loopback port; `None` (after saying why) when its
    /// stream cannot be made here (ffmpeg with libx264); panics under
    /// `CI_REQUIRE_TOOLS=1`.
    pub fn start(opts: CheapOptions) -> Option<CheapCamera> {
        CheapCamera::start_on(0, opts)
    }

    /// The same on `port` (0: a free one), retrying while it is busy.
    pub fn start_on(port: u16, opts: CheapOptions) -> Option<CheapCamera> {
        if !crate::have_tool("ffmpeg") {
            return None;
        }
        if let Err(why) = stream::stream() {
            crate::skip(&why);
            return None;
        }
        let listener =
            crate::process::while_port_busy(|| TcpListener::bind(("127.0.0.1", port)).ok())
                .unwrap_or_else(|| panic!("port {port} still busy"));
        let mut cam = CheapCamera {
            addr: listener.local_addr().unwrap(),
            opts,
            shared: Arc::default(),
            running: None,
        };
        cam.shared.epoch.get_or_init(Instant::now);
        cam.running = Some(cam.serve(listener));
        Some(cam)
    }

    fn serve(&self, listener: TcpListener) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c, shared, opts) = (
            stop.clone(),
            conns.clone(),
            self.shared.clone(),
            self.opts.clone(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(clone) = conn.try_clone() {
                    c.lock().unwrap().push(clone);
                }
                let (s, shared, opts) = (s.clone(), shared.clone(), opts.clone());
                std::thread::spawn(move || session::serve(conn, &opts, &shared, &s));
            }
        });
        Running {
            stop,
            conns,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://{}/cam", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The camera drops: every connection closed, nothing more sent, the
    /// port closed.
    pub fn stop(&mut self) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        r.stop.store(true, Ordering::Relaxed);
        for c in r.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop, which then closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = r.thread.take() {
            let _ = t.join();
        }
    }

    /// Back on the same port (retrying while it is still busy).
    pub fn restart(&mut self) {
        self.stop();
        let addr = self.addr;
        let listener = crate::process::while_port_busy(|| TcpListener::bind(addr).ok())
            .unwrap_or_else(|| panic!("port {} still busy", addr.port()));
        self.running = Some(self.serve(listener));
    }

    pub fn options(&self) -> &CheapOptions {
        &self.opts
    }

    /// Every request answered and session dropped, over every launch.
    pub fn events(&self) -> Vec<Event> {
        self.shared.events.lock().unwrap().clone()
    }

    /// Now, on the clock of [`Event::at`].
    pub fn now(&self) -> Duration {
        self.shared.epoch.get_or_init(Instant::now).elapsed()
    }

    /// Sessions that were played.
    pub fn sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::Relaxed)
    }

    /// Packets left out on purpose (`lose_at`), over every session.
    pub fn packets_lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }

    /// Pictures sent, over every session.
    pub fn frames_sent(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// The first two payload bytes of each session's first RTP packet (an
    /// FU-A indicator and header, for a start mid-picture).
    pub fn first_packets(&self) -> Vec<[u8; 2]> {
        self.shared.first_packets.lock().unwrap().clone()
    }

    /// The events, one a line, for a failing test's message.
    pub fn log(&self) -> String {
        self.events()
            .iter()
            .map(|e| {
                format!(
                    "{:8.3} s  session {}  {}{}\n",
                    e.at.as_secs_f64(),
                    e.session,
                    e.what,
                    if e.refreshed { " (refreshed)" } else { "" }
                )
            })
            .collect()
    }
}

impl Drop for CheapCamera {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
