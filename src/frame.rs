//! A captured frame and the multipart part built once for every viewer.

use std::time::{Duration, SystemTime};

/// Boundary of the `/video` multipart stream.
pub const BOUNDARY: &str = "vrframe";

/// Written after each JPEG: ends the part and opens the next one, so browsers
/// draw the frame at once instead of waiting for the next part's headers.
pub const PART_TAIL: &[u8] = b"\r\n--vrframe\r\n";

/// One JPEG as the source gave it, shared (`Arc<Frame>`) by viewers and the
/// recorder; never copied per viewer, never decoded outside the recorder.
#[derive(Debug)]
pub struct Frame {
    pub seq: u64,
    pub jpeg: Vec<u8>,
    /// CLOCK_MONOTONIC capture time (V4L2 buffer timestamp or the source's clock).
    pub capture: Duration,
    /// Wall clock at capture, for people and `X-Timestamp`.
    pub wall: SystemTime,
    /// Size from the JPEG's SOF, parsed once at capture. The recorder reads
    /// it from the bitstream it decodes anyway; kept for other consumers.
    #[allow(dead_code)]
    pub width: u32,
    #[allow(dead_code)]
    pub height: u32,
    /// A synthetic "NO SIGNAL" picture published while the source is down.
    pub no_signal: bool,
    /// Part headers (`Content-Type`, `Content-Length`, `X-Timestamp`, blank line).
    pub part_head: Vec<u8>,
}

impl Frame {
    pub fn new(
        seq: u64,
        jpeg: Vec<u8>,
        capture: Duration,
        wall: SystemTime,
        (width, height): (u32, u32),
        no_signal: bool,
    ) -> Frame {
        let part_head = format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {:.6}\r\n\r\n",
            jpeg.len(),
            crate::clock::unix_secs(wall)
        )
        .into_bytes();
        Frame {
            seq,
            jpeg,
            capture,
            wall,
            width,
            height,
            no_signal,
            part_head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_head_carries_length_and_timestamp() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let f = Frame::new(
            1,
            vec![0xFF, 0xD8, 0xFF, 0xD9],
            Duration::ZERO,
            wall,
            (2, 2),
            false,
        );
        let head = String::from_utf8(f.part_head).unwrap();
        assert!(head.contains("Content-Length: 4\r\n"), "{head}");
        assert!(
            head.contains("X-Timestamp: 1700000000.123456\r\n"),
            "{head}"
        );
        assert!(head.ends_with("\r\n\r\n"));
    }
}
