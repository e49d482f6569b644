//! Crash safety: a clip is written as `<id>.mp4.part` (ftyp, mdat, samples)
//! plus a sidecar `<id>.journal` listing the samples known to be on disk.
//!
//! About once a second the `.part` is fsynced FIRST and only THEN are the
//! lines for the now-durable samples appended to the journal and fsynced
//! (write, fsync, then record the fact — as Moonfire NVR does). A journal
//! line therefore never points at data that may be missing after a power
//! cut, and a kill or power cut loses at most the last second. The `.part`
//! is only ever appended to; finishing appends `moov` and patches the mdat
//! size in the header, once.
//!
//! Journal (text, one fact per line, readable with `cat`):
//! ```text
//! video-recorder journal 1
//! timescale 90000
//! size 1280 720
//! created 1700000000
//! sps 6742c01f...
//! pps 68ce3c80
//! data 48
//! s 51234 0 k        <- sample: size, pts (ticks), k = keyframe, - = not
//! s 8123 3000 -
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::finish::{finish_trimming, sync_dir};
use super::mux::{self, SampleEntry, SampleTable, TrackInfo};
pub use crate::clips::ClipPaths;
use crate::error::{Context as _, Error, Kind, Result};

const MAGIC: &str = "video-recorder journal 1";

/// Writes one clip sequentially and keeps its journal.
pub struct ClipWriter {
    pub paths: ClipPaths,
    file: File,
    journal: Option<File>,
    /// Whether the journal has its header (written with the first samples).
    headed: bool,
    journaled: usize,
    pub info: Option<TrackInfo>,
    pub samples: Vec<SampleEntry>,
    /// Stored in the clip when it is finished (see `SampleTable`).
    pub thumbnail: Option<Vec<u8>>,
}

impl ClipWriter {
    /// Creates `<id>.mp4.part` (never overwriting anything) with its headers.
    pub fn create(paths: ClipPaths) -> Result<ClipWriter> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&paths.part)
            .context(|| format!("create {}", paths.part.display()))?;
        let mut head = mux::ftyp();
        head.extend_from_slice(&mux::mdat_header(0));
        // Everything a recording needs is opened now, at /start, not a
        // second in (when descriptors may have run out meanwhile): the
        // journal (its header goes in with the first durable samples) and
        // the directory, for the fsync that makes both names survive.
        let opened = file
            .write_all(&head)
            .context(|| format!("write {}", paths.part.display()))
            .and_then(|()| open_journal(&paths.journal))
            .and_then(|j| sync_dir(&paths.dir).map(|()| j));
        let journal = match opened {
            Ok(j) => j,
            Err(e) => {
                // Leave nothing behind (a full disk made empty `.part`s).
                drop(file);
                let _ = std::fs::remove_file(&paths.part);
                let _ = std::fs::remove_file(&paths.journal);
                return Err(e);
            }
        };
        Ok(ClipWriter {
            paths,
            file,
            journal: Some(journal),
            headed: false,
            journaled: 0,
            info: None,
            samples: Vec::new(),
            thumbnail: None,
        })
    }

    /// Appends one sample. On error the sample is not in the table and any
    /// partial bytes are cut off when the clip is finished.
    pub fn write_sample(&mut self, data: &[u8], pts: u64, sync: bool) -> Result<()> {
        self.file
            .write_all(data)
            .context(|| format!("write {}", self.paths.part.display()))?;
        self.samples.push(SampleEntry {
            size: data.len() as u32,
            pts,
            sync,
        });
        Ok(())
    }

    /// If the clip's files were deleted under us (someone removed the clips
    /// directory), recreates the directory and writes them again from the
    /// open descriptor and the samples in memory: an unlinked file cannot be
    /// linked back, but its data is still ours to copy.
    fn restore_if_deleted(&mut self) -> Result<()> {
        use std::os::unix::fs::FileExt;
        if self.paths.part.symlink_metadata().is_ok() {
            return Ok(());
        }
        let dir = self.paths.dir.clone();
        std::fs::create_dir_all(&dir).context(|| format!("recreate {}", dir.display()))?;
        let part = self.paths.part.clone();
        let io = |e: std::io::Error| Error::io(format!("rewrite {}", part.display()), e);
        let mut copy = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(io)?;
        let len = self.file.metadata().map_err(io)?.len();
        let mut buf = vec![0u8; 1 << 20];
        let mut at = 0;
        while at < len {
            let n = self.file.read_at(&mut buf, at).map_err(io)?;
            if n == 0 {
                break;
            }
            copy.write_all(&buf[..n]).map_err(io)?;
            at += n as u64;
        }
        self.file = copy;
        // The journal again, for what was durable; the next `make_durable`
        // appends the rest after fsyncing the new copy.
        let journaled = std::mem::take(&mut self.journaled);
        self.journal = None;
        self.headed = false;
        if journaled > 0 {
            self.make_durable_upto(journaled)?;
        }
        log::warn!(
            "the clips directory {} was removed while recording: recreated it and rewrote {} \
             ({len} bytes)",
            dir.display(),
            part.display()
        );
        Ok(())
    }

    /// Clip time from the first sample to the last journaled one: a lower
    /// bound on what recovery would give back after a crash now.
    pub fn durable_ticks(&self) -> u64 {
        match (self.samples.first(), self.journaled.checked_sub(1)) {
            (Some(first), Some(last)) => self.samples[last].pts.saturating_sub(first.pts),
            _ => 0,
        }
    }

    /// Makes every sample written so far durable: fsync the data, then journal it.
    pub fn make_durable(&mut self) -> Result<()> {
        self.restore_if_deleted()?;
        self.make_durable_upto(self.samples.len())
    }

    /// Makes the first `upto` samples durable (all of them but after a restore).
    fn make_durable_upto(&mut self, upto: usize) -> Result<()> {
        if upto <= self.journaled {
            return Ok(());
        }
        let Some(info) = &self.info else {
            return Ok(());
        };
        let part = &self.paths.part;
        self.file
            .sync_data()
            .context(|| format!("fsync {}", part.display()))?;
        let mut text = String::new();
        if !self.headed {
            text = header(info);
        }
        for s in &self.samples[self.journaled..upto] {
            text.push_str(&format!(
                "s {} {} {}\n",
                s.size,
                s.pts,
                if s.sync { "k" } else { "-" }
            ));
        }
        let jpath = &self.paths.journal;
        // Only after the directory was recreated (restore_if_deleted).
        let created = self.journal.is_none();
        if created {
            self.journal = Some(open_journal(jpath)?);
        }
        if let Some(j) = self.journal.as_mut() {
            j.write_all(text.as_bytes())
                .and_then(|_| j.sync_data())
                .context(|| format!("write {}", jpath.display()))?;
        }
        if created {
            // The new names (.part and journal) must survive a power cut too.
            sync_dir(&self.paths.dir)?;
        }
        self.headed = true;
        self.journaled = upto;
        Ok(())
    }

    /// Finishes the clip: `moov` built from the in-memory table, then rename.
    /// On a full disk the last samples are cut until the index fits. Returns
    /// the final size in bytes and the table as finished.
    pub fn finish(mut self, end: u64) -> Result<(u64, SampleTable)> {
        self.restore_if_deleted()?;
        let info = self
            .info
            .ok_or_else(|| Error::said(Kind::Empty, "no frames were encoded"))?;
        let mut table = SampleTable {
            info,
            data_start: mux::data_start(),
            samples: self.samples,
            end,
            thumbnail: self.thumbnail,
        };
        drop(self.journal);
        let (size, _) = finish_trimming(&self.paths, &mut self.file, &mut table)?;
        Ok((size, table))
    }

    /// Removes a clip that never got a frame.
    pub fn discard(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.paths.part);
        let _ = std::fs::remove_file(&self.paths.journal);
    }

    /// Test hook: stop as a `kill -9` would, leaving `.part` and journal behind.
    #[cfg(test)]
    pub fn abandon(self) {}
}

fn open_journal(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)
        .context(|| format!("create {}", path.display()))
}

fn header(info: &TrackInfo) -> String {
    let entry = info
        .entry
        .as_ref()
        .map(|e| format!("entry {}\n", hex(e)))
        .unwrap_or_default();
    format!(
        "{MAGIC}\ntimescale {}\nsize {} {}\ncreated {}\nsps {}\npps {}\n{entry}data {}\n",
        info.timescale,
        info.width,
        info.height,
        info.created_unix,
        hex(&info.sps),
        hex(&info.pps),
        mux::data_start()
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses a journal. Lines after the first damaged or incomplete one are
/// ignored (a crash can cut the last line). `None` if the header is unusable.
/// `end` of the returned table is the last sample's pts plus the previous
/// frame interval (the true end was lost with the process).
pub fn parse(text: &str) -> Option<SampleTable> {
    // Only newline-terminated lines were completely written.
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut lines = complete.lines();
    if lines.next()? != MAGIC {
        return None;
    }
    let (mut ts, mut size, mut created, mut sps, mut pps, mut data) =
        (None, None, None, None, None, None);
    let mut entry = None;
    let mut samples: Vec<SampleEntry> = Vec::new();
    for line in lines {
        let mut f = line.split(' ');
        let key = f.next()?;
        let args: Vec<&str> = f.collect();
        let ok = match (key, args.as_slice()) {
            ("timescale", [v]) => v.parse().ok().map(|v| ts = Some(v)),
            ("size", [w, h]) => w.parse().ok().zip(h.parse().ok()).map(|s| size = Some(s)),
            ("created", [v]) => v.parse().ok().map(|v| created = Some(v)),
            ("sps", [v]) => unhex(v).map(|v| sps = Some(v)),
            ("pps", [v]) => unhex(v).map(|v| pps = Some(v)),
            ("entry", [v]) => unhex(v).map(|v| entry = Some(v)),
            ("data", [v]) => v.parse().ok().map(|v| data = Some(v)),
            ("s", [n, pts, k]) => parse_sample(n, pts, k, samples.last()).map(|s| samples.push(s)),
            _ => None,
        };
        if ok.is_none() {
            break;
        }
    }
    let ((width, height), timescale) = (size?, ts?);
    if timescale == 0 {
        return None;
    }
    let end = match samples.as_slice() {
        [.., a, b] => b.pts + (b.pts - a.pts),
        [a] => a.pts + u64::from(timescale) / 30,
        [] => 0,
    };
    Some(SampleTable {
        info: TrackInfo {
            width,
            height,
            sps: sps?,
            pps: pps?,
            entry,
            timescale,
            created_unix: created.unwrap_or(0),
        },
        data_start: data?,
        samples,
        end,
        thumbnail: None,
    })
}

fn parse_sample(n: &str, pts: &str, k: &str, prev: Option<&SampleEntry>) -> Option<SampleEntry> {
    let s = SampleEntry {
        size: n.parse().ok().filter(|&n| n > 0)?,
        pts: pts.parse().ok()?,
        sync: match k {
            "k" => true,
            "-" => false,
            _ => return None,
        },
    };
    // Presentation times only ever increase.
    prev.is_none_or(|p| s.pts > p.pts).then_some(s)
}

#[cfg(test)]
mod tests;
