//! Frame sources through the real binary: the test pattern, an MJPEG file
//! made by ffmpeg, and the NO SIGNAL / reopen path when that file goes away
//! and comes back.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{MjpegClient, Server, find, have_tool, make_mjpeg};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;

const WAIT: Duration = Duration::from_secs(60);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Decodes a JPEG fully; its size. Panics if it is not a whole, valid JPEG.
fn decoded_size(jpeg: &[u8]) -> (usize, usize) {
    assert!(
        jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]),
        "not SOI..EOI"
    );
    let mut d = JpegDecoder::new(ZCursor::new(jpeg));
    d.decode().expect("frame decodes");
    let info = d.info().unwrap();
    (usize::from(info.width), usize::from(info.height))
}

#[test]
fn test_source_moves_counts_and_stamps_frames() {
    let s = Server::start(&[
        "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
    ]);
    let connected = now();
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let mut parts = Vec::new();
    let mut arrivals = Vec::new();
    for _ in 0..30 {
        parts.push(c.next_part().expect("a part"));
        arrivals.push(now());
    }
    let mut distinct = std::collections::HashSet::new();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(decoded_size(&p.jpeg), (320, 240), "part {i}");
        // Captured before it arrived; the first may be the newest frame
        // from just before we connected.
        assert!(
            p.timestamp <= arrivals[i] + 0.001 && p.timestamp >= connected - 0.5,
            "X-Timestamp {} outside [{}, {}]",
            p.timestamp,
            connected - 0.5,
            arrivals[i]
        );
        distinct.insert(p.jpeg.clone());
    }
    for w in parts.windows(2) {
        // Capture times sit on the 1/15 s grid: never closer than one interval.
        let dt = w[1].timestamp - w[0].timestamp;
        assert!(dt > 0.06, "X-Timestamp step {dt} s at 15 fps");
    }
    // The moving box and counter: a 15-frame loop shows 15 different pictures.
    assert!(
        distinct.len() >= 10,
        "only {} distinct pictures",
        distinct.len()
    );

    let st = s.get("/status").json();
    let src = &st["source"];
    assert_eq!(src["kind"], "test");
    assert_eq!(src["state"], "test");
    assert_eq!(
        (src["width"].as_u64(), src["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(src["nominal_fps"].as_f64(), Some(15.0));
    assert!(src["frames"].as_u64().unwrap() >= 30, "{st}");
    assert_eq!(src["broken_frames"], 0);
    assert!(
        src["message"].as_str().unwrap().contains("not a camera"),
        "{st}"
    );
    assert_eq!(st["warning"], src["message"], "the warning says why: {st}");
}

#[test]
fn auto_without_camera_uses_test_source_and_says_so() {
    if Path::new("/dev/video0").exists() {
        common::skip("this machine has /dev/video0, so `auto` picks the camera");
        return;
    }
    let s = Server::start(&["--width", "160", "--height", "120", "--fps", "10"]);
    let st = s.wait_status(WAIT, "the test fallback", |st| {
        st["source"]["state"] == "test" && st["source"]["frames"].as_u64() > Some(0)
    });
    assert_eq!(st["source"]["kind"], "test");
    let warning = st["warning"].as_str().unwrap_or_default();
    assert!(
        warning.contains("No camera") && warning.contains("/dev/video0"),
        "{st}"
    );
    assert!(s.log().contains("NO CAMERA FOUND"), "log:\n{}", s.log());
}

/// An ffmpeg MJPEG file of `frames` frames, plus the first half of one more
/// frame at the end (a truncated frame, as cheap cameras send).
fn mjpeg_with_truncated_tail(dir: &Path, frames: u32) -> (std::path::PathBuf, Vec<u8>) {
    let path = make_mjpeg(dir, 320, 240, 10, frames);
    let mut data = std::fs::read(&path).unwrap();
    let first_end = find(&data, &[0xFF, 0xD9]).unwrap() + 2;
    let half = data[..first_end / 2].to_vec();
    data.extend_from_slice(&half);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

#[test]
fn file_source_passes_frames_through_and_counts_broken_ones() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (path, data) = mjpeg_with_truncated_tail(dir.path(), 10);
    let s = Server::start(&["--source", path.to_str().unwrap(), "--fps", "10"]);
    let st = s.wait_status(WAIT, "live frames", |st| {
        st["source"]["frames"].as_u64() > Some(0)
    });
    let src = &st["source"];
    assert_eq!(src["kind"], "file");
    assert_eq!(src["state"], "live");
    // The size comes from the file's SOF, not from the 1280x720 default asked for.
    assert_eq!(
        (src["width"].as_u64(), src["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(src["nominal_fps"].as_f64(), Some(10.0));

    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let mut last = 0.0;
    for i in 0..15 {
        let p = c.next_part().expect("a part");
        assert_eq!(decoded_size(&p.jpeg), (320, 240));
        // Passed through untouched: the very bytes of a frame in the file.
        assert!(
            find(&data, &p.jpeg).is_some(),
            "part {i} is not a frame of the file"
        );
        assert!(p.timestamp > last);
        last = p.timestamp;
    }
    // 15 parts at 10 fps from a 10-frame file: it looped past the broken tail.
    let st = s.wait_status(WAIT, "the truncated frame counted", |st| {
        st["source"]["broken_frames"].as_u64() >= Some(1)
    });
    assert_eq!(st["source"]["state"], "live");
    assert_eq!(st["source"]["reopens"], 0);
}

#[test]
fn vanished_file_shows_no_signal_and_comes_back() {
    if !have_tool("ffmpeg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = make_mjpeg(dir.path(), 320, 240, 10, 10);
    let data = std::fs::read(&path).unwrap();
    let s = Server::start(&["--source", path.to_str().unwrap(), "--fps", "10"]);
    s.wait_status(WAIT, "live", |st| {
        st["source"]["state"] == "live" && st["source"]["frames"].as_u64() > Some(0)
    });
    let live = s.get("/snapshot.jpg");
    assert!(
        find(&data, &live.body).is_some(),
        "snapshot is a frame of the file"
    );

    let away = dir.path().join("away.mjpeg");
    std::fs::rename(&path, &away).unwrap();
    let st = s.wait_status(WAIT, "down", |st| st["source"]["state"] == "down");
    let name = path.file_name().unwrap().to_str().unwrap();
    let message = st["source"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(name), "the error names the file: {st}");
    assert_eq!(st["warning"].as_str(), Some(message), "{st}");

    // Viewers and snapshots get the NO SIGNAL picture, at the last frame size.
    let deadline = std::time::Instant::now() + WAIT;
    let no_signal = loop {
        let snap = s.get("/snapshot.jpg");
        if snap.status == 200 && find(&data, &snap.body).is_none() {
            break snap.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "snapshot never changed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(decoded_size(&no_signal), (320, 240));
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let a = c.next_part().expect("a NO SIGNAL part");
    let b = c.next_part().expect("another NO SIGNAL part");
    assert!(find(&data, &a.jpeg).is_none() && find(&data, &b.jpeg).is_none());
    assert!(b.timestamp > a.timestamp, "NO SIGNAL keeps coming");
    drop(c);

    std::fs::rename(&away, &path).unwrap();
    let st = s.wait_status(WAIT, "live again", |st| {
        st["source"]["state"] == "live" && st["source"]["reopens"].as_u64() >= Some(1)
    });
    assert!(st["source"]["message"].is_null(), "{st}");
    let deadline = std::time::Instant::now() + WAIT;
    while find(&data, &s.get("/snapshot.jpg").body).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "live frames never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = s.log();
    assert!(
        log.contains("source down") && log.contains("source back"),
        "log:\n{log}"
    );
}

/// A source that blocks in `open` (a FIFO nobody writes to; a hung network
/// file system would do the same) is called down with a reason, and
/// SIGTERM still exits promptly: upstream stayed `starting` for ever and
/// never exited.
#[test]
fn a_source_that_blocks_is_called_down_and_does_not_hold_up_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("camera.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut s = Server::start(&[
        "--source",
        fifo.to_str().unwrap(),
        "--stall-timeout-sec",
        "1",
    ]);
    // Still blocked in its first open (5 s): no frame has ever come, and
    // the snapshot says so.
    let st = s.get("/status").json();
    assert_eq!(st["source"]["state"], "starting", "{st}");
    let r = s.get("/snapshot.jpg");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"], "no frame yet");
    let st = s.wait_status(Duration::from_secs(30), "the source called down", |st| {
        st["source"]["state"] == "down"
    });
    let message = st["source"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not return") && message.contains("camera.fifo"),
        "{st}"
    );
    // The API goes on meanwhile (a NO SIGNAL picture is shown now).
    assert_eq!(s.get("/healthz").status, 200);
    let t0 = std::time::Instant::now();
    let status = s.signal(15);
    assert!(status.success(), "exit {status:?}\n{}", s.log());
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "SIGTERM took {:?}",
        t0.elapsed()
    );
}

/// A network camera that hangs mid-picture while recording: the camera is
/// called down (the clip goes on with NO SIGNAL), and SIGTERM still
/// finishes the clip, with every frame from before the hang, and exits
/// promptly (the capture thread is never waited on for long).
#[test]
fn a_camera_hung_mid_recording_holds_up_neither_the_clip_nor_shutdown() {
    if !have_tool("ffmpeg") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = make_mjpeg(tmp.path(), 320, 240, 15, 30);
    let jpegs = common::fakecam::jpegs(&std::fs::read(file).unwrap());
    let cam = common::mjpeg_server::MjpegCamera::start(jpegs, 15, None);
    let clips = tmp.path().join("clips");
    let mut s = Server::start_in(
        &clips,
        &[
            "--source",
            &cam.url(""),
            "--stall-timeout-sec",
            "2",
            "--clips-min-free-mb",
            "0",
        ],
    );
    s.wait_status(WAIT, "live", |st| st["source"]["state"] == "live");
    let before = cam.frames();
    assert_eq!(s.post("/start", "").status, 200);
    let st = s.wait_status(WAIT, "a second recorded", |st| {
        st["recorder"]["frames"].as_u64() >= Some(15)
    });
    let id = st["recording_id"].as_str().unwrap().to_string();
    cam.set_mode(common::mjpeg_server::Mode::Hang);
    let hung = cam.frames();
    s.wait_status(WAIT, "the camera called down", |st| {
        st["source"]["state"] == "down"
    });
    let t0 = std::time::Instant::now();
    let status = s.signal(15);
    let took = t0.elapsed();
    assert!(status.success(), "exit {status:?}\n{}", s.log());
    assert!(took < Duration::from_secs(20), "SIGTERM took {took:?}");
    // The clip is finished: the frames the camera sent whole while it was
    // recording (give or take the one in flight at /start), then NO SIGNAL.
    let sent = hung - before;
    let path = clips.join(format!("{id}.mp4"));
    let probe = common::own_probe(&path);
    let frames = probe["frames"].as_u64().unwrap();
    assert!(
        frames + 1 >= sent,
        "{frames} frames in the clip, {sent} sent: {probe}"
    );
    assert!(!clips.join(format!("{id}.mp4.part")).exists());
}
