//! What one camera may cost us. Every buffer, ring and parse state that a
//! camera's bytes can grow has its limit here, checked where it grows, so
//! the process's memory is bounded by the number of cameras configured
//! whatever each of them sends; the rates bound the CPU a network camera
//! can make us spend (reading pauses when it sends more, so TCP slows it
//! down: we never spin on an abusive camera).
//!
//! Held at most per HTTP camera: one part being parsed ([`FRAME_BYTES`],
//! plus a read and a part head), the parts `open` reads before the first
//! JPEG (about one more), the frames in its hub (the latest, and the
//! pre-roll ring: [`PREROLL_BYTES`]; the live ring: [`LIVE_BYTES`]), and
//! what its viewers and recorder hold of those (shared, never copied). An
//! RTSP camera holds one access unit being put together
//! ([`ACCESS_UNIT_BYTES`]) and one RTSP message instead of the part.

/// Largest frame held: a part of an MJPEG stream, a JPEG in a file. A 4K
/// JPEG is ~2 MiB; a bigger part drops the connection.
pub const FRAME_BYTES: usize = 8 << 20;
/// Longest answer head from a network camera (status line and headers).
pub const HEAD_BYTES: usize = 16 * 1024;
/// Longest header block of one part of an MJPEG stream.
pub const PART_HEAD_BYTES: usize = 8 * 1024;
/// The pre-roll ring, whatever the window says.
pub const PREROLL_BYTES: usize = 64 << 20;
pub const PREROLL_FRAMES: usize = 30 * 60;
/// The live ring (the frames since the last keyframe, for a viewer who
/// joins): a camera that never sends a keyframe must not grow it for good.
pub const LIVE_FRAMES: usize = 600;
pub const LIVE_BYTES: usize = 32 << 20;
/// A recorder's queue from the hub, in payload bytes: a stream copy's
/// queue is this deep (a 4 Mbit/s camera: about a minute), so a recorder
/// held up by a busy CPU or a slow fsync for seconds drops nothing, and a
/// JPEG camera's never holds more, whatever its frames' size.
pub const TAP_BYTES: usize = 32 << 20;
/// A stream copy's queue in frames (a minute at 30 fps); bytes bound it first.
pub const COPY_TAP_FRAMES: usize = 30 * 60;
/// Largest RTSP access unit (one encoded picture, all its NAL units: a 4K
/// keyframe at a high bitrate is a few MiB); a bigger one ends the session,
/// since a fragment that never ends would otherwise pin the camera's read
/// buffer without bound (retina, patched, also bounds each RTSP message at
/// 1 MiB).
pub const ACCESS_UNIT_BYTES: usize = FRAME_BYTES;
/// Bytes a second a network camera may send per frame a second it may
/// send: room for 4K JPEGs.
const BYTES_PER_FRAME: u64 = 1 << 20;
/// Bytes a second that are not frames (part headers, boundary lines, the
/// CRLFs between) per frame a second, and on top of that for preambles.
const JUNK_PER_FRAME: u64 = 1024;
const JUNK_BASE: u64 = 16 * 1024;

/// One network camera's limits, from its configured rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub frame_bytes: usize,
    pub head_bytes: usize,
    pub part_head_bytes: usize,
    /// Frames a second passed on: twice the configured rate plus five, so a
    /// camera faster than configured still works; more are dropped and
    /// counted, and reading pauses until the next is due.
    pub frames_per_sec: u32,
    /// Bytes a second read; beyond, reading pauses.
    pub bytes_per_sec: u64,
    /// Bytes a second that are not frames (blank lines, junk between parts,
    /// empty parts, bodies that are not JPEGs); beyond, reading pauses.
    pub junk_per_sec: u64,
}

impl Budget {
    pub fn for_fps(fps: u32) -> Budget {
        let frames_per_sec = fps.clamp(1, 1000) * 2 + 5;
        Budget {
            frame_bytes: FRAME_BYTES,
            head_bytes: HEAD_BYTES,
            part_head_bytes: PART_HEAD_BYTES,
            frames_per_sec,
            bytes_per_sec: u64::from(frames_per_sec) * BYTES_PER_FRAME,
            junk_per_sec: JUNK_BASE + u64::from(frames_per_sec) * JUNK_PER_FRAME,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_the_configured_one_with_a_margin() {
        let b = Budget::for_fps(30);
        assert_eq!(b.frames_per_sec, 65);
        assert_eq!(b.bytes_per_sec, 65 << 20);
        assert_eq!(b.junk_per_sec, 16 * 1024 + 65 * 1024);
        assert_eq!(Budget::for_fps(0).frames_per_sec, 7, "at least one fps");
        // A 4K camera at its configured rate fits.
        let b = Budget::for_fps(15);
        assert!(b.bytes_per_sec >= 15 * 2 * (1 << 20));
    }
}

/// What a source refused or held back since it was last asked (a network
/// camera over its [`Budget`]), for the camera's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Excess {
    /// Frames sent faster than the budget allows, dropped.
    pub frames_over_rate: u64,
    /// Bytes that were not frames.
    pub junk_bytes: u64,
    /// Time reading paused because the camera sent more than its budget.
    pub throttled: std::time::Duration,
}

impl Excess {
    pub fn is_empty(&self) -> bool {
        *self == Excess::default()
    }

    pub fn add(&mut self, other: Excess) {
        self.frames_over_rate += other.frames_over_rate;
        self.junk_bytes += other.junk_bytes;
        self.throttled += other.throttled;
    }
}
