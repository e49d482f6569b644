//! What goes onto the Pi (image/): the default config must be accepted by the
//! real binary's parser, and the systemd unit must pass `systemd-analyze`.
//! The scripts that install them are tested in deploy.rs, image_build.rs and
//! flash.rs.

mod common;

use common::RunWithin;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// The Pi keeps its clips where the unit lets it write, and listens on the
/// LAN; the credentials are added by `make deploy` / `make image`, never
/// kept in git.
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
        Some("0.0.0.0"),
        "the Pi serves the LAN"
    );
    for secret in ["password_hash", "viewer_password_hash", "api_token_hash"] {
        assert!(!cfg.contains_key(secret), "{secret} must not be in git");
    }
}

/// On its own (as in git, without the hash the installers add) the config
/// makes the binary refuse to serve the LAN, and say how to fix it.
#[test]
fn shipped_config_alone_refuses_the_lan() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = common::command()
        .arg("--config")
        .arg(image_file("video-recorder.toml"))
        .args(["--port", "0", "--source", "test", "--clips-dir"])
        .arg(tmp.path().join("clips"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let status = common::wait_timeout(&mut child, common::START_TIMEOUT).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("it started listening on 0.0.0.0 without a password")
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0") && err.contains("hash-password"),
        "{err}"
    );
}

/// After the network, never after or bound to the camera (a missing or
/// renumbered camera must not keep the service down), restarted on failure.
#[test]
fn unit_starts_after_the_network_but_not_the_camera() {
    let unit = std::fs::read_to_string(image_file("video-recorder.service")).unwrap();
    let keys: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    for needed in [
        "Wants=network-online.target",
        "After=network-online.target",
        "Restart=on-failure",
        "WantedBy=multi-user.target",
    ] {
        assert!(keys.contains(&needed), "{needed} missing");
    }
    for line in &keys {
        let dependency = ["After=", "Requires=", "BindsTo=", "Wants=", "Requisite="]
            .iter()
            .any(|k| line.starts_with(k));
        assert!(
            !(dependency && line.contains(".device")),
            "the service must not wait for a device: {line}"
        );
    }
}

/// The hardening options the issue asks for, checked in the text so they
/// hold on machines without systemd-analyze too.
#[test]
fn unit_hardening_options_are_present() {
    let unit = std::fs::read_to_string(image_file("video-recorder.service")).unwrap();
    let keys: Vec<&str> = unit.lines().map(str::trim).collect();
    for needed in [
        "User=video-recorder",
        "SupplementaryGroups=video",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "StateDirectory=video-recorder",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
    ] {
        assert!(keys.contains(&needed), "{needed} missing from the unit");
    }
    assert!(
        !keys.iter().any(|l| l.starts_with("PrivateDevices=yes")),
        "PrivateDevices would hide /dev/video*"
    );
}

/// systemd-sysusers makes the user the unit runs as, in the camera group.
#[test]
fn sysusers_file_makes_the_units_user() {
    let unit = std::fs::read_to_string(image_file("video-recorder.service")).unwrap();
    let sysusers = std::fs::read_to_string(image_file("video-recorder.sysusers.conf")).unwrap();
    let user = unit
        .lines()
        .find_map(|l| l.strip_prefix("User="))
        .expect("User=");
    assert!(
        sysusers
            .lines()
            .any(|l| l.starts_with(&format!("u {user} - "))),
        "{sysusers}"
    );
    assert!(
        sysusers.lines().any(|l| l == format!("m {user} video")),
        "{sysusers}"
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
        .output_within(common::CHILD_TIMEOUT)
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
        .output_within(common::CHILD_TIMEOUT)
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
