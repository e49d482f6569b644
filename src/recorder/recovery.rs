//! Finishing a clip — the one code path shared by `/stop` and by recovery of
//! a crashed recording at start — and the scan for leftovers.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::journal::{self, ClipPaths};
use super::mux::{self, SampleTable};
use crate::ids::{ClipFile, ClipId};

/// Why finishing failed: `no_space` when the disk was full (ENOSPC or
/// EDQUOT), which cutting samples off the end may cure.
#[derive(Debug)]
pub struct FinishError {
    pub message: String,
    pub no_space: bool,
}

impl From<String> for FinishError {
    fn from(message: String) -> FinishError {
        FinishError {
            message,
            no_space: false,
        }
    }
}

/// Turns a `.part` into a playable clip: cut it after the last sample in the
/// table (drops unjournaled bytes or a half-written `moov` from a crash),
/// append `moov`, patch the mdat size, fsync, rename to `.mp4`, fsync the
/// directory, delete the journal. Returns the final size in bytes. The file
/// stays usable on error, so a caller may cut the table and try again.
pub fn finish_file(
    paths: &ClipPaths,
    file: &mut File,
    table: &SampleTable,
) -> Result<u64, FinishError> {
    let part = paths.part.display();
    let moov = table.moov().map_err(|e| format!("{part}: {e}"))?;
    let end = table.data_end();
    let mdat_pos = table.data_start - mux::MDAT_HEADER_LEN;
    let io = |e: std::io::Error| FinishError {
        no_space: matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
        message: format!("finishing {part}: {e}"),
    };
    file.set_len(end).map_err(io)?;
    file.seek(SeekFrom::Start(end)).map_err(io)?;
    file.write_all(&moov).map_err(io)?;
    file.seek(SeekFrom::Start(mdat_pos)).map_err(io)?;
    file.write_all(&mux::mdat_header(end - mdat_pos))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&paths.part, &paths.fin).map_err(|e| FinishError {
        no_space: matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)),
        message: format!("rename {part} to {}: {e}", paths.fin.display()),
    })?;
    journal::sync_dir(&paths.dir)?;
    // A journal left behind by a crash right here is removed by the next scan.
    match std::fs::remove_file(&paths.journal) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            log::warn!("cannot remove journal {}: {e}", paths.journal.display())
        }
        _ => {}
    }
    Ok(end + moov.len() as u64)
}

/// As `finish_file`, and when the disk is full, cuts samples off the end
/// (at least the index's size and 256 KiB more each time) until the index
/// fits: the clip loses its last moments instead of all of them. Returns
/// the size and the samples cut.
pub fn finish_trimming(
    paths: &ClipPaths,
    file: &mut File,
    table: &mut SampleTable,
) -> Result<(u64, usize), String> {
    let mut cut = 0;
    loop {
        match finish_file(paths, file, table) {
            Ok(size) => return Ok((size, cut)),
            Err(e) if e.no_space && table.samples.len() > 1 => {
                let need = table.moov().map_or(0, |m| m.len() as u64) + 256 * 1024;
                let mut freed = 0;
                while freed < need && table.samples.len() > 1 {
                    let s = table.samples.pop().expect("more than one sample");
                    freed += u64::from(s.size);
                    cut += 1;
                }
                // The new last sample lasts as long as the one before it.
                table.end = match table.samples.as_slice() {
                    [.., a, b] => b.pts + (b.pts - a.pts),
                    [a] => a.pts + u64::from(table.info.timescale) / 30,
                    [] => 0,
                };
                log::warn!(
                    "{}: disk full while finishing; cut the last {cut} frames to make room",
                    paths.part.display()
                );
            }
            Err(e) => return Err(e.message),
        }
    }
}

/// What recovery did with one leftover.
#[derive(Debug, PartialEq)]
pub enum Recovered {
    /// Became `<id>.mp4` with this many frames and seconds.
    Clip {
        id: String,
        frames: usize,
        duration_sec: f64,
    },
    /// Had nothing playable and was removed.
    Removed { id: String },
    /// Left as it was (a clip of that id exists, or finishing failed).
    Kept { id: String },
}

/// Turns every leftover `.part` + journal in `dir` into a clip, removes
/// leftovers with no usable samples and stray journals. Logs each action.
pub fn recover_dir(dir: &Path, ours: impl Fn(&ClipId) -> bool) -> Vec<Recovered> {
    let mut done = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return done;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let files: Vec<(ClipId, ClipFile)> = names
        .iter()
        .filter_map(|n| ClipId::from_file_name(n))
        .filter(|(id, _)| ours(id))
        .collect();
    for (id, _) in files.iter().filter(|(_, f)| *f == ClipFile::Part) {
        done.push(recover_one(dir, id));
    }
    for (id, _) in files.iter().filter(|(_, f)| *f == ClipFile::Journal) {
        let paths = ClipPaths::new(dir, id);
        if !paths.part.exists() && paths.journal.exists() {
            log::info!("removing stray journal {}", paths.journal.display());
            let _ = std::fs::remove_file(&paths.journal);
        }
    }
    done
}

fn recover_one(dir: &Path, id: &ClipId) -> Recovered {
    let paths = ClipPaths::new(dir, id);
    let removed = |why: &str| {
        log::warn!(
            "removing leftover {} from an interrupted recording: {why}",
            paths.part.display()
        );
        let _ = std::fs::remove_file(&paths.part);
        let _ = std::fs::remove_file(&paths.journal);
        Recovered::Removed { id: id.to_string() }
    };
    if paths.fin.exists() {
        // Never touch a finished clip; a .part beside it is not ours to merge.
        log::warn!(
            "leaving {} alone: {} already exists",
            paths.part.display(),
            paths.fin.display()
        );
        return Recovered::Kept { id: id.to_string() };
    }
    let table = match std::fs::read(&paths.journal) {
        Ok(bytes) => journal::parse(&String::from_utf8_lossy(&bytes)),
        Err(_) => None,
    };
    let Some(mut table) = table else {
        return removed("no usable journal (killed before its first second was durable)");
    };
    let file = match OpenOptions::new().read(true).write(true).open(&paths.part) {
        Ok(f) => f,
        Err(e) => return removed(&format!("cannot open: {e}")),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Journaled samples are durable by construction; guard against a damaged disk anyway.
    while !table.samples.is_empty() && table.data_end() > len {
        table.samples.pop();
    }
    if table.samples.is_empty() || table.data_start > len {
        return removed("no samples on disk");
    }
    let mut file = file;
    match finish_trimming(&paths, &mut file, &mut table).map(|(size, _)| size) {
        Ok(size) => {
            let frames = table.samples.len();
            let duration_sec = table.end.saturating_sub(table.samples[0].pts) as f64
                / f64::from(table.info.timescale);
            log::info!(
                "recovered interrupted recording {}: {frames} frames, {duration_sec:.2} s, {size} bytes",
                paths.fin.display()
            );
            Recovered::Clip {
                id: id.to_string(),
                frames,
                duration_sec,
            }
        }
        // Keep the files: a later start (say, with more free space) can try again.
        Err(e) => {
            log::error!("cannot recover {}: {e}", paths.part.display());
            Recovered::Kept { id: id.to_string() }
        }
    }
}
