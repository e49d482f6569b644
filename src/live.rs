//! Live view: one thread per viewer writing the camera's JPEGs untouched as
//! `multipart/x-mixed-replace`. Each part's headers are built once per frame
//! (in `Frame`), shared by every viewer; a slow viewer skips to the newest frame.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::frame::{BOUNDARY, PART_TAIL};
use crate::hub::Hub;

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
            let mut map = self.0.per_client.lock().unwrap_or_else(|e| e.into_inner());
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
            let mut map = self.per_client.lock().unwrap_or_else(|e| e.into_inner());
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
pub fn stream<W: Write>(hub: &Hub, out: &mut W, extra: &[(&str, &str)]) -> io::Result<u64> {
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
        out.write_all(&frame.part_head)?;
        out.write_all(&frame.jpeg)?;
        // The next boundary right away: browsers draw a part only when it arrives.
        out.write_all(PART_TAIL)?;
        out.flush()?;
        sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
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

    #[test]
    fn writes_parts_untouched_and_stops_on_hangup() {
        let hub = Arc::new(Hub::new(
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
        ));
        let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let h2 = hub.clone();
        let j2 = jpeg.clone();
        let feeder = std::thread::spawn(move || {
            for seq in 1..=200u64 {
                h2.publish(Frame::new(
                    seq,
                    j2.clone(),
                    Duration::from_millis(seq),
                    SystemTime::now(),
                    (2, 2),
                    false,
                ));
                std::thread::sleep(Duration::from_millis(1));
            }
        });
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
}
