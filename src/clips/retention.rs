//! Retention over all cameras: the byte budget and the free-space floor.

use super::{ClipEntry, Clips};
use crate::sync::lock;

/// Each camera's newest finished clip by name.
fn newest_of_each_camera(clips: &[ClipEntry]) -> Vec<&str> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for c in clips.iter().rev() {
        if !seen.iter().any(|(cam, _)| c.camera == *cam) {
            seen.push((&c.camera, &c.id));
        }
    }
    seen.into_iter().map(|(_, id)| id).collect()
}

/// Free space below which recording stops by itself (or does not start),
/// so a clip's index always fits: 16 MiB, or a quarter of a tiny disk.
const HARD_FLOOR: u64 = 16 * 1024 * 1024;
/// Free space under which even clips waiting for upload are deleted
/// (oldest first, loudly): the disk is about to fill.
const NEARLY_FULL: u64 = 4 * HARD_FLOOR;
#[cfg(test)]
pub(super) const NEARLY_FULL_FOR_TESTS: u64 = NEARLY_FULL;

impl Clips {
    pub(super) fn free(&self) -> Option<u64> {
        (self.space)(&self.settings.dir).map(|(free, _)| free)
    }

    /// On a disk that cannot keep `min_free_bytes` free even with every clip
    /// deleted, each stop would delete all older clips: say so at start.
    pub(super) fn warn_if_floor_cannot_be_met(&self) {
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
            let keep = self.keep(&ix.clips);
            let deletable = ix
                .clips
                .iter()
                .any(|c| Some(c.id.as_str()) != protect && !keep.iter().any(|k| c.id == *k));
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

    /// The clips retention never deletes: each camera's newest by name and
    /// its last finished (what `/stop` answered with and `/last` serves;
    /// the two differ only after a clip was named in the future).
    fn keep(&self, clips: &[ClipEntry]) -> Vec<String> {
        let mut keep: Vec<String> = newest_of_each_camera(clips)
            .into_iter()
            .map(String::from)
            .collect();
        keep.extend(lock(&self.finished).values().cloned());
        keep
    }

    /// Deletes the oldest finished clips while over the byte budget or under
    /// the free-space floor. Never deleted: those `keep` names (even when
    /// one alone is over budget), `protect`, and recordings in progress
    /// (`.part`). Each deletion is logged with its reason.
    pub fn enforce(&self, protect: Option<&str>) {
        let mut warned = lock(&self.enforcing);
        let s = &self.settings;
        let (clips, partial) = self.rescan();
        if s.max_bytes == 0 && s.min_free_bytes == 0 {
            return;
        }
        let mut total: u64 = clips.iter().map(|c| c.size_bytes).sum::<u64>() + partial;
        let mut free = self.free();
        let keep = self.keep(&clips);
        // Clips waiting for upload go last, and only when the disk is about
        // to fill.
        let (held, free_to_go): (Vec<&ClipEntry>, Vec<&ClipEntry>) = clips
            .iter()
            .filter(|c| Some(c.id.as_str()) != protect && !keep.iter().any(|k| c.id == *k))
            .partition(|c| self.held(&c.id));
        for c in free_to_go.into_iter().chain(held) {
            let waiting = self.held(&c.id);
            let nearly_full = free.is_some_and(|f| f < NEARLY_FULL);
            let reason = if waiting && !nearly_full {
                break;
            } else if waiting {
                format!(
                    "the disk is about to fill ({} bytes free) and it was still waiting for upload",
                    free.unwrap_or(0)
                )
            } else if s.max_bytes > 0 && total > s.max_bytes {
                format!("clips use {total} bytes, budget {}", s.max_bytes)
            } else if let Some(f) = free.filter(|&f| s.min_free_bytes > 0 && f < s.min_free_bytes) {
                format!("{f} bytes free, want {}", s.min_free_bytes)
            } else {
                *warned = false;
                return;
            };
            if waiting {
                log::error!("deleting clip {} before it was uploaded: {reason}", c.id);
                match self.lost.get() {
                    Some(lost) => lost(&c.id),
                    None => lock(&self.lost_early).push(c.id.to_string()),
                }
            }
            match self.unlink(c) {
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
                Err(e) => log::warn!("cannot delete {}: {e:?}", c.path.display()),
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
