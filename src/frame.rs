//! A captured frame: what a camera compressed, shared (`Arc<Frame>`) by the
//! hub, the pre-roll ring, viewers and the recorder. The payload says what
//! kind of picture it is, so the same hub carries a USB camera's JPEGs or a
//! network camera's H.264/H.265 access units. How a frame goes out on a
//! connection (multipart parts, fMP4 fragments) belongs to the live module.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// The longest picture side taken from a camera or drawn here (UHD 4K),
/// either way round, so a portrait camera works too.
pub const MAX_SIDE: u32 = 3840;
/// The most pixels a picture may have (3840x2160): what a frame's size may
/// make us allocate is bounded, whatever a header says.
pub const MAX_PIXELS: u64 = 3840 * 2160;
/// What NO SIGNAL is drawn at before any frame was accepted.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);

/// The one size rule for every path that reads a frame's size (a JPEG's
/// SOF, a driver's format, a decoded picture) or makes a picture from it:
/// neither side zero nor over [`MAX_SIDE`], at most [`MAX_PIXELS`].
pub fn size_ok((width, height): (u32, u32)) -> bool {
    width > 0
        && height > 0
        && width <= MAX_SIDE
        && height <= MAX_SIDE
        && u64::from(width) * u64::from(height) <= MAX_PIXELS
}

/// The rule in words, for logs and `/status`.
pub const SIZE_RULE: &str = "at most 3840 pixels a side and 3840x2160 pixels in all";

/// A size to draw a picture of our own at (NO SIGNAL): `size` if the rule
/// allows it, else [`DEFAULT_SIZE`]. Never what a camera merely claimed.
pub fn drawable(size: (u32, u32)) -> (u32, u32) {
    if size_ok(size) && size.0 >= 16 && size.1 >= 16 {
        size
    } else {
        DEFAULT_SIZE
    }
}

/// What a frame holds, as the camera made it (never re-encoded on the way).
#[derive(Debug)]
pub enum Payload {
    /// One whole JPEG: every frame stands alone (a keyframe).
    Jpeg(Vec<u8>),
    /// One H.264/H.265 access unit from a network camera.
    Video(Video),
}

/// An access unit as the camera sent it: NAL units with 4-byte lengths
/// (AVCC/HVCC, what MP4 samples hold), parameter sets out of band.
#[derive(Debug)]
pub struct Video {
    pub data: Vec<u8>,
    /// A random access point (IDR/IRAP): decoding, clips and live views start here.
    pub key: bool,
    /// The stream's parameters when this frame was sent; shared by the frames
    /// that use them, replaced (a new `Arc`) when the camera changes them.
    pub params: Arc<VideoParams>,
}

/// The codec of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

/// What a decoder (and an MP4 sample entry) needs to know about a stream.
#[derive(Debug, PartialEq, Eq)]
pub struct VideoParams {
    pub codec: Codec,
    /// RFC 6381 codec string for MSE (`avc1.42C01F`, `hvc1.1.6.L93.B0`).
    pub rfc6381: String,
    pub width: u32,
    pub height: u32,
    /// The rate the stream declares (frames, seconds), if it does.
    pub frame_rate: Option<(u32, u32)>,
    /// Parameter sets as raw NAL units: SPS, PPS (H.264); VPS, SPS, PPS (H.265).
    pub sets: Vec<Vec<u8>>,
    /// The complete MP4 sample entry box (`avc1` with `avcC`, `hvc1` with `hvcC`).
    pub sample_entry: Vec<u8>,
}

impl VideoParams {
    pub fn fps(&self) -> Option<f64> {
        // retina gives (seconds numerator, frames denominator): 1/30 is 30 fps.
        self.frame_rate
            .filter(|&(n, d)| n > 0 && d > 0)
            .map(|(n, d)| f64::from(d) / f64::from(n))
    }
}

impl Payload {
    /// The JPEG, if this is one (MJPEG viewers, snapshots, thumbnails).
    pub fn jpeg(&self) -> Option<&[u8]> {
        match self {
            Payload::Jpeg(b) => Some(b),
            Payload::Video(_) => None,
        }
    }

    /// The access unit, if this is video.
    pub fn video(&self) -> Option<&Video> {
        match self {
            Payload::Video(v) => Some(v),
            Payload::Jpeg(_) => None,
        }
    }

    /// Whether a decoder can start here (a pre-roll must begin on one).
    pub fn is_key(&self) -> bool {
        match self {
            Payload::Jpeg(_) => true,
            Payload::Video(v) => v.key,
        }
    }

    /// Bytes held (the pre-roll ring is bounded by them too).
    pub fn len(&self) -> usize {
        match self {
            Payload::Jpeg(b) => b.len(),
            Payload::Video(v) => v.data.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_size_rule() {
        for ok in [(1, 1), (3840, 2160), (2160, 3840), (2880, 2880), (3840, 1)] {
            assert!(size_ok(ok), "{ok:?}");
        }
        for bad in [
            (0, 720),
            (1280, 0),
            (3841, 2),
            (2, 3841),
            (3840, 2161),
            (2881, 2880),
            (16384, 16384),
            (65535, 65535),
        ] {
            assert!(!size_ok(bad), "{bad:?}");
        }
        assert!(SIZE_RULE.contains(&MAX_SIDE.to_string()));
        assert_eq!(MAX_PIXELS, u64::from(MAX_SIDE) * 2160);
    }

    #[test]
    fn pictures_of_our_own_are_drawn_at_a_size_we_chose() {
        assert_eq!(drawable((640, 360)), (640, 360));
        assert_eq!(drawable((65535, 65535)), DEFAULT_SIZE);
        assert_eq!(drawable((0, 0)), DEFAULT_SIZE);
        assert_eq!(drawable((8, 8)), DEFAULT_SIZE, "too small to say anything");
        assert!(size_ok(DEFAULT_SIZE));
    }
}
