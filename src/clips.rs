//! The clips directory. STUB public surface: the recorder work fills it in
//! (ring buffer by bytes and free space, recovery of leftovers at start).

use std::path::{Path, PathBuf};

use serde::Serialize;

pub struct ClipsSettings {
    pub dir: PathBuf,
    /// 0: no byte budget.
    pub max_bytes: u64,
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
    pub clips: u64,
    pub bytes: u64,
    pub max_bytes: u64,
    pub free_bytes: u64,
    pub min_free_bytes: u64,
}

pub struct Clips {
    settings: ClipsSettings,
}

impl Clips {
    /// Creates the directory if needed and turns leftovers of a crash into clips.
    pub fn open(settings: ClipsSettings) -> std::io::Result<Clips> {
        std::fs::create_dir_all(&settings.dir)?;
        Ok(Clips { settings })
    }

    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// The newest finished clip.
    pub fn last(&self) -> Option<ClipEntry> {
        None
    }

    /// A finished clip by id; ids are validated, never used as paths unchecked.
    pub fn get(&self, _id: &str) -> Option<ClipEntry> {
        None
    }

    pub fn usage(&self) -> Usage {
        Usage {
            dir: self.settings.dir.display().to_string(),
            clips: 0,
            bytes: 0,
            max_bytes: self.settings.max_bytes,
            free_bytes: 0,
            min_free_bytes: self.settings.min_free_bytes,
        }
    }

    /// Deletes the oldest finished clips while over budget; never `protect`.
    pub fn enforce(&self, _protect: Option<&str>) {}
}
