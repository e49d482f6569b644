//! The clips directory: finished clips `<id>.mp4`, recordings in progress
//! `<id>.mp4.part` + `<id>.journal`. Kept as a ring buffer: when the byte
//! budget or the minimum free disk space is crossed, the oldest finished
//! clips go first (never a `.part`, never the protected id). Leftovers of a
//! crash become clips in `open`.

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
}

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

/// Free bytes for unprivileged users on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

impl Clips {
    /// Creates the directory if needed, turns leftovers of a crash into
    /// clips, then applies the budget once.
    pub fn open(settings: ClipsSettings) -> std::io::Result<Clips> {
        std::fs::create_dir_all(&settings.dir)?;
        let clips = Clips {
            settings,
            enforcing: Mutex::new(false),
        };
        crate::recorder::recover_dir(&clips.settings.dir, valid_id);
        clips.enforce(None);
        Ok(clips)
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.settings.dir
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
                clips.push(ClipEntry {
                    id: id.to_string(),
                    path: e.path(),
                    size_bytes: meta.len(),
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

    /// The newest finished clip.
    pub fn last(&self) -> Option<ClipEntry> {
        self.scan().0.pop()
    }

    /// A finished clip by id. The id is validated and the file must resolve
    /// (symlinks followed) to a regular file inside the clips directory.
    pub fn get(&self, id: &str) -> Option<ClipEntry> {
        if !valid_id(id) {
            return None;
        }
        let path = self.settings.dir.join(format!("{id}.mp4"));
        let real = path.canonicalize().ok()?;
        let dir = self.settings.dir.canonicalize().ok()?;
        if real.parent() != Some(dir.as_path()) {
            return None;
        }
        let meta = std::fs::metadata(&real).ok()?;
        meta.is_file().then(|| ClipEntry {
            id: id.to_string(),
            path: real,
            size_bytes: meta.len(),
        })
    }

    /// Usage and the newest finished clip from one directory scan (`/status`
    /// is polled by every open page).
    pub fn overview(&self) -> (Usage, Option<ClipEntry>) {
        let (mut clips, partial) = self.scan();
        let usage = Usage {
            dir: self.settings.dir.display().to_string(),
            clips: clips.len() as u64,
            bytes: clips.iter().map(|c| c.size_bytes).sum::<u64>() + partial,
            max_bytes: self.settings.max_bytes,
            free_bytes: free_bytes(&self.settings.dir).unwrap_or(0),
            min_free_bytes: self.settings.min_free_bytes,
        };
        (usage, clips.pop())
    }

    /// Deletes the oldest finished clips while over the byte budget or under
    /// the free-space floor. Never deleted: `protect`, the newest finished
    /// clip (the one `/stop` just answered with and `/last` serves, even when
    /// it alone is over budget), and recordings in progress (`.part`). Each
    /// deletion is logged with its reason.
    pub fn enforce(&self, protect: Option<&str>) {
        let mut warned = self.enforcing.lock().unwrap_or_else(|e| e.into_inner());
        let s = &self.settings;
        if s.max_bytes == 0 && s.min_free_bytes == 0 {
            return;
        }
        let (clips, partial) = self.scan();
        let mut total: u64 = clips.iter().map(|c| c.size_bytes).sum::<u64>() + partial;
        let mut free = free_bytes(&s.dir);
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
                    log::info!(
                        "deleted oldest clip {} ({} bytes): {reason}",
                        c.id,
                        c.size_bytes
                    );
                    total -= c.size_bytes;
                    free = free_bytes(&s.dir);
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
