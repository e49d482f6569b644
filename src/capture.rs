//! The capture thread: picks the source (`auto` falls back to the test
//! pattern, loudly, and switches to a camera as soon as one is plugged in),
//! then runs the watchdog that keeps frames flowing and shows NO SIGNAL
//! while the source is down.

mod watchdog;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::hub::{Hub, SourceState};
use crate::source::{self, Format, Source, SourceError, SourceSpec};

use watchdog::{Timing, Up, Watchdog};

/// The camera `auto` tries.
const AUTO_DEVICE: &str = "/dev/video0";
/// Where `auto` looks for cameras by stable name.
const BY_ID: &str = "/dev/v4l/by-id";
/// While `auto` shows the test pattern, how often it looks for a camera.
const CAMERA_PROBE_EVERY: Duration = Duration::from_secs(2);

/// Opens a camera device (V4L2; tests pass a stand-in).
type CameraOpener = dyn Fn(&Path, Format) -> Result<Box<dyn Source>, SourceError> + Sync;

pub struct CaptureSettings {
    pub spec: SourceSpec,
    pub want: Format,
    /// No frame this long and the source counts as down (and is reopened).
    pub stall_timeout: Duration,
}

/// How long opening a source may take before it counts as blocked.
fn open_timeout(stall_timeout: Duration) -> Duration {
    stall_timeout.max(Duration::from_secs(5))
}

/// Starts the capture thread of camera `camera` (its name in `top -H`).
pub fn spawn(
    camera: &str,
    hub: Arc<Hub>,
    settings: CaptureSettings,
) -> std::io::Result<JoinHandle<()>> {
    let within = open_timeout(settings.stall_timeout);
    std::thread::Builder::new()
        .name(format!("cap-{camera}"))
        .spawn(move || {
            // A camera whose open or read blocks is called down, not waited for.
            let cameras = source::detached::Opener::default();
            let open_camera = move |p: &Path, want: Format| {
                let path = p.to_path_buf();
                cameras.open(&p.display().to_string(), within, move || {
                    source::v4l2::open(&path, want)
                })
            };
            run(&hub, settings, Path::new(BY_ID), &open_camera)
        })
}

/// The camera `auto` opens: the first stable name under `/dev/v4l/by-id`
/// (so a camera that comes back as another /dev/videoN is found again when
/// it is reopened), else `/dev/video0`.
fn auto_device(by_id: &Path) -> std::path::PathBuf {
    let mut stable: Vec<std::path::PathBuf> = std::fs::read_dir(by_id)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("-video-index0"))
                .collect()
        })
        .unwrap_or_default();
    stable.sort();
    stable
        .into_iter()
        .next()
        .unwrap_or_else(|| AUTO_DEVICE.into())
}

fn run(hub: &Hub, settings: CaptureSettings, by_id: &Path, open_camera: &CameraOpener) {
    let want = settings.want;
    let (spec, mut first, up) =
        resolve(hub, &settings.spec, want, &auto_device(by_id), open_camera);
    let fallback = settings.spec == SourceSpec::Auto && spec == SourceSpec::Test;
    let spec = std::cell::RefCell::new(spec);
    // Whether the camera's node was there when last looked at.
    let present = std::cell::Cell::new(true);
    // Where the handover probe leaves the path of the camera it opened.
    let found = std::cell::RefCell::new(None);
    // A file can block too (a FIFO without a writer, a hung network mount).
    let files = source::detached::Opener::default();
    let within = open_timeout(settings.stall_timeout);
    let mut reopen = || match &*spec.borrow() {
        SourceSpec::Device(p) => open_camera(p, want),
        // A file can block (a FIFO, a hung mount), and so can a network
        // camera that accepts and never answers.
        spec @ (SourceSpec::File(_) | SourceSpec::Http(_)) => {
            let name = spec.display_name();
            let spec = spec.clone();
            files.open(&name, within, move || source::open(&spec, want))
        }
        other => source::open(other, want),
    };
    let mut watchdog = Watchdog::new(
        hub,
        up,
        Timing::standard(settings.stall_timeout),
        hub.status().name,
        (want.width, want.height),
    );
    // A camera plugged back in is reopened as soon as its node is back,
    // however long the backoff has grown.
    watchdog = watchdog.wake_when(Box::new(|| {
        let SourceSpec::Device(p) = &*spec.borrow() else {
            return false;
        };
        let now = std::fs::metadata(p).is_ok();
        let appeared = now && !present.get();
        present.set(now);
        appeared
    }));
    if fallback {
        let probe = || {
            let device = auto_device(by_id);
            // Cheap while nothing is plugged in: no open without a node.
            std::fs::metadata(&device).ok()?;
            match open_camera(&device, want) {
                Ok(src) => {
                    *found.borrow_mut() = Some(device);
                    Some(src)
                }
                Err(e) => {
                    log::debug!("no camera yet: {e}");
                    None
                }
            }
        };
        watchdog = watchdog.hand_over_when(CAMERA_PROBE_EVERY, Box::new(probe));
    }
    while let Some(src) = watchdog.run(first.take(), &mut reopen) {
        let Some(device) = found.borrow_mut().take() else {
            break;
        };
        log::info!(
            "camera found: {}; leaving the test pattern",
            device.display()
        );
        let (camera, opened, up) = camera_up(hub, device, src);
        *spec.borrow_mut() = camera;
        first = opened;
        watchdog.retarget(up, hub.status().name);
    }
    log::debug!("capture thread stopped");
}

/// Status for a camera `auto` opened; it is then kept by its path.
fn camera_up(
    hub: &Hub,
    device: std::path::PathBuf,
    src: Box<dyn Source>,
) -> (SourceSpec, Option<Opened>, Up) {
    hub.set_status(|s| {
        s.kind = "v4l2".into();
        s.name = device.display().to_string();
    });
    let live = Up {
        state: SourceState::Live,
        message: None,
    };
    (SourceSpec::Device(device), Some(Ok(src)), live)
}

/// A source opened while resolving the spec, or why it did not open.
type Opened = Result<Box<dyn Source>, SourceError>;

/// Decides what the spec means here: `auto` becomes the camera if it opens
/// (which is then kept, not opened twice), else the test pattern with a
/// warning in the log and in `/status`.
fn resolve(
    hub: &Hub,
    spec: &SourceSpec,
    want: Format,
    auto_device: &Path,
    open_camera: &CameraOpener,
) -> (SourceSpec, Option<Opened>, Up) {
    match spec {
        SourceSpec::Auto => match open_camera(auto_device, want) {
            Ok(src) => camera_up(hub, auto_device.to_path_buf(), src),
            Err(e) => {
                let message = format!(
                    "No camera: {e}. Showing the built-in TEST SOURCE pattern instead, \
                     not a camera picture. Connect a webcam (it is picked up within seconds), \
                     or choose one with --source /dev/videoN."
                );
                log::warn!("************************************************************");
                log::warn!("NO CAMERA FOUND: {message}");
                log::warn!("************************************************************");
                hub.set_status(|s| {
                    s.kind = "test".into();
                    s.name = "test".into();
                    s.message = Some(message.clone());
                });
                let up = Up {
                    state: SourceState::Test,
                    message: Some(message),
                };
                (SourceSpec::Test, None, up)
            }
        },
        SourceSpec::Test => {
            let up = Up {
                state: SourceState::Test,
                message: Some(
                    "Built-in TEST SOURCE pattern (--source test), not a camera picture.".into(),
                ),
            };
            log::info!("source: built-in test pattern (not a camera)");
            (SourceSpec::Test, None, up)
        }
        other => (
            other.clone(),
            None,
            Up {
                state: SourceState::Live,
                message: None,
            },
        ),
    }
}

#[cfg(test)]
mod tests;
