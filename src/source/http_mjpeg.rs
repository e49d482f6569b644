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

mod auth;
mod conn;
mod head;
mod multipart;
#[cfg(test)]
mod tests;
mod url;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Format, RawFrame, Source, SourceError};
use auth::Auth;
use conn::{Conn, Got};
use head::{Dechunk, Head};
use multipart::{Multipart, printable};
use url::Url;

pub use url::redact;

/// Whether `url` is one this source can open (checked with the config, so
/// a typo is refused at start, naming the key; the reason never quotes the
/// URL).
pub fn check(url: &str) -> Result<(), String> {
    Url::parse(url).map(|_| ())
}

/// Largest part accepted; a bigger one is an error (and the connection is
/// dropped), not an unbounded buffer. A 4K JPEG is ~2 MiB.
pub const PART_CAP: usize = 8 << 20;
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
    part_cap: usize,
    open_timeout: Duration,
    /// `None`: trust the system's CAs.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Options {
    fn standard() -> Options {
        Options {
            part_cap: PART_CAP,
            open_timeout: OPEN_TIMEOUT,
            tls: None,
        }
    }
}

pub struct HttpMjpegSource {
    /// The URL, redacted: what every message calls the camera.
    name: String,
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
        Self::open_with(url, want, Options::standard())
    }

    fn open_with(url: &str, want: Format, opts: Options) -> Result<HttpMjpegSource, SourceError> {
        let name = redact(url);
        let fail = |m: String| SourceError(format!("{name}: {m}"));
        let deadline = Instant::now() + opts.open_timeout;
        let target = Url::parse(url).map_err(fail)?;
        let (conn, head, rest) = request(target, deadline, &opts).map_err(fail)?;
        let boundary = boundary(&head).map_err(fail)?;
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
        let mut src = HttpMjpegSource {
            name: name.clone(),
            conn,
            dechunk,
            parts: Multipart::new(&boundary, opts.part_cap),
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
        log::info!("network camera {name}: {width}x{height} MJPEG, at the rate the camera sets");
        Ok(src)
    }

    /// Reads parts until one is a JPEG whose header gives the frame size;
    /// all are kept for `next_frame` (the watchdog counts broken ones).
    fn first_jpeg(
        &mut self,
        deadline: Instant,
        budget: Duration,
    ) -> Result<(u32, u32), SourceError> {
        while self.pending.len() < OPEN_PARTS_MAX {
            let frame = self.read_frame(deadline)?.ok_or_else(|| {
                self.error(format!(
                    "the camera answered with an MJPEG stream but sent no whole frame within \
                     {:.1} s",
                    budget.as_secs_f64()
                ))
            })?;
            let size = super::jpeg::parse_header(&frame.jpeg).map(|h| (h.width, h.height));
            self.pending.push_back(frame);
            if let Ok(size) = size {
                return Ok(size);
            }
        }
        let first = &self.pending[0].jpeg;
        Err(self.error(format!(
            "the first {OPEN_PARTS_MAX} parts of the stream are not JPEGs (the first starts \
             with {:?})",
            printable(&String::from_utf8_lossy(&first[..first.len().min(24)]))
        )))
    }

    fn error(&self, m: String) -> SourceError {
        SourceError(format!("{}: {m}", self.name))
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
            while let Some(part) = self.parts.next_part()? {
                // Some servers send empty parts as keep-alives: not frames.
                if !part.is_empty() {
                    return Ok(Some(part));
                }
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
                Ok(Got::Bytes(n)) => self.feed(&scratch[..n]),
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
}

/// Sends the GET, following same-host redirects and answering one
/// authentication challenge (two if the camera says the nonce was stale),
/// until a 2xx answer: its connection, head and the body bytes read with it.
fn request(
    mut target: Url,
    deadline: Instant,
    opts: &Options,
) -> Result<(Conn, Head, Vec<u8>), String> {
    let mut redirects = 0;
    let mut auth: Option<Auth> = None;
    let mut challenges = 0;
    loop {
        let mut conn = Conn::connect(&target, deadline, opts.tls.as_ref())?;
        let authorization = match (&mut auth, &target.credentials) {
            (Some(a), Some((user, pass))) => Some(a.authorization(user, pass, &target.target)),
            _ => None,
        };
        let req = head::request(
            &target.target,
            &target.host_header(),
            authorization.as_deref(),
        );
        conn.write_by(&req, deadline)?;
        let (head, rest) = read_head(&mut conn, deadline, opts.open_timeout)?;
        match head.status {
            200..=299 => return Ok((conn, head, rest)),
            301 | 302 | 303 | 307 | 308 => {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                let location = head.get("location").ok_or_else(|| {
                    format!(
                        "the camera answered {} without a Location",
                        head.status_text()
                    )
                })?;
                target = target.redirect(location)?;
            }
            401 => {
                if target.credentials.is_none() {
                    return Err(
                        "the camera wants a user name and password: put them in the URL, \
                                as http://user:password@host/path"
                            .into(),
                    );
                }
                let stale = head.all("www-authenticate").any(|v| {
                    let v = v.to_ascii_lowercase().replace(['"', ' '], "");
                    v.contains("stale=true")
                });
                if let Some(a) = &auth
                    && (!stale || challenges >= 2)
                {
                    return Err(format!(
                        "the camera refused the user name and password ({} authentication, 401 \
                         Unauthorized)",
                        a.scheme()
                    ));
                }
                challenges += 1;
                auth = Some(Auth::choose(head.all("www-authenticate"))?);
            }
            _ => {
                return Err(format!(
                    "the camera answered {}{}",
                    head.status_text(),
                    hint(head.status)
                ));
            }
        }
    }
}

/// What a failure status usually means with cameras.
fn hint(status: u16) -> &'static str {
    match status {
        404 => " (is the path that of its MJPEG stream?)",
        403 => " (does this user have the right to view the stream?)",
        503 => " (busy? many cameras serve one or two streams at a time)",
        _ => "",
    }
}

/// Reads the answer's head by `deadline`: it and the bytes after it.
fn read_head(
    conn: &mut Conn,
    deadline: Instant,
    budget: Duration,
) -> Result<(Head, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = head::head_end(&buf).filter(|&e| e <= head::HEAD_MAX) {
            let h = head::parse_head(&buf[..end])?;
            buf.drain(..end);
            // 1xx: an interim answer, the real one follows.
            if (100..200).contains(&h.status) {
                continue;
            }
            return Ok((h, buf));
        }
        if buf.len() > head::HEAD_MAX {
            return Err(format!(
                "the answer's head is longer than {} KiB",
                head::HEAD_MAX / 1024
            ));
        }
        match conn.read_by(&mut chunk, deadline)? {
            Got::Bytes(n) => buf.extend_from_slice(&chunk[..n]),
            Got::TimedOut => {
                return Err(format!(
                    "connected, but no answer within {:.1} s",
                    budget.as_secs_f64()
                ));
            }
            Got::Eof if buf.is_empty() => {
                return Err("the camera closed the connection without answering".into());
            }
            Got::Eof => return Err("the camera closed the connection in mid-answer".into()),
        }
    }
}

/// The boundary of a `multipart/x-mixed-replace` answer, or why the answer
/// is not an MJPEG stream.
fn boundary(head: &Head) -> Result<String, String> {
    let Some(value) = head.get("content-type") else {
        return Err("the answer has no Content-Type; expected an MJPEG stream \
                    (multipart/x-mixed-replace)"
            .into());
    };
    let (kind, params) = head::media_type(value);
    match kind.as_str() {
        "multipart/x-mixed-replace" | "multipart/mixed" => {}
        "image/jpeg" | "image/jpg" => {
            return Err(
                "the URL gives a single JPEG (a snapshot), not a stream: give the \
                        camera's MJPEG stream URL (often /stream, /video or /mjpg/video.mjpg)"
                    .into(),
            );
        }
        "text/html" => {
            return Err(
                "the URL gives a web page, not an MJPEG stream: give the camera's \
                        stream URL"
                    .into(),
            );
        }
        _ => {
            return Err(format!(
                "the answer is {:?}, not an MJPEG stream (multipart/x-mixed-replace)",
                printable(value)
            ));
        }
    }
    match params.into_iter().find(|(k, _)| k == "boundary") {
        Some((_, b)) if !b.is_empty() && b.len() <= 200 => Ok(b),
        _ => Err(format!(
            "the answer {:?} gives no usable boundary parameter",
            printable(value)
        )),
    }
}
