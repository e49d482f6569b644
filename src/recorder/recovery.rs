//! The scan for leftovers at start: each `.part` with a usable journal is
//! finished as `/stop` would (`finish`), the rest removed.

use std::fs::OpenOptions;
use std::path::Path;

use super::finish::finish_trimming;
use super::journal::{self, ClipPaths};
use crate::ids::{ClipFile, ClipId};

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
