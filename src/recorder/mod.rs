//! Recording: the one role that decodes. A recorder thread (and its decoder
//! thread) exists only while recording: JPEG → YUV 4:2:0 → OpenH264 → MP4,
//! crash-safe (`.part` + journal, durable every second), capture times as
//! presentation times.
//!
//! Modules: `decode` (JPEG → I420), `ahead` (decoding one frame ahead on its
//! own thread, overlapping the encode), `encode` (OpenH264 setup, Annex B →
//! AVCC), `mux` (MP4 boxes), `journal` (`.part` writer, sidecar journal),
//! `recovery` (finishing, shared with crash recovery), `worker` (the
//! thread), `probe` (our own reader).

mod ahead;
mod decode;
mod encode;
mod finish;
mod journal;
mod mux;
mod probe;
mod recovery;
mod worker;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::clips::Clips;
use crate::error::{Error, Kind};
use crate::hub::{Hub, TapHandle};
use crate::ids::CameraId;

use crate::sync::lock;
pub use probe::probe;
#[cfg(test)]
use recovery::Recovered;
pub(crate) use recovery::recover_dir;

pub struct RecorderSettings {
    /// The camera recorded: the clips directory's owner names and places
    /// its clips.
    pub camera: CameraId,
    /// 0: chosen from the frame size.
    pub bitrate_kbps: u32,
    pub pre_roll: Duration,
    /// Applied when `/start` gives no `max_duration_sec`.
    pub default_max_duration: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Zero means no limit.
    pub max_duration: Option<Duration>,
}

/// The recording in progress, for `/start`, `/status` and 409 answers.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveInfo {
    pub id: String,
    /// When recording was requested (a pre-roll makes the clip start earlier).
    pub started_at: String,
    pub elapsed_sec: f64,
    pub frames: u64,
    pub fps: f64,
    pub dropped_frames: u64,
    /// Seconds of the clip fsynced and journaled: what a crash keeps.
    pub durable_sec: f64,
    pub max_duration_sec: Option<f64>,
}

/// A finished clip: the `/stop` answer. `started_at` is the wall time of the
/// clip's first frame and `ended_at` = `started_at` + `duration_sec`.
#[derive(Debug, Clone, Serialize)]
pub struct ClipInfo {
    pub id: String,
    pub path: String,
    pub duration_sec: f64,
    pub size_bytes: u64,
    pub frames: u64,
    pub fps: f64,
    pub started_at: String,
    pub ended_at: String,
    pub dropped_frames: u64,
    /// The clip before this one in the same recording: a network camera
    /// that changed its stream (size, codec) splits the recording there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continued_from: Option<String>,
    /// Why the recording ended before it was asked to (disk full, write
    /// error); absent when it ended as asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
}

/// What `/start` and `/stop` can answer besides a clip. Whatever failed
/// carries its kind (`Kind::DiskFull` from the errno of the write that
/// failed, `Kind::Empty` for a stop with nothing recorded), set where it
/// happened; `http::errors` turns it into a status and words.
#[derive(Debug)]
pub enum RecError {
    AlreadyRecording(ActiveInfo),
    NotRecording,
    /// The process is finishing its clips to exit: no new recording.
    Closing,
    /// Anything else, with context (which path, which step) for the log.
    Failed(Error),
}

/// Why a recording stopped by itself, for clients: what failed and the
/// system's reason, never the path (that goes to the log).
pub fn client_reason(e: &Error) -> String {
    match (e.kind(), e.os_error(), e.client_cause()) {
        (Kind::DiskFull, Some(_), Some(why)) => format!("the disk is full ({why})"),
        (_, Some(_), Some(why)) => format!("writing the clip failed ({why})"),
        // Ours (an encoder's, retention's): said in words, paths aside.
        (_, None, Some(words)) => words,
        _ => "the recording failed: see the server log".into(),
    }
}

impl std::fmt::Display for RecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecError::AlreadyRecording(a) => write!(f, "already recording {}", a.id),
            RecError::NotRecording => f.write_str("not recording"),
            RecError::Closing => f.write_str("shutting down: no new recording"),
            RecError::Failed(e) => write!(f, "{e}"),
        }
    }
}

struct Running {
    id: String,
    requested: Duration,
    requested_wall: SystemTime,
    max: Option<Duration>,
    control: Arc<worker::Control>,
    /// The tap's end, set with the stop, and its drop count.
    tap: TapHandle,
    thread: JoinHandle<crate::error::Result<ClipInfo>>,
}

impl Running {
    fn info(&self) -> ActiveInfo {
        let now = crate::clock::monotonic_now();
        let frames = self.control.frames.load(Ordering::Relaxed);
        let first = self.control.first_capture_ns.load(Ordering::Relaxed);
        let span = now
            .saturating_sub(Duration::from_nanos(first))
            .as_secs_f64();
        ActiveInfo {
            // The clip being written now (a split recording moves on).
            id: lock(&self.control.clip).clone(),
            started_at: crate::clock::rfc3339(self.requested_wall),
            elapsed_sec: now.saturating_sub(self.requested).as_secs_f64(),
            frames,
            fps: if first > 0 && span > 0.0 {
                frames as f64 / span
            } else {
                0.0
            },
            dropped_frames: self.tap.dropped() + self.control.skipped.load(Ordering::Relaxed),
            durable_sec: self.control.durable_ticks.load(Ordering::Relaxed) as f64
                / f64::from(mux::TIMESCALE),
            max_duration_sec: self.max.map(|d| d.as_secs_f64()),
        }
    }
}

pub struct Recorder {
    hub: Arc<Hub>,
    clips: Arc<Clips>,
    settings: RecorderSettings,
    /// Serialises start/stop/shutdown; `current` stays quick to read for /status.
    ops: Mutex<()>,
    current: Mutex<Option<Running>>,
    last: Arc<Mutex<Option<ClipInfo>>>,
    /// A recording that ended by itself before it was asked to (disk full,
    /// write error): what became of it, for `/status` and the next `/stop`.
    ended: Mutex<Option<Ended>>,
    /// Set by `shutdown`: a `/start` arriving while the process finishes
    /// its clips would be left a `.part` at exit.
    closing: std::sync::atomic::AtomicBool,
}

/// What became of a recording that stopped early.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    pub id: String,
    /// Client words: no path (`client_reason`).
    #[serde(rename = "reason")]
    pub error: String,
    #[serde(skip)]
    kind: Kind,
    /// The clip saved from it, if any.
    #[serde(skip)]
    pub clip: Option<ClipInfo>,
}

impl Recorder {
    pub fn new(hub: Arc<Hub>, clips: Arc<Clips>, settings: RecorderSettings) -> Recorder {
        Recorder {
            hub,
            clips,
            settings,
            ops: Mutex::new(()),
            current: Mutex::new(None),
            last: Arc::new(Mutex::new(None)),
            ended: Mutex::new(None),
            closing: Default::default(),
        }
    }

    /// Starts the recorder thread; the clip file exists when this returns.
    pub fn start(&self, opts: StartOptions) -> Result<ActiveInfo, RecError> {
        let _op = lock(&self.ops);
        if self.closing.load(Ordering::Acquire) {
            return Err(RecError::Closing);
        }
        self.reap();
        if let Some(r) = lock(&self.current).as_ref() {
            return Err(RecError::AlreadyRecording(r.info()));
        }
        let requested = crate::clock::monotonic_now();
        let requested_wall = SystemTime::now();
        self.clips.enforce(None);
        if let Some(why) = self.clips.out_of_room(None) {
            return Err(RecError::Failed(Error::said(Kind::DiskFull, why)));
        }
        *lock(&self.ended) = None;
        let paths = self
            .clips
            .allocate(&self.settings.camera, requested_wall)
            .map_err(RecError::Failed)?;
        let id = paths.id.to_string();
        let writer = journal::ClipWriter::create(paths).map_err(RecError::Failed)?;
        let status = self.hub.status();
        let fps = match self.hub.measured_fps() {
            f if f >= 1.0 => f,
            _ if status.nominal_fps >= 1.0 => status.nominal_fps,
            _ => 30.0,
        };
        let pre_roll = self.settings.pre_roll;
        // A transcode: room for the pre-roll backlog plus ~2 s of slack (an
        // encoder that cannot keep up drops, counted, rather than lag without
        // end). A stream copy costs almost nothing a frame, so a deep queue
        // only ever fills while the recorder is held up: it must not drop.
        let copy = status.kind == "rtsp"
            || self
                .hub
                .latest()
                .is_some_and(|f| f.payload.video().is_some());
        let capacity = if copy {
            crate::budget::COPY_TAP_FRAMES
        } else {
            ((pre_roll.as_secs_f64() + 2.0) * fps).clamp(16.0, 300.0) as usize
        };
        let (pre, tap) = self
            .hub
            .tap_with_preroll(capacity, crate::budget::TAP_BYTES, pre_roll);
        let max = opts
            .max_duration
            .or(self.settings.default_max_duration)
            .filter(|d| !d.is_zero());
        let control = Arc::new(worker::Control::default());
        *lock(&control.clip) = id.clone();
        let handle = tap.handle();
        if let Some(m) = max {
            handle.end_at(requested + m);
        }
        let job = worker::Job {
            id: id.clone(),
            camera: self.settings.camera.clone(),
            continued_from: None,
            writer,
            pre,
            tap,
            control: control.clone(),
            clips: self.clips.clone(),
            last: self.last.clone(),
            bitrate_kbps: self.settings.bitrate_kbps,
            fps_hint: fps,
            max_end: max.map(|m| requested + m),
            begin: requested.saturating_sub(pre_roll),
        };
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || worker::run(job))
            .map_err(|e| {
                RecError::Failed(
                    Error::io("cannot start recorder thread", e).with_kind(Kind::Internal),
                )
            })?;
        // The HTTP layer logs the start at info level.
        log::debug!(
            "recording {id} started{}",
            max.map(|m| format!(" (at most {:.1} s)", m.as_secs_f64()))
                .unwrap_or_default()
        );
        let running = Running {
            id,
            requested,
            requested_wall,
            max,
            control,
            tap: handle,
            thread,
        };
        let info = running.info();
        *lock(&self.current) = Some(running);
        Ok(info)
    }

    /// Ends the clip at this instant and waits until it is a finished file.
    pub fn stop(&self) -> Result<ClipInfo, RecError> {
        self.stop_at(crate::clock::monotonic_now())
    }

    fn stop_at(&self, end: Duration) -> Result<ClipInfo, RecError> {
        let _op = lock(&self.ops);
        self.reap();
        let Some(running) = lock(&self.current).take() else {
            // Ended by itself since: its clip is the answer (it says why),
            // or its error is.
            return match lock(&self.ended).take() {
                Some(Ended { clip: Some(c), .. }) => Ok(c),
                Some(Ended {
                    id, error, kind, ..
                }) => Err(RecError::Failed(
                    Error::said(kind, error).context(format!("recording {id}")),
                )),
                None => Err(RecError::NotRecording),
            };
        };
        *lock(&running.control.end) = Some(end);
        running.tap.end_at(end);
        match running.thread.join() {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(e)) => Err(RecError::Failed(
                e.context(format!("recording {}", running.id)),
            )),
            Err(_) => Err(RecError::Failed(
                Error::new(Kind::Internal, "recorder thread panicked")
                    .context(format!("recording {}", running.id)),
            )),
        }
    }

    /// A recording that stopped early and was not yet answered by `/stop`.
    pub fn ended_early(&self) -> Option<Ended> {
        self.reap();
        lock(&self.ended).clone()
    }

    pub fn active(&self) -> Option<ActiveInfo> {
        self.reap();
        lock(&self.current).as_ref().map(Running::info)
    }

    /// The clip most recently finished by this process (stop, cap or
    /// shutdown). Only tests ask: `/last` reads the clips directory.
    #[cfg(test)]
    pub fn last_finished(&self) -> Option<ClipInfo> {
        lock(&self.last).clone()
    }

    /// Finishes the current clip, if any (SIGTERM/SIGINT), and refuses
    /// any start from now on.
    pub fn shutdown(&self) -> Option<ClipInfo> {
        self.closing.store(true, Ordering::Release);
        match self.stop() {
            Ok(info) => Some(info),
            Err(RecError::NotRecording) => None,
            Err(e) => {
                log::error!("{e}");
                None
            }
        }
    }

    /// Collects a recorder thread that ended by itself (max duration, error).
    fn reap(&self) {
        let mut cur = lock(&self.current);
        if cur.as_ref().is_some_and(|r| r.thread.is_finished())
            && let Some(r) = cur.take()
        {
            drop(cur);
            let ended = match r.thread.join() {
                Ok(Ok(c)) => c.stopped_early.clone().map(|error| Ended {
                    id: r.id.clone(),
                    error,
                    kind: Kind::Io,
                    clip: Some(c),
                }),
                Ok(Err(e)) => {
                    log::error!("recording {}: {e}", r.id);
                    Some(Ended {
                        id: r.id.clone(),
                        error: client_reason(&e),
                        kind: e.kind(),
                        clip: None,
                    })
                }
                Err(_) => {
                    log::error!("recording {}: recorder thread panicked", r.id);
                    Some(Ended {
                        id: r.id.clone(),
                        error: "recorder thread panicked".into(),
                        kind: Kind::Internal,
                        clip: None,
                    })
                }
            };
            if ended.is_some() {
                *lock(&self.ended) = ended;
            }
        }
    }

    /// Test hook: make the thread vanish without finishing, like `kill -9`.
    #[cfg(test)]
    fn abort(&self) {
        if let Some(r) = lock(&self.current).take() {
            r.control.abort.store(true, Ordering::Relaxed);
            let _ = r.thread.join();
        }
    }
}

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;
