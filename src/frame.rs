//! A captured frame: what a camera compressed, shared (`Arc<Frame>`) by the
//! hub, the pre-roll ring, viewers and the recorder. The payload says what
//! kind of picture it is, so the same hub carries a USB camera's JPEGs and,
//! later, a network camera's H.264 access units. How a frame goes out on a
//! connection (multipart parts for `/video`) belongs to the live module.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// What a frame holds, as the camera made it (never re-encoded on the way).
#[derive(Debug)]
pub enum Payload {
    /// One whole JPEG: every frame stands alone (a keyframe).
    Jpeg(Vec<u8>),
}

impl Payload {
    /// The JPEG, if this is one (MJPEG viewers, snapshots, thumbnails).
    pub fn jpeg(&self) -> Option<&[u8]> {
        match self {
            Payload::Jpeg(b) => Some(b),
        }
    }

    /// Whether a decoder can start here (a pre-roll must begin on one).
    pub fn is_key(&self) -> bool {
        match self {
            Payload::Jpeg(_) => true,
        }
    }
}

#[derive(Debug)]
pub struct Frame {
    pub seq: u64,
    pub payload: Payload,
    /// CLOCK_MONOTONIC capture time (V4L2 buffer timestamp or the source's clock).
    pub capture: Duration,
    /// Wall clock at capture, for people and `X-Timestamp`.
    pub wall: SystemTime,
    /// Size parsed once at capture (from the JPEG's SOF). The recorder
    /// reads it from the bitstream it decodes anyway; kept for others.
    #[allow(dead_code)]
    pub width: u32,
    #[allow(dead_code)]
    pub height: u32,
    /// A synthetic "NO SIGNAL" picture published while the source is down.
    pub no_signal: bool,
    /// Framing the live module builds once per frame for every viewer (the
    /// multipart part head); empty until the first viewer asks.
    pub live_head: OnceLock<Vec<u8>>,
}

impl Frame {
    pub fn new(
        seq: u64,
        payload: Payload,
        capture: Duration,
        wall: SystemTime,
        (width, height): (u32, u32),
        no_signal: bool,
    ) -> Frame {
        Frame {
            seq,
            payload,
            capture,
            wall,
            width,
            height,
            no_signal,
            live_head: OnceLock::new(),
        }
    }

    /// A JPEG frame (what every source gives today).
    pub fn jpeg(
        seq: u64,
        jpeg: Vec<u8>,
        capture: Duration,
        wall: SystemTime,
        size: (u32, u32),
        no_signal: bool,
    ) -> Frame {
        Frame::new(seq, Payload::Jpeg(jpeg), capture, wall, size, no_signal)
    }
}
