//! Decoding on demand: the MJPEG view (`/video`, `snapshot.jpg`) of a camera
//! that sends H.264. Its own thread decodes only while someone watches MJPEG
//! or asks for a snapshot (and a few seconds after, so snapshots in a row do
//! not restart it), at most `preview_fps` pictures a second, no wider than
//! `preview_width`, into a hub of its own. H.265 is not decoded here.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use openh264::decoder::Decoder;

use crate::frame::{Codec, Frame};
use crate::hub::{Hub, SourceState, SourceStatus};
use crate::picture::{annex_b, to_jpeg};
use crate::source::card;
use crate::sync::lock;

/// The decoder stays this long after its last user, for the next snapshot.
const LINGER: Duration = Duration::from_secs(3);

pub struct Preview {
    /// JPEG pictures, for the MJPEG view and snapshots.
    pub hub: Arc<Hub>,
    source: Arc<Hub>,
    fps: u32,
    max_width: u32,
    users: Arc<AtomicUsize>,
    running: Arc<AtomicBool>,
    /// Access units decoded, for `/status` (0 while nobody asks).
    pub decoded: Arc<AtomicU64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A user of the preview; the decoder may stop once none is left.
pub struct Use(Arc<AtomicUsize>);

impl Drop for Use {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Preview {
    pub fn new(source: Arc<Hub>, fps: u32, max_width: u32) -> Preview {
        let status = SourceStatus {
            kind: "preview".into(),
            state: SourceState::Live,
            nominal_fps: f64::from(fps),
            pixel_format: "MJPEG",
            ..Default::default()
        };
        Preview {
            hub: Arc::new(Hub::new(Duration::ZERO, status)),
            source,
            fps: fps.max(1),
            max_width: max_width.max(16),
            users: Arc::default(),
            running: Arc::default(),
            decoded: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Whether the stream can be decoded here (H.264 can; H.265 cannot).
    pub fn decodable(&self) -> crate::error::Result<()> {
        use crate::error::{Error, Kind};
        match self.source.latest() {
            None => Err(Error::said(Kind::CameraDown, "no frame yet")),
            Some(f) => match f.payload.video().map(|v| v.params.codec) {
                Some(Codec::H264) => Ok(()),
                // The camera's picture exists, not in a form this view has.
                _ => Err(Error::said(
                    Kind::CameraDown,
                    "this camera sends H.265: no MJPEG view or snapshot here \
                     (its live view is live.mp4)",
                )),
            },
        }
    }

    /// Counts a user and makes sure the decoder runs.
    pub fn watch(&self) -> Use {
        self.users.fetch_add(1, Ordering::AcqRel);
        let mut thread = lock(&self.thread);
        if !self.running.swap(true, Ordering::AcqRel) {
            if let Some(old) = thread.take() {
                let _ = old.join();
            }
            let job = Job {
                source: self.source.clone(),
                out: self.hub.clone(),
                period: Duration::from_secs(1) / self.fps,
                max_width: self.max_width,
                users: self.users.clone(),
                running: self.running.clone(),
                decoded: self.decoded.clone(),
            };
            match std::thread::Builder::new()
                .name("preview".into())
                .spawn(move || job.run())
            {
                Ok(h) => *thread = Some(h),
                Err(e) => {
                    log::error!("cannot start a preview decoder: {e}");
                    self.running.store(false, Ordering::Release);
                }
            }
        }
        Use(self.users.clone())
    }

    /// The newest picture taken at or after `since` (monotonic), waiting up
    /// to `timeout` for the decoder to make one.
    pub fn picture_since(&self, since: Duration, timeout: Duration) -> Option<Arc<Frame>> {
        let deadline = crate::clock::monotonic_now() + timeout;
        loop {
            let latest = self.hub.latest();
            if let Some(f) = latest
                .as_ref()
                .filter(|f| f.capture + self.slack() >= since)
            {
                return Some(f.clone());
            }
            let left = deadline.checked_sub(crate::clock::monotonic_now())?;
            self.hub.wait_newer(latest.map_or(0, |f| f.seq), left)?;
        }
    }

    /// A picture this recent counts as current.
    fn slack(&self) -> Duration {
        Duration::from_secs(1) / self.fps + Duration::from_millis(100)
    }

    /// Stops the decoder for good (shutdown).
    pub fn close(&self) {
        self.hub.close();
        if let Some(h) = lock(&self.thread).take() {
            let _ = h.join();
        }
    }
}

struct Job {
    source: Arc<Hub>,
    out: Arc<Hub>,
    period: Duration,
    max_width: u32,
    users: Arc<AtomicUsize>,
    running: Arc<AtomicBool>,
    decoded: Arc<AtomicU64>,
}

impl Job {
    fn run(self) {
        let mut dec = match Decoder::new() {
            Ok(d) => d,
            Err(e) => {
                log::error!("cannot start an H.264 decoder: {e}");
                self.running.store(false, Ordering::Release);
                return;
            }
        };
        let mut after = None;
        let mut idle_since = None;
        let mut last_out: Option<Duration> = None;
        // Numbers go on from the last run's: viewers wait for a higher one.
        let mut seq = self.out.latest().map_or(0, |f| f.seq);
        let mut drawn = None;
        loop {
            let now = crate::clock::monotonic_now();
            if self.users.load(Ordering::Acquire) == 0 {
                let since = *idle_since.get_or_insert(now);
                if now - since >= LINGER {
                    break;
                }
            } else {
                idle_since = None;
            }
            if self.out.is_closed() || self.source.is_closed() {
                break;
            }
            let Some((f, _)) = self.source.next_video(after, Duration::from_millis(250)) else {
                // While the camera is away MJPEG viewers see NO SIGNAL, as a
                // JPEG camera's do: also how a viewer who left is noticed.
                let away = self.source.status().state != SourceState::Live;
                if away && last_out.is_none_or(|t| now >= t + card::NO_SIGNAL_EVERY) {
                    seq += 1;
                    if self.no_signal(&mut drawn, seq) {
                        last_out = Some(now);
                    }
                }
                continue;
            };
            after = Some(f.seq);
            let Some(v) = f.payload.video().filter(|v| v.params.codec == Codec::H264) else {
                continue;
            };
            self.decoded.fetch_add(1, Ordering::Relaxed);
            let due = last_out.is_none_or(|t| f.capture >= t + self.period);
            let Ok(Some(yuv)) = dec.decode(&annex_b(v)) else {
                continue;
            };
            if !due {
                continue;
            }
            if let Some((jpeg, size)) = to_jpeg(&yuv, self.max_width) {
                last_out = Some(f.capture);
                seq += 1;
                self.out
                    .publish(Frame::jpeg(seq, jpeg, f.capture, f.wall, size, false));
            }
        }
        self.running.store(false, Ordering::Release);
        // A user who came as this loop decided to stop saw `running` still
        // set and started nothing: take over for them.
        if self.users.load(Ordering::Acquire) > 0
            && !self.out.is_closed()
            && !self.running.swap(true, Ordering::AcqRel)
        {
            self.run();
        }
    }

    /// Publishes NO SIGNAL at the size of the last picture.
    fn no_signal(&self, cache: &mut Option<card::NoSignal>, seq: u64) -> bool {
        let size = self
            .out
            .latest()
            .map_or((640, 360), |f| (f.width, f.height));
        match card::NoSignal::next(cache, size, &self.source.status().name) {
            Ok((jpeg, size)) => {
                let now = crate::clock::monotonic_now();
                let wall = std::time::SystemTime::now();
                self.out
                    .publish(Frame::jpeg(seq, jpeg, now, wall, size, true));
                true
            }
            Err(e) => {
                log::error!("cannot draw the NO SIGNAL picture: {e}");
                false
            }
        }
    }
}
