use super::*;
use std::time::Duration;

use super::retention::NEARLY_FULL_FOR_TESTS;
use crate::ids::ClipId;

fn valid_id(id: &str) -> bool {
    id.parse::<ClipId>().is_ok()
}

fn cam() -> Vec<Home> {
    vec![Home {
        camera: "cam".parse().unwrap(),
        own_dir: false,
    }]
}

fn clips(dir: &Path, max_bytes: u64, min_free_bytes: u64) -> Clips {
    Clips::open(
        ClipsSettings {
            dir: dir.to_path_buf(),
            max_bytes,
            min_free_bytes,
            uploads: false,
        },
        cam(),
        &|d, valid| {
            crate::recorder::recover_dir(d, valid);
        },
    )
    .unwrap()
}

/// Without `open`'s recovery, so leftovers stay as the test made them.
fn raw(dir: &Path, max_bytes: u64, min_free_bytes: u64) -> Clips {
    Clips {
        settings: ClipsSettings {
            dir: dir.to_path_buf(),
            max_bytes,
            min_free_bytes,
            uploads: false,
        },
        homes: cam(),
        enforcing: Mutex::new(false),
        naming: Mutex::new(()),
        index: Mutex::new(Index::default()),
        finished: Mutex::default(),
        meta: Mutex::default(),
        space: Box::new(fs_bytes),
        _locks: Vec::new(),
        hold: Default::default(),
        lost: Default::default(),
        lost_early: Default::default(),
    }
}

/// A disk of `total` bytes holding only what is in `dir`.
fn small_disk(total: u64) -> Space {
    Box::new(move |dir: &Path| {
        let used: u64 = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        Some((total.saturating_sub(used), total))
    })
}

fn put(dir: &Path, name: &str, len: usize) {
    std::fs::write(dir.join(name), vec![0u8; len]).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn ids_are_validated_strictly() {
    for ok in ["20240101-000000", "20240101-000000-2", "20240101-235959-17"] {
        assert!(valid_id(ok), "{ok}");
    }
    for bad in [
        "",
        "..",
        "../20240101-000000",
        "/etc/passwd",
        "20240101-000000/..",
        "20240101-000000-",
        "20240101-000000-2a",
        "2024010-000000",
        "20240101_000000",
        "20240101-00000x",
        "20240101-000000.mp4",
        "２0240101-000000",
        "20240101-000000-99999999999",
    ] {
        assert!(!valid_id(bad), "{bad:?} accepted");
    }
}

#[test]
fn get_returns_only_regular_files_inside_the_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    std::fs::create_dir(&dir).unwrap();
    let c = clips(&dir, 0, 0);
    put(&dir, "20240101-000000.mp4", 10);
    assert!(
        c.get("20240101-000000").is_none(),
        "not listed before a scan"
    );
    // A symlink pointing out of the directory is not a clip.
    put(tmp.path(), "secret.mp4", 5);
    std::os::unix::fs::symlink(
        tmp.path().join("secret.mp4"),
        dir.join("20240101-000001.mp4"),
    )
    .unwrap();
    // A directory named like a clip is not a clip.
    std::fs::create_dir(dir.join("20240101-000002.mp4")).unwrap();
    // Nor a symlink to a clip inside the directory.
    std::os::unix::fs::symlink("20240101-000000.mp4", dir.join("20240101-000003.mp4")).unwrap();
    c.enforce(None);
    let e = c.get("20240101-000000").unwrap();
    assert_eq!((e.size_bytes, e.id.as_str()), (10, "20240101-000000"));
    assert!(c.open_clip(&e).is_ok());
    for missing in [
        "20240101-000009",
        "../clips/20240101-000000",
        "/etc/passwd",
        "20240101-000001",
        "20240101-000002",
        "20240101-000003",
    ] {
        assert!(c.get(missing).is_none(), "{missing}");
    }
    // Listing counts regular files only.
    assert_eq!(c.overview("cam").0.clips, 1);
}

#[test]
fn open_clip_serves_only_the_file_that_was_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    std::fs::create_dir(&dir).unwrap();
    let c = clips(&dir, 0, 0);
    for id in ["20240101-000000", "20240101-000001", "20240101-000002"] {
        put(&dir, &format!("{id}.mp4"), 10);
    }
    put(tmp.path(), "secret.mp4", 5);
    c.enforce(None);
    let listed = |id: &str| c.get(id).unwrap();
    // Swapped for a symlink after the listing.
    let a = listed("20240101-000000");
    std::fs::remove_file(dir.join("20240101-000000.mp4")).unwrap();
    std::os::unix::fs::symlink(
        tmp.path().join("secret.mp4"),
        dir.join("20240101-000000.mp4"),
    )
    .unwrap();
    assert_eq!(
        c.open_clip(&a).unwrap_err(),
        OpenError::Refused("a symlink")
    );
    // A hard link to it from elsewhere: the file could be anyone's.
    let b = listed("20240101-000001");
    std::fs::hard_link(
        dir.join("20240101-000001.mp4"),
        tmp.path().join("outside.mp4"),
    )
    .unwrap();
    assert_eq!(
        c.open_clip(&b).unwrap_err(),
        OpenError::Refused("a file with other links")
    );
    // Replaced by another file (renamed over it, so it is another inode).
    let d = listed("20240101-000002");
    put(&dir, "other", 10);
    std::fs::rename(dir.join("other"), dir.join("20240101-000002.mp4")).unwrap();
    assert_eq!(
        c.open_clip(&d).unwrap_err(),
        OpenError::Refused("not the file that was listed")
    );
    // Gone.
    std::fs::remove_file(dir.join("20240101-000002.mp4")).unwrap();
    assert_eq!(c.open_clip(&d).unwrap_err(), OpenError::NotFound);
}

#[test]
fn last_is_the_newest_by_id_and_collision_number() {
    let tmp = tempfile::tempdir().unwrap();
    let c = clips(tmp.path(), 0, 0);
    assert!(c.last("cam").is_none());
    for id in [
        "20240101-000000",
        "20240101-000005-2",
        "20240101-000005-10",
        "20231231-235959",
    ] {
        put(tmp.path(), &format!("{id}.mp4"), 1);
    }
    put(tmp.path(), "20250101-000000.mp4.part", 1); // in progress: not a clip
    put(tmp.path(), "zzz.mp4", 1); // not ours
    c.enforce(None);
    assert_eq!(c.last("cam").unwrap().id, "20240101-000005-10");
    let u = c.overview("cam").0;
    assert_eq!((u.clips, u.bytes), (4, 5));
    assert!(u.free_bytes > 0);
}

#[test]
fn budget_deletes_oldest_first_but_never_protected_or_in_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..4 {
        put(d, &format!("20240101-00000{s}.mp4"), 1000);
    }
    put(d, "20240101-000009.mp4.part", 500);
    let c = raw(d, 2600, 0);
    c.enforce(Some("20240101-000000"));
    assert_eq!(
        names(d),
        vec![
            "20240101-000000.mp4",
            "20240101-000003.mp4",
            "20240101-000009.mp4.part"
        ]
    );
    // Within budget: nothing more goes.
    c.enforce(None);
    assert_eq!(names(d).len(), 3);
}

#[test]
fn free_space_floor_deletes_all_but_the_newest_and_the_protected() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..3 {
        put(d, &format!("20240101-00000{s}.mp4"), 100);
    }
    put(d, "20240101-000009.mp4.part", 100);
    // No disk has this much free: everything deletable goes.
    let c = raw(d, 0, u64::MAX / 2);
    c.enforce(None);
    assert_eq!(
        names(d),
        vec!["20240101-000002.mp4", "20240101-000009.mp4.part"]
    );
    put(d, "20240101-000001.mp4", 100);
    put(d, "20240101-000005.mp4", 100);
    c.enforce(Some("20240101-000001"));
    assert_eq!(
        names(d),
        vec![
            "20240101-000001.mp4",
            "20240101-000005.mp4",
            "20240101-000009.mp4.part"
        ]
    );
}

#[test]
fn open_recovers_then_applies_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    put(d, "20240101-000000.mp4", 100);
    put(d, "20240101-000001.mp4", 100);
    put(d, "20240101-000002.mp4.part", 10); // no journal: nothing to recover
    let c = clips(d, 150, 0);
    assert_eq!(names(d), vec!["20240101-000001.mp4"]);
    assert_eq!(c.overview("cam").0.bytes, 100);
}

#[test]
fn open_creates_the_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    let c = clips(&dir, 0, 0);
    assert!(dir.is_dir());
    assert_eq!(c.dir(), dir);
}

#[test]
fn the_floor_deletes_just_enough_of_the_oldest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..5 {
        put(d, &format!("20240101-00000{s}.mp4"), 100);
    }
    // 1000 bytes in all, 500 used: 650 must stay free, so two clips go.
    let mut c = raw(d, 0, 650);
    c.space = small_disk(1000);
    c.enforce(None);
    assert_eq!(
        names(d),
        vec![
            "20240101-000002.mp4",
            "20240101-000003.mp4",
            "20240101-000004.mp4"
        ]
    );
    assert_eq!(c.overview("cam").0.free_bytes, 700);
    assert!(c.out_of_room(None).is_none(), "above the floor");
}

#[test]
fn out_of_room_below_the_hard_floor_or_the_floor_with_nothing_to_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    put(d, "20240101-000000.mp4", 300);
    put(d, "20240101-000001.mp4", 300);
    let mut c = raw(d, 0, 500);
    c.space = small_disk(1000);
    c.enforce(None);
    // 700 free now, one clip left (the newest, never deleted).
    assert_eq!(names(d), vec!["20240101-000001.mp4"]);
    assert!(c.out_of_room(None).is_none());
    // The recording fills the disk: 450 free, under the floor, nothing to
    // delete but the newest.
    put(d, "20240101-000002.mp4.part", 250);
    c.enforce(Some("20240101-000002"));
    let why = c.out_of_room(Some("20240101-000002")).unwrap();
    assert!(why.contains("clips_min_free_mb"), "{why}");
    // Under a quarter of the disk free: out of room whatever the floor.
    put(d, "20240101-000003.mp4.part", 300);
    let mut c = raw(d, 0, 0);
    c.space = small_disk(1000);
    let why = c.out_of_room(None).unwrap();
    assert!(why.contains("nearly full"), "{why}");
}

#[test]
fn ids_are_stamps_with_a_suffix_on_collision() {
    let dir = tempfile::tempdir().unwrap();
    let c = clips(dir.path(), 0, 0);
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let a = c.allocate("cam", t).unwrap().id;
    assert_eq!(a, "cam-20231114-221320");
    std::fs::write(dir.path().join(format!("{a}.mp4")), b"x").unwrap();
    std::fs::write(dir.path().join(format!("{a}-2.journal")), b"x").unwrap();
    assert_eq!(c.allocate("cam", t).unwrap().id, format!("{a}-3"));
    assert!(c.allocate("nope", t).is_err(), "not a configured camera");
}

#[test]
fn ids_never_go_back_when_the_clock_does() {
    let dir = tempfile::tempdir().unwrap();
    let c = clips(dir.path(), 0, 0);
    // Clips from before cameras had names count as well.
    std::fs::write(dir.path().join("20261124-050102.mp4"), b"x").unwrap();
    std::fs::write(dir.path().join("cam-20261124-050102-2.mp4"), b"x").unwrap();
    let id = |t| names::stamp_for(t, c.newest_stamp(), Some(false));
    // Booted without network time: the clock says 1970.
    assert_eq!(
        id(SystemTime::UNIX_EPOCH + Duration::from_secs(42)),
        "20261124-050103"
    );
    // At the last shutdown (fake-hwclock), a day behind, not yet synchronised.
    let day_before = crate::clock::parse_file_stamp("20261123-050102").unwrap();
    assert_eq!(id(day_before), "20261124-050103");
    assert_eq!(
        names::stamp_for(day_before, c.newest_stamp(), None),
        "20261124-050103"
    );
    // A clock ahead of every clip is used as it is.
    let later = crate::clock::parse_file_stamp("20270101-000000").unwrap();
    assert_eq!(id(later), "20270101-000000");
}

#[test]
fn a_clip_named_in_the_future_does_not_drag_later_names() {
    let dir = tempfile::tempdir().unwrap();
    let c = clips(dir.path(), 0, 0);
    std::fs::write(dir.path().join("cam-20310101-000000.mp4"), b"x").unwrap();
    let now = crate::clock::parse_file_stamp("20261201-120000").unwrap();
    // A synchronised clock is believed.
    assert_eq!(
        names::stamp_for(now, c.newest_stamp(), Some(true)),
        "20261201-120000"
    );
    // Unsynchronised but years behind: not a plausible lag either.
    assert_eq!(
        names::stamp_for(now, c.newest_stamp(), Some(false)),
        "20261201-120000"
    );
    // A clip finished now sorts before the future one, yet it is the one
    // /last serves.
    let now_id = c.allocate("cam", now).unwrap().id;
    std::fs::write(dir.path().join(format!("{now_id}.mp4")), b"x").unwrap();
    c.enforce(None);
    assert_eq!(c.last("cam").unwrap().id, "cam-20310101-000000");
    c.finished("cam", &now_id);
    c.enforce(Some(&now_id));
    assert_eq!(c.last("cam").unwrap().id, now_id);
    assert_eq!(c.overview("cam").1.unwrap().id, now_id);
    // The last second there is: one more would not be an id.
    std::fs::write(dir.path().join("cam-99991231-235959.mp4"), b"x").unwrap();
    let id = c.allocate("cam", SystemTime::UNIX_EPOCH).unwrap().id;
    assert!(valid_id(&id), "{id}");
    assert_eq!(id, "cam-19700101-000000");
}

#[test]
fn cameras_have_homes_and_retention_spans_them_keeping_each_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let homes = vec![
        Home {
            camera: "front".parse().unwrap(),
            own_dir: true,
        },
        Home {
            camera: "door".parse().unwrap(),
            own_dir: true,
        },
    ];
    let open = |max| {
        Clips::open(
            ClipsSettings {
                dir: d.to_path_buf(),
                max_bytes: max,
                min_free_bytes: 0,
                uploads: false,
            },
            homes.clone(),
            &|_, _| {},
        )
        .unwrap()
    };
    let c = open(0);
    assert!(d.join("front").is_dir() && d.join("door").is_dir());
    let t = crate::clock::parse_file_stamp("20261201-120000").unwrap();
    let p = c.allocate("door", t).unwrap();
    assert_eq!(p.fin, d.join("door/door-20261201-120000.mp4"));
    drop(c);
    put(&d.join("front"), "front-20261201-100000.mp4", 100);
    put(&d.join("front"), "front-20261201-110000.mp4", 100);
    put(&d.join("door"), "door-20261201-103000.mp4", 100);
    put(&d.join("door"), "door-20261201-120000.mp4.part", 100);
    put(d, "20261130-000000.mp4", 100); // from before camera names: front's
    // A folder of the user's, named like a camera, holding copies: not
    // a camera's directory (its clips name another camera), never touched.
    std::fs::create_dir(d.join("archive")).unwrap();
    put(&d.join("archive"), "front-20200101-000000.mp4", 100);
    put(&d.join("archive"), "20200101-000000.mp4", 100);
    let c = open(250);
    assert_eq!(
        names(&d.join("archive")),
        vec!["20200101-000000.mp4", "front-20200101-000000.mp4"]
    );
    // Oldest first over both cameras, but each camera's newest stays, and
    // the recording in progress is never touched.
    assert_eq!(names(&d.join("front")), vec!["front-20261201-110000.mp4"]);
    assert_eq!(
        names(&d.join("door")),
        vec!["door-20261201-103000.mp4", "door-20261201-120000.mp4.part"]
    );
    assert!(!d.join("20261130-000000.mp4").exists());
    let ids = |cam| {
        c.list(cam, None, 10)
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(None),
        vec!["front-20261201-110000", "door-20261201-103000"]
    );
    assert_eq!(ids(Some("door")), vec!["door-20261201-103000"]);
    assert_eq!(
        c.list(None, Some(&"front-20261201-110000".parse().unwrap()), 10)[0].id,
        "door-20261201-103000"
    );
    assert_eq!(c.last("front").unwrap().id, "front-20261201-110000");
    // Opened through its camera's directory, checked as ever.
    let e = c.get("door-20261201-103000").unwrap();
    assert!(c.open_clip(&e).is_ok());
    // A second process on the same directory is refused, naming this one.
    let second = Clips::open(
        ClipsSettings {
            dir: d.to_path_buf(),
            max_bytes: 0,
            min_free_bytes: 0,
            uploads: false,
        },
        homes.clone(),
        &|_, _| panic!("must not recover under another's lock"),
    );
    let e = second.err().unwrap();
    // (The pid is named when /proc/locks shows the holder: tests/cameras.rs.)
    assert!(e.contains("in use by"), "{e}");
    // Deleting takes the file and its index entry.
    c.delete("door-20261201-103000").unwrap();
    assert!(c.get("door-20261201-103000").is_none());
    assert_eq!(c.delete("door-20261201-103000"), Err(OpenError::NotFound));
    assert_eq!(c.delete("../x"), Err(OpenError::NotFound));
}

#[test]
fn clips_waiting_for_upload_are_kept_until_the_disk_is_about_to_fill() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..4 {
        put(d, &format!("20240101-00000{s}.mp4"), 1000);
    }
    put(d, "20240101-000000.upload", 10);
    let mut c = raw(d, 1500, 0);
    let lost = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = lost.clone();
    // 000000 and 000001 wait for upload; 000002 went up already.
    c.hold_with(Box::new(|id| id < "20240101-000002"));
    c.on_lost(Box::new(move |id| {
        seen.lock().unwrap().push(id.to_string())
    }));
    c.enforce(None);
    // Over budget, but what waits stays: only the uploaded one went.
    assert_eq!(
        names(d),
        vec![
            "20240101-000000.mp4",
            "20240101-000000.upload",
            "20240101-000001.mp4",
            "20240101-000003.mp4",
        ]
    );
    assert!(lost.lock().unwrap().is_empty());
    // About to fill (a 64 MiB disk with little free): waiting ones go too,
    // oldest first, each reported, its upload record with it.
    c.space = small_disk(NEARLY_FULL_FOR_TESTS);
    c.enforce(None);
    assert_eq!(names(d), vec!["20240101-000003.mp4"]);
    assert_eq!(
        *lost.lock().unwrap(),
        vec!["20240101-000000", "20240101-000001"]
    );
}

#[test]
fn until_the_uploader_says_which_clips_wait_every_clip_is_held() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for s in 0..3 {
        put(d, &format!("20240101-00000{s}.mp4"), 1000);
    }
    // Uploads on, the uploader not started yet (the pass at start).
    let mut c = raw(d, 1500, 0);
    c.settings.uploads = true;
    c.enforce(None);
    assert_eq!(names(d).len(), 3, "over budget, but each may still wait");
    // About to fill: they go, and the uploader hears of it once it asks.
    c.space = small_disk(NEARLY_FULL_FOR_TESTS);
    c.enforce(None);
    assert_eq!(names(d), vec!["20240101-000002.mp4"]);
    let lost = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = lost.clone();
    c.on_lost(Box::new(move |id| {
        seen.lock().unwrap().push(id.to_string())
    }));
    assert_eq!(
        *lost.lock().unwrap(),
        vec!["20240101-000000", "20240101-000001"]
    );
    // Uploads off: the budget alone decides.
    let mut c = raw(d, 500, 0);
    put(d, "20240101-000003.mp4", 1000);
    c.settings.uploads = false;
    c.enforce(None);
    assert_eq!(names(d), vec!["20240101-000003.mp4"]);
}
