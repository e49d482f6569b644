//! Finishing a clip — the one code path shared by `/stop` and by recovery of
//! a crashed recording at start. A full disk is known by its errno
//! (`Kind::DiskFull`), and cured, where it can be, by cutting the end.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::mux::{self, SampleTable};
use crate::clips::ClipPaths;
use crate::error::{Context as _, Error, Kind, Result};

/// Makes the names in `dir` (a new or renamed file) survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("fsync directory {}", dir.display()))
}

/// Turns a `.part` into a playable clip: cut it after the last sample in the
/// table (drops unjournaled bytes or a half-written `moov` from a crash),
/// append `moov`, patch the mdat size, fsync, rename to `.mp4`, fsync the
/// directory, delete the journal. Returns the final size in bytes. The file
/// stays usable on error, so a caller may cut the table and try again.
pub fn finish_file(paths: &ClipPaths, file: &mut File, table: &SampleTable) -> Result<u64> {
    let part = paths.part.display();
    let moov = table
        .moov()
        .map_err(|e| Error::new(Kind::Internal, format!("{part}: {e}")))?;
    let end = table.data_end();
    let mdat_pos = table.data_start - mux::MDAT_HEADER_LEN;
    let io = |e: std::io::Error| Error::io(format!("finishing {part}"), e);
    file.set_len(end).map_err(io)?;
    file.seek(SeekFrom::Start(end)).map_err(io)?;
    file.write_all(&moov).map_err(io)?;
    file.seek(SeekFrom::Start(mdat_pos)).map_err(io)?;
    file.write_all(&mux::mdat_header(end - mdat_pos))
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&paths.part, &paths.fin)
        .context(|| format!("rename {part} to {}", paths.fin.display()))?;
    sync_dir(&paths.dir)?;
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
) -> Result<(u64, usize)> {
    let mut cut = 0;
    loop {
        match finish_file(paths, file, table) {
            Ok(size) => return Ok((size, cut)),
            Err(e) if e.kind() == Kind::DiskFull && table.samples.len() > 1 => {
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
            Err(e) => return Err(e),
        }
    }
}
