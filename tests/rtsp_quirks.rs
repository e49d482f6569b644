//! The real binary against a cheap RTSP camera that is not GStreamer
//! (`tests/harness/src/rtsp_cheap`): parameter sets only in band (an fmtp
//! ending with `;`, with or without `sprop-parameter-sets`, or no fmtp) or
//! only in an fmtp ending with `;`,
//! every picture fragmented as FU-A at a 1,500-byte MTU, a session joined in
//! the middle of a picture that is not an IDR, UDP only (461 to TCP), and a
//! session timeout that OPTIONS does not refresh, a packet lost now and then. Each is a fix of ours
//! (vendor/README.md, retina patches 4 to 6; `src/source/rtsp/session.rs`);
//! these tests are where they meet a camera end to end.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::rtsp_cheap::{CheapCamera, CheapOptions, Sdp};
use common::{RunWithin, Server, ffprobe};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn live(st: &Value) -> bool {
    st["source"]["state"] == "live"
}

/// A clip of about `secs`, checked: every frame ffprobe reads is one the
/// product counted, all of them decode, and most of what the camera sent
/// is there.
fn record_and_check(s: &Server, secs: f64, what: &str) -> Value {
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(WAIT, "recorded", |st| {
        st["recorder"]["elapsed_sec"].as_f64() >= Some(secs)
    });
    let clip = s.post("/stop", "").json();
    let frames = clip["frames"].as_u64().unwrap();
    // Over UDP a packet lost on a busy machine (or under an emulator)
    // costs the frames to the next keyframe, up to a second's: never one
    // written undecodable.
    let least = if common::emulated() { 0.25 } else { 0.45 };
    assert!(frames as f64 >= secs * 30.0 * least, "{what}: {clip:#}");
    assert_eq!(clip["dropped_frames"], 0, "{what}: {clip:#}");
    let probe = ffprobe(Path::new(clip["path"].as_str().unwrap()));
    assert_eq!(
        probe["streams"][0]["nb_read_frames"],
        frames.to_string().as_str(),
        "{what}: {clip:#}"
    );
    assert_eq!(probe["streams"][0]["codec_name"], "h264", "{what}");
    let errors = decode_errors(Path::new(clip["path"].as_str().unwrap()));
    assert!(
        errors.is_empty(),
        "{what}: the clip does not decode cleanly:\n{errors}"
    );
    clip
}

#[test]
fn in_band_parameter_sets_joined_mid_picture_over_udp_only() {
    // The last: parameter sets only in an fmtp ending with `;` (retina as
    // published dropped the whole fmtp, and waited for them in band).
    for (sdp, in_band) in [
        (Sdp::NoSprop, true),
        (Sdp::NoFmtp, true),
        (Sdp::TrailingSemicolon, true),
        (Sdp::TrailingSemicolon, false),
    ] {
        let Some(cam) = CheapCamera::start(CheapOptions {
            sdp,
            in_band,
            ..Default::default()
        }) else {
            return;
        };
        let what = format!("{sdp:?}, in band: {in_band}");
        let tmp = tempfile::tempdir().unwrap();
        let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
        let t0 = Instant::now();
        let st = s.wait_status(WAIT, "live", live);
        let took = t0.elapsed();
        eprintln!("{what}: live after {took:?}");
        assert!(
            took <= common::rtsp::up_within(),
            "{what}: live after {took:?}\n{}",
            s.log()
        );
        assert_eq!(st["source"]["transport"], "udp", "{what}: {st:#}");
        assert_eq!(st["source"]["pixel_format"], "H264", "{what}: {st:#}");
        assert_eq!(
            (
                st["source"]["width"].as_u64(),
                st["source"]["height"].as_u64()
            ),
            (Some(640), Some(360)),
            "{what}: parameter sets from the stream: {st:#}"
        );
        // What the camera did: refused TCP, and began the session with a
        // middle fragment (FU-A, neither start nor end) of a P picture.
        let ev = cam.events();
        assert!(ev.iter().any(|e| e.what == "SETUP 461"), "{}", cam.log());
        let first = cam.first_packets();
        assert_eq!(first.len(), 1, "{what}: one session: {}", cam.log());
        let [ind, fu] = first[0];
        assert_eq!((ind & 0x1f, fu & 0xc0, fu & 0x1f), (28, 0, 1), "{what}");
        record_and_check(&s, 2.0, &what);
        assert_eq!(cam.sessions(), 1, "{what}: {}", cam.log());
        assert!(!s.log().contains("re-anchored"), "{what}: {}", s.log());
    }
}

#[test]
fn the_same_camera_over_tcp_when_it_speaks_it() {
    // The quirks but UDP only: interleaved, the session still starts on a
    // middle fragment of a P picture.
    let Some(cam) = CheapCamera::start(CheapOptions {
        udp_only: false,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    let t0 = Instant::now();
    let st = s.wait_status(WAIT, "live", live);
    let took = t0.elapsed();
    assert!(
        took <= common::rtsp::up_within(),
        "live after {took:?}\n{}",
        s.log()
    );
    assert_eq!(st["source"]["transport"], "tcp", "{st:#}");
    assert!(
        !cam.events().iter().any(|e| e.what == "SETUP 461"),
        "{}",
        cam.log()
    );
    assert_eq!(
        cam.first_packets()[0][1] & 0xc0,
        0,
        "a middle fragment first"
    );
    record_and_check(&s, 1.5, "tcp");
}

#[test]
fn a_cheap_camera_that_drops_is_back_within_2_s() {
    let Some(mut cam) = CheapCamera::start(CheapOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--stall-timeout-sec", "1"]);
    s.wait_status(WAIT, "live", live);
    cam.stop();
    let down = s.wait_status(WAIT, "down", |st| st["source"]["state"] == "down");
    assert!(down["source"]["message"].as_str().is_some(), "{down:#}");
    // Away for a while (the reconnect delay has grown to its cap).
    std::thread::sleep(Duration::from_secs(2));
    cam.restart();
    let back = Instant::now();
    let st = s.wait_status(WAIT, "live again", live);
    let took = back.elapsed();
    eprintln!("live again after {took:?}");
    assert!(
        took <= common::rtsp::up_within(),
        "live again after {took:?}\n{}",
        s.log()
    );
    assert_eq!(st["source"]["transport"], "udp", "{st:#}");
    assert_eq!(cam.sessions(), 2, "{}", cam.log());
    record_and_check(&s, 1.5, "after the outage");
}

#[test]
fn keepalives_hold_a_session_that_options_does_not_refresh() {
    const TIMEOUT: u64 = 6;
    let Some(cam) = CheapCamera::start(CheapOptions {
        timeout_sec: TIMEOUT as u32,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    s.wait_status(WAIT, "live", live);
    // Three timeouts and more.
    std::thread::sleep(Duration::from_secs(3 * TIMEOUT + 2));
    let st = s.wait_status(WAIT, "live", live);
    let ev = cam.events();
    let log = cam.log();
    assert!(!ev.iter().any(|e| e.what == "EXPIRED"), "dropped:\n{log}");
    assert_eq!(cam.sessions(), 1, "one session throughout:\n{log}");
    assert_eq!(st["source"]["reopens"], 0, "{st:#}");
    let cams = s.get("/cameras").json();
    assert_eq!(cams["cameras"][0]["reconnects"], 0, "{cams:#}");
    // Every refresh (PLAY, then GET_PARAMETER) came well within the
    // timeout of the one before, and the last within it of now.
    let refreshes: Vec<Duration> = ev.iter().filter(|e| e.refreshed).map(|e| e.at).collect();
    let played = refreshes[0];
    let now = cam.now();
    let limit = Duration::from_secs(TIMEOUT) - Duration::from_millis(500);
    for w in refreshes.windows(2) {
        assert!(
            w[1] - w[0] < limit,
            "a refresh {:?} after the one before:\n{log}",
            w[1] - w[0]
        );
    }
    assert!(refreshes.len() as u64 >= 3 * TIMEOUT / 2, "{log}");
    assert!(now - *refreshes.last().unwrap() < limit, "{log}");
    // The first keepalive was an OPTIONS, which did not refresh: retina as
    // published (keepalives at half the timeout) would have sent the first
    // GET_PARAMETER at the timeout itself, after the camera dropped us.
    let options: Vec<Duration> = ev
        .iter()
        .filter(|e| e.what.starts_with("OPTIONS") && e.at > played)
        .map(|e| e.at)
        .collect();
    assert!(!options.is_empty(), "no OPTIONS keepalive:\n{log}");
    let first_get = refreshes[1];
    assert!(options[0] < first_get, "{log}");
    assert!(
        (options[0] - played) * 2 < limit && first_get - played < limit,
        "the first refresh {:?} after PLAY:\n{log}",
        first_get - played
    );
    assert!(
        (first_get - played) >= (options[0] - played) * 2 - Duration::from_millis(300),
        "keepalives evenly spaced:\n{log}"
    );
}

/// What ffmpeg's decoder says of a clip (`-v error`): nothing, for a clip
/// whose every picture has what it refers to.
fn decode_errors(path: &Path) -> String {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output_within(common::CHILD_TIMEOUT)
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_lost_packet_costs_the_pictures_to_the_next_keyframe_never_a_broken_one() {
    // One packet of picture 15 of every 30 (once a second) never arrives.
    let Some(cam) = CheapCamera::start(CheapOptions {
        lose_at: Some(15),
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    s.wait_status(WAIT, "live", live);
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(WAIT, "recorded", |st| {
        st["recorder"]["elapsed_sec"].as_f64() >= Some(3.0)
    });
    let clip = s.post("/stop", "").json();
    let path = Path::new(clip["path"].as_str().unwrap());
    assert!(cam.packets_lost() >= 3, "{}", cam.log());
    // Pictures 15 to 29 of each second refer to the lost one: left out, so
    // about half of each second is there, and all of it decodes.
    let frames = clip["frames"].as_u64().unwrap();
    let secs = clip["duration_sec"].as_f64().unwrap();
    let per_sec = frames as f64 / secs;
    // (Under an emulator more may be lost, by the kernel's buffer.)
    let least = if common::emulated() { 5.0 } else { 12.0 };
    assert!(
        (least..=19.0).contains(&per_sec),
        "{per_sec:.1} a second: {clip:#}"
    );
    let errors = decode_errors(path);
    assert!(
        errors.is_empty(),
        "the clip does not decode cleanly:\n{errors}"
    );
    assert_eq!(
        ffprobe(path)["streams"][0]["nb_read_frames"],
        frames.to_string().as_str()
    );
    // Said, not hidden.
    let st = s.get("/status").json();
    assert!(st["source"]["broken_frames"].as_u64() >= Some(30), "{st:#}");
}
