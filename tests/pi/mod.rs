//! Shared by the Pi deployment tests (deploy, image_build, flash): runs the
//! repository's own `make` targets the way a user does.
#![allow(dead_code)]

pub mod disk_image;
pub mod stand_in;

use crate::common::RunWithin;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Settings the Pi targets read: an outer `make` or the caller's shell must
/// not leak any into a test; each test passes what it means.
const PI_VARS: &[&str] = &[
    "PI",
    "SSH_PORT",
    "SSH_OPTS",
    "DESTDIR",
    "PREFIX",
    "SYSTEMCTL",
    "JOURNALCTL",
    "SYSUSERS",
    "CONFIG_GROUP",
    "SUDO",
    "PI_PORT",
    "DEPLOY_WAIT",
    "CONFIG",
    "HOST_VR",
    "BASE",
    "OUT",
    "SSH",
    "IMAGE",
    "DEV",
    "YES",
    "SYSFS",
    "MOUNTS",
    "SWAPS",
    "PASSWORD",
    "PASSWORD_FILE",
    "PASSWORD_HASH",
    "LOG_LINES",
    "BIN",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The x86 build of this test run: it hashes passwords, and is the "Pi"
/// binary for deploy tests (they deploy to this machine).
pub fn host_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_video-recorder"))
}

/// `make TARGET VAR=value...` in the repository, with `stdin` fed to it.
pub fn make(target: &str, vars: &[(&str, String)], stdin: &str) -> Output {
    let mut cmd = Command::new("make");
    cmd.current_dir(repo())
        .args(["--no-print-directory", target])
        .args(vars.iter().map(|(k, v)| format!("{k}={v}")));
    for v in PI_VARS {
        cmd.env_remove(v);
    }
    cmd.fed_output_within(stdin.as_bytes(), crate::common::LONG_CHILD_TIMEOUT)
        .expect("run make")
}

/// stdout and stderr of a run, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn write_exec(path: &Path, script: &str) {
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// A file that starts like an ELF binary for `e_machine` (0xb7 aarch64,
/// 0x28 arm, 0xf3 RISC-V): enough for the scripts' architecture checks.
pub fn fake_elf(path: &Path, e_machine: u8, class64: bool) {
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if class64 { 2 } else { 1 };
    b[5] = 1;
    b[6] = 1;
    b[16] = 2;
    b[18] = e_machine;
    b.extend_from_slice(b"not really a program, but small");
    std::fs::write(path, b).unwrap();
}

/// Runs a command that must succeed; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output_within(crate::common::LONG_CHILD_TIMEOUT)
        .unwrap_or_else(|e| panic!("{cmd:?}: cannot run: {e}"));
    assert!(out.status.success(), "{cmd:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
