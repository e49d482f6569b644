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

/// Streams frames to one viewer until it goes away or the hub closes.
/// Returns the number of frames delivered.
///
/// Each part (head, JPEG, the next boundary) is one vectored write, and
/// nothing else happens per frame: `out` must not keep what it is given
/// vectored. tiny_http's response writer passes it to the socket (vendored
/// patch 9), so on plain HTTP the JPEG goes from the shared frame to the
/// kernel in one `writev`, never copied in user space; under TLS rustls
/// encrypts all three in one pass.
pub fn stream<W: Write + ?Sized>(
    hub: &Hub,
    out: &mut W,
    extra: &[(&str, &str)],
) -> io::Result<u64> {
    out.write_all(stream_head(extra).as_bytes())?;
    out.flush()?;
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
        // The next boundary right away: browsers draw a part only when it arrives.
        let mut part = [
            IoSlice::new(part_head(&frame, jpeg)),
            IoSlice::new(jpeg),
            IoSlice::new(PART_TAIL),
        ];
        write_all_vectored(out, &mut part)?;
        sent += 1;
    }
}

/// Writes all of `bufs`, one vectored write at a time: a socket may take
/// only part of them (a slow viewer's full send buffer, a signal), and the
/// rest goes in the next call. (`Write::write_all_vectored` is unstable.)
fn write_all_vectored<W: Write + ?Sized>(
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
mod tests {
    use super::*;
    use crate::hub::{SourceState, SourceStatus};
    use std::time::SystemTime;

    #[test]
    fn seats_are_capped_and_returned() {
        let v = Viewers::new(3, 2);
        let me: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let other: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        let a = v.try_seat(me).unwrap();
        let _b = v.try_seat(me).unwrap();
        assert_eq!(
            v.try_seat(me).err(),
            Some("too many viewers from this client")
        );
        let _c = v.try_seat(other).unwrap();
        assert_eq!(v.try_seat(None).err(), Some("too many viewers"));
        assert_eq!(v.count(), 3);
        drop(a);
        assert_eq!(v.count(), 2);
        let _d = v.try_seat(me).unwrap();
        assert!(v.try_seat(other).is_err(), "total cap still holds");
    }

    /// A writer that fails after `limit` bytes, like a viewer that hangs up.
    struct Hangup {
        buf: Vec<u8>,
        limit: usize,
    }

    impl Write for Hangup {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if self.buf.len() + b.len() > self.limit {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.buf.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn test_hub() -> Arc<Hub> {
        Arc::new(Hub::new(
            Duration::ZERO,
            SourceStatus {
                kind: "test".into(),
                name: "test".into(),
                state: SourceState::Test,
                width: 2,
                height: 2,
                nominal_fps: 30.0,
                message: None,
                ..Default::default()
            },
        ))
    }

    /// Publishes `n` copies of `jpeg`, `gap` apart, on a thread; then
    /// closes the hub if asked.
    fn feed(
        hub: &Arc<Hub>,
        jpeg: &[u8],
        n: u64,
        gap: Duration,
        close: bool,
    ) -> std::thread::JoinHandle<()> {
        let (hub, jpeg) = (hub.clone(), jpeg.to_vec());
        std::thread::spawn(move || {
            for seq in 1..=n {
                hub.publish(Frame::jpeg(
                    seq,
                    jpeg.clone(),
                    Duration::from_millis(seq),
                    SystemTime::now(),
                    (2, 2),
                    false,
                ));
                std::thread::sleep(gap);
            }
            if close {
                hub.close();
            }
        })
    }

    #[test]
    fn part_head_carries_length_and_timestamp() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let f = Frame::jpeg(
            1,
            vec![0xFF, 0xD8, 0xFF, 0xD9],
            Duration::ZERO,
            wall,
            (2, 2),
            false,
        );
        let head = String::from_utf8(part_head(&f, f.payload.jpeg().unwrap()).to_vec()).unwrap();
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        assert!(
            head.contains("X-Timestamp: 1700000000.123456\r\n"),
            "{head}"
        );
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn writes_parts_untouched_and_stops_on_hangup() {
        let hub = test_hub();
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let feeder = feed(&hub, &jpeg, 200, Duration::from_millis(1), false);
        let mut out = Hangup {
            buf: Vec::new(),
            limit: 2000,
        };
        let err = stream(&hub, &mut out, &[("X-Test", "1")]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        feeder.join().unwrap();
        let text = String::from_utf8_lossy(&out.buf);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("boundary=vrframe"));
        assert!(text.contains("\r\nX-Test: 1\r\n"));
        // Every complete part carries the JPEG bytes as they came, then the next boundary.
        let needle = [&jpeg[..], PART_TAIL].concat();
        let parts = out
            .buf
            .windows(needle.len())
            .filter(|w| *w == &needle[..])
            .count();
        assert!(parts >= 3, "only {parts} parts in {text:?}");
    }

    /// A viewer's socket that counts what it is asked to do, and takes at
    /// most `max` bytes per call, as a socket with a full send buffer does.
    struct Counting {
        buf: Vec<u8>,
        max: usize,
        writes: usize,
        vectored: usize,
        flushes: usize,
    }

    impl Write for Counting {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.buf.extend_from_slice(b);
            Ok(b.len())
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.vectored += 1;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.buf.extend_from_slice(&b[..take]);
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.flushes += 1;
            Ok(())
        }
    }

    /// The parts after the stream's head, checked whole: each its headers,
    /// `Content-Length` JPEG bytes as they came, then the next boundary.
    fn parts(out: &[u8], jpeg: &[u8]) -> Vec<usize> {
        let start = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let mut rest = &out[start..];
        assert!(rest.starts_with(b"--vrframe\r\n"));
        rest = &rest[b"--vrframe\r\n".len()..];
        let mut lens = Vec::new();
        while !rest.is_empty() {
            let head_len = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let head = std::str::from_utf8(&rest[..head_len]).unwrap();
            assert!(head.contains(&format!("Content-Length: {}\r\n", jpeg.len())));
            let body = &rest[head_len..head_len + jpeg.len()];
            assert_eq!(body, jpeg);
            assert!(rest[head_len + jpeg.len()..].starts_with(PART_TAIL));
            let len = head_len + jpeg.len() + PART_TAIL.len();
            lens.push(len);
            rest = &rest[len..];
        }
        lens
    }

    /// One vectored write per part, nothing else per frame; when the
    /// socket takes only part of it, the rest follows in further vectored
    /// writes, across the slices' edges, until the part is whole.
    #[test]
    fn each_part_is_one_vectored_write_and_short_writes_are_resumed() {
        // Not a multiple of the short writes' size: their edges fall
        // inside the head, the JPEG and the tail in turn.
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend((0..2999u32).map(|i| (i % 251) as u8));
        jpeg.extend([0xFF, 0xD9]);
        for max in [usize::MAX, 1000, 7] {
            let hub = test_hub();
            let feeder = feed(&hub, &jpeg, 20, Duration::from_millis(2), true);
            let mut out = Counting {
                buf: Vec::new(),
                max,
                writes: 0,
                vectored: 0,
                flushes: 0,
            };
            let sent = stream(&hub, &mut out, &[]).unwrap();
            feeder.join().unwrap();
            let lens = parts(&out.buf, &jpeg);
            assert!(sent >= 2, "only {sent} frames with max {max}");
            assert_eq!(lens.len() as u64, sent);
            // The stream's head: the one plain write and the one flush.
            assert_eq!((out.writes, out.flushes), (1, 1), "max {max}");
            // Each part: ceil(len / max) vectored writes, no other call.
            let expected: usize = lens.iter().map(|l| l.div_ceil(max)).sum();
            assert_eq!(out.vectored, expected, "max {max}");
            if max == usize::MAX {
                assert_eq!(out.vectored as u64, sent, "one write per part");
            }
        }
    }
}
