//! Small synthetic Raspberry Pi OS images for the `make image` tests (an
//! MBR with a FAT boot partition and an ext4 root, 26 MiB, sparse), built
//! without root by sfdisk, mkfs.vfat --offset, mtools and mkfs.ext4 -d, and
//! read back with debugfs.

use crate::common::RunWithin;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::run;
use crate::common;

pub const SECTOR: u64 = 512;
pub const BOOT_START: u64 = 8192;
pub const BOOT_SECTORS: u64 = 16384;
pub const ROOT_START: u64 = BOOT_START + BOOT_SECTORS;
pub const IMAGE_BYTES: u64 = 26 * 1024 * 1024;
/// /usr's mtime in a synthetic base image (2023-11-14).
pub const OLD_MTIME: u64 = 1_700_000_000;

pub fn tools_present() -> bool {
    [
        "make",
        "sfdisk",
        "mkfs.vfat",
        "mkfs.ext4",
        "debugfs",
        "e2fsck",
        "mcopy",
        "mtype",
        "mdir",
    ]
    .iter()
    .all(|t| common::have_tool(t))
}

/// What to get wrong in a synthetic image (all false: a good one).
#[derive(Default, Clone, Copy)]
pub struct Faults {
    pub no_table: bool,
    pub three_partitions: bool,
    pub boot_type_linux: bool,
    pub boot_not_fat: bool,
    pub no_config_txt: bool,
    pub no_os_release: bool,
    pub armhf: bool,
}

pub fn build_image(dir: &Path, name: &str, f: Faults) -> PathBuf {
    let img = dir.join(name);
    let file = std::fs::File::create(&img).unwrap();
    file.set_len(IMAGE_BYTES).unwrap();
    drop(file);
    if f.no_table {
        return img;
    }
    let boot_type = if f.boot_type_linux { "83" } else { "c" };
    let root_sectors = if f.three_partitions {
        "8192,83\n"
    } else {
        ",83\n"
    };
    let mut table =
        format!("label: dos\n{BOOT_START},{BOOT_SECTORS},{boot_type}\n{ROOT_START},{root_sectors}");
    if f.three_partitions {
        table.push_str(&format!("{},,83\n", ROOT_START + 8192));
    }
    let sfdisk = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(&img)
        .fed_output_within(table.as_bytes(), crate::common::CHILD_TIMEOUT)
        .unwrap();
    assert!(sfdisk.status.success(), "sfdisk: {sfdisk:?}");

    if !f.boot_not_fat {
        run(Command::new("mkfs.vfat")
            .arg("--offset")
            .arg(BOOT_START.to_string())
            .arg(&img)
            .arg((BOOT_SECTORS / 2).to_string()));
        let boot = dir.join(format!("{name}.boot"));
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(
            boot.join("cmdline.txt"),
            "console=tty1 root=PARTUUID=x-02\n",
        )
        .unwrap();
        std::fs::write(boot.join("config.txt"), "arm_64bit=1\n").unwrap();
        let mut files = vec![boot.join("cmdline.txt")];
        if !f.no_config_txt {
            files.push(boot.join("config.txt"));
        }
        run(Command::new("mcopy")
            .arg("-i")
            .arg(format!("{}@@{}", img.display(), BOOT_START * SECTOR))
            .args(&files)
            .arg("::"));
    }

    let root = dir.join(format!("{name}.root"));
    for d in [
        "etc/systemd/system/multi-user.target.wants",
        "usr/lib/systemd",
        "usr/lib/sysusers.d",
        "usr/local/bin",
        "var/lib",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    if !f.no_os_release {
        std::fs::write(
            root.join("etc/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n",
        )
        .unwrap();
    }
    // Ids 999 (a user) and 998 (a group) are taken: the service gets 997.
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nmessagebus:x:999:997::/:/usr/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nvideo:x:44:pi\nnetdev:x:998:\n",
    )
    .unwrap();
    std::fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
    let loader = if f.armhf {
        "ld-linux-armhf.so.3"
    } else {
        "ld-linux-aarch64.so.1"
    };
    std::fs::write(root.join("usr/lib").join(loader), "").unwrap();
    // Merged /usr, as in Raspberry Pi OS bookworm.
    std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
    // An image made long ago (mkfs.ext4 -d keeps the times).
    std::fs::File::open(root.join("usr"))
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(OLD_MTIME))
        .unwrap();
    let root_bytes = IMAGE_BYTES - ROOT_START * SECTOR;
    let (start, bytes) = if f.three_partitions {
        (ROOT_START, 8192 * SECTOR)
    } else {
        (ROOT_START, root_bytes)
    };
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&root)
        .arg("-E")
        .arg(format!("offset={}", start * SECTOR))
        .arg(&img)
        .arg(format!("{}k", bytes / 1024)));
    if f.boot_type_linux {
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-E"])
            .arg(format!("offset={}", BOOT_START * SECTOR))
            .arg(&img)
            .arg(format!("{}k", BOOT_SECTORS * SECTOR / 1024)));
    }
    img
}

pub fn root_fs(img: &Path) -> String {
    format!("{}?offset={}", img.display(), ROOT_START * SECTOR)
}

pub fn boot_fs(img: &Path) -> String {
    format!("{}@@{}", img.display(), BOOT_START * SECTOR)
}

pub fn debugfs(img: &Path, request: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .env("DEBUGFS_PAGER", "__none__")
        .arg("-R")
        .arg(request)
        .arg(root_fs(img))
        .output_within(crate::common::CHILD_TIMEOUT)
        .unwrap();
    assert!(out.status.success(), "debugfs -R {request}");
    out.stdout
}

pub fn debugfs_text(img: &Path, request: &str) -> String {
    String::from_utf8_lossy(&debugfs(img, request)).into_owned()
}

/// Mode, uid and gid of a path in the image's root, as `debugfs stat` shows.
pub fn owner_mode(img: &Path, path: &str) -> (String, String, String) {
    let st = debugfs_text(img, &format!("stat {path}"));
    let word_after = |key: &str| {
        st.split(key)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {key} in stat {path}:\n{st}"))
            .to_string()
    };
    (
        word_after("Mode:"),
        word_after("User:"),
        word_after("Group:"),
    )
}

pub fn usr_mtime(img: &Path) -> u64 {
    let usr = debugfs_text(img, "stat /usr");
    usr.lines()
        .find(|l| l.trim_start().starts_with("mtime:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|hex| {
            u64::from_str_radix(hex.split(':').next()?.trim_start_matches("0x"), 16).ok()
        })
        .unwrap_or_else(|| panic!("no mtime in {usr}"))
}

pub fn conf_hash(conf: &str) -> String {
    conf.lines()
        .find_map(|l| l.strip_prefix("password_hash = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("password_hash in the config")
        .to_string()
}

pub fn sha256(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}
