//! Many cameras, each recording on its own: two stand-in USB webcams
//! (`tests/fakecam`, each playing a picture of its own colour) and an HTTP
//! MJPEG network camera served by the test, configured with `[[camera]]`
//! sections. Clips are checked by decoding a frame of each and comparing
//! its colour with its camera's.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fakecam::{FakeCam, Recording, jpegs};
use common::mjpeg_server::{MjpegCamera, Mode};
use common::{RunWithin, Server};

const WAIT: Duration = Duration::from_secs(60);
const SIZE: (u64, u64) = (320, 240);

/// Runs ffmpeg, failing the test with what it said; its output.
fn ffmpeg(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output_within(common::CHILD_TIMEOUT)
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A 320x240 MJPEG file of one colour (with a moving box, so frames differ).
fn colour_mjpeg(dir: &Path, colour: &str, fps: u32) -> PathBuf {
    let path = dir.join(format!("{colour}.mjpeg"));
    ffmpeg(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("color=c={colour}:size=320x240:rate={fps}"))
            .args(["-vf", "drawbox=x=t*40:y=100:w=20:h=20:color=gray:t=fill"])
            .args([
                "-frames:v",
                "30",
                "-c:v",
                "mjpeg",
                "-q:v",
                "4",
                "-f",
                "mjpeg",
            ])
            .arg(&path),
    );
    path
}

/// The mean colour of the frame a clip shows at `at` seconds, decoded by
/// ffmpeg.
fn clip_colour(clip: &Path, at: f64) -> [u8; 3] {
    let out = ffmpeg(
        Command::new("ffmpeg")
            .args(["-v", "error", "-ss", &format!("{at:.3}"), "-i"])
            .arg(clip)
            .args(["-frames:v", "1", "-vf", "scale=1:1:flags=area"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
    );
    [out[0], out[1], out[2]]
}

fn close(got: [u8; 3], want: [u8; 3]) -> bool {
    got.iter().zip(want).all(|(g, w)| g.abs_diff(w) < 60)
}

/// The clip's first, middle and last frames are its camera's colour (a
/// clip with another camera's pictures in it, at any point, is caught).
fn assert_colour(clip: &Path, want: [u8; 3]) {
    assert_colour_at(clip, want, &[0.0, 0.5, 1.0]);
}

/// The same at these shares of the clip's length (0: its first frame, 1:
/// its last).
fn assert_colour_at(clip: &Path, want: [u8; 3], shares: &[f64]) {
    let d: f64 = common::ffprobe(clip)["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for at in shares.iter().map(|s| (s * d).min(d - 0.15).max(0.0)) {
        let got = clip_colour(clip, at);
        assert!(
            close(got, want),
            "{} at {at:.2} s of {d:.2}: colour {got:?}, its camera's is {want:?}",
            clip.display()
        );
    }
}

const RED: [u8; 3] = [255, 0, 0];
const GREEN: [u8; 3] = [0, 128, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// Two stand-in USB cameras (red on minor 0, green on minor 1) and a blue
/// network camera; `None` where they cannot run.
struct Rig {
    usb: FakeCam,
    red: Vec<Vec<u8>>,
    green: Vec<Vec<u8>>,
    net: MjpegCamera,
    blue: Vec<Vec<u8>>,
}

fn rig(extra_green: &str) -> Option<Rig> {
    if !common::have_tool("ffmpeg") {
        common::skip("ffmpeg makes the cameras' frames");
        return None;
    }
    let usb = FakeCam::new()?;
    let conf = |file: &Path, extra: &str| {
        format!(
            "frames={}\ncard=Fake Cam\nsizes=320x240\nrates=15\n{extra}",
            file.display()
        )
    };
    let red_file = colour_mjpeg(usb.dir(), "red", 15);
    let green_file = colour_mjpeg(usb.dir(), "green", 15);
    usb.configure(0, &conf(&red_file, ""));
    usb.configure(1, &conf(&green_file, extra_green));
    let blue_file = colour_mjpeg(usb.dir(), "blue", 15);
    let blue = jpegs(&std::fs::read(blue_file).unwrap());
    let net = MjpegCamera::start(blue.clone(), 15, Some("door:s3cret-door-pass"));
    Some(Rig {
        red: jpegs(&std::fs::read(red_file).unwrap()),
        green: jpegs(&std::fs::read(green_file).unwrap()),
        usb,
        net,
        blue,
    })
}

impl Rig {
    /// The server with `front` (red USB), `side` (green USB) and `door`
    /// (the network camera, with credentials in its URL).
    fn serve(&self, flat: &str) -> Server {
        let front = self.usb.plug("video0", 0);
        let side = self.usb.plug("video1", 1);
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("vr.toml");
        std::fs::write(
            &config,
            format!(
                "width = 320\nheight = 240\nfps = 15\n{flat}\n\
                 [[camera]]\nid = \"front\"\nsource = \"{}\"\n\n\
                 [[camera]]\nid = \"side\"\nsource = \"{}\"\n\n\
                 [[camera]]\nid = \"door\"\nsource = \"{}\"\n",
                front.display(),
                side.display(),
                self.net.url("door:s3cret-door-pass@"),
            ),
        )
        .unwrap();
        let env = self.usb.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = config.display().to_string();
        let mut s = Server::start_env(&tmp.path().join("clips"), &["--config", &config], &env);
        s.keep(tmp);
        s
    }
}

fn camera<'a>(cameras: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    cameras["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no camera {id}: {cameras}"))
}

fn wait_cameras(
    s: &Server,
    what: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let c = s.get("/cameras").json();
        if ok(&c) {
            return c;
        }
        assert!(
            t0.elapsed() < WAIT,
            "no {what} within {WAIT:?}: {c}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn all_live(c: &serde_json::Value) -> bool {
    c["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "live" && c["fps"].as_f64() > Some(5.0))
}

#[test]
fn three_cameras_record_at_once_each_its_own_picture() {
    let Some(rig) = rig("") else { return };
    let s = rig.serve("");
    let c = wait_cameras(&s, "three live cameras", all_live);
    let ids: Vec<&str> = c["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["front", "side", "door"]);
    assert_eq!(camera(&c, "door")["kind"], "http");
    // The password is nowhere a client or the log can see.
    let status = s.get("/status").text();
    for seen in [c.to_string(), status.clone(), s.log()] {
        assert!(
            !seen.contains("s3cret"),
            "the camera's password leaked: {seen}"
        );
    }
    assert!(
        camera(&c, "door")["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{}", rig.net.addr))
    );
    // The original routes are the first camera's.
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["camera"], "front");
    assert_eq!(st["cameras"].as_array().unwrap().len(), 3);
    let mut v = common::MjpegClient::connect(s.addr, "/video").unwrap();
    assert!(rig.red.contains(&v.next_part().unwrap().jpeg));
    for (id, frames) in [
        ("front", &rig.red),
        ("side", &rig.green),
        ("door", &rig.blue),
    ] {
        let mut v = common::MjpegClient::connect(s.addr, &format!("/cameras/{id}/video")).unwrap();
        let part = v.next_part().unwrap();
        assert!(
            frames.contains(&part.jpeg),
            "{id}/video is not {id}'s picture"
        );
        let snap = s.get(&format!("/cameras/{id}/snapshot.jpg"));
        assert!(frames.contains(&snap.body), "{id}/snapshot.jpg");
    }

    let front = Recording::start_on(&s, "/cameras/front");
    let side = Recording::start_on(&s, "/cameras/side");
    let door = Recording::start_on(&s, "/cameras/door");
    // A second start of one camera is refused; the others are untouched.
    let again = s.post("/cameras/side/start", "");
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(
        again.json()["recording"]["id"]
            .as_str()
            .unwrap()
            .split('-')
            .next(),
        Some("side")
    );
    assert_eq!(
        s.post("/start", "").status,
        409,
        "/start is front's, recording"
    );
    s.wait_status(WAIT, "front recording frames", |st| {
        st["recorder"]["frames"].as_u64() >= Some(15)
    });
    let side_clip = side.stop(&s, 15.0, SIZE);
    // Stopping one leaves the others recording.
    let c = s.get("/cameras").json();
    assert_eq!(
        (
            camera(&c, "front")["recording"].as_bool(),
            camera(&c, "side")["recording"].as_bool(),
            camera(&c, "door")["recording"].as_bool()
        ),
        (Some(true), Some(false), Some(true)),
        "{c}"
    );
    std::thread::sleep(Duration::from_millis(700));
    let front_clip = front.stop(&s, 15.0, SIZE);
    let door_clip = door.stop(&s, 15.0, SIZE);
    for (clip, camera, colour) in [
        (&front_clip, "front", RED),
        (&side_clip, "side", GREEN),
        (&door_clip, "door", BLUE),
    ] {
        let path = PathBuf::from(clip["path"].as_str().unwrap());
        assert_eq!(path.parent().unwrap(), s.clips.join(camera), "{clip}");
        let id = clip["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{camera}-")), "{id}");
        assert_colour(&path, colour);
    }
    // Each camera's /last is its own clip.
    for (id, clip) in [
        ("front", &front_clip),
        ("side", &side_clip),
        ("door", &door_clip),
    ] {
        let last = s.get(&format!("/cameras/{id}/last"));
        assert_eq!(last.status, 200);
        let file = std::fs::read(clip["path"].as_str().unwrap()).unwrap();
        assert_eq!(file.len() as u64, clip["size_bytes"].as_u64().unwrap());
        assert!(last.body == file, "{id}/last is not its clip's bytes");
    }
    let last = s.get("/last");
    let front = std::fs::read(front_clip["path"].as_str().unwrap()).unwrap();
    assert!(last.body == front, "/last is not the first camera's clip");
    // The library: all three, newest first, each with the thumbnail its
    // camera sent (the first frame's JPEG, as it came).
    let lib = s.get("/clips").json();
    let listed = lib["clips"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{lib}");
    for (e, frames) in listed.iter().map(|e| {
        let frames = match e["camera"].as_str().unwrap() {
            "front" => &rig.red,
            "side" => &rig.green,
            _ => &rig.blue,
        };
        (e, frames)
    }) {
        let thumb = s.get(e["thumbnail_url"].as_str().unwrap());
        assert_eq!(thumb.header("Content-Type"), Some("image/jpeg"));
        assert!(frames.contains(&thumb.body), "{e}: not its camera's JPEG");
        // And the picture the clip starts with.
        let clip = s.clips.join(e["camera"].as_str().unwrap());
        let clip = clip.join(format!("{}.mp4", e["id"].as_str().unwrap()));
        let db = common::psnr(
            &common::jpeg_thumb(&thumb.body),
            &common::grey_thumb(&clip, Some(0.0)),
        );
        assert!(
            db >= 28.0,
            "{e}: the thumbnail is {db:.1} dB from the clip's first frame"
        );
        assert!(e["duration_sec"].as_f64() > Some(0.5), "{e}");
        assert!(e["frames"].as_u64() > Some(5), "{e}");
    }
}

#[test]
fn one_camera_unplugged_while_the_others_record() {
    let Some(rig) = rig("") else { return };
    let s = rig.serve("");
    wait_cameras(&s, "three live cameras", all_live);
    let front = Recording::start_on(&s, "/cameras/front");
    let side = Recording::start_on(&s, "/cameras/side");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    rig.usb.unplug("video1");
    wait_cameras(&s, "side down", |c| camera(c, "side")["state"] == "down");
    let c = s.get("/cameras").json();
    assert_eq!(camera(&c, "front")["state"], "live", "{c}");
    assert_eq!(
        camera(&c, "side")["recording"],
        true,
        "still recording, NO SIGNAL"
    );
    // Away long enough for NO SIGNAL pictures (twice a second) in the clip.
    std::thread::sleep(Duration::from_millis(1500));
    let away = started.elapsed().as_secs_f64() - 0.3;
    rig.usb.plug("video1", 1);
    wait_cameras(&s, "side back", |c| camera(c, "side")["state"] == "live");
    std::thread::sleep(Duration::from_millis(500));
    let side_clip = side.stop_across_outage(&s, 15.0, SIZE);
    let front_clip = front.stop(&s, 15.0, SIZE);
    let side_path = Path::new(side_clip["path"].as_str().unwrap());
    // (Its middle is the gap.)
    assert_colour_at(side_path, GREEN, &[0.0, 1.0]);
    assert_colour(Path::new(front_clip["path"].as_str().unwrap()), RED);
    // In the gap: NO SIGNAL, not the camera's last picture held.
    let got = clip_colour(side_path, away);
    assert!(
        !close(got, GREEN),
        "at {away:.2} s, in the gap: colour {got:?}"
    );
    assert_eq!(
        s.get("/clips?camera=side").json()["clips"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "one clip across the outage"
    );
}

#[test]
fn a_usb_bandwidth_error_shows_on_that_camera_only() {
    // ENOSPC from VIDIOC_STREAMON: the USB bus has no room for this camera.
    let Some(rig) = rig("streamon_errno=28\n") else {
        return;
    };
    let s = rig.serve("");
    let c = wait_cameras(&s, "side down, the others live", |c| {
        camera(c, "side")["state"] == "down"
            && camera(c, "front")["state"] == "live"
            && camera(c, "door")["state"] == "live"
    });
    let msg = camera(&c, "side")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("USB"), "{msg}");
    for other in ["front", "door"] {
        assert!(camera(&c, other)["message"].is_null(), "{other}: {c}");
    }
    let st = s.get("/cameras/side/status").json();
    assert_eq!(st["source"]["state"], "down");
    assert!(st["warning"].as_str().unwrap().contains("USB"), "{st}");
    assert!(
        s.get("/status").json()["warning"].is_null(),
        "front is fine"
    );
}

#[test]
fn a_network_camera_that_hangs_overflows_or_closes_is_reopened() {
    let Some(rig) = rig("") else { return };
    let s = rig.serve("");
    wait_cameras(&s, "three live cameras", all_live);
    for (mode, says) in [
        (Mode::Hang, "no frame for 3.0 s (stalled)"),
        (
            Mode::Oversize,
            "part of 9437184 bytes exceeds the 8 MiB cap",
        ),
        (Mode::Close, "the camera closed the stream"),
    ] {
        let mark = s.log_len();
        rig.net.set_mode(mode);
        let before = rig.net.connections();
        // Drop the current connection: the next one gets the fault.
        let kill = std::net::TcpStream::connect(rig.net.addr);
        drop(kill);
        let c = wait_cameras(&s, &format!("door down ({mode:?})"), |c| {
            camera(c, "door")["state"] == "down"
        });
        assert_eq!(camera(&c, "front")["state"], "live", "{mode:?}: {c}");
        // The exact reason, in /cameras and in what was logged since the
        // fault began (every start logs "connections capped at …").
        let message = camera(&c, "door")["message"].as_str().unwrap_or_default();
        assert!(message.ends_with(says), "{mode:?}: {c}");
        s.wait_log_since(mark, &format!("source down: {message}"), WAIT);
        rig.net.set_mode(Mode::Stream);
        wait_cameras(&s, &format!("door back after {mode:?}"), |c| {
            camera(c, "door")["state"] == "live"
        });
        assert!(rig.net.connections() > before + 1, "reconnected");
    }
    assert!(
        !s.log().contains("s3cret"),
        "the password leaked into the log"
    );
}

#[test]
fn a_second_process_on_the_same_clips_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    let first = Server::start_in(
        &clips,
        &[
            "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
        ],
    );
    let out = common::command()
        .args(["--port", "0", "--source", "test", "--clips-dir"])
        .arg(&clips)
        .output_within(Duration::from_secs(60))
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by process"), "{err}");
    // The pid named is the first server's (under an emulator, qemu's, the same).
    assert!(err.contains(&format!("process {}", first.pid())), "{err}");
    assert_eq!(first.get("/healthz").status, 200, "the first one goes on");
}

#[test]
fn the_library_pages_filters_and_deletes_but_never_a_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    let config = tmp.path().join("vr.toml");
    std::fs::write(
        &config,
        "width = 320\nheight = 240\nfps = 15\n\
         [[camera]]\nid = \"a\"\nsource = \"test\"\n\n[[camera]]\nid = \"b\"\nsource = \"test\"\n",
    )
    .unwrap();
    let s = Server::start_in(&clips, &["--config", config.to_str().unwrap()]);
    wait_cameras(&s, "two test cameras", |c| {
        c["cameras"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["fps"].as_f64() > Some(5.0))
    });
    // b records all along; a makes five short clips meanwhile.
    assert_eq!(s.post("/cameras/b/start", "").status, 200);
    let mut ids = Vec::new();
    for _ in 0..5 {
        assert_eq!(s.post("/cameras/a/start", "").status, 200);
        s.wait_status(WAIT, "a recording", |_| {
            s.get("/cameras/a/status").json()["recorder"]["frames"].as_u64() >= Some(3)
        });
        let r = s.post("/cameras/a/stop", "");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    // Paging, newest first.
    let page = |v: &serde_json::Value| -> Vec<String> {
        v["clips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let p1 = s.get("/clips?limit=2").json();
    assert_eq!(page(&p1), [ids[4].clone(), ids[3].clone()], "{p1}");
    let next = p1["next_before"].as_str().unwrap();
    let p2 = s.get(&format!("/clips?limit=2&before={next}")).json();
    assert_eq!(page(&p2), [ids[2].clone(), ids[1].clone()], "{p2}");
    assert!(
        s.get("/clips?camera=b").json()["clips"]
            .as_array()
            .unwrap()
            .is_empty(),
        "b is still recording"
    );
    assert_eq!(s.get("/clips?camera=nope").status, 404);
    assert_eq!(s.get("/clips?limit=0").status, 422);
    assert_eq!(s.get("/clips?before=..%2F").status, 400);
    // Delete: the clip and its listing go; twice is 404.
    let r = s.call("DELETE", &format!("/clips/{}", ids[0]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get(&format!("/clips/{}.mp4", ids[0])).status, 404);
    assert_eq!(s.call("DELETE", &format!("/clips/{}", ids[0])).status, 404);
    // The recording in progress has no clip to delete.
    let b = s.get("/cameras/b/status").json()["recording_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.call("DELETE", &format!("/clips/{b}")).status, 404);
    assert!(clips.join("b").join(format!("{b}.mp4.part")).exists());
    let r = s.post("/cameras/b/stop", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let b_clip = r.json();
    assert!(b_clip["duration_sec"].as_f64() > Some(1.0), "{b_clip}");
    assert_eq!(s.get("/cameras/b/last").status, 200);
}

#[test]
fn retention_spans_cameras_and_never_takes_a_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    // Camera a's old clips, 400 KB each: 1.2 MB, over a 1 MiB budget.
    std::fs::create_dir_all(clips.join("a")).unwrap();
    let old = [
        "a-20200101-000000",
        "a-20200101-000001",
        "a-20200101-000002",
    ];
    for id in old {
        std::fs::write(
            clips.join("a").join(format!("{id}.mp4")),
            vec![0u8; 400_000],
        )
        .unwrap();
    }
    let config = tmp.path().join("vr.toml");
    std::fs::write(
        &config,
        "width = 640\nheight = 360\nfps = 15\nclips_max_mb = 1\nclips_min_free_mb = 0\n\
         [[camera]]\nid = \"a\"\nsource = \"test\"\n\n\
         [[camera]]\nid = \"b\"\nsource = \"test\"\nbitrate_kbps = 4000\n",
    )
    .unwrap();
    let s = Server::start_in(&clips, &["--config", config.to_str().unwrap()]);
    // At start the oldest went, to fit the budget.
    let left = common::files(&clips.join("a"));
    assert_eq!(
        left,
        [format!("{}.mp4", old[1]), format!("{}.mp4", old[2])],
        "{}",
        s.log()
    );
    wait_cameras(&s, "b live", |c| camera(c, "b")["fps"].as_f64() > Some(5.0));
    // b records until its growing .part pushes the total over the budget:
    // then a's older clip goes, never b's recording, never a's newest.
    assert_eq!(s.post("/cameras/b/start", "").status, 200);
    let t0 = Instant::now();
    while clips.join("a").join(format!("{}.mp4", old[1])).exists() {
        assert!(t0.elapsed() < WAIT, "retention never ran: {}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        clips.join("a").join(format!("{}.mp4", old[2])).exists(),
        "a's newest kept"
    );
    let r = s.post("/cameras/b/stop", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let clip = r.json();
    let path = PathBuf::from(clip["path"].as_str().unwrap());
    let p = common::own_probe(&path);
    assert_eq!(p["frames"], clip["frames"], "b's clip whole: {p}");
    assert!(
        s.log().contains(&format!("deleted oldest clip {}", old[1])),
        "{}",
        s.log()
    );
}
