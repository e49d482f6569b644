//! What the library says about a clip beyond its size: when it began, how
//! long it is, its frames, whether it holds a thumbnail (the camera's first
//! JPEG, stored as the MP4's cover picture, `moov/udta/meta/ilst/covr`, when
//! the clip was finished). Read from the clip's `moov` once per file and
//! kept (a clip never changes once finished).

use crate::error::Error;
use std::collections::HashMap;
use std::io::{BufReader, Read, Seek};

use mp4::Metadata;

use super::{ClipEntry, Clips, OpenError};
use crate::ids::ClipId;
use crate::sync::lock;

#[derive(Debug, Clone)]
pub struct ClipMeta {
    pub started_at: String,
    /// The same, as a time (whole seconds, as MP4 keeps it).
    pub started: std::time::SystemTime,
    pub duration_sec: f64,
    pub frames: u32,
    pub thumbnail: bool,
}

/// Seconds from 1904 (MP4 times) to 1970.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// Entries kept; the page asks for the newest, so old ones may go.
const MAX_CACHED: usize = 5000;

pub(super) type Cache = HashMap<ClipId, ((u64, u64), ClipMeta)>;

fn reader<R: Read + Seek>(r: R, size: u64) -> Option<mp4::Mp4Reader<BufReader<R>>> {
    mp4::Mp4Reader::read_header(BufReader::new(r), size).ok()
}

fn read(file: std::fs::File) -> Option<ClipMeta> {
    let size = file.metadata().ok()?.len();
    let r = reader(file, size)?;
    let mvhd = &r.moov.mvhd;
    let created = mvhd.creation_time.saturating_sub(MP4_EPOCH_OFFSET);
    let started = std::time::UNIX_EPOCH + std::time::Duration::from_secs(created);
    let frames = r
        .moov
        .traks
        .first()
        .map_or(0, |t| t.mdia.minf.stbl.stsz.sample_count);
    Some(ClipMeta {
        started_at: crate::clock::rfc3339(started),
        started,
        duration_sec: mvhd.duration as f64 / f64::from(mvhd.timescale.max(1)),
        frames,
        thumbnail: r.metadata().poster().is_some(),
    })
}

impl Clips {
    /// The clip's metadata (cached by file identity); `None` if unreadable.
    pub fn meta(&self, clip: &ClipEntry) -> Option<ClipMeta> {
        let cache = || lock(&self.meta);
        if let Some((id, m)) = cache().get(&clip.id)
            && *id == clip.dev_ino
        {
            return Some(m.clone());
        }
        // Read without the lock: other pages' requests need not wait.
        let m = match self.open_clip(clip).map(read) {
            Ok(Some(m)) => m,
            Ok(None) => {
                log::warn!("clip {}: its MP4 header cannot be read", clip.id);
                return None;
            }
            Err(e) => {
                log::warn!("clip {}: cannot open it to read its header: {e:?}", clip.id);
                return None;
            }
        };
        let mut cache = cache();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(clip.id.clone(), (clip.dev_ino, m.clone()));
        Some(m)
    }

    /// The thumbnail JPEG stored in the clip, if it has one.
    pub fn thumbnail(&self, clip: &ClipEntry) -> Result<Option<Vec<u8>>, OpenError> {
        let file = self.open_clip(clip)?;
        let size = file
            .metadata()
            .map_err(|e| OpenError::Io(Error::io("open clip", e)))?
            .len();
        Ok(reader(file, size).and_then(|r| r.metadata().poster().map(<[u8]>::to_vec)))
    }
}
