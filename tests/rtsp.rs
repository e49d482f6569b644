//! RTSP cameras against a real RTSP server (GStreamer's, `tests/harness/
//! rtsp_camera.py`): clips by stream copy (the camera's own parameter sets,
//! its own 90 kHz timeline, nothing decoded), drops and restarts, a new
//! resolution, refused and silent servers, credentials, pre-roll on a
//! keyframe, H.265, and the fMP4 live view read by ffprobe.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::rtsp::{RtspCamera, RtspOptions};
use common::{RunWithin, Server, avcc_sets, ffprobe, hvcc_sets, own_probe};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// What `/stop` answers when the camera never sent a frame.
const STOP_WITHOUT_FRAMES: u16 = 503;

fn camera(opts: RtspOptions) -> Option<RtspCamera> {
    RtspCamera::start(opts)
}

fn wait_state(s: &Server, state: &str) -> Value {
    s.wait_status(WAIT, state, |st| st["source"]["state"] == state)
}

fn record(s: &Server, secs: f64) -> Value {
    let start = s.post("/start", "");
    assert_eq!(start.status, 200, "{}", start.text());
    s.wait_status(WAIT, "recording", |st| {
        st["recorder"]["elapsed_sec"].as_f64() >= Some(secs)
    });
    let stop = s.post("/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.text());
    stop.json()
}

#[test]
fn clips_are_the_cameras_own_stream_copied() {
    let Some(cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    let st = wait_state(&s, "live");
    assert_eq!(st["source"]["kind"], "rtsp");
    assert_eq!(
        (
            st["source"]["width"].as_u64(),
            st["source"]["height"].as_u64()
        ),
        (Some(640), Some(360))
    );
    assert!(
        st["source"]["codec"].as_str().unwrap().starts_with("avc1."),
        "{st}"
    );
    let clip = record(&s, 3.0);
    let path = Path::new(clip["path"].as_str().unwrap());
    let bytes = std::fs::read(path).unwrap();
    // The camera's own SPS and PPS, byte for byte: nothing was re-encoded.
    assert_eq!(avcc_sets(&bytes), cam.parameter_sets());
    let probe = ffprobe(path);
    let v = &probe["streams"][0];
    assert_eq!(
        (v["codec_name"].as_str(), v["width"].as_u64()),
        (Some("h264"), Some(640))
    );
    let frames = clip["frames"].as_u64().unwrap();
    assert_eq!(v["nb_read_frames"], frames.to_string().as_str());
    assert_eq!(own_probe(path)["frames"], frames);
    // The camera's timeline: every frame 1/30 s after the one before it
    // (arrival times would jitter), the first a keyframe, one every second.
    let p = common::packets(path);
    assert_eq!(p.len() as u64, frames);
    assert!(p[0].1, "the clip starts on a keyframe");
    for w in p.windows(2) {
        let d = w[1].0 - w[0].0;
        assert!((d - 1.0 / 30.0).abs() < 0.0005, "frame interval {d}: {p:?}");
    }
    let keys = p.iter().filter(|k| k.1).count() as u64;
    assert!(keys >= frames / 30, "{keys} keyframes in {frames} frames");
    // The clip lasts its frames' span plus the last frame's time until the
    // stop (at most an interval); the span may be shorter than the camera's
    // by the timeline's slew, at most 300 us a frame, while frames lead
    // their arrival (the first came late: a busy machine).
    let d = clip["duration_sec"].as_f64().unwrap();
    let (span, slew) = ((frames - 1) as f64 / 30.0, frames as f64 * 0.0003);
    assert!(
        d > span - slew && d <= span + 1.0 / 30.0 + 0.001,
        "{d} s for {frames} frames"
    );
    // Nothing was decoded for it, and the clip's thumbnail is a picture.
    let st = s.get("/cameras/cam/status").json();
    assert_eq!(st["source"]["decoded_frames"], 0, "{st}");
    let thumb = s.get(&format!("/clips/{}.jpg", clip["id"].as_str().unwrap()));
    assert_eq!(thumb.status, 200);
    assert_eq!(&thumb.body[..2], &[0xFF, 0xD8]);
}

#[test]
fn a_camera_that_drops_is_live_again_within_2_s_and_the_clip_plays_across() {
    let Some(mut cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--stall-timeout-sec", "1"]);
    wait_state(&s, "live");
    let started = Instant::now();
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(WAIT, "1 s recorded", |st| {
        st["recorder"]["frames"].as_u64() >= Some(30)
    });
    cam.stop();
    let down = wait_state(&s, "down");
    assert!(down["source"]["message"].as_str().is_some(), "{down}");
    let opts = RtspOptions::default();
    cam.restart(opts);
    let back = Instant::now();
    let live = wait_state(&s, "live");
    let took = back.elapsed();
    assert!(
        took <= common::rtsp::up_within(),
        "live again after {took:?}"
    );
    assert!(live["source"]["reopens"].as_u64() >= Some(1), "{live}");
    let listed = s.get("/cameras").json();
    assert!(
        listed["cameras"][0]["reconnects"].as_u64() >= Some(1),
        "/cameras counts the reconnect: {listed}"
    );
    let before = live["recorder"]["frames"].as_u64().unwrap();
    s.wait_status(WAIT, "recording again", |st| {
        st["recorder"]["frames"].as_u64() >= Some(before + 30)
    });
    let clip = s.post("/stop", "").json();
    let wall = started.elapsed().as_secs_f64();
    let path = Path::new(clip["path"].as_str().unwrap());
    // One clip across the outage: the gap is a still frame, the end is the
    // stop; it starts on the keyframe before /start (at most 1 s before).
    let d = clip["duration_sec"].as_f64().unwrap();
    assert!(d > 2.0 && d <= wall + 1.05, "{d} s of {wall} s");
    let probe = ffprobe(path);
    assert_eq!(
        probe["streams"][0]["nb_read_frames"],
        clip["frames"].as_u64().unwrap().to_string().as_str()
    );
}

#[test]
fn a_new_resolution_finishes_the_clip_and_the_recording_goes_on_in_the_next() {
    let Some(mut cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--stall-timeout-sec", "1"]);
    wait_state(&s, "live");
    // A live.mp4 viewer all along: the new size comes as a second init
    // segment in the same response.
    let mut live = common::LiveMp4::open(s.addr, "/cameras/cam/live.mp4");
    let widths = std::thread::spawn(move || {
        let mut widths = Vec::new();
        while widths.len() < 2 {
            match live.next_box_of(Some("moov")) {
                Ok((kind, moov)) if kind == "moov" => widths.push(track_width(&moov)),
                Ok(_) => {}
                Err(e) => panic!("live.mp4 ended after {widths:?}: {e}"),
            }
        }
        widths
    });
    let first = s.post("/start", "").json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.wait_status(WAIT, "1 s recorded", |st| {
        st["recorder"]["frames"].as_u64() >= Some(30)
    });
    cam.stop();
    wait_state(&s, "down");
    cam.restart(RtspOptions {
        width: 320,
        height: 180,
        ..RtspOptions::default()
    });
    s.wait_status(WAIT, "the new size", |st| {
        st["source"]["width"] == 320 && st["recording_id"].as_str().is_some_and(|id| id != first)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let last = s.post("/stop", "").json();
    assert_eq!(last["continued_from"], first.as_str(), "{last}");
    let clips = s.get("/clips").json();
    let ids: Vec<&str> = clips["clips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&first.as_str()) && ids.contains(&last["id"].as_str().unwrap()),
        "{ids:?}"
    );
    let dir = tmp.path().join("clips");
    for (id, w) in [(first.as_str(), 640), (last["id"].as_str().unwrap(), 320)] {
        let p = ffprobe(&dir.join(format!("{id}.mp4")));
        assert_eq!(p["streams"][0]["width"], w, "{id}: {p}");
    }
    assert_eq!(widths.join().expect("the live.mp4 reader"), [640, 320]);
}

/// The width a `moov`'s first track header says (16.16 fixed point, the
/// box's last eight bytes are width and height).
fn track_width(moov: &[u8]) -> u32 {
    let at = common::find(moov, b"tkhd").expect("a tkhd") - 4;
    let size = u32::from_be_bytes(moov[at..at + 4].try_into().unwrap()) as usize;
    let end = at + size;
    u32::from_be_bytes(moov[end - 8..end - 4].try_into().unwrap()) >> 16
}

#[test]
fn refused_and_silent_servers_are_down_with_a_reason_and_nothing_hangs() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on a port just freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = common::rtsp::recorder(tmp.path(), &format!("rtsp://127.0.0.1:{port}/cam"), &[]);
    let st = wait_state(&s, "down");
    assert!(
        st["source"]["message"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{st}"
    );
    let asked = Instant::now();
    assert_eq!(s.get("/healthz").status, 200);
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(
        s.post("/start", "").status,
        200,
        "recording waits for frames"
    );
    let stop = s.post("/stop", "");
    assert_eq!(
        stop.status,
        STOP_WITHOUT_FRAMES,
        "no frame, no clip: {}",
        stop.text()
    );
    assert!(
        stop.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("no frames arrived from the source; nothing recorded")),
        "{}",
        stop.text()
    );
    // A server that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "rtsp://127.0.0.1:{}/cam",
        silent.local_addr().unwrap().port()
    );
    let tmp2 = tempfile::tempdir().unwrap();
    let s2 = common::rtsp::recorder(tmp2.path(), &url, &[]);
    assert_eq!(s2.get("/status").json()["source"]["state"], "connecting");
    let st = wait_state(&s2, "down");
    assert!(
        st["source"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer to DESCRIBE"),
        "{st}"
    );
    // SIGTERM while it waits for DESCRIBE again does not wait out the
    // step's 5 s deadline.
    let mut s2 = s2;
    s2.wait_status(WAIT, "connecting again", |st| {
        st["source"]["reopens"].as_u64() >= Some(1)
    });
    let t0 = Instant::now();
    assert!(s2.signal(15).success(), "{}", s2.log());
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
    drop(silent);
}

#[test]
fn wrong_credentials_say_so_and_the_password_shows_nowhere() {
    let opts = RtspOptions {
        user: Some("admin".into()),
        password: Some("Kx7-right".into()),
        ..RtspOptions::default()
    };
    let Some(cam) = camera(opts) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let wrong = cam.url_with("admin", "Qz9-wrong");
    let s = common::rtsp::recorder(tmp.path(), &wrong, &[]);
    let st = wait_state(&s, "down");
    assert!(
        st["source"]["message"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{st}"
    );
    let seen = [
        s.get("/status").text(),
        s.get("/cameras").text(),
        s.get("/openapi.json").text(),
        s.get("/").text(),
        s.log(),
    ];
    for text in &seen {
        assert!(!text.contains("Qz9-wrong"), "password shown: {text}");
    }
    let tmp2 = tempfile::tempdir().unwrap();
    let s2 = common::rtsp::recorder(tmp2.path(), &cam.url_with("admin", "Kx7-right"), &[]);
    let st = wait_state(&s2, "live");
    assert_eq!(st["source"]["name"], cam.url().as_str());
    assert!(!s2.log().contains("Kx7-right"));
}

#[test]
fn pre_roll_starts_on_a_keyframe_before_the_window() {
    let Some(cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--pre-roll-sec", "1.5"]);
    wait_state(&s, "live");
    s.wait_status(WAIT, "frames for the pre-roll", |st| {
        st["source"]["frames"].as_u64() >= Some(90)
    });
    let clip = record(&s, 1.0);
    let path = Path::new(clip["path"].as_str().unwrap());
    let p = common::packets(path);
    assert!(p[0].1, "the clip starts on a keyframe");
    // Keyframes every second: the one at least 1.5 s back is within 2.5 s.
    let d = clip["duration_sec"].as_f64().unwrap();
    assert!(
        (2.5..3.6).contains(&d),
        "{d} s with 1.5 s of pre-roll and 1 s asked"
    );
}

#[test]
fn h265_cameras_are_copied_as_hvc1() {
    let opts = RtspOptions {
        codec: "h265",
        ..RtspOptions::default()
    };
    let Some(cam) = camera(opts) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    let st = wait_state(&s, "live");
    assert!(
        st["source"]["codec"].as_str().unwrap().starts_with("hvc1."),
        "{st}"
    );
    let clip = record(&s, 2.0);
    let path = Path::new(clip["path"].as_str().unwrap());
    let p = ffprobe(path);
    let v = &p["streams"][0];
    assert_eq!(
        (v["codec_name"].as_str(), v["codec_tag_string"].as_str()),
        (Some("hevc"), Some("hvc1")),
        "{p}"
    );
    assert_eq!(
        v["nb_read_frames"],
        clip["frames"].as_u64().unwrap().to_string().as_str()
    );
    // Our own reader takes H.265 clips too, and sees every keyframe (an
    // open-GOP encoder's CRA pictures after the first IDR): at least two
    // in 2 s of a camera with one a second.
    let own = own_probe(path);
    assert_eq!(
        (
            own["codec"].as_str(),
            own["width"].as_u64(),
            own["frames"].as_u64()
        ),
        (Some("h265"), Some(640), clip["frames"].as_u64()),
        "{own}"
    );
    assert!(own["keyframes"].as_u64() >= Some(2), "{own}");
    // The camera's own VPS, SPS and PPS, byte for byte.
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(hvcc_sets(&bytes), cam.parameter_sets());
    // A viewer coming late gets the picture within 2 s: the response
    // starts at a keyframe (a CRA here), not at the next IDR.
    let asked = Instant::now();
    let mut live = common::LiveMp4::open(s.addr, "/cameras/cam/live.mp4");
    while live.next_box().expect("live.mp4") != "moof" {}
    let took = asked.elapsed();
    assert!(
        took <= common::rtsp::up_within(),
        "first fragment after {took:?}"
    );
    // No H.265 decoder here: the MJPEG view says so rather than hang.
    for path in ["/snapshot.jpg", "/video"] {
        let r = s.get(path);
        assert_eq!(r.status, 503, "{path}");
        assert!(r.text().contains("H.265"), "{path}: {}", r.text());
    }
}

#[test]
fn the_live_fmp4_is_the_cameras_stream_and_mjpeg_is_decoded_only_while_watched() {
    let Some(cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(
        tmp.path(),
        &cam.url(),
        &["--preview-fps", "5", "--preview-width", "320"],
    );
    wait_state(&s, "live");
    // Two seconds of live.mp4, as a browser would fetch it, read by ffprobe.
    let out = tmp.path().join("live.mp4");
    let url = format!("http://{}/cameras/cam/live.mp4", s.addr);
    let got = Command::new("curl")
        .args(["-s", "--max-time", "2", "-o"])
        .arg(&out)
        .arg(&url)
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) > 1000,
        "{got:?}"
    );
    let p = ffprobe(&out);
    let v = &p["streams"][0];
    assert_eq!(
        (v["codec_name"].as_str(), v["width"].as_u64()),
        (Some("h264"), Some(640)),
        "{p}"
    );
    // Its init segment carries the camera's own SPS and PPS.
    assert_eq!(
        avcc_sets(&std::fs::read(&out).unwrap()),
        cam.parameter_sets()
    );
    let n: u64 = v["nb_read_frames"].as_str().unwrap().parse().unwrap();
    assert!(n >= 30, "{n} frames in 2 s");
    assert!(common::packets(&out)[0].1, "starts on a keyframe");
    // The response's own timeline starts at 0 (VLC stops on a first decode
    // time hours in), and GStreamer's demuxer plays it from there too.
    let bytes = std::fs::read(&out).unwrap();
    let at = bytes.windows(4).position(|w| w == b"tfdt").expect("a tfdt") + 8;
    assert_eq!(&bytes[at..at + 8], &[0; 8], "first decode time");
    assert_first_pts_is_zero_in_gstreamer(&url);
    assert_eq!(
        s.get("/cameras/cam/status").json()["source"]["decoded_frames"],
        0
    );
    // The MJPEG view and snapshots decode, at the preview rate and no
    // wider than the preview width (the camera sends 640x360 at 30 fps),
    // then stop.
    let snap = s.get("/cameras/cam/snapshot.jpg");
    assert_eq!(snap.status, 200);
    assert_eq!(common::jpeg_size(&snap.body), Some((320, 180)));
    let mut c = common::MjpegClient::connect(s.addr, "/video").unwrap();
    let first = c.next_part().unwrap();
    assert_eq!(common::jpeg_size(&first.jpeg), Some((320, 180)));
    let t0 = Instant::now();
    for _ in 0..10 {
        c.next_part().unwrap();
    }
    let rate = 10.0 / t0.elapsed().as_secs_f64();
    drop(c);
    // At most the preview rate (a little over while a burst is caught up);
    // natively close to it.
    assert!(rate <= 6.5, "{rate:.1} pictures a second at preview_fps 5");
    if !common::emulated() {
        assert!(rate >= 3.5, "{rate:.1} pictures a second at preview_fps 5");
    }
    let decoded = s.get("/cameras/cam/status").json()["source"]["decoded_frames"]
        .as_u64()
        .unwrap();
    assert!(decoded > 0);
    // Three seconds after the last viewer the decoder stops.
    let st = s.wait_status(WAIT, "the decoder idle", |st| {
        let a = st["source"]["decoded_frames"].as_u64();
        std::thread::sleep(Duration::from_millis(500));
        a == s.get("/cameras/cam/status").json()["source"]["decoded_frames"].as_u64()
    });
    assert!(st["source"]["decoded_frames"].as_u64() >= Some(decoded));
    // Started again, it numbers its pictures on from the last run's: a
    // snapshot waits for a picture newer than the last one (from 0, it
    // would wait out those 7 s of pictures and answer 503).
    let asked = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let snap = s.get("/cameras/cam/snapshot.jpg");
    assert_eq!(snap.status, 200, "{}", snap.text());
    let taken: f64 = snap.header("X-Timestamp").unwrap().parse().unwrap();
    assert!(
        taken >= asked - 0.5,
        "a picture from {:.1} s before the request",
        asked - taken
    );
}

/// While the camera is away, the live views still write: live.mp4 an empty
/// `free` box a second, the MJPEG view NO SIGNAL pictures. So viewers who
/// leave during an outage give their seats back then, not when the camera
/// returns (a page reconnecting all along would otherwise pile them up).
#[test]
fn viewers_who_leave_while_the_camera_is_away_give_their_seats_back() {
    let Some(mut cam) = camera(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--stall-timeout-sec", "1"]);
    wait_state(&s, "live");
    let mut mp4 = common::LiveMp4::open(s.addr, "/cameras/cam/live.mp4");
    assert_eq!(mp4.next_box().unwrap(), "ftyp");
    let mut mjpeg = common::MjpegClient::connect(s.addr, "/video").unwrap();
    mjpeg.next_part().unwrap();
    assert_eq!(s.get("/status").json()["viewers"], 2);

    cam.stop();
    wait_state(&s, "down");
    let away = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut kinds = Vec::new();
    while kinds.iter().filter(|k| *k == "free").count() < 2 {
        kinds.push(mp4.next_box().unwrap());
        assert!(
            kinds.len() < 1000,
            "no keepalive while the camera is away: {kinds:?}"
        );
    }
    // Pictures made after the camera was gone: NO SIGNAL, not its frames.
    let mut late = 0;
    while late < 2 {
        let p = mjpeg
            .next_part()
            .expect("MJPEG parts while the camera is away");
        assert_eq!(&p.jpeg[..2], &[0xFF, 0xD8]);
        late += usize::from(p.timestamp > away);
    }
    drop((mp4, mjpeg));
    let st = s.wait_status(WAIT, "both seats given back", |st| st["viewers"] == 0);
    assert_eq!(st["source"]["state"], "down", "{st}");

    // Back: a new live.mp4 is the camera's stream again.
    cam.restart(RtspOptions::default());
    wait_state(&s, "live");
    let mut mp4 = common::LiveMp4::open(s.addr, "/cameras/cam/live.mp4");
    let kinds: Vec<String> = (0..4).map(|_| mp4.next_box().unwrap()).collect();
    assert_eq!(kinds, ["ftyp", "moov", "moof", "mdat"]);
}

/// GStreamer's HTTP source and MP4 demuxer (a player's, not a browser's
/// stack) read 30 frames of live.mp4; the first is at time 0.
fn assert_first_pts_is_zero_in_gstreamer(url: &str) {
    if !common::have_tool("gst-launch-1.0") {
        return;
    }
    let out = Command::new("gst-launch-1.0")
        .args(["-v", "souphttpsrc"])
        .arg(format!("location={url}"))
        .args([
            "!",
            "qtdemux",
            "!",
            "identity",
            "eos-after=30",
            "silent=false",
        ])
        .args(["!", "fakesink", "sync=false"])
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "gst-launch: {out:?}");
    let first = text
        .lines()
        .find_map(|l| {
            l.split_once(" pts: ")
                .map(|(_, r)| r.split(',').next().unwrap_or(r))
        })
        .unwrap_or_else(|| panic!("no buffer in: {text}"));
    assert_eq!(first, "0:00:00.000000000", "{text}");
}
