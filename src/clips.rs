//! The clips directory: finished clips `<id>.mp4`, recordings in progress
//! `<id>.mp4.part` + `<id>.journal`. Kept as a ring buffer: when the byte
//! budget or the minimum free disk space is crossed, the oldest finished
//! clips go first (never a `.part`, never the protected id). Leftovers of a
//! crash become clips in `open`. An index of the last scan answers `/status`,
//! `/last` and `/clips` without reading the directory (a full scan of 25,000
//! clips took 48 ms on the dispatch thread); every enforcement, after each
//! finished clip and while recording, scans again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

pub struct ClipsSettings {
    pub dir: PathBuf,
    /// 0: no byte budget.
    pub max_bytes: u64,
    /// 0: no free-space floor.
    pub min_free_bytes: u64,
}

/// A finished clip on disk.
#[derive(Debug, Clone, Serialize)]
pub struct ClipEntry {
    pub id: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Device and inode as listed: the file served must be this one.
    #[serde(skip)]
    dev_ino: (u64, u64),
}

/// Why a clip could not be opened for serving.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    NotFound,
    /// Not the regular, singly linked file that was listed (a symlink, a
    /// hard link to something outside, a file swapped in since the scan).
    Refused(&'static str),
    Io(String),
}

/// What the last scan found.
#[derive(Default)]
struct Index {
    /// Finished clips, oldest first.
    clips: Vec<ClipEntry>,
    /// Bytes of recordings in progress.
    partial: u64,
}

/// Directory usage for `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub dir: String,
    /// Finished clips.
    pub clips: u64,
    /// Bytes of finished clips and recordings in progress.
    pub bytes: u64,
    pub max_bytes: u64,
    pub free_bytes: u64,
    pub min_free_bytes: u64,
}

pub struct Clips {
    settings: ClipsSettings,
    /// One enforcement at a time (the recorder and the HTTP thread may both
    /// ask); holds whether "nothing left to delete" was already logged.
    enforcing: Mutex<bool>,
    index: Mutex<Index>,
    /// Free and total bytes of the directory's file system (`statvfs`;
    /// tests give a disk of their own).
    space: Space,
}

/// Reads free and total bytes for a directory.
pub type Space = Box<dyn Fn(&Path) -> Option<(u64, u64)> + Send + Sync>;

/// Clip ids: `YYYYMMDD-HHMMSS` with an optional `-N` for clips in the same
/// second. Anything else (`..`, `/`, absolute paths) is never a clip.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    b.len() >= 15
        && digits(&b[..8])
        && b[8] == b'-'
        && digits(&b[9..15])
        && (b.len() == 15 || (b[15] == b'-' && b.len() <= 25 && digits(&b[16..])))
}

/// Sort key: oldest first (the stamp, then the collision number).
fn age_key(id: &str) -> (String, u64) {
    let n = id.get(16..).and_then(|n| n.parse().ok()).unwrap_or(1);
    (id[..15].to_string(), n)
}

/// Free and total bytes of the file system holding `dir`.
#[allow(clippy::unnecessary_cast)] // the field types differ on 32-bit ARM
fn fs_bytes(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

/// Free space below which recording stops by itself (or does not start),
/// so a clip's index always fits: 16 MiB, or a quarter of a tiny disk.
const HARD_FLOOR: u64 = 16 * 1024 * 1024;

impl Clips {
    /// Creates the directory if needed, turns leftovers of a crash into
    /// clips, then applies the budget once.
    pub fn open(settings: ClipsSettings) -> std::io::Result<Clips> {
        std::fs::create_dir_all(&settings.dir)?;
        let clips = Clips {
            settings,
            enforcing: Mutex::new(false),
            index: Mutex::new(Index::default()),
            space: Box::new(fs_bytes),
        };
        crate::recorder::recover_dir(&clips.settings.dir, valid_id);
        clips.rescan();
        clips.warn_if_floor_cannot_be_met();
        clips.enforce(None);
        Ok(clips)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// On a disk that cannot keep `min_free_bytes` free even with every clip
    /// deleted, each stop would delete all older clips: say so at start.
    fn warn_if_floor_cannot_be_met(&self) {
        let min = self.settings.min_free_bytes;
        let Some((free, total)) = (self.space)(&self.settings.dir) else {
            return;
        };
        let ours: u64 = self.index().clips.iter().map(|c| c.size_bytes).sum();
        if min > 0 && free + ours < min {
            log::warn!(
                "the clips file system has {} MiB of {} MiB free even counting every clip as \
                 deletable, less than clips_min_free_mb ({} MiB): each finished clip will make \
                 the older ones go, and recording stops when none is left; lower \
                 clips_min_free_mb or use a larger disk",
                (free + ours) / (1024 * 1024),
                total / (1024 * 1024),
                min / (1024 * 1024)
            );
        }
    }

    fn free(&self) -> Option<u64> {
        (self.space)(&self.settings.dir).map(|(free, _)| free)
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the directory and replaces the index.
    fn rescan(&self) -> (Vec<ClipEntry>, u64) {
        let (clips, partial) = self.scan();
        *self.index() = Index {
            clips: clips.clone(),
            partial,
        };
        (clips, partial)
    }

    /// Finished clips, oldest first, plus the bytes of recordings in progress.
    fn scan(&self) -> (Vec<ClipEntry>, u64) {
        let mut clips = Vec::new();
        let mut partial = 0;
        let Ok(rd) = std::fs::read_dir(&self.settings.dir) else {
            return (clips, 0);
        };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // Only regular files count: a symlink is never one of our clips.
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            if let Some(id) = name.strip_suffix(".mp4").filter(|id| valid_id(id)) {
                use std::os::unix::fs::MetadataExt;
                clips.push(ClipEntry {
                    id: id.to_string(),
                    path: e.path(),
                    size_bytes: meta.len(),
                    dev_ino: (meta.dev(), meta.ino()),
                });
            } else if name
                .strip_suffix(".mp4.part")
                .or_else(|| name.strip_suffix(".journal"))
                .is_some_and(valid_id)
            {
                partial += meta.len();
            }
        }
        clips.sort_by_cached_key(|c| age_key(&c.id));
        (clips, partial)
    }

    /// The newest finished clip (from the index).
    pub fn last(&self) -> Option<ClipEntry> {
        self.index().clips.last().cloned()
    }

    /// A finished clip by id (from the index; the id is validated).
    pub fn get(&self, id: &str) -> Option<ClipEntry> {
        if !valid_id(id) {
            return None;
        }
        self.index().clips.iter().find(|c| c.id == id).cloned()
    }

    /// Opens a listed clip for reading, refusing anything but the regular,
    /// singly linked file the scan listed: opened without following
    /// symlinks, relative to the directory, then checked by its descriptor
    /// (checking a path and then opening it lets a symlink in between).
    pub fn open_clip(&self, clip: &ClipEntry) -> Result<File, OpenError> {
        use std::os::fd::{AsRawFd, FromRawFd};
        if !valid_id(&clip.id) {
            return Err(OpenError::NotFound);
        }
        let dir = File::open(&self.settings.dir).map_err(|e| OpenError::Io(e.to_string()))?;
        let name = std::ffi::CString::new(format!("{}.mp4", clip.id)).expect("no NUL in an id");
        // SAFETY: openat on a directory descriptor we hold, with a valid C
        // string; the new descriptor is owned by the File from here on.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) => OpenError::NotFound,
                Some(libc::ELOOP) => OpenError::Refused("a symlink"),
                _ => OpenError::Io(e.to_string()),
            });
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let file = unsafe { File::from_raw_fd(fd) };
        let meta = file.metadata().map_err(|e| OpenError::Io(e.to_string()))?;
        use std::os::unix::fs::MetadataExt;
        if !meta.is_file() {
            return Err(OpenError::Refused("not a regular file"));
        }
        if meta.nlink() != 1 {
            return Err(OpenError::Refused("a file with other links"));
        }
        if (meta.dev(), meta.ino()) != clip.dev_ino {
            return Err(OpenError::Refused("not the file that was listed"));
        }
        Ok(file)
    }

    /// Why a recording should stop (or not start) now for want of room:
    /// below `HARD_FLOOR`, or below `min_free_bytes` with no older clip left
    /// to delete (`protect` and the newest clip are never deleted).
    pub fn out_of_room(&self, protect: Option<&str>) -> Option<String> {
        let (free, total) = (self.space)(&self.settings.dir)?;
        let mib = |b: u64| b / (1024 * 1024);
        let hard = HARD_FLOOR.min(total / 4);
        if free < hard {
            return Some(format!(
                "the disk is nearly full ({} MiB free of {} MiB); delete clips or use a larger card",
                mib(free),
                mib(total)
            ));
        }
        let min = self.settings.min_free_bytes;
        if min > 0 && free < min {
            let ix = self.index();
            let newest = ix.clips.last().map(|c| c.id.as_str());
            let deletable = ix
                .clips
                .iter()
                .any(|c| Some(c.id.as_str()) != protect && Some(c.id.as_str()) != newest);
            if !deletable {
                return Some(format!(
                    "{} MiB free, under clips_min_free_mb ({} MiB), and no older clip is left to \
                     delete; free some space or lower clips_min_free_mb",
                    mib(free),
                    mib(min)
                ));
            }
        }
        None
    }

    /// Usage and the newest finished clip, from the index (`/status` is
    /// polled by every open page; no directory scan here).
    pub fn overview(&self) -> (Usage, Option<ClipEntry>) {
        let (count, bytes, last) = {
            let ix = self.index();
            let bytes = ix.clips.iter().map(|c| c.size_bytes).sum::<u64>() + ix.partial;
            (ix.clips.len() as u64, bytes, ix.clips.last().cloned())
        };
        let usage = Usage {
            dir: self.settings.dir.display().to_string(),
            clips: count,
            bytes,
            max_bytes: self.settings.max_bytes,
            free_bytes: self.free().unwrap_or(0),
            min_free_bytes: self.settings.min_free_bytes,
        };
        (usage, last)
    }

    /// Deletes the oldest finished clips while over the byte budget or under
    /// the free-space floor. Never deleted: `protect`, the newest finished
    /// clip (the one `/stop` just answered with and `/last` serves, even when
    /// it alone is over budget), and recordings in progress (`.part`). Each
    /// deletion is logged with its reason.
    pub fn enforce(&self, protect: Option<&str>) {
        let mut warned = self.enforcing.lock().unwrap_or_else(|e| e.into_inner());
        let s = &self.settings;
        let (clips, partial) = self.rescan();
        if s.max_bytes == 0 && s.min_free_bytes == 0 {
            return;
        }
        let mut total: u64 = clips.iter().map(|c| c.size_bytes).sum::<u64>() + partial;
        let mut free = self.free();
        let newest = clips.last().map(|c| c.id.clone());
        let deletable = clips
            .iter()
            .filter(|c| Some(c.id.as_str()) != protect && Some(&c.id) != newest.as_ref());
        for c in deletable {
            let reason = if s.max_bytes > 0 && total > s.max_bytes {
                format!("clips use {total} bytes, budget {}", s.max_bytes)
            } else if let Some(f) = free.filter(|&f| s.min_free_bytes > 0 && f < s.min_free_bytes) {
                format!("{f} bytes free, want {}", s.min_free_bytes)
            } else {
                *warned = false;
                return;
            };
            match std::fs::remove_file(&c.path) {
                Ok(()) => {
                    self.index().clips.retain(|x| x.id != c.id);
                    log::info!(
                        "deleted oldest clip {} ({} bytes): {reason}",
                        c.id,
                        c.size_bytes
                    );
                    total -= c.size_bytes;
                    free = self.free();
                }
                Err(e) => log::warn!("cannot delete {}: {e}", c.path.display()),
            }
        }
        let over = s.max_bytes > 0 && total > s.max_bytes;
        let low = free.is_some_and(|f| s.min_free_bytes > 0 && f < s.min_free_bytes);
        if (over || low) && !*warned {
            *warned = true;
            log::warn!(
                "clips directory {} still over its limits with nothing left to delete ({total} bytes used{})",
                s.dir.display(),
                free.map(|f| format!(", {f} free")).unwrap_or_default()
            );
        } else if !over && !low {
            *warned = false;
        }
    }
}

#[cfg(test)]
mod tests;
