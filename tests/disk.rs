//! A full disk, for real: the clips directory on a small tmpfs mounted by
//! the test (root only), filled while recording. The recording must end by
//! itself with a playable clip, say why in `/status` and the next `/stop`,
//! refuse a new `/start` with 507 leaving nothing behind, and record again
//! once there is room.

mod common;

use common::RunWithin;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, own_probe};

/// A tmpfs of `mib` MiB, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) where mounting is not allowed; a
    /// failure under `CI_REQUIRE_TOOLS=1`.
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output_within(common::CHILD_TIMEOUT);
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                if std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1") {
                    panic!("cannot mount a tmpfs (CI_REQUIRE_TOOLS=1): {why}");
                }
                eprintln!("SKIP: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file until the disk is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5a; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // The last partial block: byte by byte, so not one page is left.
    while f.write_all(&[0x5a]).is_ok() {}
    let _ = f.sync_all();
    path
}

fn files(dir: &Path) -> Vec<String> {
    common::files(dir)
}

/// The small test source, with clips in `clips` and `extra` settings.
fn server(clips: &Path, extra: &[&str]) -> Server {
    Server::start_in(clips, &[common::creds::SMALL, extra].concat())
}

#[test]
fn a_full_disk_ends_the_recording_with_a_playable_clip_and_says_why() {
    let Some(fs) = Tmpfs::mount(24) else { return };
    let clips = fs.path().join("clips");
    let s = server(&clips, &["--clips-min-free-mb", "0"]);
    s.wait_status(Duration::from_secs(30), "frames", |st| {
        st["source"]["frames"].as_u64() > Some(2)
    });
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(Duration::from_secs(30), "a durable second", |st| {
        st["recorder"]["frames"].as_u64() >= Some(20)
    });
    // The card fills up under the recording.
    let filler = fill(fs.path());
    let st = s.wait_status(Duration::from_secs(30), "the recording to stop", |st| {
        st["recording"] == false && st["stopped_early"].is_object()
    });
    let reason = st["stopped_early"]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("No space left") || reason.contains("nearly full"),
        "{reason}"
    );
    assert!(
        !reason.contains(".part") && !reason.contains(fs.path().to_str().unwrap()),
        "a server path for the client: {reason}"
    );
    // The next /stop answers with the clip and why it ended.
    let r = s.post("/stop", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let clip = r.json();
    assert_eq!(clip["stopped_early"].as_str(), Some(reason.as_str()));
    let path = PathBuf::from(clip["path"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        clip["size_bytes"].as_u64().unwrap()
    );
    let probe = own_probe(&path);
    assert_eq!(probe["frames"], clip["frames"], "{probe}");
    assert!(clip["frames"].as_u64().unwrap() >= 1, "{clip}");
    if common::have_tool("ffprobe") {
        let p = common::ffprobe(&path);
        assert_eq!(p["streams"][0]["codec_name"], "h264", "{p}");
    }
    assert!(s.get("/status").json()["stopped_early"].is_null());
    assert_eq!(s.post("/stop", "").status, 409, "collected once");
    assert_eq!(s.get("/last").status, 200);
    // Still full: /start is refused with 507 and leaves nothing behind.
    let before = files(&clips);
    let r = s.post("/start", "");
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("full"),
        "{}",
        r.text()
    );
    assert_eq!(files(&clips), before);
    // Room again: recording works.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64() >= Some(5)
    });
    let r = s.post("/stop", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["stopped_early"].is_null());
}

#[test]
fn a_floor_the_disk_cannot_meet_is_said_at_start_and_refuses_recording() {
    let Some(fs) = Tmpfs::mount(8) else { return };
    let clips = fs.path().join("clips");
    // The default floor, 512 MiB, on an 8 MiB disk.
    let s = server(&clips, &[]);
    s.wait_log("less than clips_min_free_mb", Duration::from_secs(10));
    let r = s.post("/start", "");
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("clips_min_free_mb")
    );
    assert_eq!(files(&clips), Vec::<String>::new());
}

/// The free-space floor end to end: when the disk fills up (here with a
/// file of someone else's), the oldest clips go first, the newest stays,
/// and with nothing left to delete a new recording is refused.
#[test]
fn the_free_space_floor_deletes_the_oldest_clips_then_refuses() {
    let Some(fs) = Tmpfs::mount(40) else { return };
    let clips = fs.path().join("clips");
    let s = server(&clips, &["--clips-min-free-mb", "20"]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        assert_eq!(s.post("/start", "").status, 200);
        s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
            st["recorder"]["frames"].as_u64() >= Some(3)
        });
        let r = s.post("/stop", "");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    let mp4s = |d: &Path| files(d).into_iter().filter(|f| f.ends_with(".mp4")).count();
    assert_eq!(mp4s(&clips), 3, "above the floor nothing goes");
    // 22 MiB of something else: 18 MiB free, under the 20 MiB floor.
    std::fs::write(fs.path().join("other"), vec![1u8; 22 << 20]).unwrap();
    let r = s.post("/start", "");
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("clips_min_free_mb"),
        "{}",
        r.text()
    );
    assert_eq!(
        files(&clips),
        vec![format!("{}.mp4", ids[2])],
        "the newest stays"
    );
    s.assert_deleted(&ids[..2]);
    assert_eq!(s.get("/last").status, 200);
}

/// Builds the failing-card fixture for the binary under test; its path and
/// the environment that loads it into the server.
fn failsync(dir: &Path) -> Option<(&'static str, String)> {
    let so = common::preload::build("fixtures/failsync.c", &dir.join("failsync.so"))?;
    Some(common::preload::env(&so))
}

#[test]
fn a_failing_fsync_ends_the_recording_and_keeps_what_was_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((var, preload)) = failsync(tmp.path()) else {
        return;
    };
    let args = [common::creds::SMALL, &["--clips-min-free-mb", "0"]].concat();
    // Once: the second second's fsync fails, later ones work. The clip is
    // finished at once, and says why it ended.
    let clips = tmp.path().join("once");
    let s = Server::start_env(&clips, &args, &[(var, &preload), ("FAILSYNC_AT", "2")]);
    assert_eq!(s.post("/start", "").status, 200);
    let st = s.wait_status(Duration::from_secs(30), "the recording to stop", |st| {
        st["stopped_early"].is_object()
    });
    let reason = st["stopped_early"]["reason"].as_str().unwrap();
    assert!(reason.contains("Input/output error"), "{st}");
    assert!(
        !reason.contains(".part") && !reason.contains(tmp.path().to_str().unwrap()),
        "a server path for the client: {reason}"
    );
    let r = s.post("/stop", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let clip = r.json();
    let path = PathBuf::from(clip["path"].as_str().unwrap());
    assert_eq!(own_probe(&path)["frames"], clip["frames"]);
    assert!(clip["frames"].as_u64().unwrap() >= 15, "{clip}");
    drop(s);
    // For good: the clip cannot be finished now; /stop says why, and the
    // next start recovers the second that was durable.
    let clips = tmp.path().join("always");
    let s = Server::start_env(
        &clips,
        &args,
        &[
            (var, &preload),
            ("FAILSYNC_AT", "2"),
            ("FAILSYNC_ALWAYS", "1"),
        ],
    );
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(Duration::from_secs(30), "the recording to stop", |st| {
        st["stopped_early"].is_object()
    });
    let r = s.post("/stop", "");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Input/output error")
    );
    let left = files(&clips);
    assert!(
        left.iter().any(|f| f.ends_with(".mp4.part"))
            && left.iter().any(|f| f.ends_with(".journal")),
        "{left:?}"
    );
    drop(s);
    let s = Server::start_in(&clips, &args);
    let last = s.get("/last");
    assert_eq!(last.status, 200, "nothing recovered: {}", s.log());
    let id = s.get("/status").json()["last_clip"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = own_probe(&clips.join(format!("{id}.mp4")));
    assert!(p["frames"].as_u64().unwrap() >= 10, "{p}");
}

/// The status comes from the errno of the call that failed: a card that
/// answers ENOSPC to the clip's fsync, for good, gives a `/stop` of 507 in
/// the disk's words (no path), where EIO above gives 500.
#[test]
fn a_full_card_at_fsync_is_507_from_the_errno() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((var, preload)) = failsync(tmp.path()) else {
        return;
    };
    let args = [common::creds::SMALL, &["--clips-min-free-mb", "0"]].concat();
    let clips = tmp.path().join("full");
    let env = [
        (var, preload.as_str()),
        ("FAILSYNC_AT", "2"),
        ("FAILSYNC_ALWAYS", "1"),
        ("FAILSYNC_ERRNO", "28"),
    ];
    let s = Server::start_env(&clips, &args, &env);
    assert_eq!(s.post("/start", "").status, 200);
    let st = s.wait_status(Duration::from_secs(30), "the recording to stop", |st| {
        st["stopped_early"].is_object()
    });
    let reason = st["stopped_early"]["reason"].as_str().unwrap();
    assert_eq!(reason, "the disk is full (No space left on device)", "{st}");
    let r = s.post("/stop", "");
    assert_eq!(r.status, 507, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("the disk is full (No space left on device)"),
        "{error}"
    );
    assert!(
        !error.contains(".part") && !error.contains(tmp.path().to_str().unwrap()),
        "a server path for the client: {error}"
    );
}
