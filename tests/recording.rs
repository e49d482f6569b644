//! Recording against the real binary: start/stop over HTTP with the clip
//! checked by our own reader and by ffprobe, 409s, max duration, pre-roll,
//! SIGTERM and kill -9 mid-recording, and the clips ring buffer.

mod common;

use common::RunWithin;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, ffprobe, have_tool, make_mjpeg, own_probe};
use serde_json::Value;

const FPS: f64 = 30.0;
/// Tests here count the files in the clips directory: no free-space floor,
/// so a fuller disk on the test machine deletes nothing.
const SMALL: &[&str] = &[
    "--source",
    "test",
    "--width",
    "320",
    "--height",
    "240",
    "--fps",
    "30",
    "--clips-min-free-mb",
    "0",
];
/// Clock reading and rounding slack on top of the one-frame bound.
const EPS: f64 = 0.005;

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    SMALL.iter().chain(extra).copied().collect()
}

/// A request and the instants around it: the server acted somewhere in between.
struct Timed {
    sent: Instant,
    answered: Instant,
    body: Value,
    status: u16,
}

fn timed_post(s: &Server, path: &str, body: &str) -> Timed {
    let sent = Instant::now();
    let r = s.post(path, body);
    Timed {
        sent,
        answered: Instant::now(),
        status: r.status,
        body: r.json(),
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Waits until the source has produced `n` frames (the test pattern renders first).
fn wait_frames(s: &Server, n: u64) {
    s.wait_status(Duration::from_secs(60), "source frames", |st| {
        st["source"]["frames"].as_u64().unwrap_or(0) >= n
    });
}

fn files(dir: &Path) -> Vec<String> {
    common::files(dir)
}

/// Both readers agree the clip is playable H.264 of `frames` frames lasting `duration`.
fn check_clip(path: &Path, frames: u64, duration: f64) {
    let p = own_probe(path);
    assert_eq!(p["codec"], "h264", "{p}");
    assert_eq!(p["profile"], "Constrained Baseline");
    assert_eq!(p["frames"].as_u64(), Some(frames), "{p}");
    assert!(
        (p["duration_sec"].as_f64().unwrap() - duration).abs() < 0.001,
        "{p}"
    );
    assert_eq!(p["vmhd_flags_ok"], true);
    assert_eq!(p["samples_inside_file"], true);
    assert_eq!(p["first_is_keyframe"], true);
    // A keyframe about every second.
    assert!(
        p["max_keyframe_interval_sec"].as_f64().unwrap() <= 1.1,
        "{p}"
    );
    assert_eq!(
        p["size_bytes"].as_u64(),
        Some(std::fs::metadata(path).unwrap().len())
    );
    if !have_tool("ffprobe") {
        return;
    }
    let f = ffprobe(path);
    let v = &f["streams"][0];
    assert_eq!(v["codec_name"], "h264", "{f}");
    assert_eq!(v["profile"], "Constrained Baseline");
    assert_eq!(v["pix_fmt"], "yuv420p");
    assert_eq!(
        v["nb_read_frames"].as_str(),
        Some(frames.to_string().as_str())
    );
    let d: f64 = f["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - duration).abs() < 0.002, "ffprobe {d} vs {duration}");
    if have_tool("ffmpeg") {
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(path)
            .args(["-f", "null", "-"])
            .output_within(common::CHILD_TIMEOUT)
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "ffmpeg decode: {err}"
        );
    }
}

#[test]
fn start_stop_makes_a_clip_as_long_as_the_wall_time_between_requests() {
    let s = Server::start(SMALL);
    wait_frames(&s, 5);
    let start = timed_post(&s, "/start", "");
    assert_eq!(start.status, 200, "{}", start.body);
    let id = start.body["id"].as_str().unwrap().to_string();
    assert!(start.body["started_at"].as_str().unwrap().ends_with('Z'));
    let st = s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) > 10
    });
    assert_eq!(st["recording"], true);
    assert_eq!(st["recording_id"], id.as_str());
    std::thread::sleep(Duration::from_millis(1500));
    let stop = timed_post(&s, "/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.body);
    let c = &stop.body;
    assert_eq!(c["id"], id.as_str());
    for k in ["started_at", "ended_at"] {
        assert!(c[k].as_str().is_some_and(|t| t.ends_with('Z')), "{k}: {c}");
    }
    let duration = c["duration_sec"].as_f64().unwrap();
    // The clip runs from the first frame after /start to the /stop request:
    // at most one frame interval shorter than the wall time between them.
    let shortest = secs(stop.sent - start.answered) - 1.0 / FPS - EPS;
    let longest = secs(stop.answered - start.sent) + EPS;
    assert!(
        (shortest..=longest).contains(&duration),
        "duration {duration} not within [{shortest}, {longest}]\n{}",
        s.log()
    );
    let frames = c["frames"].as_u64().unwrap();
    assert!(frames >= 40, "{c}");
    assert!((c["fps"].as_f64().unwrap() - frames as f64 / duration).abs() < 0.01);
    let path = PathBuf::from(c["path"].as_str().unwrap());
    assert_eq!(path, s.clips.join(format!("{id}.mp4")));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        c["size_bytes"].as_u64().unwrap()
    );
    assert_eq!(files(&s.clips), vec![format!("{id}.mp4")]);
    check_clip(&path, frames, duration);
    let st = s.get("/status").json();
    assert_eq!(st["recording"], false);
    assert_eq!(st["last_clip"]["id"], id.as_str());
}

#[test]
fn second_start_and_idle_stop_answer_409() {
    let s = Server::start(SMALL);
    let r = s.post("/stop", "");
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["error"], "not recording");
    let a = timed_post(&s, "/start", "");
    assert_eq!(a.status, 200);
    let id = a.body["id"].as_str().unwrap().to_string();
    let b = timed_post(&s, "/start", r#"{"max_duration_sec": 5}"#);
    assert_eq!(b.status, 409);
    assert_eq!(b.body["error"], "already recording");
    assert_eq!(b.body["recording"]["id"], id.as_str());
    // Elapsed since the first /start, as seen around the second one.
    let elapsed = b.body["recording"]["elapsed_sec"].as_f64().unwrap();
    let most = secs(b.answered - a.sent) + EPS;
    assert!(
        (0.0..=most).contains(&elapsed),
        "{elapsed} not within [0, {most}]"
    );
    s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) >= 3
    });
    assert_eq!(s.post("/stop", "").status, 200);
    assert_eq!(s.post("/stop", "").status, 409);
}

#[test]
fn max_duration_ends_the_clip_by_itself() {
    // A default cap from the command line, and one from the request body.
    let s = Server::start(&with(&["--max-duration-sec", "1"]));
    wait_frames(&s, 5);
    for (body, cap) in [("", 1.0), (r#"{"max_duration_sec": 1.5}"#, 1.5)] {
        let start = s.post("/start", body);
        assert_eq!(start.status, 200);
        let start = start.json();
        assert_eq!(start["max_duration_sec"].as_f64(), Some(cap));
        let id = start["id"].as_str().unwrap().to_string();
        let st = s.wait_status(Duration::from_secs(30), "the clip to end", |st| {
            st["recording"] == false
        });
        assert_eq!(st["last_clip"]["id"], id.as_str(), "{st}");
        let path = s.clips.join(format!("{id}.mp4"));
        let p = own_probe(&path);
        let d = p["duration_sec"].as_f64().unwrap();
        // From the first frame after /start to /start + cap.
        assert!(d <= cap + EPS && d >= cap - 2.0 / FPS, "{d} for cap {cap}");
        check_clip(&path, p["frames"].as_u64().unwrap(), d);
        assert_eq!(s.post("/stop", "").status, 409);
    }
    assert_eq!(files(&s.clips).len(), 2);
}

#[test]
fn pre_roll_clip_starts_that_much_before_the_request() {
    let s = Server::start(&with(&["--pre-roll-sec", "2"]));
    // More than two seconds of frames in the ring.
    wait_frames(&s, 90);
    let start = timed_post(&s, "/start", "");
    assert_eq!(start.status, 200);
    std::thread::sleep(Duration::from_secs(1));
    let stop = timed_post(&s, "/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.body);
    let d = stop.body["duration_sec"].as_f64().unwrap();
    let shortest = secs(stop.sent - start.answered) + 2.0 - 2.0 / FPS - EPS;
    let longest = secs(stop.answered - start.sent) + 2.0 + 1.0 / FPS + EPS;
    assert!(
        (shortest..=longest).contains(&d),
        "{d} not in [{shortest}, {longest}]"
    );
    let frames = stop.body["frames"].as_u64().unwrap();
    assert!(frames >= 75, "{}", stop.body);
    check_clip(Path::new(stop.body["path"].as_str().unwrap()), frames, d);
}

#[test]
fn sigterm_mid_recording_saves_a_playable_clip_and_exits_0() {
    // SIGHUP (a closed terminal), SIGQUIT and SIGUSR1 too: their default
    // action killed the process with the clip unfinished.
    for (sig, name) in [
        (15, "TERM"),
        (2, "INT"),
        (1, "HUP"),
        (3, "QUIT"),
        (10, "USR1"),
        (12, "USR2"),
    ] {
        let mut s = Server::start(SMALL);
        wait_frames(&s, 5);
        let asked = Instant::now();
        let start = s.post("/start", "");
        assert_eq!(start.status, 200);
        let id = start.json()["id"].as_str().unwrap().to_string();
        s.wait_status(Duration::from_secs(30), "30 frames recorded", |st| {
            st["recorder"]["frames"].as_u64().unwrap_or(0) >= 30
        });
        let status = s.signal(sig);
        assert!(status.success(), "SIG{name}: exit {status:?}\n{}", s.log());
        assert_eq!(
            files(&s.clips),
            vec![format!("{id}.mp4")],
            "SIG{name}: {}",
            s.log()
        );
        let path = s.clips.join(format!("{id}.mp4"));
        let p = own_probe(&path);
        let d = p["duration_sec"].as_f64().unwrap();
        // At least the 30 frames waited for; at most the time it was asked to run.
        let most = secs(asked.elapsed()) + EPS;
        assert!(
            (0.9..=most).contains(&d),
            "SIG{name}: {d} not within [0.9, {most}]: {p}"
        );
        check_clip(&path, p["frames"].as_u64().unwrap(), d);
    }
}

#[test]
fn kill_9_mid_recording_then_restart_recovers_the_clip() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    let mut s = Server::start_in(&clips, SMALL);
    wait_frames(&s, 5);
    let start = timed_post(&s, "/start", "");
    assert_eq!(start.status, 200);
    let id = start.body["id"].as_str().unwrap().to_string();
    // Kill once the recorder says 3 s are on disk for good; what it said is
    // what must come back (a loaded machine may lag the wall clock).
    let st = s.wait_status(Duration::from_secs(20), "3 s durable", |st| {
        st["recorder"]["durable_sec"].as_f64() >= Some(3.0)
    });
    let durable = st["recorder"]["durable_sec"].as_f64().unwrap();
    let killed = Instant::now();
    s.signal(9);
    drop(s);
    let left = files(&clips);
    assert!(left.contains(&format!("{id}.mp4.part")), "{left:?}");
    assert!(left.contains(&format!("{id}.journal")), "{left:?}");

    let s = Server::start_in(&clips, SMALL);
    assert!(s.log().contains("recovered"), "{}", s.log());
    assert_eq!(files(&clips), vec![format!("{id}.mp4")]);
    let path = clips.join(format!("{id}.mp4"));
    let p = own_probe(&path);
    let d = p["duration_sec"].as_f64().unwrap();
    // Everything reported durable survives; nothing after the kill appears.
    let recorded = secs(killed - start.sent);
    assert!(
        d >= durable && d <= recorded + 1.0 / FPS,
        "recovered {d} s; {durable} s were durable, {recorded} s recorded"
    );
    check_clip(&path, p["frames"].as_u64().unwrap(), d);
    let st = s.get("/status").json();
    assert_eq!(st["last_clip"]["id"], id.as_str());
    let last = s.get("/last");
    assert_eq!(last.status, 200);
    assert_eq!(last.body.len() as u64, p["size_bytes"].as_u64().unwrap());
}

#[test]
fn ring_buffer_deletes_the_oldest_clips_past_the_budget() {
    if !have_tool("ffmpeg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Busy picture at a high bitrate: each 2 s clip is well over half a MiB.
    let src = make_mjpeg(tmp.path(), 640, 480, 30, 60);
    let s = Server::start(&[
        "--source",
        src.to_str().unwrap(),
        "--fps",
        "30",
        "--bitrate-kbps",
        "6000",
        "--clips-max-mb",
        "1",
        "--clips-min-free-mb",
        "0",
    ]);
    wait_frames(&s, 5);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let start = s.post("/start", "");
        assert_eq!(start.status, 200);
        std::thread::sleep(Duration::from_secs(2));
        let stop = s.post("/stop", "");
        assert_eq!(stop.status, 200);
        let c = stop.json();
        assert!(
            c["size_bytes"].as_u64().unwrap() > 600 * 1024,
            "clip too small to exercise a 1 MiB budget: {c}"
        );
        ids.push(c["id"].as_str().unwrap().to_string());
        // Each new clip pushes the previous one out; the newest always stays.
        assert_eq!(
            files(&s.clips),
            vec![format!("{}.mp4", ids.last().unwrap())]
        );
    }
    s.assert_deleted(&ids[..2]);
    let usage = &s.get("/status").json()["clips"];
    assert_eq!(usage["clips"], 1);
    assert_eq!(usage["max_bytes"], 1024 * 1024);
}

#[test]
fn removing_the_clips_directory_mid_recording_loses_nothing() {
    let s = Server::start(&with(&["--clips-min-free-mb", "0"]));
    wait_frames(&s, 5);
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) >= 20
    });
    std::fs::remove_dir_all(&s.clips).unwrap();
    let st = s.wait_status(Duration::from_secs(30), "more frames recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) >= 40
    });
    let frames_before_stop = st["recorder"]["frames"].as_u64().unwrap();
    let stop = s.post("/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.text());
    let clip = stop.json();
    let path = Path::new(clip["path"].as_str().unwrap());
    assert!(path.exists(), "{clip}\n{}", s.log());
    let p = own_probe(path);
    let frames = p["frames"].as_u64().unwrap();
    assert!(
        frames >= frames_before_stop,
        "{frames} < {frames_before_stop}: {p}"
    );
    check_clip(path, frames, p["duration_sec"].as_f64().unwrap());
    assert!(
        s.log().contains("was removed while recording"),
        "{}",
        s.log()
    );
}
