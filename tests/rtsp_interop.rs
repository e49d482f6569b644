//! RTSP cameras that are not like GStreamer's defaults: one that speaks UDP
//! only (a SETUP over TCP gets 461 Unsupported Transport, as from many
//! cheap cameras). The product finds the transport by itself, says which in
//! `/status`, and an explicit `rtsp_transport` still wins.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::ffprobe;
use common::rtsp::{RtspCamera, RtspOptions};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_udp_only_camera_is_received_over_udp_by_itself() {
    let Some(cam) = RtspCamera::start(RtspOptions {
        udp_only: true,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &[]);
    let t0 = Instant::now();
    let st = s.wait_status(WAIT, "live over udp", |st| st["source"]["state"] == "live");
    let took = t0.elapsed();
    assert_eq!(st["source"]["transport"], "udp", "{st:#}");
    assert_eq!(st["source"]["pixel_format"], "H264", "{st:#}");
    assert!(
        s.log()
            .contains("answered 461 Unsupported Transport; using udp"),
        "{}",
        s.log()
    );
    // Up as fast as a camera that speaks TCP (the server process and its
    // pipeline were already running).
    assert!(took <= common::rtsp::up_within(), "live after {took:?}");
    // A clip of it, every frame readable.
    assert_whole_clip_over_udp(&s);
}

/// Records 2 s and checks the clip: at least half its frames (UDP may
/// lose a packet on a busy machine, the kernel's receive buffer capped by
/// net.core.rmem_max: the frames up to the next keyframe are then left
/// out, never written undecodable), every one read by ffprobe.
fn assert_whole_clip_over_udp(s: &common::Server) {
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(WAIT, "2 s recorded", |st| {
        st["recorder"]["elapsed_sec"].as_f64() >= Some(2.0)
    });
    let clip = s.post("/stop", "").json();
    let frames = clip["frames"].as_u64().unwrap();
    assert!(frames >= 15, "{clip:#}");
    let probe = ffprobe(Path::new(clip["path"].as_str().unwrap()));
    assert_eq!(
        probe["streams"][0]["nb_read_frames"],
        frames.to_string().as_str()
    );
}

#[test]
fn an_explicit_transport_is_kept_and_the_refusal_said() {
    let Some(cam) = RtspCamera::start(RtspOptions {
        udp_only: true,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--rtsp-transport", "tcp"]);
    let st = s.wait_status(WAIT, "down with the reason", |st| {
        st["source"]["state"] == "down"
            && st["source"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("461"))
    });
    assert!(st["source"]["transport"].is_null(), "{st:#}");
    // It never tried UDP by itself (that would have come before "down").
    assert!(!s.log().contains("using udp"), "{}", s.log());
}

/// `rtsp_transport = "udp"` asked of a camera that speaks both: RTP comes
/// over UDP from the start (no TCP SETUP tried), and the clip is whole.
#[test]
fn udp_asked_of_a_camera_that_speaks_both_is_used() {
    let Some(cam) = RtspCamera::start(RtspOptions::default()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = common::rtsp::recorder(tmp.path(), &cam.url(), &["--rtsp-transport", "udp"]);
    let st = s.wait_status(WAIT, "live", |st| st["source"]["state"] == "live");
    assert_eq!(st["source"]["transport"], "udp", "{st:#}");
    assert!(!s.log().contains("461"), "{}", s.log());
    assert_whole_clip_over_udp(&s);
}
