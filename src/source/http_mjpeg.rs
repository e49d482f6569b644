//! A network camera's MJPEG stream over HTTP: a GET answered with
//! `multipart/x-mixed-replace`, each part a JPEG (IP cameras, ESP32-CAM,
//! µStreamer, mjpg-streamer, another of these appliances).
//!
//! Our own small HTTP/1.1 client on `std::net::TcpStream` (and rustls for
//! `https://`), synchronous, no threads: every connect, read and write has a
//! deadline, so `open` returns within [`OPEN_TIMEOUT`] (plus name
//! resolution) and `next_frame` within about its timeout. Reconnecting is
//! not done here: an error closes the source and the capture watchdog
//! reopens it with capped backoff, showing NO SIGNAL meanwhile.
//!
//! Choices:
//! - Redirects are followed (at most [`MAX_REDIRECTS`]) only to the same
//!   scheme, host and port, so the credentials go nowhere else.
//! - Credentials come from the URL and are sent only after a 401 asks for
//!   them (Basic, or Digest with MD5 / SHA-256). No message ever holds them:
//!   every one names the camera by [`redact`]`(url)`.
//! - Parts are passed on as they are, JPEG or not: the watchdog's
//!   `jpeg::sanitize` drops and counts broken frames, so this does not
//!   check twice. Only `open` looks inside, for the size of the first JPEG.
//! - `format()`: the size of the first JPEG; the rate is the configured
//!   one, nominal only, since a URL cannot be told a rate (the hub measures
//!   the real one). `want`'s size is ignored.
//! - Frames are stamped when their part completed, on our clocks: a network
//!   camera's own clock is not trusted.
//! - What the camera may send is its [`Budget`] (from its configured rate):
//!   buffers are bounded where they grow, frames beyond the rate are
//!   dropped and counted, and over budget nothing is read until it refills
//!   ([`meter`]), so a camera flooding us costs a bounded share of a core.
//! - Every message passes through the URL's [`Secrets`]: text the camera
//!   sent (a reason phrase, a header) never shows its password.

mod auth;
mod conn;
mod handshake;
mod head;
#[cfg(test)]
mod hostile_tests;
mod meter;
mod multipart;
mod secrets;
#[cfg(test)]
mod tests;
mod url;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Excess, Format, RawFrame, Source, SourceError};
use crate::budget::Budget;
use conn::{Conn, Got};
use head::Dechunk;
use meter::{Meter, Over};
use multipart::{Multipart, printable};
use secrets::Secrets;
use url::Url;

pub use url::redact;

/// Whether `url` is one this source can open (checked with the config, so
/// a typo is refused at start, naming the key; the reason never quotes the
/// URL).
pub fn check(url: &str) -> Result<(), String> {
    Url::parse(url).map(|_| ())
}

/// Connecting, asking, and receiving the first frame must take no longer,
/// which keeps `open` inside the capture thread's 5 s open deadline.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(4);
/// Same-host redirects followed.
pub const MAX_REDIRECTS: usize = 3;
/// Parts `open` reads looking for a JPEG whose header parses.
const OPEN_PARTS_MAX: usize = 8;
/// Bytes read at a time.
const READ_CHUNK: usize = 64 * 1024;

/// What tests shrink.
struct Options {
    budget: Budget,
    open_timeout: Duration,
    /// `None`: trust the system's CAs.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Options {
    fn standard(fps: u32) -> Options {
        Options {
            budget: Budget::for_fps(fps),
            open_timeout: OPEN_TIMEOUT,
            tls: None,
        }
    }
}

pub struct HttpMjpegSource {
    /// The URL, redacted: what every message calls the camera.
    name: String,
    /// Taken out of every message.
    secrets: Secrets,
    budget: Budget,
    meter: Meter,
    conn: Conn,
    /// Set when the answer is chunked.
    dechunk: Option<Dechunk>,
    parts: Multipart,
    format: Format,
    /// Frames `open` read (the first JPEG, and any parts before it).
    pending: VecDeque<RawFrame>,
    scratch: Vec<u8>,
    chunk_out: Vec<u8>,
}

impl HttpMjpegSource {
    /// Connects, sends the GET, checks the answer and reads the first frame
    /// (for its size); errors say what failed.
    pub fn open(url: &str, want: Format) -> Result<HttpMjpegSource, SourceError> {
        Self::open_with(url, want, Options::standard(want.fps))
    }

    fn open_with(url: &str, want: Format, opts: Options) -> Result<HttpMjpegSource, SourceError> {
        let name = redact(url);
        let secrets = Secrets::of(url);
        let fail = |m: String| SourceError(format!("{name}: {}", secrets.scrub(&m)));
        let deadline = Instant::now() + opts.open_timeout;
        let target = Url::parse(url).map_err(fail)?;
        let (conn, head, rest) = handshake::request(target, deadline, &opts).map_err(fail)?;
        let boundary = handshake::boundary(&head).map_err(fail)?;
        let dechunk = match head.get("transfer-encoding").map(str::to_ascii_lowercase) {
            None => None,
            Some(te) if te.trim() == "identity" => None,
            Some(te) if te.trim() == "chunked" => Some(Dechunk::new()),
            Some(te) => {
                return Err(fail(format!(
                    "the camera uses transfer coding {:?}, which is not supported",
                    printable(&te)
                )));
            }
        };
        let budget = opts.budget;
        let mut src = HttpMjpegSource {
            name: name.clone(),
            secrets: Secrets::of(url),
            budget,
            meter: Meter::new(&budget, Instant::now()),
            conn,
            dechunk,
            parts: Multipart::new(&boundary, budget.frame_bytes, budget.part_head_bytes),
            format: Format {
                width: 0,
                height: 0,
                fps: want.fps,
            },
            pending: VecDeque::new(),
            scratch: vec![0; READ_CHUNK],
            chunk_out: Vec::new(),
        };
        src.feed(&rest).map_err(fail)?;
        let (width, height) = src.first_jpeg(deadline, opts.open_timeout)?;
        src.format.width = width;
        src.format.height = height;
        let fps = budget.frames_per_sec;
        if width == 0 {
            log::warn!("network camera {name}: MJPEG, but its first frame is over the size limit");
        } else {
            log::info!(
                "network camera {name}: {width}x{height} MJPEG, at the rate the camera sets \
                 (at most {fps} frames a second taken)"
            );
        }
        Ok(src)
    }

    /// Reads parts until one is a JPEG whose header gives the frame size;
    /// all are kept for `next_frame` (the watchdog counts broken ones). A
    /// JPEG whose size is over the limit proves the stream is MJPEG but
    /// gives no size (0x0): the watchdog refuses it, counted as broken.
    fn first_jpeg(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<(u32, u32), SourceError> {
        let mut held = 0;
        while self.pending.len() < OPEN_PARTS_MAX && held <= self.budget.frame_bytes {
            let frame = self.read_frame(deadline)?.ok_or_else(|| {
                self.error(format!(
                    "the camera answered with an MJPEG stream but sent no whole frame within \
                     {:.1} s",
                    budget.as_secs_f64()
                ))
            })?;
            let size = match super::jpeg::parse_header(&frame.jpeg) {
                Ok(h) => Some((h.width, h.height)),
                Err(super::jpeg::TOO_LARGE) => Some((0, 0)),
                Err(_) => None,
            };
            held += frame.jpeg.len();
            self.pending.push_back(frame);
            if let Some(size) = size {
                return Ok(size);
            }
        }
        let first = &self.pending[0].jpeg;
        Err(self.error(format!(
            "the first {} parts of the stream are not JPEGs (the first starts with {:?})",
            self.pending.len(),
            printable(&String::from_utf8_lossy(&first[..first.len().min(24)]))
        )))
    }

    fn error(&self, m: String) -> SourceError {
        SourceError(format!("{}: {}", self.name, self.secrets.scrub(&m)))
    }

    /// Body bytes from the camera into the part splitter.
    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        match &mut self.dechunk {
            None => self.parts.extend(bytes),
            Some(d) => {
                self.chunk_out.clear();
                d.feed(bytes, &mut self.chunk_out)?;
                self.parts.extend(&self.chunk_out);
            }
        }
        Ok(())
    }

    /// The next non-empty part as a frame, `None` if none completed by
    /// `deadline`; partial parts stay buffered.
    fn read_frame(&mut self, deadline: Instant) -> Result<Option<RawFrame>, SourceError> {
        self.read_part(deadline)
            .map(|part| {
                part.map(|jpeg| RawFrame {
                    jpeg,
                    capture: crate::clock::monotonic_now(),
                    wall: SystemTime::now(),
                })
            })
            .map_err(|m| self.error(m))
    }

    fn read_part(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>, String> {
        let mut first = true;
        loop {
            // Over budget, nothing is parsed or read until it refills.
            let (go_on, over) = self.meter.wait(deadline);
            if let Some(over) = over {
                self.log_over(over);
            }
            if !go_on {
                return Ok(None);
            }
            let part = self.parts.next_part();
            self.meter.junk(self.parts.take_junk(), Instant::now());
            match part? {
                // Some servers send empty parts as keep-alives: not frames.
                Some(part) if part.is_empty() => continue,
                Some(part) if self.meter.frame(Instant::now()) => return Ok(Some(part)),
                // Over the rate: dropped, counted, and a pause before the next.
                Some(_) => continue,
                None => {}
            }
            if self.dechunk.as_ref().is_some_and(Dechunk::done) {
                return Err("the camera closed the stream (last chunk)".into());
            }
            // At least one read per call, even with a zero timeout.
            if !first && Instant::now() >= deadline {
                return Ok(None);
            }
            first = false;
            let mut scratch = std::mem::take(&mut self.scratch);
            let got = self.conn.read_by(&mut scratch, deadline);
            let fed = match got {
                Ok(Got::Bytes(n)) => {
                    self.meter.read(n, Instant::now());
                    self.feed(&scratch[..n])
                }
                Ok(Got::TimedOut) => {
                    self.scratch = scratch;
                    return Ok(None);
                }
                Ok(Got::Eof) => Err("the camera closed the stream".into()),
                Err(e) => Err(e),
            };
            self.scratch = scratch;
            fed?;
        }
    }

    /// Says (at most every few seconds per kind) that the camera sends more
    /// than its budget; the counts go to `/status`.
    fn log_over(&self, over: Over) {
        let b = &self.budget;
        let what = match over {
            Over::Frames => format!(
                "more than {} frames a second (asked for {} fps): the excess is dropped and \
                 counted (frames_over_rate), and reading pauses",
                b.frames_per_sec, self.format.fps
            ),
            Over::Bytes => format!(
                "more than {} MiB a second: reading pauses",
                b.bytes_per_sec >> 20
            ),
            Over::Junk => format!(
                "more than {} KiB a second that are not frames (blank lines, junk between \
                 parts): reading pauses",
                b.junk_per_sec >> 10
            ),
        };
        log::warn!("network camera {}: sends {what}", self.name);
    }
}

impl Source for HttpMjpegSource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        if let Some(f) = self.pending.pop_front() {
            return Ok(Some(f));
        }
        self.read_frame(Instant::now() + timeout)
    }

    fn format(&self) -> Format {
        self.format
    }

    fn take_excess(&mut self) -> Excess {
        self.meter.take_excess()
    }
}
