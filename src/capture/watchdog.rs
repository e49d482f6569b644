//! The capture loop and its watchdog. While the source delivers, each frame
//! is checked (broken ones are dropped and counted), numbered and published.
//! When it fails or stalls, the source is closed, viewers and recordings get
//! a NO SIGNAL picture about twice a second, and the source is reopened with
//! capped exponential backoff until it is back. Each transition is logged
//! once; retries are not.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::monotonic_now;
use crate::frame::Frame;
use crate::hub::{Hub, SourceState};
use crate::source::{Source, SourceError, card, jpeg};

/// What `/status` says while frames flow: `live`, or `test` with the reason.
pub struct Up {
    pub state: SourceState,
    pub message: Option<String>,
}

pub struct Timing {
    pub stall: Duration,
    pub no_signal_every: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Longest wait between checks for shutdown.
    pub slice: Duration,
}

impl Timing {
    pub fn standard(stall: Duration) -> Timing {
        Timing {
            stall,
            no_signal_every: card::NO_SIGNAL_EVERY,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            slice: Duration::from_millis(250),
        }
    }
}

pub type Opener<'a> = dyn FnMut() -> Result<Box<dyn Source>, SourceError> + 'a;

/// Asked now and then while streaming: a better source to switch to, if any
/// (a camera plugged in while `auto` shows the test pattern).
pub type Handover<'a> = dyn FnMut() -> Option<Box<dyn Source>> + 'a;

/// Asked often while the source is down: whether it may be back (a camera's
/// node reappeared), so that it is reopened now rather than after the backoff.
pub type Wake<'a> = dyn FnMut() -> bool + 'a;

pub struct Watchdog<'a> {
    hub: &'a Hub,
    up: Up,
    t: Timing,
    name: String,
    seq: u64,
    last_capture: Duration,
    /// Last known frame size: what the NO SIGNAL picture is drawn at.
    size: (u32, u32),
    no_signal: Option<card::NoSignal>,
    broken_logged: Option<(Instant, u64)>,
    handover: Option<(Duration, Box<Handover<'a>>)>,
    wake: Option<Box<Wake<'a>>>,
}

enum Stop {
    Closed,
    Failed(SourceError),
    Handover(Box<dyn Source>),
}

impl<'a> Watchdog<'a> {
    pub fn new(hub: &'a Hub, up: Up, t: Timing, name: String, size: (u32, u32)) -> Watchdog<'a> {
        Watchdog {
            hub,
            up,
            t,
            name,
            seq: 0,
            last_capture: Duration::ZERO,
            size,
            no_signal: None,
            broken_logged: None,
            handover: None,
            wake: None,
        }
    }

    /// While down, asks `wake` every slice whether to reopen at once.
    pub fn wake_when(mut self, wake: Box<Wake<'a>>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// While streaming, asks `probe` every `every` for a source to hand over to.
    pub fn hand_over_when(mut self, every: Duration, probe: Box<Handover<'a>>) -> Self {
        self.handover = Some((every, probe));
        self
    }

    /// The source changed (a handover): what `/status` says from now on.
    /// Frame numbers and capture times carry on, so viewers notice nothing.
    pub fn retarget(&mut self, up: Up, name: String) {
        self.up = up;
        self.name = name;
    }

    /// Runs until the hub closes (`None`) or the handover probe offers a
    /// source (returned, open). `first` is an already opened source, if any.
    pub fn run(
        &mut self,
        first: Option<Result<Box<dyn Source>, SourceError>>,
        opener: &mut Opener<'_>,
    ) -> Option<Box<dyn Source>> {
        let mut source = first.unwrap_or_else(&mut *opener);
        loop {
            let error = match source {
                Ok(src) => {
                    self.went_up(&*src);
                    match self.stream(src) {
                        Stop::Closed => return None,
                        Stop::Handover(next) => {
                            // Once: the camera is then kept and reopened.
                            self.handover = None;
                            return Some(next);
                        }
                        Stop::Failed(e) => e,
                    }
                }
                Err(e) => e,
            };
            match self.recover(error, opener) {
                Some(src) => {
                    self.hub.counters.reopens.fetch_add(1, Ordering::Relaxed);
                    source = Ok(src);
                }
                None => return None,
            }
        }
    }

    fn went_up(&mut self, src: &dyn Source) {
        let f = src.format();
        // A size the rule refuses (a driver's or a camera's claim) is never
        // drawn at: NO SIGNAL keeps the last accepted one.
        if crate::frame::size_ok((f.width, f.height)) {
            self.size = (f.width, f.height);
        }
        let (state, message) = (self.up.state.clone(), self.up.message.clone());
        let pixel_format = src.pixel_format();
        self.hub.set_status(|s| {
            let message = match (&state, message) {
                (SourceState::Live, None) if s.kind == "v4l2" => {
                    differs(s.requested, f, pixel_format)
                }
                (_, message) => message,
            };
            s.state = state;
            s.message = message;
            s.width = f.width;
            s.height = f.height;
            s.nominal_fps = f64::from(f.fps);
            s.pixel_format = pixel_format;
        });
    }

    /// Passes frames on until the source fails, stalls or the hub closes.
    /// The source is dropped (closed) on return, before any reopen.
    fn stream(&mut self, mut src: Box<dyn Source>) -> Stop {
        // A slow source is not a stalled one: allow at least three intervals.
        let stall = self
            .t
            .stall
            .max(3 * Duration::from_secs(1) / src.format().fps.max(1));
        let mut last_good = monotonic_now();
        let mut next_probe = self
            .handover
            .as_ref()
            .map(|(every, _)| Instant::now() + *every);
        loop {
            if self.hub.is_closed() {
                return Stop::Closed;
            }
            if let (Some(at), Some((every, probe))) = (next_probe, self.handover.as_mut())
                && Instant::now() >= at
            {
                if let Some(next) = probe() {
                    return Stop::Handover(next);
                }
                next_probe = Some(Instant::now() + *every);
            }
            let waited = monotonic_now().saturating_sub(last_good);
            if waited >= stall {
                return Stop::Failed(SourceError(format!(
                    "{}: no frame for {:.1} s (stalled)",
                    self.name,
                    waited.as_secs_f64()
                )));
            }
            let next = src.next_frame(self.t.slice.min(stall - waited));
            let excess = src.take_excess();
            if !excess.is_empty() {
                self.hub.counters.add(excess);
            }
            match next {
                Ok(Some(raw)) => match jpeg::sanitize(raw.jpeg) {
                    Ok((jpeg, size)) => {
                        if size != self.size {
                            self.size = size;
                            self.hub.set_status(|s| (s.width, s.height) = size);
                        }
                        self.publish(jpeg, raw.capture, raw.wall, false);
                        last_good = monotonic_now();
                    }
                    Err(why) => self.broken(why),
                },
                Ok(None) => {}
                Err(e) => return Stop::Failed(e),
            }
        }
    }

    /// Shows NO SIGNAL and reopens with backoff; the new source, or `None`
    /// when the hub closed first.
    fn recover(&mut self, error: SourceError, opener: &mut Opener<'_>) -> Option<Box<dyn Source>> {
        let down_since = Instant::now();
        log::warn!("source down: {error}; showing NO SIGNAL and reopening");
        let mut message = error.0;
        let msg = message.clone();
        self.hub.set_status(|s| {
            s.state = SourceState::Down;
            s.message = Some(msg);
        });
        let mut backoff = self.t.backoff_min;
        let mut next_try = Instant::now() + backoff;
        let mut next_picture = Instant::now();
        let mut attempts = 0u64;
        loop {
            if self.hub.is_closed() {
                return None;
            }
            let now = Instant::now();
            if now >= next_picture {
                self.publish_no_signal();
                next_picture = (next_picture + self.t.no_signal_every).max(now);
            }
            let woken = self.wake.as_mut().is_some_and(|w| w());
            if now >= next_try || woken {
                attempts += 1;
                match opener() {
                    Ok(src) => {
                        log::info!(
                            "source back: {} after {:.1} s down ({attempts} attempts)",
                            self.name,
                            down_since.elapsed().as_secs_f64()
                        );
                        return Some(src);
                    }
                    Err(e) => {
                        log::debug!("reopen attempt {attempts} failed: {e}");
                        if e.0 != message {
                            message = e.0;
                            let msg = message.clone();
                            self.hub.set_status(|s| s.message = Some(msg));
                        }
                        backoff = (backoff * 2).min(self.t.backoff_max);
                        next_try = Instant::now() + backoff;
                    }
                }
            }
            let until = next_picture.min(next_try);
            let now = Instant::now();
            if until > now {
                std::thread::sleep((until - now).min(self.t.slice));
            }
        }
    }

    fn publish(&mut self, jpeg: Vec<u8>, capture: Duration, wall: SystemTime, no_signal: bool) {
        self.seq += 1;
        // Consumers rely on capture times that only go forward.
        let capture = if capture > self.last_capture {
            capture
        } else {
            self.last_capture + Duration::from_micros(1)
        };
        self.last_capture = capture;
        self.hub.publish(Frame::jpeg(
            self.seq, jpeg, capture, wall, self.size, no_signal,
        ));
    }

    fn publish_no_signal(&mut self) {
        match card::NoSignal::next(&mut self.no_signal, self.size, &self.name) {
            Ok((jpeg, size)) => {
                self.size = size;
                self.publish(jpeg, monotonic_now(), SystemTime::now(), true)
            }
            Err(e) => log::error!("cannot draw the NO SIGNAL picture: {e}"),
        }
    }

    /// Counts a dropped frame; logs the first and then at most every 10 s.
    fn broken(&mut self, why: jpeg::Broken) {
        let total = self.hub.counters.broken.fetch_add(1, Ordering::Relaxed) + 1;
        let due = match self.broken_logged {
            None => true,
            Some((at, _)) => at.elapsed() >= Duration::from_secs(10),
        };
        if due {
            let since = self.broken_logged.map_or(0, |(_, n)| n);
            log::warn!(
                "{}: dropped a broken frame ({why}); {} dropped since the last report, {total} in all",
                self.name,
                total - since
            );
            self.broken_logged = Some((Instant::now(), total));
        }
    }
}

/// How what a live source gives differs from what was asked, in words
/// (`None` when it gives what was asked, as MJPEG).
fn differs(
    (w, h, fps): (u32, u32, u32),
    got: crate::source::Format,
    pixel_format: &str,
) -> Option<String> {
    let mut notes = Vec::new();
    if w != 0 && (got.width, got.height, got.fps) != (w, h, fps) {
        notes.push(format!(
            "gives {}x{} at {} fps (asked for {w}x{h} at {fps} fps)",
            got.width, got.height, got.fps
        ));
    }
    if pixel_format != "MJPEG" {
        notes.push(format!(
            "offers no MJPEG: its {pixel_format} frames are encoded to JPEG here, at a CPU cost"
        ));
    }
    (!notes.is_empty()).then(|| format!("The source {}.", notes.join("; it ")))
}

#[cfg(test)]
#[path = "watchdog_tests.rs"]
mod tests;
