//! Live view: one thread per viewer writing the camera's JPEGs untouched as
//! `multipart/x-mixed-replace`. Each part's headers are built once per frame
//! (kept in the frame), shared by every viewer; a slow viewer skips to the
//! newest frame. The multipart framing is this module's alone; `mp4` is
//! the fMP4 view of network cameras' H.264/H.265.

pub mod mp4;

use std::collections::HashMap;
use std::io::{self, IoSlice, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::frame::Frame;
use crate::hub::Hub;
use crate::sync::lock;

/// Boundary of the `/video` multipart stream.
const BOUNDARY: &str = "vrframe";

/// Written after each JPEG: ends the part and opens the next one, so browsers
/// draw the frame at once instead of waiting for the next part's headers.
const PART_TAIL: &[u8] = b"\r\n--vrframe\r\n";

/// A part's headers (`Content-Type`, `Content-Length`, `X-Timestamp`, blank
/// line), made by the first viewer of a frame and kept in it for the rest.
fn part_head<'a>(frame: &'a Frame, jpeg: &[u8]) -> &'a [u8] {
    frame.live_head.get_or_init(|| {
        format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {:.6}\r\n\r\n",
            jpeg.len(),
            crate::clock::unix_secs(frame.wall)
        )
        .into_bytes()
    })
}

/// How long a viewer waits for a frame before checking for shutdown.
const WAIT: Duration = Duration::from_millis(500);

/// Counts viewers against a cap, so a crowd gets 503s instead of exhausting
/// threads or file descriptors.
pub struct Viewers {
    count: AtomicUsize,
    max: usize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    max_per_client: usize,
}

/// A viewer's place; gives it back when dropped, however the viewer ends.
pub struct Seat(Arc<Viewers>, Option<IpAddr>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.1 {
            let mut map = lock(&self.0.per_client);
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Viewers {
    pub fn new(max: usize, max_per_client: usize) -> Arc<Viewers> {
        Arc::new(Viewers {
            count: AtomicUsize::new(0),
            max,
            per_client: Mutex::new(HashMap::new()),
            max_per_client,
        })
    }

    /// A seat for a viewer from `ip`, or why not.
    pub fn try_seat(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Seat, &'static str> {
        if let Some(ip) = ip {
            let mut map = lock(&self.per_client);
            let n = map.entry(ip).or_insert(0);
            if *n >= self.max_per_client {
                return Err("too many viewers from this client");
            }
            *n += 1;
        }
        let seat = Seat(self.clone(), ip);
        match self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            }) {
            Ok(_) => Ok(seat),
            Err(_) => {
                // Give back the per-client place only; the total was not taken.
                self.count.fetch_add(1, Ordering::AcqRel);
                drop(seat);
                Err("too many viewers")
            }
        }
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn max_per_client(&self) -> usize {
        self.max_per_client
    }
}

/// The response head for `/video`, written on the raw socket.
pub fn stream_head(extra: &[(&str, &str)]) -> String {
    let mut head = response_head(extra);
    head.push_str(&format!("--{BOUNDARY}\r\n"));
    head
}

/// The status line and headers of the stream (all a HEAD request gets).
pub fn response_head(extra: &[(&str, &str)]) -> String {
    let mut head = format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
         Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
         Pragma: no-cache\r\n\
         Connection: close\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// How a viewer's stream is framed on its socket.
#[derive(Clone, Copy)]
pub enum Wire<'a> {
    /// An HTTP response of our own, with these extra headers: multipart
    /// parts for MJPEG, a byte stream for fMP4.
    Http(&'a [(&'a str, &'a str)]),
    /// The socket frames each write as a message (a WebSocket): no head,
    /// and each MJPEG message is a JPEG alone.
    Messages,
}

/// Streams frames to one viewer until it goes away or the hub closes.
/// Returns the number of frames delivered.
///
/// Each part (head, JPEG, the next boundary) is one vectored write, and
/// nothing else happens per frame: `out` must not keep what it is given
/// vectored. tiny_http's response writer passes it to the socket (vendored
/// patch 9), so on plain HTTP the JPEG goes from the shared frame to the
/// kernel in one `writev`, never copied in user space; under TLS rustls
/// encrypts all three in one pass.
pub fn stream<W: Write + ?Sized>(hub: &Hub, out: &mut W, wire: Wire) -> io::Result<u64> {
    if let Wire::Http(extra) = wire {
        out.write_all(stream_head(extra).as_bytes())?;
        out.flush()?;
    }
    let mut last = 0;
    let mut sent = 0;
    // Start with the newest frame at once, so the picture appears immediately.
    let mut next = hub.latest();
    loop {
        let frame = match next.take() {
            Some(f) => f,
            None => match hub.wait_newer(last, WAIT) {
                Some(f) => f,
                None if hub.is_closed() => return Ok(sent),
                None => continue,
            },
        };
        last = frame.seq;
        // Only JPEGs go out as MJPEG parts (other payloads need decoding first).
        let Some(jpeg) = frame.payload.jpeg() else {
            continue;
        };
        if let Wire::Messages = wire {
            write_all_vectored(out, &mut [IoSlice::new(jpeg)])?;
        } else {
            // The next boundary right away: browsers draw a part only when it arrives.
            let mut part = [
                IoSlice::new(part_head(&frame, jpeg)),
                IoSlice::new(jpeg),
                IoSlice::new(PART_TAIL),
            ];
            write_all_vectored(out, &mut part)?;
        }
        sent += 1;
    }
}

/// Writes all of `bufs`, one vectored write at a time: a socket may take
/// only part of them (a slow viewer's full send buffer, a signal), and the
/// rest goes in the next call. (`Write::write_all_vectored` is unstable.)
pub(crate) fn write_all_vectored<W: Write + ?Sized>(
    out: &mut W,
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match out.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
