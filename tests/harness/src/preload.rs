//! Test fixtures loaded into the server with `LD_PRELOAD` (the failing SD
//! card, the stand-in camera): built from C for the binary under test,
//! cross-built when it runs under an emulator.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::RunWithin;

/// The compiler for the binary under test, and whether it runs emulated.
fn target() -> (&'static str, bool) {
    let runner = std::env::var("VRTEST_RUNNER").unwrap_or_default();
    if runner.contains("aarch64") {
        ("aarch64-linux-gnu-gcc", true)
    } else if runner.contains("arm") {
        ("arm-linux-gnueabihf-gcc", true)
    } else {
        ("cc", false)
    }
}

/// Builds `tests/<src>` into `out`; `None` (after saying why) without a
/// compiler for the target.
pub fn build(src: &str, out: &Path) -> Option<PathBuf> {
    let (cc, _) = target();
    if !super::have_tool(cc) {
        super::skip(&format!("no {cc} to build tests/{src}"));
        return None;
    }
    let src = super::tests_dir().join(src);
    let done = Command::new(cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(out)
        .arg(&src)
        .arg("-ldl")
        .output_within(super::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        done.status.success(),
        "building {}: {}",
        src.display(),
        String::from_utf8_lossy(&done.stderr)
    );
    Some(out.to_path_buf())
}

/// The variable that loads `lib` into the server, and its value: through
/// the emulator into the guest, never into the emulator itself.
pub fn env(lib: &Path) -> (&'static str, String) {
    if target().1 {
        ("QEMU_SET_ENV", format!("LD_PRELOAD={}", lib.display()))
    } else {
        ("LD_PRELOAD", lib.display().to_string())
    }
}
