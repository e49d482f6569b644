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
    let err = stream(&hub, &mut out, Wire::Http(&[("X-Test", "1")])).unwrap_err();
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
        let sent = stream(&hub, &mut out, Wire::Http(&[])).unwrap();
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
