//! What goes onto the Pi (image/): the default config must be accepted by the
//! real binary's parser, and the systemd unit must pass `systemd-analyze`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Server;

fn image_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("image")
        .join(name)
}

fn shipped_config() -> toml::Table {
    let path = image_file("video-recorder.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// The binary starts with the shipped config and reports its settings as its
/// own. Only the address, clips dir and camera are overridden by flags (no
/// /dev/video0 here); the file is still read and validated in full first.
#[test]
fn shipped_config_is_accepted_by_the_binary() {
    let cfg = shipped_config();
    let path = image_file("video-recorder.toml");
    let s = Server::start(&["--config", path.to_str().unwrap(), "--source", "test"]);
    let st = s.wait_status(Duration::from_secs(30), "a first frame", |st| {
        st["source"]["frames"].as_u64() > Some(0)
    });
    assert_eq!(
        st["max_viewers"].as_i64(),
        cfg["max_viewers"].as_integer(),
        "max_viewers from the file: {st}"
    );
    assert_eq!(
        st["source"]["nominal_fps"].as_f64(),
        cfg["fps"].as_integer().map(|f| f as f64),
        "{st}"
    );
    assert_eq!(
        st["clips"]["min_free_bytes"].as_i64(),
        cfg["clips_min_free_mb"]
            .as_integer()
            .map(|mb| mb * 1024 * 1024),
        "{st}"
    );
    assert_eq!(
        st["clips"]["dir"].as_str(),
        s.clips.to_str(),
        "--clips-dir beats the file: {st}"
    );
    assert!(!s.log().contains("invalid setting"), "{}", s.log());
}

/// The Pi keeps its clips where the unit lets it write, and stays on
/// loopback until credentials exist.
#[test]
fn shipped_config_fits_the_unit() {
    let cfg = shipped_config();
    let clips = cfg["clips_dir"].as_str().expect("clips_dir is set");
    let unit = std::fs::read_to_string(image_file("video-recorder.service")).unwrap();
    let state_dir = unit
        .lines()
        .find_map(|l| l.strip_prefix("StateDirectory="))
        .expect("StateDirectory= in the unit");
    assert!(
        clips.starts_with(&format!("/var/lib/{state_dir}/")),
        "clips_dir {clips} must be under the unit's StateDirectory /var/lib/{state_dir}"
    );
    assert!(
        unit.contains("--config /etc/video-recorder/video-recorder.toml"),
        "the unit must read the shipped config"
    );
    assert_eq!(
        cfg["host"].as_str(),
        Some("127.0.0.1"),
        "no credentials yet: the Pi must listen on loopback only"
    );
}

/// Copies the unit with ExecStart pointing at the binary under test (so
/// `verify` finds an executable), for systemd-analyze to read.
fn unit_for_analysis(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(image_file("video-recorder.service")).unwrap();
    let bin = common::binary();
    let unit = unit.replace("/usr/local/bin/video-recorder", bin.to_str().unwrap());
    let path = dir.join("video-recorder.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn systemd_unit_verifies() {
    if !common::have_tool("systemd-analyze") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_for_analysis(tmp.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown or misplaced keys are only warnings (exit 0): refuse them too.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("video-recorder.service"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

/// The hardening stays in place: systemd's own exposure score (0 best, 10
/// worst) must stay in its "OK" band even though cameras and sockets are allowed.
#[test]
fn systemd_unit_is_hardened() {
    if !common::have_tool("systemd-analyze") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_for_analysis(tmp.path());
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let score: f64 = stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for video-recorder.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 2.5, "exposure {score} (want <= 2.5):\n{stdout}");
    for needed in [
        "DeviceAllow=char-video4linux rw",
        "SupplementaryGroups=video",
        "StateDirectory=video-recorder",
    ] {
        assert!(
            std::fs::read_to_string(&unit).unwrap().contains(needed),
            "{needed} is what lets the service use the camera and write clips"
        );
    }
}
