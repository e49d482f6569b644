//! Recorder tests with real JPEGs through a real Hub, checked by our own
//! probe and by ffprobe/ffmpeg when installed.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::*;
use crate::clips::{Clips, ClipsSettings, Home};
use crate::frame::Frame;
use crate::hub::{SourceState, SourceStatus};
use crate::test_tools::have;

const W: u16 = 320;
const H: u16 = 240;
const STEP: Duration = Duration::from_nanos(33_333_333);
const TICK: f64 = 1.0 / 90_000.0;

/// 30 distinct 320x240 JPEGs (moving box over a gradient), rendered once.
fn jpegs() -> &'static [Vec<u8>] {
    static J: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    J.get_or_init(|| (0..30).map(|i| render(W, H, i)).collect())
}

pub(super) fn render(w: u16, h: u16, i: usize) -> Vec<u8> {
    let (w_, h_) = (w as usize, h as usize);
    let mut px = vec![0u8; w_ * h_ * 3];
    for y in 0..h_ {
        for x in 0..w_ {
            let p = &mut px[(y * w_ + x) * 3..][..3];
            let inside = (x + 600 - i * 9) % w_ < 40 && (y * 2 + i * 3) % h_ < 60;
            p.copy_from_slice(&if inside {
                [250, 40, 40]
            } else {
                [(x * 255 / w_) as u8, (y * 255 / h_) as u8, 128]
            });
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

pub(super) struct Rig {
    pub(super) dir: tempfile::TempDir,
    pub(super) hub: Arc<Hub>,
    pub(super) clips: Arc<Clips>,
    pub(super) rec: Recorder,
    pub(super) seq: u64,
}

pub(super) fn rig(pre_roll: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let hub = Arc::new(Hub::new(
        pre_roll,
        SourceStatus {
            kind: "test".into(),
            name: "unit".into(),
            state: SourceState::Test,
            width: W as u32,
            height: H as u32,
            nominal_fps: 30.0,
            message: None,
            ..Default::default()
        },
    ));
    let clips = Arc::new(clips_in(dir.path()));
    let rec = Recorder::new(
        hub.clone(),
        clips.clone(),
        RecorderSettings {
            camera: "unit".parse().unwrap(),
            bitrate_kbps: 0,
            pre_roll,
            default_max_duration: None,
        },
    );
    Rig {
        dir,
        hub,
        clips,
        rec,
        seq: 0,
    }
}

fn clips_in(dir: &Path) -> Clips {
    Clips::open(
        ClipsSettings {
            dir: dir.to_path_buf(),
            max_bytes: 0,
            min_free_bytes: 0,
            uploads: false,
        },
        vec![Home {
            camera: "unit".parse().unwrap(),
            own_dir: false,
        }],
        &|d, valid| {
            super::recover_dir(d, valid);
        },
    )
    .unwrap()
}

impl Rig {
    fn publish(&mut self, jpeg: Vec<u8>, capture: Duration, no_signal: bool) {
        self.seq += 1;
        self.hub.publish(Frame::jpeg(
            self.seq,
            jpeg,
            capture,
            SystemTime::now(),
            (W as u32, H as u32),
            no_signal,
        ));
    }

    /// Publishes `n` frames at 30 fps in real time from now; returns their capture times.
    fn feed(&mut self, n: usize) -> Vec<Duration> {
        let t0 = crate::clock::monotonic_now();
        (0..n)
            .map(|i| {
                let t = t0 + STEP * i as u32;
                if let Some(wait) = t.checked_sub(crate::clock::monotonic_now()) {
                    std::thread::sleep(wait);
                }
                self.publish(jpegs()[(self.seq as usize) % 30].clone(), t, false);
                t
            })
            .collect()
    }
}

/// ffprobe's view, or `None` (skip) when it is not installed outside CI.
fn ffprobe(path: &Path) -> Option<serde_json::Value> {
    if !have("ffprobe") {
        return None;
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// `ffmpeg -v error -i clip -f null -` must decode every frame silently.
fn assert_decodes_cleanly(path: &Path) {
    if !have("ffmpeg") {
        return;
    }
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "ffmpeg: {err}"
    );
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn records_every_frame_with_capture_times_as_presentation_times() {
    let mut r = rig(Duration::ZERO);
    let started = r.rec.start(StartOptions::default()).unwrap();
    assert_eq!(started.frames, 0);
    let caps = r.feed(75);
    let end = caps[74] + Duration::from_millis(20);
    let clip = r.rec.stop_at(end).unwrap();
    assert_eq!(clip.id, started.id);
    assert_eq!((clip.frames, clip.dropped_frames), (75, 0));
    let want = (end - caps[0]).as_secs_f64();
    assert!(
        close(clip.duration_sec, want, TICK),
        "{} vs {want}",
        clip.duration_sec
    );
    let path = Path::new(&clip.path);
    assert_eq!(path, r.dir.path().join(format!("{}.mp4", clip.id)));
    assert_eq!(std::fs::metadata(path).unwrap().len(), clip.size_bytes);
    assert!(close(clip.fps, 75.0 / want, 1e-3));
    assert_eq!(r.rec.last_finished().unwrap().id, clip.id);
    // Only the finished clip is left: no .part, no journal.
    let names: Vec<_> = std::fs::read_dir(r.dir.path()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1);

    let p = probe(path).unwrap();
    assert_eq!(p["codec"], "h264");
    assert_eq!(p["profile"], "Constrained Baseline");
    assert_eq!(
        (p["width"].as_u64(), p["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(p["frames"], 75);
    assert_eq!(p["keyframes"], 3, "{p}"); // frames 0, 30, 60
    assert!(close(
        p["max_keyframe_interval_sec"].as_f64().unwrap(),
        1.0,
        0.01
    ));
    assert!(close(p["duration_sec"].as_f64().unwrap(), want, TICK));
    assert_eq!(p["vmhd_flags_ok"], true);
    assert_eq!(p["samples_inside_file"], true);
    assert_eq!(p["size_bytes"].as_u64(), Some(clip.size_bytes));

    if let Some(f) = ffprobe(path) {
        let s = &f["streams"][0];
        assert_eq!(s["codec_name"], "h264");
        assert_eq!(s["profile"], "Constrained Baseline");
        assert_eq!(s["pix_fmt"], "yuv420p");
        assert_eq!(s["nb_read_frames"], "75");
        let d: f64 = f["format"]["duration"].as_str().unwrap().parse().unwrap();
        assert!(close(d, want, 0.002), "ffprobe duration {d} vs {want}");
    }
    assert_decodes_cleanly(path);
}

#[test]
fn pre_roll_frames_open_the_clip() {
    let mut r = rig(Duration::from_secs(1));
    let before = r.feed(45); // 1.5 s, of which about the last second is kept
    let t0 = crate::clock::monotonic_now();
    let _ = r.rec.start(StartOptions::default()).unwrap();
    let t1 = crate::clock::monotonic_now();
    let after = r.feed(15);
    let end = after[14] + STEP;
    let clip = r.rec.stop_at(end).unwrap();
    // The clip begins with the first frame captured at most 1 s before the
    // request (made between t0 and t1).
    let pre = |req: Duration| {
        before
            .iter()
            .filter(|&&c| c >= req - Duration::from_secs(1))
            .count()
    };
    let n = clip.frames as usize - 15;
    assert!(
        (pre(t1)..=pre(t0)).contains(&n) && n >= 29,
        "{n} pre-roll frames"
    );
    let first = before[45 - n];
    let want = (end - first).as_secs_f64();
    assert!(
        close(clip.duration_sec, want, TICK),
        "{} vs {want}",
        clip.duration_sec
    );
    let d = clip.duration_sec;
    let (lo, hi) = (
        (end - t1).as_secs_f64() + 1.0 - STEP.as_secs_f64(),
        (end - t0).as_secs_f64() + 1.0,
    );
    assert!(d >= lo - TICK && d <= hi + TICK, "{d} not in [{lo}, {hi}]");
    assert_eq!(
        probe(Path::new(&clip.path)).unwrap()["frames"].as_u64(),
        Some(clip.frames)
    );
}

#[test]
fn frames_captured_before_the_request_stay_out_without_pre_roll() {
    let mut r = rig(Duration::ZERO);
    let t0 = crate::clock::monotonic_now();
    r.rec.start(StartOptions::default()).unwrap();
    // Captured before /start but published after it: a source running late.
    r.publish(jpegs()[0].clone(), t0 - STEP, false);
    let caps = r.feed(10);
    let clip = r.rec.stop_at(caps[9] + STEP).unwrap();
    assert_eq!((clip.frames, clip.dropped_frames), (10, 0));
    assert!(close(clip.duration_sec, 10.0 * STEP.as_secs_f64(), TICK));
}

#[test]
fn a_frame_captured_after_the_stop_stays_out_even_if_it_arrives_during_a_wait() {
    let mut r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    let caps = r.feed(3);
    std::thread::sleep(Duration::from_millis(75)); // the recorder waits for frames
    let end = caps[2] + STEP;
    let hub = r.hub.clone();
    // Frames captured after the end, arriving from just after the stop on,
    // so that one lands inside whatever wait the recorder was in.
    let late = std::thread::spawn(move || {
        for i in 0..12u32 {
            std::thread::sleep(Duration::from_millis(if i == 0 { 1 } else { 4 }));
            let (cap, wall) = (end + STEP * (i + 1), SystemTime::now());
            let jpeg = jpegs()[3].clone();
            hub.publish(Frame::jpeg(
                99 + u64::from(i),
                jpeg,
                cap,
                wall,
                (W as u32, H as u32),
                false,
            ));
        }
    });
    let clip = r.rec.stop_at(end).unwrap();
    late.join().unwrap();
    assert_eq!(clip.frames, 3);
    assert!(
        close(clip.duration_sec, 3.0 * STEP.as_secs_f64(), TICK),
        "{}",
        clip.duration_sec
    );
}

#[test]
fn keyframes_come_every_second_even_when_the_camera_slows_down() {
    let mut r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap(); // expects 30 fps
    let t0 = crate::clock::monotonic_now();
    // 10 fps: an intra period of 30 frames alone would mean one keyframe in 3 s.
    for i in 0..35u32 {
        r.publish(
            jpegs()[i as usize % 30].clone(),
            t0 + Duration::from_millis(100) * i,
            false,
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let clip = r.rec.stop_at(t0 + Duration::from_millis(3500)).unwrap();
    assert_eq!(clip.frames, 35);
    let p = probe(Path::new(&clip.path)).unwrap();
    assert_eq!(p["keyframes"], 4, "{p}"); // 0, 1, 2, 3 s
    assert!(
        close(p["max_keyframe_interval_sec"].as_f64().unwrap(), 1.0, 1e-3),
        "{p}"
    );
}

#[test]
fn max_duration_finishes_the_clip_by_itself() {
    let mut r = rig(Duration::ZERO);
    let info = r
        .rec
        .start(StartOptions {
            max_duration: Some(Duration::from_millis(500)),
        })
        .unwrap();
    assert_eq!(info.max_duration_sec, Some(0.5));
    r.feed(30);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while r.rec.active().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "recorder did not stop by itself"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let clip = r
        .rec
        .last_finished()
        .expect("clip finished by max_duration");
    assert!(
        clip.duration_sec <= 0.5 && clip.duration_sec > 0.5 - 2.0 * STEP.as_secs_f64(),
        "{}",
        clip.duration_sec
    );
    assert!((14..=16).contains(&clip.frames), "{}", clip.frames);
    assert!(matches!(r.rec.stop(), Err(RecError::NotRecording)));
    assert!(Path::new(&clip.path).exists());
}

#[test]
fn second_start_and_idle_stop_are_refused() {
    let mut r = rig(Duration::ZERO);
    assert!(matches!(r.rec.stop(), Err(RecError::NotRecording)));
    let a = r.rec.start(StartOptions::default()).unwrap();
    r.feed(3);
    match r.rec.start(StartOptions::default()) {
        Err(RecError::AlreadyRecording(b)) => {
            assert_eq!(b.id, a.id);
            assert_eq!(b.frames, r.rec.active().unwrap().frames);
        }
        other => panic!("expected AlreadyRecording, got {other:?}"),
    }
    r.rec.stop().unwrap();
    assert!(matches!(r.rec.stop(), Err(RecError::NotRecording)));
    assert!(r.rec.active().is_none());
}

#[test]
fn kill_mid_recording_is_recovered_losing_at_most_a_second() {
    let mut r = rig(Duration::ZERO);
    let started = r.rec.start(StartOptions::default()).unwrap();
    // 4.5 s: a journal written every 3 s instead of every second would lose 1.5 s.
    let caps = r.feed(135);
    std::thread::sleep(Duration::from_millis(100)); // let the recorder catch up
    r.rec.abort();
    let dir = r.dir.path();
    let part = dir.join(format!("{}.mp4.part", started.id));
    assert!(part.exists() && dir.join(format!("{}.journal", started.id)).exists());
    assert!(!dir.join(format!("{}.mp4", started.id)).exists());
    // What a crash leaves: data past the journal, no moov.
    let journal = std::fs::read_to_string(dir.join(format!("{}.journal", started.id))).unwrap();
    let table = journal::parse(&journal).unwrap();
    assert!(std::fs::metadata(&part).unwrap().len() >= table.data_end());

    let recovered = super::recover_dir(dir, |_: &crate::ids::ClipId| true);
    let [Recovered::Clip { id, frames, .. }] = recovered.as_slice() else {
        panic!("{recovered:?}");
    };
    assert_eq!(id, &started.id);
    let path = dir.join(format!("{id}.mp4"));
    let p = probe(&path).unwrap();
    let recorded = (caps[134] - caps[0]).as_secs_f64() + STEP.as_secs_f64();
    let got = p["duration_sec"].as_f64().unwrap();
    assert!(
        got >= recorded - 1.0 - 0.1 && got <= recorded + 0.01,
        "{got} of {recorded}"
    );
    assert_eq!(p["frames"].as_u64(), Some(*frames as u64));
    assert_eq!(p["samples_inside_file"], true);
    assert!(!part.exists() && !dir.join(format!("{id}.journal")).exists());
    if let Some(f) = ffprobe(&path) {
        assert_eq!(f["streams"][0]["nb_read_frames"], frames.to_string());
    }
    assert_decodes_cleanly(&path);
    // Idempotent: a second scan finds nothing to do and never rewrites the clip.
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(super::recover_dir(dir, |_: &crate::ids::ClipId| true).is_empty());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
}

#[test]
fn leftovers_without_usable_samples_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("20240101-000000.mp4.part"), b"half a header").unwrap();
    std::fs::write(d.join("20240101-000001.mp4.part"), b"no journal at all").unwrap();
    std::fs::write(
        d.join("20240101-000000.journal"),
        b"video-recorder journal 1\ntimesc",
    )
    .unwrap();
    std::fs::write(d.join("20240101-000002.journal"), b"stray").unwrap();
    std::fs::write(d.join("notes.mp4.part"), b"not ours").unwrap();
    let done = recover_dir(d, |_: &crate::ids::ClipId| true);
    assert_eq!(done.len(), 2);
    assert!(done.iter().all(|r| matches!(r, Recovered::Removed { .. })));
    let mut left: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, vec!["notes.mp4.part"]);
}

#[test]
fn odd_frames_are_counted_or_scaled_never_fatal() {
    let mut r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    let t0 = crate::clock::monotonic_now();
    let small = render(160, 120, 3);
    for i in 0..30u32 {
        let t = t0 + STEP * i;
        let jpeg = match i {
            10 => b"\xFF\xD8 not a jpeg \xFF\xD9".to_vec(),
            12..=20 => small.clone(), // camera renegotiated
            _ => jpegs()[i as usize].clone(),
        };
        r.publish(jpeg, t, (15..20).contains(&i)); // NO SIGNAL frames are recorded too
        std::thread::sleep(Duration::from_millis(5));
    }
    // A capture time that goes backwards cannot be a presentation time.
    r.publish(jpegs()[0].clone(), t0 + STEP * 5, false);
    std::thread::sleep(Duration::from_millis(50));
    let clip = r.rec.stop_at(t0 + STEP * 30).unwrap();
    assert_eq!((clip.frames, clip.dropped_frames), (29, 2));
    let p = probe(Path::new(&clip.path)).unwrap();
    assert_eq!(
        (p["width"].as_u64(), p["frames"].as_u64()),
        (Some(320), Some(29))
    );
    assert!(close(clip.duration_sec, 1.0, TICK));
    assert_decodes_cleanly(Path::new(&clip.path));
}

#[test]
fn frames_the_recorder_cannot_take_are_counted() {
    let mut r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    let t0 = crate::clock::monotonic_now();
    // 300 frames at once: far more than the queue holds.
    for i in 0..300u32 {
        r.publish(jpegs()[i as usize % 30].clone(), t0 + STEP * i, false);
    }
    let clip = r.rec.stop_at(t0 + STEP * 300).unwrap();
    assert!(clip.dropped_frames > 0);
    assert_eq!(clip.frames + clip.dropped_frames, 300);
    assert_eq!(
        probe(Path::new(&clip.path)).unwrap()["frames"].as_u64(),
        Some(clip.frames)
    );
}

#[test]
fn stop_before_the_first_frame_takes_the_next_one() {
    let r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    let hub = r.hub.clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        hub.publish(Frame::jpeg(
            1,
            jpegs()[0].clone(),
            crate::clock::monotonic_now(),
            SystemTime::now(),
            (W as u32, H as u32),
            false,
        ));
    });
    let clip = r.rec.stop().unwrap();
    feeder.join().unwrap();
    assert_eq!(clip.frames, 1);
    assert!(
        close(clip.duration_sec, 1.0 / 30.0, 2.0 * TICK),
        "{}",
        clip.duration_sec
    );
    assert_decodes_cleanly(Path::new(&clip.path));
}

#[test]
fn no_frames_at_all_is_an_error_that_leaves_nothing() {
    let r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    match r.rec.stop() {
        Err(RecError::Failed(e)) if e.kind() == crate::error::Kind::Empty => {
            assert_eq!(e.client_cause().as_deref(), Some(worker::NO_FRAMES))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_dir(r.dir.path()).unwrap().count(), 0);
    assert!(r.clips.last("unit").is_none());
}

#[test]
fn no_recording_starts_once_shutdown_began() {
    let r = rig(Duration::ZERO);
    assert!(r.rec.shutdown().is_none(), "nothing to finish");
    assert!(matches!(
        r.rec.start(StartOptions::default()),
        Err(RecError::Closing)
    ));
    assert_eq!(std::fs::read_dir(r.dir.path()).unwrap().count(), 0);
}
