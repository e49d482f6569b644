//! Where clips go and what new ones are called (the id grammar and the
//! file names are `crate::ids`'). Ids from before cameras had names
//! (`20261201-184233`) are read as the first camera's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::ids::{ClipFile, ClipId, is_stamp};

/// Whether `id` is a clip of the directory of `camera` (`None`: the clips
/// directory itself, which holds any camera's and old unnamed ones).
pub fn belongs(id: &ClipId, camera: Option<&str>) -> bool {
    camera.is_none_or(|dir| id.camera() == Some(dir))
}

/// The stamp a new clip is named by: the clock's, except that names do not
/// go backwards while the clock is plausibly wrong. A Pi without a
/// real-time clock boots at 1970, or at its last shutdown (fake-hwclock),
/// until network time arrives, and the ring buffer deletes by name order:
/// such a clip is named one second after the newest. But a clip named in the
/// future (a clock once wrong the other way, a spoofed NTP) must not drag
/// every later name with it: a synchronised clock, or a skew beyond
/// `MAX_BEHIND`, names by the clock; and a name that would not be a valid
/// stamp (past year 9999) is never made.
pub fn stamp_for(now: SystemTime, newest: Option<String>, synchronised: Option<bool>) -> String {
    /// Before this the clock has never been set (this code did not exist).
    const NEVER_SET: u64 = 1_704_067_200; // 2024-01-01
    /// How far a not-yet-synchronised clock may plausibly lag.
    const MAX_BEHIND: Duration = Duration::from_secs(90 * 86_400);
    let stamp = crate::clock::file_stamp(now);
    let Some(newest) = newest.filter(|n| *n > stamp) else {
        return stamp;
    };
    let Some(t) = crate::clock::parse_file_stamp(&newest) else {
        return stamp;
    };
    let unset = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|d| d.as_secs() < NEVER_SET);
    let behind = t.duration_since(now).unwrap_or_default();
    let after = crate::clock::file_stamp(t + Duration::from_secs(1));
    let plausible = unset || (synchronised != Some(true) && behind <= MAX_BEHIND);
    if plausible && is_stamp(&after) {
        log::warn!(
            "the clock ({stamp}) is behind the newest clip ({newest}); is time synchronised? \
             naming the new clip {after}"
        );
        after
    } else {
        log::warn!(
            "the newest clip ({newest}) is named after the clock ({stamp}); trusting the \
             clock (it is {}), so this clip sorts before that one",
            if synchronised == Some(true) {
                "synchronised".to_string()
            } else {
                format!("{} days behind", behind.as_secs() / 86_400)
            }
        );
        stamp
    }
}

/// The three names one clip goes by, in its camera's directory.
#[derive(Debug, Clone)]
pub struct ClipPaths {
    pub id: ClipId,
    pub dir: PathBuf,
    pub part: PathBuf,
    pub journal: PathBuf,
    pub fin: PathBuf,
}

impl ClipPaths {
    pub fn new(dir: &Path, id: &ClipId) -> ClipPaths {
        ClipPaths {
            id: id.clone(),
            dir: dir.to_path_buf(),
            part: dir.join(id.file_name(ClipFile::Part)),
            journal: dir.join(id.file_name(ClipFile::Journal)),
            fin: dir.join(id.file_name(ClipFile::Mp4)),
        }
    }

    /// True if any file of this id exists (ids must never be reused).
    pub fn taken(&self) -> bool {
        [&self.part, &self.journal, &self.fin]
            .iter()
            .any(|p| p.symlink_metadata().is_ok())
    }
}
