//! The stand-in USB webcam (`tests/fakecam/fakecam.c`): builds the library
//! for the binary under test (cross-built when it runs under an emulator),
//! makes device nodes and `by-id` links under `/dev/shm`, and writes each
//! camera's settings. The server loads it with `LD_PRELOAD`.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::RunWithin;

/// The V4L2 character major: the library answers for nodes with it.
const V4L_MAJOR: u32 = 81;

pub struct FakeCam {
    dir: tempfile::TempDir,
    lib: PathBuf,
}

/// Builds the library once per test process.
fn library() -> Option<PathBuf> {
    static LIB: OnceLock<Option<PathBuf>> = OnceLock::new();
    LIB.get_or_init(|| {
        let out = super::tmp_dir().join(format!("fakecam-{}.so", std::process::id()));
        super::preload::build("fakecam/fakecam.c", &out)
    })
    .clone()
}

impl FakeCam {
    /// A fresh stand-in, or `None` (after saying why) where it cannot run.
    pub fn new() -> Option<FakeCam> {
        let lib = library()?;
        let dir = tempfile::Builder::new()
            .prefix("fakecam-")
            .tempdir_in("/dev/shm")
            .expect("temp dir under /dev/shm");
        let cam = FakeCam { dir, lib };
        // mknod needs root (or CAP_MKNOD); try once.
        let probe = cam.dir.path().join("probe");
        if mknod(&probe, 255).is_err() {
            super::skip("cannot make device nodes (mknod needs root)");
            return None;
        }
        std::fs::remove_file(probe).unwrap();
        Some(cam)
    }

    /// The directory the nodes live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Settings of the camera with this minor number (`key=value` lines,
    /// see fakecam.c), read at its next open.
    pub fn configure(&self, minor: u32, settings: &str) {
        let tmp = self.dir().join(format!(".{minor}.conf"));
        std::fs::write(&tmp, settings).unwrap();
        std::fs::rename(tmp, self.dir().join(format!("{minor}.conf"))).unwrap();
    }

    /// Plugs a camera in: node `name` (e.g. `video0`) for `minor`.
    pub fn plug(&self, name: &str, minor: u32) -> PathBuf {
        let node = self.dir().join(name);
        mknod(&node, minor).unwrap_or_else(|e| panic!("mknod {}: {e}", node.display()));
        node
    }

    /// Unplugs it: the node goes away, as udev removes it.
    pub fn unplug(&self, name: &str) {
        std::fs::remove_file(self.dir().join(name)).unwrap();
    }

    /// Points the stable name `v4l/by-id/<id>` at node `name`.
    pub fn by_id(&self, id: &str, name: &str) -> PathBuf {
        let dir = self.dir().join("v4l/by-id");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(id);
        let tmp = dir.join(format!(".{id}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(format!("../../{name}"), &tmp).unwrap();
        std::fs::rename(tmp, &link).unwrap();
        link
    }

    /// The environment that loads the stand-in into the server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("FAKECAM_DIR", self.dir().display().to_string()),
            super::preload::env(&self.lib),
        ];
        if std::env::var_os("FAKECAM_LOG").is_some() {
            env.push(("FAKECAM_LOG", "1".into()));
        }
        env
    }
}

/// A character node of the V4L2 major (never opened for real: the library
/// answers for it).
pub fn mknod(path: &Path, minor: u32) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mknod only reads it.
    let r = unsafe {
        libc::mknod(
            c.as_ptr(),
            libc::S_IFCHR | 0o660,
            libc::makedev(V4L_MAJOR, minor),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl FakeCam {
    /// The server, with the stand-in loaded, reading `source`.
    pub fn serve(&self, source: &Path, args: &[&str]) -> super::Server {
        let tmp = tempfile::tempdir().unwrap();
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let source = source.display().to_string();
        let args = [&["--source", source.as_str()], args].concat();
        let mut s = super::Server::start_env(&tmp.path().join("clips"), &args, &env);
        s.keep(tmp);
        s
    }
}

/// The JPEGs of an MJPEG file (SOI ... EOI), as the camera sends them.
pub fn jpegs(mjpeg: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(start) = super::find(&mjpeg[at..], &[0xFF, 0xD8]) {
        let start = at + start;
        let Some(end) = super::find(&mjpeg[start..], &[0xFF, 0xD9]) else {
            break;
        };
        out.push(mjpeg[start..start + end + 2].to_vec());
        at = start + end + 2;
    }
    out
}

/// A JPEG without its Huffman tables (DHT segments), as some cameras send.
pub fn without_dht(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = 2 + (usize::from(jpeg[i + 2]) << 8 | usize::from(jpeg[i + 3]));
        if marker == 0xDA {
            break;
        }
        if marker != 0xC4 {
            out.extend_from_slice(&jpeg[i..i + len]);
        }
        i += len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

/// An MJPEG file coded with the standard Huffman tables (the ones a camera
/// that leaves them out implies), `frames` long, and its JPEGs.
pub fn standard_mjpeg(dir: &Path, w: u32, h: u32, frames: u32) -> (PathBuf, Vec<Vec<u8>>) {
    let path = dir.join(format!("std-{w}x{h}.mjpeg"));
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate=30"))
        .args(["-frames:v", &frames.to_string()])
        .args(["-c:v", "mjpeg", "-q:v", "5", "-huffman", "default"])
        .args(["-f", "mjpeg"])
        .arg(&path)
        .output_within(super::CHILD_TIMEOUT)
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&path).unwrap();
    (path, jpegs(&data))
}

/// Whether ffmpeg decodes these JPEGs, one after the other, without a
/// complaint; its complaints otherwise.
pub fn ffmpeg_decodes(dir: &Path, parts: &[Vec<u8>]) -> Result<(), String> {
    let path = dir.join("parts.mjpeg");
    std::fs::write(&path, parts.concat()).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "mjpeg", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output_within(super::CHILD_TIMEOUT)
        .expect("run ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() && err.is_empty() {
        Ok(())
    } else {
        Err(err)
    }
}

// ---------- shared by the camera tests ----------

/// The stand-in with one camera, minor 0, playing a 640x360 file; the
/// camera's JPEGs. `None` where it cannot run (the reason is printed).
pub fn camera(extra: &str) -> Option<(FakeCam, Vec<Vec<u8>>)> {
    if !super::have_tool("ffmpeg") {
        super::skip("ffmpeg makes the camera's frames");
        return None;
    }
    let cam = FakeCam::new()?;
    let file = super::make_mjpeg(cam.dir(), 640, 360, 30, 60);
    let frames = jpegs(&std::fs::read(&file).unwrap());
    cam.configure(0, &settings(&file, extra));
    Some((cam, frames))
}

pub fn settings(file: &Path, extra: &str) -> String {
    format!(
        "frames={}\ncard=Fake C920\nsizes=640x360,1280x720\nrates=30,15\n{extra}",
        file.display()
    )
}

/// How long a camera that is back may take to be streaming again: 1 s, the
/// promise; more under an emulator, which runs the binary ~10x slower.
pub fn back_within() -> Duration {
    if super::emulated() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    }
}

/// Reads parts until one is a camera frame; how long that took.
pub fn until_camera_frame(
    c: &mut super::MjpegClient,
    frames: &[Vec<u8>],
    limit: Duration,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let p = c.next_part().expect("a part");
        if frames.contains(&p.jpeg) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < limit, "no camera frame within {limit:?}");
    }
}

/// Reads parts until one is not a camera frame (NO SIGNAL); that picture.
pub fn until_no_signal(c: &mut super::MjpegClient, frames: &[Vec<u8>]) -> Vec<u8> {
    let t0 = Instant::now();
    loop {
        let p = c.next_part().expect("a part").jpeg;
        if !frames.contains(&p) {
            return p;
        }
        assert!(
            t0.elapsed() < super::START_TIMEOUT,
            "never showed NO SIGNAL"
        );
    }
}

pub fn clip_path(clip: &serde_json::Value) -> PathBuf {
    PathBuf::from(clip["path"].as_str().unwrap())
}

/// Both readers: H.264 of the camera's size, as long as the clip says.
pub fn check_clip(clip: &serde_json::Value, size: (u64, u64)) {
    let path = clip_path(clip);
    let p = super::own_probe(&path);
    assert_eq!(p["frames"], clip["frames"], "{p}");
    let f = super::ffprobe(&path);
    let v = &f["streams"][0];
    assert_eq!(v["codec_name"], "h264", "{f}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(size.0), Some(size.1))
    );
    let d: f64 = f["format"]["duration"].as_str().unwrap().parse().unwrap();
    let said = clip["duration_sec"].as_f64().unwrap();
    assert!(
        (d - said).abs() < 0.05,
        "ffprobe {d} s, the server said {said} s"
    );
}

/// The least share of the frames a camera sent that a clip must hold: a
/// busy machine drops some at capture (never delivered, so never in the
/// clip), an emulator many.
fn min_share() -> f64 {
    if super::emulated() { 0.5 } else { 0.8 }
}

/// A recording in progress, timed from outside.
pub struct Recording {
    start_sent: Instant,
    start_answered: Instant,
    /// `""` for the original routes, `/cameras/<id>` for a camera's.
    base: String,
}

impl Recording {
    pub fn start(s: &super::Server) -> Recording {
        Recording::start_on(s, "")
    }

    /// The same on the routes under `base` (`/cameras/front`).
    pub fn start_on(s: &super::Server, base: &str) -> Recording {
        let start_sent = Instant::now();
        let r = s.post(&format!("{base}/start"), "");
        assert_eq!(r.status, 200, "{base}/start: {}", r.text());
        Recording {
            start_sent,
            start_answered: Instant::now(),
            base: base.to_string(),
        }
    }

    /// Stops it; the clip, checked to last the wall time between the
    /// requests (less up to one frame interval of the camera at `fps`: the
    /// clip runs from the first frame after /start to /stop), to have
    /// skipped none of the frames it was given, and to be playable.
    pub fn stop(self, s: &super::Server, fps: f64, size: (u64, u64)) -> serde_json::Value {
        self.finish(s, fps, size, true)
    }

    /// The same for a recording during which the camera was away for a
    /// while (NO SIGNAL, twice a second): its frames are not counted.
    pub fn stop_across_outage(
        self,
        s: &super::Server,
        fps: f64,
        size: (u64, u64),
    ) -> serde_json::Value {
        self.finish(s, fps, size, false)
    }

    fn finish(
        self,
        s: &super::Server,
        fps: f64,
        size: (u64, u64),
        count: bool,
    ) -> serde_json::Value {
        let gap = 1.0 / fps;
        let stop_sent = Instant::now();
        let r = s.post(&format!("{}/stop", self.base), "");
        let stop_answered = Instant::now();
        assert_eq!(r.status, 200, "{}", r.text());
        let clip = r.json();
        let d = clip["duration_sec"].as_f64().unwrap();
        let shortest = (stop_sent - self.start_answered).as_secs_f64() - gap - 0.01;
        let longest = (stop_answered - self.start_sent).as_secs_f64() + 0.01;
        assert!(
            (shortest..=longest).contains(&d),
            "clip {d} s, not within [{shortest}, {longest}]: {clip}"
        );
        println!("clip: {clip}");
        // Frames the recorder was given but had to skip (a capture time that
        // went back or stood still): none but by accident. A busy machine
        // makes the camera drop frames instead, which are never delivered:
        // the count of those in the clip is only checked loosely.
        let frames = clip["frames"].as_f64().unwrap();
        let skipped = clip["dropped_frames"].as_f64().unwrap();
        assert!(
            skipped <= 2.0 + 0.05 * frames,
            "{skipped} frames skipped of {frames}: {clip}\n{}",
            s.log()
        );
        assert!(
            !count || (frames >= min_share() * d * fps && frames <= d * fps * 1.1 + 1.0),
            "{frames} frames in {d} s from a {fps} fps camera: {clip}\n{}",
            s.log()
        );
        check_clip(&clip, size);
        clip
    }
}
