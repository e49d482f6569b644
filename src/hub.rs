//! Where the capture thread hands frames over: a latest-frame slot for viewers,
//! a bounded pre-roll ring, and bounded taps for recorders. Publishing never
//! blocks on a consumer: viewers skip to the newest frame, full taps count drops.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::frame::Frame;
use crate::sync::lock;

mod tap;
use tap::{Offer, Tap};
pub use tap::{TapHandle, TapReceiver};

/// What the source is doing, for `/status`, the page and logs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceState {
    /// Frames are flowing from a real device, file or network source.
    Live,
    /// The synthetic test pattern (no camera): said loudly everywhere.
    Test,
    /// The source failed; viewers get NO SIGNAL frames while it is reopened.
    Down,
    /// A network camera being connected to (again).
    Connecting,
    #[default]
    Starting,
}

impl SourceState {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceState::Live => "live",
            SourceState::Test => "test",
            SourceState::Down => "down",
            SourceState::Connecting => "connecting",
            SourceState::Starting => "starting",
        }
    }
}

/// Description of the source for `/status`.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// `v4l2`, `test` or `file`.
    pub kind: String,
    /// Device path or file name (never credentials).
    pub name: String,
    pub state: SourceState,
    /// Size the source actually delivers (0 until known).
    pub width: u32,
    pub height: u32,
    /// Rate the source promised (nominal); the measured rate is separate.
    pub nominal_fps: f64,
    /// Last error, when down, or the reason the test source is in use; or,
    /// while live, how what the camera gives differs from what was asked.
    pub message: Option<String>,
    /// What the settings asked for: width, height, fps.
    pub requested: (u32, u32, u32),
    /// What the source delivers (`MJPEG`, or `YUYV` encoded here; `H264`,
    /// `H265` once a network camera said; empty until known).
    pub pixel_format: &'static str,
    /// An RTSP camera's transport in use (`tcp`/`udp`), once set up.
    pub transport: Option<&'static str>,
}

/// Counters the capture thread keeps.
#[derive(Debug, Default)]
pub struct CaptureCounters {
    pub frames: AtomicU64,
    /// Truncated or broken JPEGs dropped before anyone saw them.
    pub broken: AtomicU64,
    /// Times the source was reopened after failing.
    pub reopens: AtomicU64,
    /// Frames a network camera sent faster than its budget allows: dropped.
    pub over_rate: AtomicU64,
    /// Bytes a network camera sent that were not frames.
    pub junk_bytes: AtomicU64,
    /// Time reading a network camera paused: it sent more than its budget.
    pub throttled_ms: AtomicU64,
}

impl CaptureCounters {
    /// Adds what a source refused since it was last asked.
    pub fn add(&self, e: crate::budget::Excess) {
        self.over_rate
            .fetch_add(e.frames_over_rate, Ordering::Relaxed);
        self.junk_bytes.fetch_add(e.junk_bytes, Ordering::Relaxed);
        let ms = u64::try_from(e.throttled.as_millis()).unwrap_or(u64::MAX);
        self.throttled_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

struct Slot {
    latest: Option<Arc<Frame>>,
    closed: bool,
}

pub struct Hub {
    slot: Mutex<Slot>,
    cond: Condvar,
    preroll: Mutex<VecDeque<Arc<Frame>>>,
    preroll_window: Duration,
    /// Video frames since the latest keyframe: where a live fMP4 viewer
    /// starts, and what a viewer a few frames behind still finds.
    gop: Mutex<VecDeque<Arc<Frame>>>,
    taps: Mutex<Vec<Tap>>,
    /// Capture times of recent real frames, for the measured rate.
    recent: Mutex<VecDeque<Duration>>,
    status: Mutex<SourceStatus>,
    pub counters: CaptureCounters,
}

/// Upper bounds on what is kept for pre-roll whatever the window says:
/// part of the camera's memory budget.
const PREROLL_MAX_FRAMES: usize = crate::budget::PREROLL_FRAMES;
const PREROLL_MAX_BYTES: usize = crate::budget::PREROLL_BYTES;
/// Capture times kept for the measured rate (2 s of them) at most.
const RECENT_MAX: usize = 2048;
/// A camera that never sends a keyframe must not grow the live ring for good,
/// in frames or in bytes (a hostile camera's frames may each be 8 MiB).
const GOP_MAX_FRAMES: usize = crate::budget::LIVE_FRAMES;
const GOP_MAX_BYTES: usize = crate::budget::LIVE_BYTES;

impl Hub {
    pub fn new(preroll_window: Duration, status: SourceStatus) -> Hub {
        Hub {
            slot: Mutex::new(Slot {
                latest: None,
                closed: false,
            }),
            cond: Condvar::new(),
            preroll: Mutex::new(VecDeque::new()),
            preroll_window,
            gop: Mutex::new(VecDeque::new()),
            taps: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::new()),
            status: Mutex::new(status),
            counters: CaptureCounters::default(),
        }
    }

    /// Hands a frame to everyone. Never blocks on a consumer.
    pub fn publish(&self, frame: Frame) {
        let frame = Arc::new(frame);
        if !frame.no_signal {
            self.counters.frames.fetch_add(1, Ordering::Relaxed);
            let mut recent = lock(&self.recent);
            recent.push_back(frame.capture);
            while recent.len() > RECENT_MAX
                || (recent.len() > 2
                    && frame.capture.saturating_sub(recent[0]) > Duration::from_secs(2))
            {
                recent.pop_front();
            }
        }
        if !self.preroll_window.is_zero() {
            self.keep_for_preroll(&frame);
        }
        if frame.payload.video().is_some() {
            let mut gop = lock(&self.gop);
            let full = gop.len() >= GOP_MAX_FRAMES
                || gop.iter().map(|f| f.payload.len()).sum::<usize>() + frame.payload.len()
                    > GOP_MAX_BYTES;
            if frame.payload.is_key() || full {
                gop.clear();
            }
            if !gop.is_empty() || frame.payload.is_key() {
                gop.push_back(frame.clone());
            }
        }
        {
            let mut taps = lock(&self.taps);
            taps.retain(|t| !matches!(t.offer(&frame), Offer::Gone));
        }
        let mut slot = lock(&self.slot);
        slot.latest = Some(frame);
        drop(slot);
        self.cond.notify_all();
    }

    /// Adds a frame to the pre-roll ring and drops what no pre-roll needs:
    /// frames before the newest keyframe that is already `window` old (so
    /// a pre-roll of video starts on a keyframe at least that far back).
    fn keep_for_preroll(&self, frame: &Arc<Frame>) {
        let mut ring = lock(&self.preroll);
        ring.push_back(frame.clone());
        let old = |f: &Arc<Frame>| frame.capture.saturating_sub(f.capture) >= self.preroll_window;
        if let Some(k) = ring
            .iter()
            .skip(1)
            .rposition(|f| f.payload.is_key() && old(f))
        {
            // `k` counts from the second frame: keep from that keyframe on.
            ring.drain(..=k);
        }
        let mut bytes: usize = ring.iter().map(|f| f.payload.len()).sum();
        while ring.len() > PREROLL_MAX_FRAMES || (bytes > PREROLL_MAX_BYTES && ring.len() > 1) {
            if let Some(f) = ring.pop_front() {
                bytes -= f.payload.len();
            }
        }
        // What is left must still start where a decoder can.
        while ring.len() > 1 && ring.front().is_some_and(|f| !f.payload.is_key()) {
            ring.pop_front();
        }
    }

    /// The frame after `after` for a viewer that needs every frame (fMP4):
    /// the next one while it is still in the live ring, else the latest
    /// keyframe (`true`: frames were skipped). `after = None` starts at the
    /// latest keyframe. `None` on timeout or shutdown.
    pub fn next_video(&self, after: Option<u64>, timeout: Duration) -> Option<(Arc<Frame>, bool)> {
        let deadline = crate::clock::monotonic_now() + timeout;
        let mut seen = after.unwrap_or(0);
        loop {
            let left = deadline.saturating_sub(crate::clock::monotonic_now());
            let newest = self.wait_newer(seen, left)?;
            let gop = lock(&self.gop);
            let found = match (after, gop.front()) {
                (_, None) => None,
                (None, Some(k)) => Some((k.clone(), false)),
                (Some(a), Some(k)) if a < k.seq => Some((k.clone(), a + 1 != k.seq)),
                (Some(a), Some(k)) => gop
                    .get(usize::try_from(a + 1 - k.seq).unwrap_or(usize::MAX))
                    .map(|f| (f.clone(), false)),
            };
            drop(gop);
            if found.is_some() {
                return found;
            }
            seen = newest.seq;
        }
    }

    pub fn latest(&self) -> Option<Arc<Frame>> {
        lock(&self.slot).latest.clone()
    }

    /// Waits for a frame newer than `after_seq`; `None` on timeout or shutdown.
    /// Viewers call this in a loop, so a slow one simply skips frames.
    pub fn wait_newer(&self, after_seq: u64, timeout: Duration) -> Option<Arc<Frame>> {
        let slot = lock(&self.slot);
        let (slot, _) = self
            .cond
            .wait_timeout_while(slot, timeout, |s| {
                !s.closed && s.latest.as_ref().is_none_or(|f| f.seq <= after_seq)
            })
            .unwrap_or_else(|e| e.into_inner());
        if slot.closed {
            return None;
        }
        slot.latest.clone().filter(|f| f.seq > after_seq)
    }

    /// Wakes every waiting viewer and makes them stop (shutdown).
    pub fn close(&self) {
        lock(&self.slot).closed = true;
        self.cond.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.slot).closed
    }

    /// Subscribes a recorder: frames from now on, through a queue of `capacity`.
    #[cfg(test)]
    pub fn tap(&self, capacity: usize) -> TapReceiver {
        let (tap, rx) = Tap::new(capacity, usize::MAX);
        lock(&self.taps).push(tap);
        rx
    }

    /// Subscribes a recorder and returns, atomically with it, the pre-roll
    /// frames captured within `window` before now: no frame is missed or
    /// doubled. The queue holds `capacity` frames and `bytes` of payload.
    pub fn tap_with_preroll(
        &self,
        capacity: usize,
        bytes: usize,
        window: Duration,
    ) -> (Vec<Arc<Frame>>, TapReceiver) {
        // Holding the taps lock keeps publish() from slipping a frame between the two.
        let mut taps = lock(&self.taps);
        let ring = lock(&self.preroll);
        let newest = ring.back().map(|f| f.capture);
        let pre: Vec<Arc<Frame>> = match newest {
            Some(newest) if !window.is_zero() => {
                let age = |f: &Arc<Frame>| newest.saturating_sub(f.capture);
                // A clip must begin where a decoder can: every JPEG can, so a
                // JPEG pre-roll is the window; video starts on the newest
                // keyframe at least `window` back (or the oldest one kept).
                let start = if ring.back().is_some_and(|f| f.payload.video().is_some()) {
                    ring.iter()
                        .rposition(|f| f.payload.is_key() && age(f) >= window)
                        .or_else(|| ring.iter().position(|f| f.payload.is_key()))
                } else {
                    ring.iter().position(|f| age(f) < window)
                };
                start.map_or_else(Vec::new, |i| ring.iter().skip(i).cloned().collect())
            }
            // No pre-roll asked: video still starts where a decoder can,
            // on the keyframe the live view is showing.
            _ => lock(&self.gop).iter().cloned().collect(),
        };
        drop(ring);
        let (tap, rx) = Tap::new(capacity, bytes);
        taps.push(tap);
        (pre, rx)
    }

    /// Frames per second measured from capture times over the last ~2 s.
    pub fn measured_fps(&self) -> f64 {
        let recent = lock(&self.recent);
        if recent.len() < 2 {
            return 0.0;
        }
        let span = recent[recent.len() - 1].saturating_sub(recent[0]);
        // A source that stopped has no rate, whatever its last frames said.
        let stale = crate::clock::monotonic_now().saturating_sub(recent[recent.len() - 1]);
        if span.is_zero() || stale > Duration::from_secs(2) {
            return 0.0;
        }
        (recent.len() - 1) as f64 / span.as_secs_f64()
    }

    pub fn status(&self) -> SourceStatus {
        lock(&self.status).clone()
    }

    pub fn set_status(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut lock(&self.status));
    }
}

#[cfg(test)]
mod tests;
