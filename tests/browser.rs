//! The web page in a real browser: Debian's headless Chromium driven by
//! playwright-core runs the scripts in `tests/browser/` against the real
//! binary: `ui.mjs` (live frames, test banner, Start, REC and a growing
//! elapsed time, Stop, the last clip playing, an API error shown, the phone
//! layout, no console errors) and `signal.mjs` (NO SIGNAL and back).
//! Debian's Firefox ESR, driven by puppeteer-core, runs `firefox.mjs` (the
//! live preview, and a recorded clip playing). `cameras.mjs` (two cameras
//! recording at once from their tiles, the clip library) runs in both.
//! `rtsp.mjs` (an RTSP camera's H.264 through MSE, across an outage) runs
//! in both, and so do `tiles.mjs` (eight cameras on one page: every tile
//! live over its WebSocket and the page's own requests still answered) and
//! `fallback.mjs` (H.264 and H.265 tiles where the browser cannot play them)
//! and `uploads.mjs` (the library's upload badges live on an open page).
//!
//! The screenshot goes to `$CARGO_TARGET_TMPDIR/screenshot.png`; with
//! `UPDATE_SCREENSHOT=1` it also replaces `docs/screenshot.png` (the one in
//! the README), so ordinary test runs leave the tree clean.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{RunWithin, Server, have_tool, make_mjpeg, wait_timeout};

/// The script has its own 180 s guard; this one catches a hung node.
const NODE_TIMEOUT: Duration = Duration::from_secs(240);

fn require_tools() -> bool {
    std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Installs playwright-core and puppeteer-core from the lock file when
/// either is missing. Returns
/// false (skip) when that cannot be done outside CI.
fn ensure_node_modules(dir: &Path) -> bool {
    if ["playwright-core", "puppeteer-core"].iter().all(|m| {
        dir.join("node_modules")
            .join(m)
            .join("package.json")
            .exists()
    }) {
        return true;
    }
    if !have_tool("npm") {
        return false;
    }
    eprintln!(
        "installing the browser drivers: npm ci in {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .status_within(common::CHILD_TIMEOUT);
    match status {
        Ok(s) if s.success() => true,
        other => {
            let why = format!(
                "`npm ci` in {} failed ({other:?}); run it by hand to install the browser drivers",
                dir.display()
            );
            if require_tools() {
                panic!("{why} (CI_REQUIRE_TOOLS=1)");
            }
            eprintln!("SKIP: {why}");
            false
        }
    }
}

/// One browser at a time: two Chromiums on a 2-core machine would only
/// slow each other, and `npm ci` must not run twice at once.
static BROWSER: Mutex<()> = Mutex::new(());

/// Checks the tools, installs the drivers when needed; None = skip.
fn setup() -> Option<(MutexGuard<'static, ()>, PathBuf)> {
    setup_for("chromium")
}

fn setup_for(browser: &str) -> Option<(MutexGuard<'static, ()>, PathBuf)> {
    let guard = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    if !have_tool(browser) || !have_tool("node") {
        return None;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    ensure_node_modules(&dir).then_some((guard, dir))
}

/// Runs `node SCRIPT http://ADDR ARGS...`, prints its output, and fails the
/// test with the output and the server's log unless it exits 0 with PASS.
fn run_script(dir: &Path, script: &str, server: &Server, args: &[&Path]) {
    run_script_with(dir, script, server, args, &[])
}

/// `run_script` with environment variables for the script.
fn run_script_with(
    dir: &Path,
    script: &str,
    server: &Server,
    args: &[&Path],
    env: &[(&str, &str)],
) {
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let stdout_path = out_dir.join(format!("{script}.stdout.txt"));
    let stderr_path = out_dir.join(format!("{script}.stderr.txt"));
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .arg(format!("http://{}", server.addr))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("browser stdout file"))
        .stderr(File::create(&stderr_path).expect("browser stderr file"))
        .spawn()
        .expect("run node");
    let status = wait_timeout(&mut child, NODE_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let took = started.elapsed();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    println!("{stdout}{stderr}{script} took {:.1} s", took.as_secs_f64());
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "{script} failed ({s}):\n{stdout}{stderr}\nserver log:\n{}",
            server.log()
        ),
        None => panic!(
            "{script} hung for {NODE_TIMEOUT:?}:\n{stdout}{stderr}\nserver log:\n{}",
            server.log()
        ),
    }
    assert!(
        stdout.contains("PASS"),
        "{script} exited 0 without PASS:\n{stdout}{stderr}"
    );
}

/// The whole visit: live preview, Start, REC, Stop, the clip plays, errors
/// shown, phone layout; and the README's screenshot.
#[test]
fn web_page_in_headless_chromium() {
    let Some((_guard, dir)) = setup() else {
        return;
    };
    let server = Server::start(&[
        "--source", "test", "--width", "640", "--height", "360", "--fps", "15",
    ]);
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    run_script(&dir, "ui.mjs", &server, &[&screenshot]);

    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "screenshot {} is not a real PNG ({} bytes)",
        screenshot.display(),
        png.len()
    );
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).expect("create docs/");
        std::fs::copy(&screenshot, docs.join("screenshot.png"))
            .expect("copy to docs/screenshot.png");
        println!("updated docs/screenshot.png");
    }
}

/// A camera outage as the page shows it: an MJPEG file source whose file
/// goes away (NO SIGNAL) and comes back (LIVE), on one /video connection.
#[test]
fn web_page_through_no_signal() {
    if !have_tool("ffmpeg") {
        return;
    }
    let Some((_guard, dir)) = setup() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = make_mjpeg(tmp.path(), 320, 240, 10, 10);
    let server = Server::start(&[
        "--source",
        file.to_str().expect("utf-8 path"),
        "--fps",
        "10",
    ]);
    run_script(&dir, "signal.mjs", &server, &[&file]);
}

/// Signing in with the login form on a server that needs credentials, as
/// the admin and as the viewer (who sees no Start or Delete, and downloads
/// the clip recorded here first).
#[test]
fn web_page_login_and_logout() {
    let Some((_guard, dir)) = setup() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let (password, viewer) = ("browser-Test-pass-1", "browser-Viewer-pass-2");
    let server = Server::start_env(
        &tmp.path().join("clips"),
        &[
            "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
        ],
        &[("VR_PASSWORD", password), ("VR_VIEWER_PASSWORD", viewer)],
    );
    let auth = common::creds::basic("admin", password);
    let h = [("Authorization", auth.as_str())];
    let call = |method, path| common::request(server.addr, method, path, &h, b"");
    assert_eq!(call("POST", "/start").status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while call("GET", "/status").json()["recorder"]["frames"].as_u64() < Some(3) {
        assert!(Instant::now() < deadline, "no frames recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(call("POST", "/stop").status, 200);
    let (pw, vpw) = (PathBuf::from(password), PathBuf::from(viewer));
    run_script(&dir, "login.mjs", &server, &[&pw, &vpw]);
}

/// The live preview and a recorded clip in Firefox: Chromium is not the
/// only browser the clips must play in.
#[test]
fn web_page_and_clip_in_headless_firefox() {
    let Some((_guard, dir)) = setup_for("firefox-esr") else {
        return;
    };
    let server = Server::start(&[
        "--source", "test", "--width", "640", "--height", "360", "--fps", "15",
    ]);
    run_script(&dir, "firefox.mjs", &server, &[]);
}

/// A server with two test cameras, `a` and `b`, for `cameras.mjs`.
fn two_cameras() -> Server {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = tmp.path().join("vr.toml");
    std::fs::write(
        &config,
        "width = 320\nheight = 240\nfps = 15\n\
         [[camera]]\nid = \"a\"\nsource = \"test\"\n\n[[camera]]\nid = \"b\"\nsource = \"test\"\n",
    )
    .expect("write config");
    let mut s = Server::start_in(
        &tmp.path().join("clips"),
        &["--config", config.to_str().expect("utf-8 path")],
    );
    s.keep(tmp);
    s
}

/// Two cameras recording at once from their tiles, and the clip library
/// (thumbnails, filter, playing, delete), in Chromium; with
/// `UPDATE_SCREENSHOT=1` its picture replaces `docs/cameras.png`.
#[test]
fn two_cameras_and_the_library_in_headless_chromium() {
    let Some((_guard, dir)) = setup() else {
        return;
    };
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cameras.png");
    let _ = std::fs::remove_file(&shot);
    let env = [("SCREENSHOT", shot.to_str().expect("utf-8 path"))];
    run_script_with(&dir, "cameras.mjs", &two_cameras(), &[], &env);
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if std::env::var("UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::copy(&shot, docs.join("cameras.png")).expect("copy to docs/cameras.png");
        println!("updated docs/cameras.png");
    }
}

/// The same in Firefox.
#[test]
fn two_cameras_and_the_library_in_headless_firefox() {
    let Some((_guard, dir)) = setup_for("firefox-esr") else {
        return;
    };
    let server = two_cameras();
    run_script_with(&dir, "cameras.mjs", &server, &[], &[("BROWSER", "firefox")]);
}

/// Eight cameras on one page (`tiles.mjs`): seven test sources, each of
/// another width so that a tile showing the wrong camera is seen, and an
/// RTSP camera, which goes away and comes back; names as long as people
/// give them (one was cut at 1,280 px).
fn eight_cameras(dir: &Path, browser: &str) {
    let Some(cam) = common::rtsp::RtspCamera::start(common::rtsp::RtspOptions {
        width: 336,
        height: 192,
        fps: 15,
        key_int: 15,
        bitrate_kbps: 300,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut config = String::from("fps = 10\nstall_timeout_sec = 1\n");
    for i in 0..7 {
        let w = 192 + 16 * i;
        config.push_str(&format!(
            "[[camera]]\nid = \"garden-{i}\"\nsource = \"test\"\nwidth = {w}\nheight = 144\n\n"
        ));
    }
    config.push_str(&format!(
        "[[camera]]\nid = \"ustreamer-door\"\nsource = \"{}\"\n",
        cam.url()
    ));
    let path = tmp.path().join("vr.toml");
    std::fs::write(&path, config).expect("write config");
    let mut server = Server::start_in(
        &tmp.path().join("clips"),
        &[
            "--config",
            path.to_str().expect("utf-8 path"),
            "--clips-min-free-mb",
            "0",
        ],
    );
    let outage = tempfile::tempdir().unwrap();
    let control = outage_on_files(cam, outage.path().to_path_buf());
    let out = outage.path().to_str().unwrap();
    run_script_with(
        dir,
        "tiles.mjs",
        &server,
        &[],
        &[("OUTAGE_DIR", out), ("BROWSER", browser)],
    );
    let _cam = control.join().expect("the outage thread");
    // The tiles decoded nothing on the server (the RTSP tile played its
    // live.mp4, not an MJPEG view).
    let st = server.get("/cameras/ustreamer-door/status").json();
    assert_eq!(st["source"]["decoded_frames"], 0, "{st:#}");
    server.keep(tmp);
}

#[test]
fn eight_cameras_on_one_page_in_headless_chromium() {
    if let Some((_guard, dir)) = setup() {
        eight_cameras(&dir, "chrome");
    }
}

#[test]
fn eight_cameras_on_one_page_in_headless_firefox() {
    if let Some((_guard, dir)) = setup_for("firefox-esr") {
        eight_cameras(&dir, "firefox");
    }
}

/// Video a browser cannot play (`fallback.mjs`): an H.264 and an H.265
/// RTSP camera as tiles, as the browser is and as one without the codecs.
fn fallback(dir: &Path, browser: &str) {
    let small = |codec| common::rtsp::RtspOptions {
        codec,
        width: 320,
        height: 180,
        fps: 10,
        key_int: 10,
        bitrate_kbps: 300,
        ..Default::default()
    };
    let Some(h264) = common::rtsp::RtspCamera::start(small("h264")) else {
        return;
    };
    let Some(h265) = common::rtsp::RtspCamera::start(small("h265")) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "width = 320\nheight = 240\nfps = 10\n\
         [[camera]]\nid = \"lobby\"\nsource = \"test\"\n\n\
         [[camera]]\nid = \"h264\"\nsource = \"{}\"\n\n\
         [[camera]]\nid = \"h265\"\nsource = \"{}\"\n",
        h264.url(),
        h265.url()
    );
    let path = tmp.path().join("vr.toml");
    std::fs::write(&path, config).expect("write config");
    let mut server = Server::start_in(
        &tmp.path().join("clips"),
        &["--config", path.to_str().expect("utf-8 path")],
    );
    run_script_with(dir, "fallback.mjs", &server, &[], &[("BROWSER", browser)]);
    // The MJPEG fallback was the server's decoding of the H.264 camera; the
    // H.265 one was never decoded.
    let h = server.get("/cameras/h264/status").json();
    assert!(h["source"]["decoded_frames"].as_u64() > Some(0), "{h:#}");
    let h = server.get("/cameras/h265/status").json();
    assert_eq!(h["source"]["decoded_frames"], 0, "{h:#}");
    server.keep(tmp);
}

#[test]
fn video_a_browser_cannot_play_in_headless_chromium() {
    if let Some((_guard, dir)) = setup() {
        fallback(&dir, "chrome");
    }
}

#[test]
fn video_a_browser_cannot_play_in_headless_firefox() {
    if let Some((_guard, dir)) = setup_for("firefox-esr") {
        fallback(&dir, "firefox");
    }
}

/// The library's upload badges on an open page (`uploads.mjs`): a bucket
/// missing at first, created when the script asks.
fn upload_badges(dir: &Path, browser: &str) {
    let Some(s3) = common::s3::S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let server = common::s3::recorder::recorder(
        &tmp.path().join("clips"),
        &s3.endpoint(),
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIATEST"),
            ("AWS_SECRET_ACCESS_KEY", "Zq9-s3-secret"),
        ],
    );
    let control = tempfile::tempdir().unwrap();
    let (path, addr) = (control.path().to_path_buf(), server.addr);
    let maker = std::thread::spawn(move || {
        let deadline = Instant::now() + NODE_TIMEOUT;
        while !path.join("bucket").exists() {
            if Instant::now() > deadline {
                return s3;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        s3.create_bucket(common::s3::recorder::BUCKET);
        // Tried now rather than after the backoff, as the library's owner
        // would from the API.
        let clips = common::request(addr, "GET", "/clips", &[], b"").json();
        let id = clips["clips"][0]["id"].as_str().unwrap().to_string();
        let r = common::request(addr, "POST", &format!("/clips/{id}/upload"), &[], b"");
        assert_eq!(r.status, 202, "{}", r.text());
        s3
    });
    let out = control.path().to_str().unwrap();
    run_script_with(
        dir,
        "uploads.mjs",
        &server,
        &[],
        &[("CONTROL_DIR", out), ("BROWSER", browser)],
    );
    let _s3 = maker.join().expect("the bucket maker");
}

#[test]
fn upload_badges_on_an_open_page_in_headless_chromium() {
    if let Some((_guard, dir)) = setup() {
        upload_badges(&dir, "chrome");
    }
}

#[test]
fn upload_badges_on_an_open_page_in_headless_firefox() {
    if let Some((_guard, dir)) = setup_for("firefox-esr") {
        upload_badges(&dir, "firefox");
    }
}

/// Stops the camera when `dir/stop` appears and starts it again when
/// `dir/start` does. Gives the camera back when joined.
fn outage_on_files(
    mut cam: common::rtsp::RtspCamera,
    dir: PathBuf,
) -> std::thread::JoinHandle<common::rtsp::RtspCamera> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + NODE_TIMEOUT;
        let wait = |name: &str| {
            while !dir.join(name).exists() {
                if Instant::now() > deadline {
                    return false; // the script failed before; it says why
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            true
        };
        if !wait("stop") {
            return cam;
        }
        let opts = cam.options().clone();
        cam.stop();
        if wait("start") {
            cam.restart(opts);
        }
        cam
    })
}

/// An RTSP camera (H.264) in the large view: its live.mp4 through MSE in a
/// <video>, playing at the camera's size near the live edge (`rtsp.mjs`);
/// the camera away and back, the same response plays on (the browser took
/// the keepalive boxes sent meanwhile); and the server decoded nothing for
/// it (no MJPEG view, no snapshot).
#[test]
fn rtsp_camera_live_through_mse_in_headless_chromium() {
    if let Some((_guard, dir)) = setup() {
        rtsp_live(&dir, "chrome");
    }
}

/// The same in Firefox ESR (H.264 through its libavcodec).
#[test]
fn rtsp_camera_live_through_mse_in_headless_firefox() {
    if let Some((_guard, dir)) = setup_for("firefox-esr") {
        rtsp_live(&dir, "firefox");
    }
}

fn rtsp_live(dir: &Path, browser: &str) {
    let Some(cam) = common::rtsp::RtspCamera::start(common::rtsp::RtspOptions::default()) else {
        return;
    };
    let url = cam.url();
    let server = Server::start(&["--source", &url, "--stall-timeout-sec", "1"]);
    let outage = tempfile::tempdir().unwrap();
    let control = outage_on_request(cam, server.addr, outage.path().to_path_buf());
    let out = outage.path().to_str().unwrap();
    let env = [("OUTAGE_DIR", out), ("BROWSER", browser)];
    run_script_with(dir, "rtsp.mjs", &server, &[], &env);
    let _cam = control.join().expect("the outage thread");
    let st = server.get("/status").json();
    assert_eq!(
        st["source"]["decoded_frames"],
        0,
        "the page had the server decode: {st:#}\nserver log:\n{}",
        server.log()
    );
}

/// When `dir/stop` appears: stops the camera, reads the server's live.mp4
/// until it has sent three keepalive `free` boxes for the camera away,
/// starts the camera again and writes `dir/back` once it is live. Gives the
/// camera back (running) when joined.
fn outage_on_request(
    mut cam: common::rtsp::RtspCamera,
    addr: std::net::SocketAddr,
    dir: PathBuf,
) -> std::thread::JoinHandle<common::rtsp::RtspCamera> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + NODE_TIMEOUT;
        while !dir.join("stop").exists() {
            if Instant::now() > deadline {
                return cam; // the script failed before; it says why
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut live = common::LiveMp4::open(addr, "/cameras/cam/live.mp4");
        cam.stop();
        let mut frees = 0;
        while frees < 3 {
            frees += usize::from(live.next_box().expect("live.mp4 during the outage") == "free");
        }
        cam.restart(common::rtsp::RtspOptions::default());
        let back = Instant::now() + Duration::from_secs(30);
        while common::request(addr, "GET", "/status", &[], b"").json()["source"]["state"] != "live"
        {
            assert!(Instant::now() < back, "the camera is not live again");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::write(dir.join("back"), "").unwrap();
        cam
    })
}
