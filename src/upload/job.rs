//! A clip's upload job: `<id>.upload` beside the clip, JSON, written to a
//! temporary name, fsynced, renamed, and the directory fsynced before the
//! uploader acts on it, so a power cut leaves the old record or the new one,
//! never half of one. It carries what a restart needs to resume: the key,
//! the clip's size and SHA-256, a multipart upload's id and the parts done.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Uploaded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    pub number: u16,
    pub etag: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Multipart {
    pub upload_id: String,
    pub parts: Vec<DonePart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub camera: String,
    pub key: String,
    pub size: u64,
    pub sha256: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<Multipart>,
    /// The manifest is up too (after the clip).
    #[serde(default)]
    pub manifest: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_at: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Times the stored object was found wrong and sent again.
    #[serde(default)]
    pub reuploads: u32,
}

/// Where a clip's job lives: beside it.
pub fn path_for(clip: &Path) -> PathBuf {
    clip.with_extension("upload")
}

impl Job {
    pub fn load(path: &Path) -> Option<Job> {
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(j) => Some(j),
            Err(e) => {
                log::warn!(
                    "upload record {} unreadable ({e}); starting it again",
                    path.display()
                );
                None
            }
        }
    }

    /// Writes the record durably: temporary file, fsync, rename, fsync dir.
    pub fn save(&self, path: &Path) -> crate::error::Result<()> {
        use crate::error::{Error, Kind};
        let tmp = path.with_extension("upload.tmp");
        let io = |e: std::io::Error| Error::io(format!("cannot write {}", path.display()), e);
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::new(Kind::Internal, e.to_string()))?;
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_a_round_trip_and_never_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let clip = dir.path().join("cam-20261202-063000.mp4");
        let job = Job {
            id: "cam-20261202-063000".into(),
            camera: "cam".into(),
            key: "k".into(),
            size: 10,
            sha256: "00".into(),
            state: State::Pending,
            multipart: Some(Multipart {
                upload_id: "u".into(),
                parts: vec![DonePart {
                    number: 1,
                    etag: "e".into(),
                    size: 5,
                }],
            }),
            manifest: false,
            uploaded_at: None,
            attempts: 1,
            error: None,
            reuploads: 0,
        };
        let p = path_for(&clip);
        job.save(&p).unwrap();
        assert_eq!(Job::load(&p), Some(job));
        assert!(!p.with_extension("upload.tmp").exists());
        std::fs::write(&p, b"{\"id\": ").unwrap();
        assert_eq!(Job::load(&p), None);
    }
}
