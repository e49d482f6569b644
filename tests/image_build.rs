//! `make image` against small synthetic Raspberry Pi OS images built here
//! (an MBR with a FAT boot partition and an ext4 root, 26 MiB, sparse),
//! checked afterwards with debugfs and mtools like any image off the shelf.

mod common;
mod pi;

use common::RunWithin;
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use pi::disk_image::{
    Faults, OLD_MTIME, boot_fs, build_image, conf_hash, debugfs, debugfs_text, owner_mode, root_fs,
    sha256, tools_present, usr_mtime,
};
use pi::{fake_elf, host_binary, make, mode, repo, run, text};

fn image_vars(base: &Path, out: &Path, bin: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", base.display().to_string()),
        ("OUT", out.display().to_string()),
        ("BIN", bin.display().to_string()),
        ("HOST_VR", host_binary().display().to_string()),
    ]
}

fn make_image(vars: &[(&'static str, String)]) -> Output {
    make("image", vars, "")
}

#[test]
fn image_gets_the_service_installed_and_enabled() {
    if !tools_present() {
        return;
    }
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tmp = tempfile::tempdir().unwrap();
    let base = build_image(tmp.path(), "base.img", Faults::default());
    let base_sha = sha256(&base);
    let bin = tmp.path().join("video-recorder");
    fake_elf(&bin, 0xb7, true);
    let out_img = tmp.path().join("out.img");
    let mut vars = image_vars(&base, &out_img, &bin);
    vars.push(("SSH", "1".into()));
    let out = make_image(&vars);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(sha256(&base), base_sha, "the base image is never changed");
    assert!(!tmp.path().join("out.img.partial").exists());

    // The password: shown once, kept beside the image for its owner only.
    let pw_file = tmp.path().join("out.img.password");
    assert_eq!(mode(&pw_file), 0o600);
    let password = std::fs::read_to_string(&pw_file)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(password.len(), 20, "{password:?}");
    assert_eq!(log.matches(&password).count(), 1, "{log}");

    // Root file system: files, modes, owners, the enablement link.
    assert_eq!(
        debugfs(&out_img, "cat /usr/local/bin/video-recorder"),
        std::fs::read(&bin).unwrap()
    );
    let unit = "/etc/systemd/system/video-recorder.service";
    assert_eq!(
        debugfs(&out_img, &format!("cat {unit}")),
        std::fs::read(repo().join("image/video-recorder.service")).unwrap()
    );
    let sysusers = debugfs_text(&out_img, "cat /usr/lib/sysusers.d/video-recorder.conf");
    assert!(
        sysusers.contains("\nu video-recorder 997 \"Video Recorder\" /var/lib/video-recorder\n")
            && sysusers.contains("\nm video-recorder video\n"),
        "the first id free as both uid and gid: {sysusers}"
    );
    let conf_path = "/etc/video-recorder/video-recorder.toml";
    let conf = debugfs_text(&out_img, &format!("cat {conf_path}"));
    let template = std::fs::read_to_string(repo().join("image/video-recorder.toml")).unwrap();
    assert!(conf.starts_with(&template), "{conf}");
    assert!(conf.contains("\npassword_hash = \"$argon2id$"), "{conf}");
    assert!(!conf.contains(&password));
    let own = |m: &str, u: &str, g: &str| (m.to_string(), u.to_string(), g.to_string());
    assert_eq!(
        owner_mode(&out_img, "/usr/local/bin/video-recorder"),
        own("0755", "0", "0")
    );
    assert_eq!(owner_mode(&out_img, unit), own("0644", "0", "0"));
    assert_eq!(
        owner_mode(&out_img, "/usr/lib/sysusers.d/video-recorder.conf"),
        own("0644", "0", "0")
    );
    assert_eq!(
        owner_mode(&out_img, conf_path),
        own("0640", "0", "997"),
        "the hash is readable by the service's group only"
    );
    assert_eq!(
        owner_mode(&out_img, "/etc/video-recorder"),
        own("0755", "0", "0")
    );
    let link = debugfs_text(
        &out_img,
        "stat /etc/systemd/system/multi-user.target.wants/video-recorder.service",
    );
    assert!(
        link.contains("Type: symlink") && link.contains(&format!("Fast link dest: \"{unit}\"")),
        "{link}"
    );
    // /usr touched: systemd-sysusers runs at first boot (ConditionNeedsUpdate).
    assert_eq!(usr_mtime(&base), OLD_MTIME, "the base image's /usr is old");
    let mtime = usr_mtime(&out_img);
    assert!(mtime >= started, "/usr mtime {mtime} < {started}");
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(root_fs(&out_img))
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(fsck.status.success(), "e2fsck: {}", text(&fsck));

    // Boot partition: the note, sshd enabled, the rest untouched.
    let note = run(Command::new("mtype")
        .arg("-i")
        .arg(boot_fs(&out_img))
        .arg("::video-recorder.txt"));
    assert!(
        note.contains("/etc/video-recorder/video-recorder.toml"),
        "{note}"
    );
    assert!(!note.contains(&password));
    let listing = run(Command::new("mdir")
        .args(["-b", "-i"])
        .arg(boot_fs(&out_img))
        .arg("::"));
    for f in ["::/ssh", "::/config.txt", "::/cmdline.txt"] {
        assert!(listing.lines().any(|l| l.trim() == f), "{f} in {listing}");
    }

    // The installed config and the password shown belong together: the
    // binary accepts the one with the other.
    let conf_file = tmp.path().join("installed.toml");
    std::fs::write(&conf_file, &conf).unwrap();
    let s = common::Server::start(&["--config", conf_file.to_str().unwrap(), "--source", "test"]);
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("admin:{password}")
        )
    );
    let status =
        |headers: &[(&str, &str)]| common::request(s.addr, "GET", "/status", headers, b"").status;
    assert_eq!(status(&[]), 401);
    assert_eq!(status(&[("Authorization", auth.as_str())]), 200);
    drop(s);

    // Raspberry Pi OS comes as .img.xz: taken as it is.
    if common::have_tool("xz") {
        pi::run(Command::new("xz").args(["-k", "-0", "-T1"]).arg(&base));
        let from_xz = tmp.path().join("from-xz.img");
        let mut vars = image_vars(&tmp.path().join("base.img.xz"), &from_xz, &bin);
        vars.push(("PASSWORD_HASH", conf_hash(&conf)));
        let out = make_image(&vars);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            debugfs_text(&from_xz, &format!("cat {conf_path}")),
            conf,
            "same template, same hash: the same config"
        );
    }

    // An image that already has a config keeps it; ours goes beside it.
    let again = tmp.path().join("again.img");
    let mut vars = image_vars(&out_img, &again, &bin);
    let given = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    vars.push(("PASSWORD_HASH", given.into()));
    let out = make_image(&vars);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("is already in the image: kept"), "{log}");
    assert_eq!(debugfs_text(&again, &format!("cat {conf_path}")), conf);
    let new = debugfs_text(&again, &format!("cat {conf_path}.new"));
    assert!(
        new.contains(&format!("password_hash = \"{given}\"")),
        "{new}"
    );
    assert!(
        !tmp.path().join("again.img.password").exists(),
        "no password was made"
    );
}

#[test]
fn image_refuses_what_it_does_not_recognise() {
    if !tools_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("video-recorder");
    fake_elf(&bin, 0xb7, true);
    let cases = [
        (
            Faults {
                no_table: true,
                ..Faults::default()
            },
            "no partition table (MBR or GPT)",
        ),
        (
            Faults {
                three_partitions: true,
                ..Faults::default()
            },
            "3 partitions; Raspberry Pi OS has 2",
        ),
        (
            Faults {
                boot_type_linux: true,
                ..Faults::default()
            },
            "partition 1 has type 83, not FAT",
        ),
        (
            Faults {
                boot_not_fat: true,
                ..Faults::default()
            },
            "partition 1 is not a FAT file system",
        ),
        (
            Faults {
                no_config_txt: true,
                ..Faults::default()
            },
            "no config.txt: not a Raspberry Pi boot partition",
        ),
        (
            Faults {
                no_os_release: true,
                ..Faults::default()
            },
            "has no /etc/os-release",
        ),
        (
            Faults {
                armhf: true,
                ..Faults::default()
            },
            "is aarch64, the image needs armhf: make pi32",
        ),
    ];
    for (i, (faults, reason)) in cases.into_iter().enumerate() {
        let base = build_image(tmp.path(), &format!("bad{i}.img"), faults);
        let out_img = tmp.path().join(format!("out{i}.img"));
        let out = make_image(&image_vars(&base, &out_img, &bin));
        let log = text(&out);
        assert!(!out.status.success(), "case {i}: {log}");
        assert!(log.contains(reason), "case {i}: want {reason:?} in:\n{log}");
        assert!(!out_img.exists(), "case {i}: no output image");
        assert!(!tmp.path().join(format!("out{i}.img.partial")).exists());
        assert!(!tmp.path().join(format!("out{i}.img.password")).exists());
    }
    // Never over the base image.
    let base = build_image(tmp.path(), "good.img", Faults::default());
    let out = make_image(&image_vars(&base, &base, &bin));
    assert!(
        text(&out).contains("OUT must not be BASE"),
        "{}",
        text(&out)
    );
}

/// Without `HOST_VR`, the password is hashed by the host build, which cargo
/// puts under `CARGO_TARGET_DIR` when that is set (a stand-in `make` plays
/// the build, a stand-in binary the hasher).
#[test]
fn the_password_hasher_is_found_under_cargo_target_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("elsewhere");
    let fake_make = tmp.path().join("make");
    std::fs::write(
        &fake_make,
        "#!/bin/sh\nmkdir -p \"$CARGO_TARGET_DIR/debug\"\n\
         printf '#!/bin/sh\\necho \"\\$argon2id\\$stand-in\"\\n' > \"$CARGO_TARGET_DIR/debug/video-recorder\"\n\
         chmod +x \"$CARGO_TARGET_DIR/debug/video-recorder\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &fake_make,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg("PROG=test; . image/lib.sh; printf 'pw-for-the-test\\n' | hash_password")
        .current_dir(repo())
        .env("MAKE", &fake_make)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("HOST_VR")
        .output_within(common::LONG_CHILD_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "$argon2id$stand-in\n");
}
