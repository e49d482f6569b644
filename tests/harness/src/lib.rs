//! The integration tests' harness, built once as a library for every test
//! crate (each has a one-line `tests/common/mod.rs` re-exporting it): runs
//! the real binary on a free port (`server`), speaks HTTP to it with a small
//! client of our own (`client`), checks clips (`media`), bounds child
//! processes (`process`), and brings the stand-ins: a USB webcam
//! (`fakecam`), a network camera (`mjpeg_server`) and one that attacks
//! (`hostile_camera`), RTSP cameras (`rtsp`: GStreamer's; `rtsp_cheap`: our
//! own, with cheap cameras' habits; `rtsp_hostile`), preloaded fixtures
//! (`preload`), credentials (`creds`).

pub mod client;
pub mod creds;
pub mod fakecam;
pub mod hostile_camera;
pub mod media;
pub mod mjpeg_server;
pub mod preload;
pub mod process;
pub mod rtsp;
pub mod rtsp_cheap;
pub mod rtsp_hostile;
pub mod s3;
pub mod server;

pub use client::*;
pub use media::*;
pub use process::*;
pub use server::*;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Where cargo put this test run's output: `target/<profile>`, from the
/// test executable's own path (`target/<profile>/deps/<test>-<hash>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory");
    deps.parent().expect("profile directory").to_path_buf()
}

/// Scratch space for built fixtures (cargo's `CARGO_TARGET_TMPDIR`).
pub fn tmp_dir() -> PathBuf {
    let dir = target_dir().parent().expect("target directory").join("tmp");
    std::fs::create_dir_all(&dir).expect("create target/tmp");
    dir
}

/// The `tests/` directory (C fixtures live there).
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Slow enough for the aarch64 binary under qemu-user.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The binary under test: `VRTEST_BIN` (e.g. the aarch64 build) or the
/// one cargo built beside the tests.
pub fn binary() -> PathBuf {
    std::env::var_os("VRTEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("video-recorder"))
}

/// A command running the binary, through `VRTEST_RUNNER` (e.g.
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu`) when set.
pub fn command() -> Command {
    let runner = std::env::var("VRTEST_RUNNER").unwrap_or_default();
    let mut parts = runner.split_whitespace();
    let mut cmd = match parts.next() {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.args(parts);
            c.arg(binary());
            c
        }
        None => Command::new(binary()),
    };
    // Our own settings come only from what each test passes.
    for (k, _) in std::env::vars() {
        if k.starts_with("VR_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Skips a test that cannot run on this machine, saying why; under
/// `CI_REQUIRE_TOOLS=1` (CI) a skip is a failure, so none passes as green.
pub fn skip(why: &str) {
    if std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("cannot run here (CI_REQUIRE_TOOLS=1): {why}");
    }
    eprintln!("SKIP: {why}");
}

/// True when the binary runs under an emulator (qemu-user), where timing
/// bounds must be loose.
pub fn emulated() -> bool {
    std::env::var_os("VRTEST_RUNNER").is_some_and(|r| !r.is_empty())
}

/// True when a system tool is present. Missing: skip with a reason on a
/// laptop, but fail when `CI_REQUIRE_TOOLS=1` (CI sets it), so no skip passes as green.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output_within(CHILD_TIMEOUT)
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{tool} is required (CI_REQUIRE_TOOLS=1) but not installed");
        }
        eprintln!("SKIP: {tool} not installed");
    }
    found
}
