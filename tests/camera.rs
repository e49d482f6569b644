//! The USB camera path, run for real: the binary opens a stand-in UVC
//! webcam (`tests/fakecam`, loaded with LD_PRELOAD) through its own V4L2
//! code, and the tests check what a user sees: `/status`, the bytes on
//! `/video`, clips, and what happens when the camera is unplugged, comes
//! back under another name, or appears while `auto` shows the test pattern.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fakecam::{
    Recording, back_within, camera, settings, standard_mjpeg, until_camera_frame, until_no_signal,
};
use common::{MjpegClient, RunWithin};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn streams_the_cameras_own_jpegs_and_records_them() {
    let Some((cam, frames)) = camera("") else {
        return;
    };
    let node = cam.plug("video0", 0);
    let s = cam.serve(&node, &["--width", "640", "--height", "360", "--fps", "30"]);
    let st = s.wait_status(WAIT, "the camera live", |st| {
        st["source"]["state"] == "live"
    });
    let src = &st["source"];
    assert_eq!(src["kind"], "v4l2", "{st}");
    assert_eq!(src["name"], node.display().to_string().as_str());
    assert_eq!(
        (src["width"].as_u64(), src["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(src["nominal_fps"], 30.0);
    assert_eq!(src["pixel_format"], "MJPEG");
    assert!(src["message"].is_null(), "it gives what was asked: {st}");
    let log = s.log();
    assert!(
        log.contains(&format!(
            "camera {}: MJPG 640x360 at 30.00 fps",
            node.display()
        )),
        "{log}"
    );
    assert!(
        !log.contains("cannot find its descriptor"),
        "the poll works: {log}"
    );

    // Viewers get the camera's own bytes, every one of them untouched.
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let mut seen = std::collections::HashSet::new();
    for i in 0..30 {
        let p = c.next_part().expect("a part");
        assert!(
            frames.contains(&p.jpeg),
            "part {i} is not one of the camera's JPEGs"
        );
        seen.insert(p.jpeg);
    }
    assert!(
        seen.len() >= 10,
        "the picture moves: {} different frames",
        seen.len()
    );
    drop(c);
    let st = s.wait_status(WAIT, "the rate measured", |st| {
        st["fps"].as_f64() > Some(0.0)
    });
    let fps = st["fps"].as_f64().unwrap();
    // Under qemu the emulated binary may fall behind, never ahead.
    let low = if common::emulated() { 15.0 } else { 27.0 };
    assert!(
        (low..=33.0).contains(&fps),
        "measured {fps} fps from a 30 fps camera"
    );

    let rec = Recording::start(&s);
    s.wait_status(WAIT, "two seconds recorded", |st| {
        st["elapsed_sec"].as_f64() >= Some(2.0)
    });
    rec.stop(&s, 30.0, (640, 360));
}

#[test]
fn by_id_follows_the_camera_through_an_unplug_and_a_new_node_name() {
    // Unplugged by the camera itself after 45 frames: DQBUF says ENODEV
    // and the node is gone.
    let Some((cam, frames)) = camera("unplug_at=45\n") else {
        return;
    };
    let settings0 = std::fs::read_to_string(cam.dir().join("0.conf")).unwrap();
    cam.configure(1, &settings0.replace("unplug_at=45\n", ""));
    cam.plug("video0", 0);
    let link = cam.by_id("usb-Fake_C920-video-index0", "video0");
    let s = cam.serve(&link, &["--width", "640", "--height", "360"]);
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    until_camera_frame(&mut c, &frames, WAIT);
    let st = s.wait_status(WAIT, "the camera down", |st| {
        st["source"]["state"] == "down"
    });
    let message = st["source"]["message"].as_str().unwrap();
    assert!(
        message.contains("disconnected") || message.contains("not found"),
        "{st}"
    );
    assert!(
        message.contains("usb-Fake_C920-video-index0"),
        "names the camera: {st}"
    );
    until_no_signal(&mut c, &frames);

    // Away for longer than the reopen backoff grows to in that time (0.25,
    // 0.5, 1, 2 s): the scenario's length, not a wait for something.
    std::thread::sleep(Duration::from_secs(4));
    cam.plug("video1", 1);
    cam.by_id("usb-Fake_C920-video-index0", "video1");
    let back = until_camera_frame(&mut c, &frames, WAIT);
    println!(
        "streaming again {:.3} s after the camera came back",
        back.as_secs_f64()
    );
    assert!(
        back <= back_within(),
        "streaming again after {back:?}\n{}",
        s.log()
    );
    let st = s.get("/status").json();
    assert_eq!(st["source"]["state"], "live", "{st}");
    assert!(st["source"]["reopens"].as_u64() >= Some(1), "{st}");
    assert!(
        s.log().contains("video1"),
        "the log says where the name points now:\n{}",
        s.log()
    );
}

#[test]
fn a_recording_across_an_unplug_stays_one_playable_clip() {
    let Some((cam, frames)) = camera("") else {
        return;
    };
    let node = cam.plug("video0", 0);
    let s = cam.serve(&node, &["--width", "640", "--height", "360"]);
    s.wait_status(WAIT, "the camera live", |st| {
        st["source"]["state"] == "live"
    });
    let rec = Recording::start(&s);
    let started = Instant::now();
    s.wait_status(WAIT, "a second recorded", |st| {
        st["elapsed_sec"].as_f64() >= Some(1.0)
    });
    cam.unplug("video0");
    let unplugged = started.elapsed().as_secs_f64();
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let no_signal = until_no_signal(&mut c, &frames);
    let down = s.wait_status(WAIT, "the camera down", |st| {
        st["source"]["state"] == "down"
    });
    assert_eq!(down["recording"], true, "the recording goes on: {down}");
    s.wait_status(WAIT, "three seconds recorded", |st| {
        st["elapsed_sec"].as_f64() >= Some(3.0)
    });
    cam.plug("video0", 0);
    let plugged = started.elapsed().as_secs_f64();
    until_camera_frame(&mut c, &frames, WAIT);
    s.wait_status(WAIT, "five seconds recorded", |st| {
        st["elapsed_sec"].as_f64() >= Some(5.0)
    });
    // One clip, with NO SIGNAL where the camera was away, as long as the
    // wall time.
    let clip = rec.stop_across_outage(&s, 30.0, (640, 360));
    assert_eq!(
        common::files(&s.clips),
        vec![format!("{}.mp4", clip["id"].as_str().unwrap())]
    );
    // Decoded: the camera's pictures before the gap and after it, NO SIGNAL
    // in its middle (the clip starts within a frame of `started`).
    let path = common::fakecam::clip_path(&clip);
    let camera: Vec<_> = frames.iter().map(|f| common::jpeg_thumb(f)).collect();
    let away = common::jpeg_thumb(&no_signal);
    let d = clip["duration_sec"].as_f64().unwrap();
    for (what, at) in [("before", 0.5), ("after", d - 0.3)] {
        let got = common::grey_thumb(&path, Some(at));
        let db = common::best_psnr(&got, &camera);
        println!("{what} the gap ({at:.2} s): {db:.1} dB from the camera's pictures");
        assert!(
            db >= 28.0,
            "{what} the gap ({at:.2} s): {db:.1} dB from the camera's pictures"
        );
    }
    let middle = (unplugged + plugged) / 2.0;
    let got = common::grey_thumb(&path, Some(middle));
    let db = common::psnr(&got, &away);
    println!("in the gap ({middle:.2} s): {db:.1} dB from NO SIGNAL");
    assert!(
        db >= 28.0,
        "at {middle:.2} s, in the gap: {db:.1} dB from NO SIGNAL"
    );
    let db = common::best_psnr(&got, &camera);
    assert!(
        db < 20.0,
        "at {middle:.2} s, in the gap: a camera picture ({db:.1} dB)"
    );
}

/// Makes `/dev/video0` for the length of a test, and removes it after.
struct DevNode(PathBuf);

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn auto_picks_up_a_camera_when_its_node_appears() {
    let Some((cam, frames)) = camera("") else {
        return;
    };
    let dev = Path::new("/dev/video0");
    if dev.symlink_metadata().is_ok() || Path::new("/dev/v4l/by-id").exists() {
        common::skip("this machine has a camera of its own at /dev/video0");
        return;
    }
    let s = cam.serve(Path::new("auto"), &["--width", "640", "--height", "360"]);
    let st = s.wait_status(WAIT, "the test pattern", |st| {
        st["source"]["state"] == "test"
    });
    assert_eq!(st["source"]["kind"], "test", "{st}");
    common::fakecam::mknod(dev, 0).expect("mknod /dev/video0");
    let _node = DevNode(dev.to_path_buf());
    let plugged = Instant::now();
    let st = s.wait_status(WAIT, "the camera picked up", |st| {
        st["source"]["state"] == "live"
    });
    let took = plugged.elapsed();
    println!(
        "picked up {:.2} s after the node appeared",
        took.as_secs_f64()
    );
    // `auto` looks every 2 s: within 3 s natively (an emulator is slower).
    let bound = if common::emulated() { 20 } else { 3 };
    assert!(
        took <= Duration::from_secs(bound),
        "picked up after {took:?}"
    );
    assert_eq!(
        (st["source"]["kind"].as_str(), st["source"]["name"].as_str()),
        (Some("v4l2"), Some("/dev/video0"))
    );
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    until_camera_frame(&mut c, &frames, WAIT);
    assert!(s.log().contains("leaving the test pattern"), "{}", s.log());
}

#[test]
fn huffman_tables_are_put_back_where_the_camera_left_them_out() {
    let Some((cam, _)) = camera("") else {
        return;
    };
    let (file, frames) = standard_mjpeg(cam.dir(), 640, 360, 30);
    cam.configure(0, &settings(&file, "strip_dht=1\n"));
    let node = cam.plug("video0", 0);
    let s = cam.serve(&node, &["--width", "640", "--height", "360"]);
    let sent: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| common::fakecam::without_dht(f))
        .collect();
    assert!(
        sent.iter()
            .all(|f| common::find(f, &[0xFF, 0xC4]).is_none())
    );
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let parts: Vec<Vec<u8>> = (0..20)
        .map(|_| c.next_part().expect("a part").jpeg)
        .collect();
    for (i, p) in parts.iter().enumerate() {
        // The camera's bytes, with tables added and nothing else changed.
        assert!(
            common::find(p, &[0xFF, 0xC4]).is_some(),
            "part {i} has no DHT"
        );
        assert!(
            sent.contains(&common::fakecam::without_dht(p)),
            "part {i} is not the camera's frame"
        );
    }
    common::fakecam::ffmpeg_decodes(cam.dir(), &parts).unwrap_or_else(|e| panic!("ffmpeg: {e}"));
    assert_eq!(s.get("/status").json()["source"]["broken_frames"], 0);
}

/// Two `[[camera]]`s naming one webcam through two `by-id` links (a camera
/// listed twice by mistake) are refused at start, in words naming the key
/// and the other camera; two webcams are not.
#[test]
fn two_names_of_one_webcam_are_refused_and_two_webcams_are_not() {
    let Some(cam) = common::fakecam::FakeCam::new() else {
        return;
    };
    cam.plug("video0", 0);
    cam.plug("video1", 1);
    let a = cam.by_id("usb-Fake_C920-video-index0", "video0");
    let b = cam.by_id("usb-Fake_C920_Pro-video-index0", "video0");
    let other = cam.by_id("usb-Other_Cam-video-index0", "video1");
    let tmp = tempfile::tempdir().unwrap();
    let config = |second: &Path| {
        let path = tmp.path().join("vr.toml");
        std::fs::write(
            &path,
            format!(
                "[[camera]]\nid = \"front\"\nsource = \"{}\"\n\n\
                 [[camera]]\nid = \"door\"\nsource = \"{}\"\n",
                a.display(),
                second.display()
            ),
        )
        .unwrap();
        path
    };
    // Refused before anything is opened: the process exits, saying why.
    let path = config(&b);
    let out = common::command()
        .args(["--config", path.to_str().unwrap(), "--port", "0"])
        .output_within(Duration::from_secs(60))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(
        err.contains("source")
            && err.contains("door")
            && err.contains("camera \"front\" already uses this device"),
        "{err}"
    );
    // Two webcams: both cameras listed.
    let path = config(&other);
    let env = cam.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = common::Server::start_env(
        &tmp.path().join("clips"),
        &["--config", path.to_str().unwrap()],
        &env,
    );
    let ids: Vec<_> = s.get("/cameras").json()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["front", "door"]);
}
