//! Recording: the one role that decodes. STUB public surface: the recorder
//! work fills it in (decode → OpenH264 → MP4, crash-safe `.part` + journal).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clips::Clips;
use crate::hub::Hub;

pub struct RecorderSettings {
    pub clips_dir: PathBuf,
    /// 0: chosen from the frame size.
    pub bitrate_kbps: u32,
    pub pre_roll: Duration,
    /// Applied when `/start` gives no `max_duration_sec`.
    pub default_max_duration: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    pub max_duration: Option<Duration>,
}

/// The recording in progress, for `/start`, `/status` and 409 answers.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveInfo {
    pub id: String,
    pub started_at: String,
    pub elapsed_sec: f64,
    pub frames: u64,
    pub fps: f64,
    pub dropped_frames: u64,
    pub max_duration_sec: Option<f64>,
}

/// A finished clip: the `/stop` answer.
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
}

#[derive(Debug)]
pub enum RecError {
    AlreadyRecording(ActiveInfo),
    NotRecording,
    /// Anything else, with context (which path, which step).
    Failed(String),
}

pub struct Recorder {
    #[allow(dead_code)]
    hub: Arc<Hub>,
    #[allow(dead_code)]
    clips: Arc<Clips>,
    #[allow(dead_code)]
    settings: RecorderSettings,
    last: Mutex<Option<ClipInfo>>,
}

impl Recorder {
    pub fn new(hub: Arc<Hub>, clips: Arc<Clips>, settings: RecorderSettings) -> Recorder {
        Recorder {
            hub,
            clips,
            settings,
            last: Mutex::new(None),
        }
    }

    pub fn start(&self, _opts: StartOptions) -> Result<ActiveInfo, RecError> {
        Err(RecError::Failed("recording not implemented yet".into()))
    }

    pub fn stop(&self) -> Result<ClipInfo, RecError> {
        Err(RecError::NotRecording)
    }

    pub fn active(&self) -> Option<ActiveInfo> {
        None
    }

    /// The clip most recently finished by this process (stop, cap or shutdown).
    pub fn last_finished(&self) -> Option<ClipInfo> {
        self.last.lock().ok()?.clone()
    }

    /// Finishes the current clip, if any (SIGTERM/SIGINT).
    pub fn shutdown(&self) -> Option<ClipInfo> {
        None
    }
}

/// `video-recorder probe FILE`: our own reader's view of a clip, as JSON.
pub fn probe(path: &std::path::Path) -> Result<serde_json::Value, String> {
    Err(format!("{}: probe not implemented yet", path.display()))
}
