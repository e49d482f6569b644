//! A camera is the unit of the design: its source, capture thread and
//! watchdog, its hub (latest frame, pre-roll ring, taps), its recorder and
//! its counters live together, built from its own settings. The registry
//! (`Cameras`) is what the HTTP layer holds; the first camera is the one the
//! original routes (`/video`, `/start`, …) mean.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub mod preview;

use crate::capture::{self, CaptureSettings};
use crate::clips::Clips;
use crate::config::CameraSettings;
use crate::hub::{Hub, SourceState, SourceStatus};
use crate::ids::CameraId;
use crate::recorder::{ClipInfo, Recorder, RecorderSettings};
use crate::source::rtsp::{self, RtspSettings};
use crate::source::{Format, SourceSpec};

pub struct Camera {
    pub id: CameraId,
    pub hub: Arc<Hub>,
    pub recorder: Recorder,
    viewers: Arc<AtomicUsize>,
    capture: Mutex<Option<JoinHandle<()>>>,
    /// An RTSP camera: H.264/H.265 frames, not JPEGs.
    video: bool,
    /// Its MJPEG view, decoded on demand (video cameras only).
    pub preview: Option<preview::Preview>,
}

/// A viewer of one camera, counted while it lives.
pub struct Watching(Arc<AtomicUsize>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Camera {
    /// Starts the camera's capture thread; its recorder waits for `/start`.
    pub fn start(settings: &CameraSettings, clips: Arc<Clips>) -> Result<Camera, String> {
        let id = settings.id.clone();
        let spec = settings.source.clone();
        let hub = Arc::new(Hub::new(
            Duration::from_secs_f64(settings.pre_roll_sec),
            SourceStatus {
                kind: spec.kind().into(),
                name: spec.display_name(),
                state: SourceState::Starting,
                nominal_fps: f64::from(settings.fps),
                requested: (settings.width, settings.height, settings.fps),
                // A network video camera says its codec once connected.
                pixel_format: if matches!(spec, SourceSpec::Rtsp(_)) {
                    ""
                } else {
                    "MJPEG"
                },
                ..Default::default()
            },
        ));
        let stall_timeout = Duration::from_secs_f64(settings.stall_timeout_sec);
        let video = matches!(spec, SourceSpec::Rtsp(_));
        let capture = match spec {
            SourceSpec::Rtsp(url) => rtsp::spawn(
                &id,
                hub.clone(),
                RtspSettings {
                    camera: id.to_string(),
                    url,
                    transport: settings.rtsp_transport,
                    stall_timeout,
                    nominal_fps: settings.fps,
                },
            ),
            spec => capture::spawn(
                &id,
                hub.clone(),
                CaptureSettings {
                    spec,
                    want: Format {
                        width: settings.width,
                        height: settings.height,
                        fps: settings.fps,
                    },
                    stall_timeout,
                },
            ),
        }
        .map_err(|e| format!("camera {id}: cannot start its capture thread: {e}"))?;
        let recorder = Recorder::new(
            hub.clone(),
            clips,
            RecorderSettings {
                camera: id.clone(),
                bitrate_kbps: settings.bitrate_kbps,
                pre_roll: Duration::from_secs_f64(settings.pre_roll_sec),
                default_max_duration: (settings.max_duration_sec > 0.0)
                    .then(|| Duration::from_secs_f64(settings.max_duration_sec)),
            },
        );
        Ok(Camera {
            id,
            recorder,
            viewers: Arc::default(),
            capture: Mutex::new(Some(capture)),
            video,
            preview: video.then(|| {
                preview::Preview::new(hub.clone(), settings.preview_fps, settings.preview_width)
            }),
            hub,
        })
    }

    /// Counts a viewer of this camera until the guard is dropped.
    pub fn watch(&self) -> Watching {
        self.viewers.fetch_add(1, Ordering::AcqRel);
        Watching(self.viewers.clone())
    }

    /// Whether frames are H.264/H.265 (`live.mp4`) rather than JPEGs.
    pub fn sends_video(&self) -> bool {
        self.video
    }

    /// The RFC 6381 codec of a video camera's stream (`avc1.64001F`), once known.
    pub fn codec(&self) -> Option<String> {
        let latest = self.hub.latest()?;
        Some(latest.payload.video()?.params.rfc6381.clone())
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }

    /// Ends the capture thread and wakes this camera's viewers (shutdown,
    /// after the recording is finished).
    fn close(&self) {
        self.hub.close();
        if let Some(p) = &self.preview {
            p.close();
        }
        let handle = self
            .capture
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Every camera, in configured order.
pub struct Cameras(Vec<Camera>);

impl Cameras {
    /// Starts every camera; fails (naming the camera) if one cannot start.
    pub fn start(list: &[CameraSettings], clips: &Arc<Clips>) -> Result<Cameras, String> {
        let mut cams = Vec::with_capacity(list.len());
        for s in list {
            cams.push(Camera::start(s, clips.clone())?);
        }
        if cams.is_empty() {
            return Err("no camera configured".into());
        }
        Ok(Cameras(cams))
    }

    /// The camera of the original routes.
    pub fn first(&self) -> &Camera {
        &self.0[0]
    }

    pub fn get(&self, id: &str) -> Option<&Camera> {
        self.0.iter().find(|c| c.id == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Camera> {
        self.0.iter()
    }

    /// Finishes every recording at once (each clip ends at this instant,
    /// not after the previous camera's finish), then stops the capture
    /// threads. Returns the clips saved.
    pub fn shutdown(&self) -> Vec<ClipInfo> {
        let saved = std::thread::scope(|s| {
            let finishing: Vec<_> = self
                .0
                .iter()
                .map(|c| s.spawn(|| c.recorder.shutdown()))
                .collect();
            finishing
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok(saved) => saved,
                    Err(_) => {
                        log::error!("a camera's recorder panicked while finishing its clip");
                        None
                    }
                })
                .collect()
        });
        for c in &self.0 {
            c.close();
        }
        saved
    }
}
