//! `make flash` against a fake view of the machine: a /sys tree, a mounts
//! table and a swaps table made by the test, and plain files standing in for
//! disks. No real disk is ever named.

mod common;
mod pi;

use common::RunWithin;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pi::{make, text};

const DISK_BYTES: u64 = 8 * 1024 * 1024;

/// A fake machine with disks `sdz` (removable, a partition sdz1) and
/// whatever a test adds.
struct View {
    tmp: tempfile::TempDir,
    image: PathBuf,
}

impl View {
    fn new() -> View {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("sys/dev/block")).unwrap();
        std::fs::create_dir_all(d.join("dev")).unwrap();
        std::fs::write(d.join("mounts"), "proc /proc proc rw 0 0\n").unwrap();
        std::fs::write(d.join("swaps"), "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
        // Not a multiple of 4 MiB: the last dd block is partial.
        let image = d.join("video-recorder.img");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&image, bytes).unwrap();
        let v = View { tmp, image };
        v.disk("sdz", true, &["sdz1"]);
        v
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// A disk in the fake /sys and its stand-in file (zeros).
    fn disk(&self, name: &str, removable: bool, parts: &[&str]) -> PathBuf {
        let sys = self.dir().join("sys/block").join(name);
        std::fs::create_dir_all(sys.join("device")).unwrap();
        std::fs::write(sys.join("removable"), if removable { "1\n" } else { "0\n" }).unwrap();
        std::fs::write(sys.join("size"), format!("{}\n", DISK_BYTES / 512)).unwrap();
        std::fs::write(sys.join("device/vendor"), "Generic \n").unwrap();
        std::fs::write(sys.join("device/model"), "SD Card Reader  \n").unwrap();
        for p in parts {
            std::fs::create_dir_all(sys.join(p)).unwrap();
            std::fs::write(sys.join(p).join("partition"), "1\n").unwrap();
        }
        let dev = self.dir().join("dev").join(name);
        let f = std::fs::File::create(&dev).unwrap();
        f.set_len(DISK_BYTES).unwrap();
        dev
    }

    fn flash(&self, dev: &Path, yes: bool, stdin: &str) -> Output {
        let d = self.dir();
        let mut vars = vec![
            ("IMAGE", self.image.display().to_string()),
            ("DEV", dev.display().to_string()),
            ("SYSFS", d.join("sys").display().to_string()),
            ("MOUNTS", d.join("mounts").display().to_string()),
            ("SWAPS", d.join("swaps").display().to_string()),
        ];
        if yes {
            vars.push(("YES", "1".into()));
        }
        make("flash", &vars, stdin)
    }
}

fn tools_present() -> bool {
    ["make", "dd", "sha256sum", "stat"]
        .iter()
        .all(|t| common::have_tool(t))
}

fn untouched(dev: &Path) -> bool {
    std::fs::read(dev).unwrap().iter().all(|&b| b == 0)
}

fn assert_refused(out: &Output, dev: &Path, reason: &str) {
    let log = text(out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains(reason), "want {reason:?} in:\n{log}");
    assert!(untouched(dev), "nothing may be written: {log}");
}

#[test]
fn flash_writes_and_verifies_a_removable_disk() {
    if !tools_present() {
        return;
    }
    let v = View::new();
    let dev = v.dir().join("dev/sdz");
    let out = v.flash(&dev, true, "");
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("verified"), "{log}");
    let image = std::fs::read(&v.image).unwrap();
    let written = std::fs::read(&dev).unwrap();
    assert_eq!(
        &written[..image.len()],
        &image[..],
        "the image is on the disk"
    );
}

#[test]
fn flash_asks_first_unless_told_yes() {
    if !tools_present() {
        return;
    }
    let v = View::new();
    let dev = v.dir().join("dev/sdz");
    let out = v.flash(&dev, false, "no\n");
    assert_refused(&out, &dev, "not confirmed: nothing written");
    assert!(text(&out).contains("Type yes to go on"), "{}", text(&out));
    assert!(
        text(&out).contains("Generic SD Card Reader"),
        "{}",
        text(&out)
    );
    assert_refused(&v.flash(&dev, false, ""), &dev, "not confirmed");

    let out = v.flash(&dev, false, "yes\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!untouched(&dev));
}

#[test]
fn flash_refuses_a_mounted_disk() {
    if !tools_present() {
        return;
    }
    let v = View::new();
    let dev = v.dir().join("dev/sdz");
    std::fs::write(
        v.dir().join("mounts"),
        "proc /proc proc rw 0 0\n/dev/sdz1 /media/my\\040card vfat rw 0 0\n",
    )
    .unwrap();
    assert_refused(
        &v.flash(&dev, true, ""),
        &dev,
        "/dev/sdz1 is mounted on /media/my card",
    );

    // Also through device-mapper: a partition holding dm-0, mounted by its
    // mapper name (a symlink to ../dm-0 on a real system; here a name only).
    std::fs::write(v.dir().join("mounts"), "proc /proc proc rw 0 0\n").unwrap();
    let holders = v.dir().join("sys/block/sdz/sdz1/holders/dm-0");
    std::fs::create_dir_all(&holders).unwrap();
    std::fs::write(
        v.dir().join("mounts"),
        "/dev/dm-0 /home/crypt ext4 rw 0 0\n",
    )
    .unwrap();
    assert_refused(
        &v.flash(&dev, true, ""),
        &dev,
        "/dev/dm-0 is mounted on /home/crypt",
    );

    std::fs::write(v.dir().join("mounts"), "").unwrap();
    std::fs::write(
        v.dir().join("swaps"),
        "Filename\tType\tSize\tUsed\tPriority\n/dev/sdz1\tpartition\t1024\t0\t-2\n",
    )
    .unwrap();
    assert_refused(&v.flash(&dev, true, ""), &dev, "in use as swap");
}

/// The disk holding / is found from /'s device number through the (fake)
/// /sys/dev/block link to its partition, then the partition's disk.
#[test]
fn flash_refuses_the_system_disk() {
    if !tools_present() {
        return;
    }
    let v = View::new();
    let dev = v.disk("sdy", true, &["sdy1", "sdy2"]);
    let out = Command::new("stat")
        .args(["-c", "%Hd:%Ld", "/"])
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    let majmin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    std::os::unix::fs::symlink(
        "../../block/sdy/sdy2",
        v.dir().join("sys/dev/block").join(&majmin),
    )
    .unwrap();
    assert_refused(
        &v.flash(&dev, true, ""),
        &dev,
        "is the disk this system runs from",
    );
    // Another disk of the same machine is fine.
    assert!(v.flash(&v.dir().join("dev/sdz"), true, "").status.success());

    // Or found from the mounts table, where the device number says nothing
    // (overlay roots, /dev/root).
    let v = View::new();
    let dev = v.disk("sdx", true, &["sdx1"]);
    std::fs::write(
        v.dir().join("mounts"),
        "/dev/sdx1 /boot/firmware vfat rw 0 0\n",
    )
    .unwrap();
    std::fs::create_dir_all(v.dir().join("sys/class/block")).unwrap();
    std::os::unix::fs::symlink("../../block/sdx/sdx1", v.dir().join("sys/class/block/sdx1"))
        .unwrap();
    assert_refused(
        &v.flash(&dev, true, ""),
        &dev,
        "is the disk this system runs from",
    );
}

#[test]
fn flash_refuses_fixed_disks_partitions_and_small_disks() {
    if !tools_present() {
        return;
    }
    let v = View::new();
    let fixed = v.disk("sdw", false, &[]);
    assert_refused(&v.flash(&fixed, true, ""), &fixed, "is not removable");

    // An SD card in a laptop's own slot: mmc, removable=0, type SD: fine.
    let mmc = v.disk("mmcblk0", false, &["mmcblk0p1"]);
    std::fs::write(v.dir().join("sys/block/mmcblk0/device/type"), "SD\n").unwrap();
    assert!(v.flash(&mmc, true, "").status.success());
    // eMMC soldered to the board: type MMC, refused.
    let emmc = v.disk("mmcblk1", false, &[]);
    std::fs::write(v.dir().join("sys/block/mmcblk1/device/type"), "MMC\n").unwrap();
    assert_refused(&v.flash(&emmc, true, ""), &emmc, "is not removable");

    let part = v.dir().join("dev/sdz1");
    std::fs::File::create(&part).unwrap().set_len(1024).unwrap();
    assert_refused(
        &v.flash(&part, true, ""),
        &part,
        "is a partition of sdz: give the whole disk",
    );

    let small = v.disk("sdv", true, &[]);
    std::fs::write(v.dir().join("sys/block/sdv/size"), "2048\n").unwrap();
    assert_refused(&v.flash(&small, true, ""), &small, "does not fit on");

    let empty = v.disk("sdu", true, &[]);
    std::fs::write(v.dir().join("sys/block/sdu/size"), "0\n").unwrap();
    assert_refused(&v.flash(&empty, true, ""), &empty, "has no medium");

    // With the real /sys, only block devices: a file is refused outright.
    let out = make(
        "flash",
        &[
            ("IMAGE", v.image.display().to_string()),
            ("DEV", fixed.display().to_string()),
            ("YES", "1".into()),
        ],
        "",
    );
    assert_refused(&out, &fixed, "is not a block device");
}
