//! The clips directory, and its one owner. Each camera has a home in it (the
//! directory itself for the one camera of a config without `[[camera]]`,
//! where clips always were; `<clips_dir>/<camera>/` for `[[camera]]`
//! cameras). A home holds finished clips `<id>.mp4` and recordings in
//! progress `<id>.mp4.part` + `<id>.journal`. This module locks the
//! directory (one process per directory), hands out clip ids and paths,
//! turns leftovers of a crash into clips (with a finisher the recorder
//! gives, so this module does not depend on it), keeps the library index,
//! and applies retention over all cameras: when the byte budget or the
//! minimum free space is crossed, the oldest finished clips go first (never
//! a `.part`, never a camera's newest clip, never the protected id).
//!
//! An index of the last scan answers `/status`, `/last` and `/clips`
//! without reading the directory (a full scan of 25,000 clips took 48 ms on
//! the dispatch thread); every enforcement, after each finished clip and
//! while recording, scans again.

mod files;
mod lock;
mod meta;
pub(crate) mod names;
mod retention;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::SystemTime;

use crate::ids::{CameraId, ClipFile, ClipId};
use crate::sync::lock;
use serde::Serialize;

pub use names::ClipPaths;

pub struct ClipsSettings {
    pub dir: PathBuf,
    /// 0: no byte budget.
    pub max_bytes: u64,
    /// 0: no free-space floor.
    pub min_free_bytes: u64,
    /// Clips wait for upload (a bucket is set): until the uploader says
    /// which (`hold_with`), every clip is held, so the retention pass at
    /// start deletes none still waiting unless the disk is about to fill.
    pub uploads: bool,
}

/// Where a camera's clips live.
#[derive(Debug, Clone)]
pub struct Home {
    pub camera: CameraId,
    /// In `<clips_dir>/<camera>/` (`[[camera]]`), or in the directory itself.
    pub own_dir: bool,
}

/// Finishes the leftovers of a crash in one directory; given by the
/// recorder, which knows how to make a `.part` playable.
pub type Finisher<'a> = &'a dyn Fn(&Path, &dyn Fn(&ClipId) -> bool);

/// A finished clip on disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipEntry {
    pub id: ClipId,
    pub camera: CameraId,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Device and inode as listed: the file served must be this one.
    #[serde(skip)]
    dev_ino: (u64, u64),
}

/// Why a clip could not be opened for serving.
#[derive(Debug)]
pub enum OpenError {
    NotFound,
    /// Not the regular, singly linked file that was listed (a symlink, a
    /// hard link to something outside, a file swapped in since the scan).
    Refused(&'static str),
    /// The system's error, its kind from its errno.
    Io(crate::error::Error),
}

impl PartialEq for OpenError {
    fn eq(&self, other: &OpenError) -> bool {
        match (self, other) {
            (OpenError::NotFound, OpenError::NotFound) => true,
            (OpenError::Refused(a), OpenError::Refused(b)) => a == b,
            (OpenError::Io(a), OpenError::Io(b)) => a.kind() == b.kind(),
            _ => false,
        }
    }
}

/// What the last scan found.
#[derive(Default)]
struct Index {
    /// Finished clips of every camera, oldest first.
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
    homes: Vec<Home>,
    /// One enforcement at a time (recorders and the HTTP thread may all
    /// ask); holds whether "nothing left to delete" was already logged.
    enforcing: Mutex<bool>,
    /// One id handed out at a time: two cameras starting in one second get
    /// different names, and an id is never given twice.
    naming: Mutex<()>,
    index: Mutex<Index>,
    /// Each camera's clip finished last by this process: what `/last`
    /// serves even when an older clip sorts after it (one named in the
    /// future by a clock that was wrong then).
    finished: Mutex<HashMap<String, String>>,
    /// What each clip's `moov` says, read once per file.
    meta: Mutex<meta::Cache>,
    /// Free and total bytes of the directory's file system (`statvfs`;
    /// tests give a disk of their own).
    space: Space,
    /// The directory's lock, and each camera directory's (a second process
    /// pointed at `clips/front` must not finish this one's recordings).
    _locks: Vec<lock::DirLock>,
    /// Whether a clip is still waiting for upload: retention keeps it
    /// unless the disk is about to fill (set by the uploader).
    hold: OnceLock<Hold>,
    /// Told when retention deleted a clip that was still waiting.
    lost: OnceLock<Lost>,
    /// Those deleted before `lost` was set (the pass at start), told then.
    lost_early: Mutex<Vec<String>>,
}

pub type Hold = Box<dyn Fn(&str) -> bool + Send + Sync>;
pub type Lost = Box<dyn Fn(&str) + Send + Sync>;

/// Reads free and total bytes for a directory.
pub type Space = Box<dyn Fn(&Path) -> Option<(u64, u64)> + Send + Sync>;

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

impl Clips {
    /// Creates and locks the directory, turns leftovers of a crash into
    /// clips, then applies the budget once. `homes` lists the cameras
    /// (the first is the one ids from before camera names belong to).
    pub fn open(
        settings: ClipsSettings,
        homes: Vec<Home>,
        finish: Finisher,
    ) -> Result<Clips, String> {
        let dir = &settings.dir;
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create: {e}"))?;
        let mut held = vec![lock::lock(dir).map_err(|e| e.to_string())?];
        for h in homes.iter().filter(|h| h.own_dir) {
            let home = dir.join(h.camera.as_str());
            std::fs::create_dir_all(&home)
                .map_err(|e| format!("cannot create {}: {e}", home.display()))?;
            held.push(lock::lock(&home).map_err(|e| format!("{}: {e}", home.display()))?);
        }
        let clips = Clips {
            settings,
            homes,
            enforcing: Mutex::new(false),
            naming: Mutex::new(()),
            index: Mutex::new(Index::default()),
            finished: Mutex::default(),
            meta: Mutex::default(),
            space: Box::new(fs_bytes),
            _locks: held,
            hold: OnceLock::new(),
            lost: OnceLock::new(),
            lost_early: Mutex::default(),
        };
        for d in clips.dirs() {
            let camera = clips.camera_of_dir(&d);
            finish(&d, &|id| names::belongs(id, camera.as_deref()));
        }
        clips.rescan();
        clips.warn_if_floor_cannot_be_met();
        clips.enforce(None);
        Ok(clips)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        lock(&self.index)
    }

    /// A configured camera's id and the directory its clips go to.
    fn home_of(&self, camera: &str) -> Option<(CameraId, PathBuf)> {
        let h = self.homes.iter().find(|h| h.camera == camera)?;
        let dir = if h.own_dir {
            self.settings.dir.join(h.camera.as_str())
        } else {
            self.settings.dir.clone()
        };
        Some((h.camera.clone(), dir))
    }

    /// The directory itself and every camera directory in it, configured
    /// or not (a camera taken out of the config keeps its clips listed and
    /// under retention). Only real directories, never a symlink; and in a
    /// camera directory only that camera's clips count (see `belongs`), so
    /// a folder of the user's (`clips/archive/`) is never touched.
    fn dirs(&self) -> Vec<PathBuf> {
        let root = &self.settings.dir;
        let mut dirs = vec![root.clone()];
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let name = e.file_name();
                if is_dir && name.to_str().is_some_and(|n| n.parse::<CameraId>().is_ok()) {
                    dirs.push(e.path());
                }
            }
        }
        dirs
    }

    /// The camera a directory holds the clips of: `None` for the clips
    /// directory itself (any camera's, and ids from before camera names).
    fn camera_of_dir(&self, dir: &Path) -> Option<String> {
        (dir != self.settings.dir)
            .then(|| dir.file_name()?.to_str().map(str::to_string))
            .flatten()
    }

    /// Reads the directories and replaces the index.
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
        use std::os::unix::fs::MetadataExt;
        let mut clips = Vec::new();
        let mut partial = 0;
        let first = self.homes.first().map(|h| h.camera.clone());
        for dir in self.dirs() {
            let owner = self.camera_of_dir(&dir);
            let ours = |id: &ClipId| names::belongs(id, owner.as_deref());
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
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
                let Some((id, file)) = ClipId::from_file_name(&name).filter(|(id, _)| ours(id))
                else {
                    continue;
                };
                match file {
                    ClipFile::Mp4 => {
                        // An old unnamed id is the first camera's.
                        let Some(camera) = id.camera_id().or_else(|| first.clone()) else {
                            continue;
                        };
                        clips.push(ClipEntry {
                            id,
                            camera,
                            path: e.path(),
                            size_bytes: meta.len(),
                            dev_ino: (meta.dev(), meta.ino()),
                        });
                    }
                    ClipFile::Part | ClipFile::Journal => partial += meta.len(),
                    ClipFile::Upload | ClipFile::Thumbnail => {}
                }
            }
        }
        clips.sort_by(|a, b| a.id.age_key().cmp(&b.id.age_key()));
        (clips, partial)
    }

    /// The clip of `camera` finished last by this process while it is
    /// there, else its newest by name (from the index).
    pub fn last(&self, camera: &str) -> Option<ClipEntry> {
        let recent = lock(&self.finished).get(camera).cloned();
        let ix = self.index();
        recent
            .and_then(|id| ix.clips.iter().find(|c| c.id == id))
            .or_else(|| ix.clips.iter().rev().find(|c| c.camera == camera))
            .cloned()
    }

    /// A recorder finished clip `id` of `camera` (then it enforces the
    /// budget, which keeps it).
    pub fn finished(&self, camera: &str, id: &str) {
        lock(&self.finished).insert(camera.to_string(), id.to_string());
    }

    /// Every finished clip, oldest first (from the index).
    pub fn all(&self) -> Vec<ClipEntry> {
        self.index().clips.clone()
    }

    /// Keeps the clips `hold` names from retention (uploads waiting).
    pub fn hold_with(&self, hold: Hold) {
        let _ = self.hold.set(hold);
    }

    /// Calls `lost` for a held clip retention had to delete anyway.
    pub fn on_lost(&self, lost: Lost) {
        let early = std::mem::take(&mut *lock(&self.lost_early));
        for id in &early {
            lost(id);
        }
        let _ = self.lost.set(lost);
    }

    fn held(&self, id: &str) -> bool {
        match self.hold.get() {
            Some(h) => h(id),
            None => self.settings.uploads,
        }
    }

    /// A finished clip by id (from the index, whose ids are valid: any
    /// other text finds nothing).
    pub fn get(&self, id: &str) -> Option<ClipEntry> {
        self.index().clips.iter().find(|c| c.id == id).cloned()
    }

    /// Finished clips, newest first: of one camera or all, older than the
    /// id `before` (paging), at most `limit`.
    pub fn list(
        &self,
        camera: Option<&str>,
        before: Option<&ClipId>,
        limit: usize,
    ) -> Vec<ClipEntry> {
        let before = before.map(ClipId::age_key);
        self.index()
            .clips
            .iter()
            .rev()
            .filter(|c| camera.is_none_or(|cam| c.camera == cam))
            .filter(|c| before.is_none_or(|b| c.id.age_key() < b))
            .take(limit)
            .cloned()
            .collect()
    }

    /// A new clip's id and paths in the camera's home. Ids do not go
    /// backwards while the clock is plausibly wrong (see `names::stamp_for`).
    pub fn allocate(&self, camera: &str, now: SystemTime) -> crate::error::Result<ClipPaths> {
        use crate::error::{Context as _, Error, Kind};
        let _one = lock(&self.naming);
        let (camera, dir) = self.home_of(camera).ok_or_else(|| {
            Error::new(
                Kind::NotFound,
                format!("no clips directory for camera {camera:?}"),
            )
        })?;
        // The directory may have been removed under us (a user cleaning up).
        std::fs::create_dir_all(&dir).context(|| format!("clips directory {}", dir.display()))?;
        let newest = self.newest_stamp();
        let stamp = names::stamp_for(now, newest, crate::clock::synchronized());
        let mut n = 1;
        loop {
            let id = ClipId::new(&camera, &stamp, n).ok_or_else(|| {
                Error::new(Kind::Internal, format!("no clip id for the time {stamp:?}"))
            })?;
            let paths = ClipPaths::new(&dir, &id);
            if !paths.taken() {
                return Ok(paths);
            }
            n += 1;
        }
    }

    /// The newest stamp among clips, partial clips and journals of every
    /// camera (the ring buffer deletes by this order).
    fn newest_stamp(&self) -> Option<String> {
        self.dirs()
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| match ClipId::from_file_name(&name)? {
                (id, ClipFile::Mp4 | ClipFile::Part | ClipFile::Journal) => {
                    Some(id.stamp().to_string())
                }
                _ => None,
            })
            .max()
    }

    /// Usage and the newest finished clip of `camera`, from the index
    /// (`/status` is polled by every open page; no directory scan here).
    pub fn overview(&self, camera: &str) -> (Usage, Option<ClipEntry>) {
        let (count, bytes) = {
            let ix = self.index();
            let bytes = ix.clips.iter().map(|c| c.size_bytes).sum::<u64>() + ix.partial;
            (ix.clips.len() as u64, bytes)
        };
        let usage = Usage {
            dir: self.settings.dir.display().to_string(),
            clips: count,
            bytes,
            max_bytes: self.settings.max_bytes,
            free_bytes: self.free().unwrap_or(0),
            min_free_bytes: self.settings.min_free_bytes,
        };
        (usage, self.last(camera))
    }
}

#[cfg(test)]
mod tests;
