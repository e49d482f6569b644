//! RTSP stream copy on a busy machine (`stress-ng --cpu`, four workers a
//! core, and the server held up twice for over a second, as the issue saw):
//! frames that reach us late because *we* were slow keep the camera's own
//! times (no re-anchor, no hole then a burst in the clip), and none is
//! dropped from the copy because a queue was slow. Both codecs, GStreamer's
//! camera.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::rtsp::{RtspCamera, RtspOptions};
use common::{RunWithin, Server};

const WAIT: Duration = Duration::from_secs(60);
/// The clip's length: long enough for a slow second or two to come and go.
const RECORD_SEC: f64 = 8.0;

/// Who yields to whom (raising niceness needs no privilege): the camera
/// (nice 0) is another machine and must not be starved, or its own clock
/// runs slow (a live GStreamer source stamps frames by count, so a starved
/// encoder makes 3.6 s of camera time in 8 s); the load comes next; we come
/// last, so it is *our* delivery that is late.
const LOAD_NICE: &str = "10";
const SERVER_NICE: &str = "19";

/// `stress-ng --cpu N` for at most a minute; stopped when dropped.
struct Load(Child);

impl Load {
    fn start(workers: u32) -> Load {
        let child = Command::new("nice")
            .args([
                "-n",
                LOAD_NICE,
                "stress-ng",
                "--cpu",
                &workers.to_string(),
                "--timeout",
                "60s",
                "--quiet",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn stress-ng");
        Load(child)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // stress-ng's workers follow their parent when it gets SIGTERM; a
        // SIGKILL would leave them spinning.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        if common::wait_timeout(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Stops the whole server process (SIGSTOP) for `d`, then lets it go on.
fn hold_up(s: &Server, d: Duration) {
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &s.pid().to_string()])
            .status_within(Duration::from_secs(10))
            .is_ok_and(|st| st.success());
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    std::thread::sleep(d);
    signal("-CONT");
}

/// Each frame's presentation time, as ffprobe reads the clip.
fn pts(path: &Path) -> Vec<f64> {
    common::packets(path).into_iter().map(|(t, _)| t).collect()
}

#[test]
fn stream_copy_under_cpu_load_keeps_every_frame_and_the_cameras_clock() {
    if !common::have_tool("stress-ng") || !common::have_tool("ffprobe") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    // Under an emulator (8x slower) the binary cannot keep up at the bottom
    // of a heavy load: a lighter one at its level, the holds the same.
    let (workers, server_nice) = if common::emulated() {
        (cores, LOAD_NICE)
    } else {
        (4 * cores, SERVER_NICE)
    };
    for codec in ["h264", "h265"] {
        let Some(cam) = RtspCamera::start(RtspOptions {
            codec,
            // Small enough for x265 to keep up on a loaded 2-core machine.
            width: 320,
            height: 180,
            bitrate_kbps: 500,
            ..Default::default()
        }) else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let s = Server::start_wrapped(
            &tmp.path().join("clips"),
            &["--source", &cam.url(), "--clips-min-free-mb", "0"],
            &["nice", "-n", server_nice],
        );
        s.wait_status(WAIT, "live", |st| st["source"]["state"] == "live");
        let load = Load::start(workers);
        assert_eq!(s.post("/start", "").status, 200);
        // Held up for the 1.47 s and 1.05 s (on a busy machine the
        // scheduler does it now and then; here on cue): the camera's frames
        // wait in the socket and then come in a burst.
        for hold in [1470, 1050] {
            std::thread::sleep(Duration::from_millis(1500));
            hold_up(&s, Duration::from_millis(hold));
        }
        s.wait_status(WAIT, "recorded", |st| {
            st["recorder"]["elapsed_sec"].as_f64() >= Some(RECORD_SEC)
        });
        let stop = s.post("/stop", "");
        drop(load);
        assert_eq!(stop.status, 200, "{}", stop.text());
        let clip = stop.json();
        let log = s.log();
        eprintln!("{codec}: {clip}");
        assert_eq!(clip["dropped_frames"], 0, "{codec}: {clip:#}\n{log}");
        assert!(!log.contains("re-anchored"), "{codec}: {log}");
        let p = pts(Path::new(clip["path"].as_str().unwrap()));
        let frames = clip["frames"].as_u64().unwrap();
        assert_eq!(p.len() as u64, frames, "{codec}");
        // The camera's own times: every frame's duration a whole number of
        // its 1/30 s frames (the camera itself, as starved as we are, skips
        // some: its encoder runs on this machine too), within the timeline's
        // slew; never a hole, never a burst, which re-anchoring at arrival
        // times makes.
        let mut skipped_by_camera = 0;
        for w in p.windows(2) {
            let d = w[1] - w[0];
            let n = (d * 30.0).round();
            assert!(
                n >= 1.0 && (d - n / 30.0).abs() < 0.001,
                "{codec}: a frame lasting {d:.4} s, off the camera's grid: {p:?}"
            );
            assert!(d < 0.5, "{codec}: a {d:.3} s hole: {p:?}");
            skipped_by_camera += n as u64 - 1;
        }
        eprintln!("{codec}: {frames} frames, {skipped_by_camera} skipped by the camera itself");
        // As long as the recording was (it starts on the keyframe before
        // /start, up to a second early).
        let d = clip["duration_sec"].as_f64().unwrap();
        assert!(
            (RECORD_SEC - 0.2..=RECORD_SEC + 1.5).contains(&d),
            "{codec}: {d} s for a {RECORD_SEC} s recording"
        );
        // The last frame lasts until the stop: not long, unless frames were
        // left out at the end.
        let span = p[p.len() - 1] - p[0];
        eprintln!("{codec}: {d:.3} s, frames over {span:.3} s");
        assert!(d - span < 0.5, "{codec}: {d} s, frames over {span} s");
    }
}
