//! The capture thread: picks the source (`auto` falls back to the test
//! pattern, loudly), then runs the watchdog that keeps frames flowing and
//! shows NO SIGNAL while the source is down.

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

pub struct CaptureSettings {
    pub spec: SourceSpec,
    pub want: Format,
    /// No frame this long and the source counts as down (and is reopened).
    pub stall_timeout: Duration,
}

pub fn spawn(hub: Arc<Hub>, settings: CaptureSettings) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || run(&hub, settings))
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

fn run(hub: &Hub, settings: CaptureSettings) {
    let want = settings.want;
    let device = auto_device(Path::new("/dev/v4l/by-id"));
    let (spec, first, up) = resolve(hub, &settings.spec, want, &device);
    let name = hub.status().name;
    let mut opener = move || source::open(&spec, want);
    Watchdog::new(
        hub,
        up,
        Timing::standard(settings.stall_timeout),
        name,
        (want.width, want.height),
    )
    .run(first, &mut opener);
    log::debug!("capture thread stopped");
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
) -> (SourceSpec, Option<Opened>, Up) {
    match spec {
        SourceSpec::Auto => match source::v4l2::open(auto_device, want) {
            Ok(src) => {
                hub.set_status(|s| {
                    s.kind = "v4l2".into();
                    s.name = auto_device.display().to_string();
                });
                let live = Up {
                    state: SourceState::Live,
                    message: None,
                };
                (
                    SourceSpec::Device(auto_device.to_path_buf()),
                    Some(Ok(src)),
                    live,
                )
            }
            Err(e) => {
                let message = format!(
                    "No camera: {e}. Showing the built-in TEST SOURCE pattern instead, \
                     not a camera picture. Connect a webcam and restart, or choose one with --source /dev/videoN."
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
mod tests {
    use super::*;
    use crate::hub::SourceStatus;

    fn hub(kind: &str, name: &str) -> Hub {
        Hub::new(
            Duration::ZERO,
            SourceStatus {
                kind: kind.into(),
                name: name.into(),
                state: SourceState::Starting,
                width: 0,
                height: 0,
                nominal_fps: 30.0,
                message: None,
            },
        )
    }

    const WANT: Format = Format {
        width: 64,
        height: 48,
        fps: 30,
    };

    #[test]
    fn auto_without_a_camera_falls_back_to_test_loudly() {
        let h = hub("v4l2", "auto");
        let (spec, first, up) = resolve(
            &h,
            &SourceSpec::Auto,
            WANT,
            Path::new("/dev/video-not-here"),
        );
        assert_eq!(spec, SourceSpec::Test);
        assert!(first.is_none());
        assert_eq!(up.state, SourceState::Test);
        let st = h.status();
        assert_eq!((st.kind.as_str(), st.name.as_str()), ("test", "test"));
        let msg = st.message.unwrap();
        assert!(
            msg.contains("No camera") && msg.contains("/dev/video-not-here"),
            "{msg}"
        );
        assert!(msg.contains("TEST SOURCE"), "{msg}");
    }

    #[test]
    fn auto_prefers_a_stable_camera_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(auto_device(dir.path()), Path::new(AUTO_DEVICE));
        for name in [
            "usb-Logi_C270_B1-video-index1",
            "usb-Logi_C270_B1-video-index0",
            "usb-Acme_Cam_1-video-index0",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            auto_device(dir.path()),
            dir.path().join("usb-Acme_Cam_1-video-index0")
        );
        assert_eq!(
            auto_device(Path::new("/nonexistent")),
            Path::new(AUTO_DEVICE)
        );
    }

    #[test]
    fn explicit_sources_keep_their_spec() {
        let h = hub("file", "x.mjpeg");
        let spec = SourceSpec::File("x.mjpeg".into());
        let (s, first, up) = resolve(&h, &spec, WANT, Path::new("/dev/video-not-here"));
        assert_eq!(s, spec);
        assert!(first.is_none());
        assert_eq!(up.state, SourceState::Live);
        let (_, _, up) = resolve(&h, &SourceSpec::Test, WANT, Path::new("/nope"));
        assert_eq!(up.state, SourceState::Test);
        assert!(up.message.unwrap().contains("not a camera"));
    }

    #[test]
    fn thread_runs_the_test_source_and_stops_on_close() {
        let h = Arc::new(hub("test", "test"));
        let t = spawn(
            h.clone(),
            CaptureSettings {
                spec: SourceSpec::Test,
                want: WANT,
                stall_timeout: Duration::from_secs(3),
            },
        )
        .unwrap();
        let f = h.wait_newer(0, Duration::from_secs(30)).expect("a frame");
        assert_eq!((f.width, f.height), (64, 48));
        assert!(!f.no_signal);
        assert_eq!(h.status().state, SourceState::Test);
        h.close();
        t.join().unwrap();
    }
}
