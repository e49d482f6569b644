//! An MJPEG file (concatenated JPEGs, as `ffmpeg -f mjpeg` writes) looped at
//! the configured rate. The file is read as a stream, never whole, and opened
//! again at each loop: a file that disappears makes the source fail (and the
//! capture thread show NO SIGNAL) until it is back.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::split::{Scan, next_jpeg};
use super::{Format, Pacer, RawFrame, Source, SourceError};

/// Bytes read at a time.
const CHUNK: usize = 256 * 1024;
/// A "frame" larger than this is garbage: it is handed out (and counted as
/// broken) rather than buffered without bound (the camera's budget).
const MAX_FRAME: usize = crate::budget::FRAME_BYTES;

pub struct FileSource {
    path: PathBuf,
    format: Format,
    pass: Option<Pass>,
    frames_this_pass: u64,
    pending: Option<Vec<u8>>,
    pacer: Pacer,
}

impl FileSource {
    /// Opens the file and reads the frame size from the first JPEG's SOF.
    pub fn open(path: &Path, want: Format) -> Result<FileSource, SourceError> {
        let (width, height) = first_frame_size(path)?;
        let format = Format {
            width,
            height,
            fps: want.fps,
        };
        log::info!(
            "MJPEG file {}: {width}x{height}, looped at {} fps",
            path.display(),
            want.fps
        );
        Ok(FileSource {
            path: path.to_path_buf(),
            format,
            pass: None,
            frames_this_pass: 0,
            pending: None,
            pacer: Pacer::new(want.fps),
        })
    }

    /// The next JPEG of the file, starting a new pass (re-opening) at the end.
    fn read_next(&mut self) -> Result<Vec<u8>, SourceError> {
        loop {
            let pass = match &mut self.pass {
                Some(p) => p,
                None => {
                    self.frames_this_pass = 0;
                    self.pass.insert(Pass::open(&self.path, CHUNK)?)
                }
            };
            if let Some(jpeg) = pass.next(&self.path)? {
                self.frames_this_pass += 1;
                return Ok(jpeg);
            }
            if self.frames_this_pass == 0 {
                return Err(no_frames(&self.path));
            }
            self.pass = None;
        }
    }
}

impl Source for FileSource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        // Read ahead of the tick so file I/O does not delay the frame.
        if self.pending.is_none() {
            self.pending = Some(self.read_next()?);
        }
        let Some(capture) = self.pacer.wait(timeout) else {
            return Ok(None);
        };
        let jpeg = self.pending.take().unwrap_or_default();
        Ok(Some(RawFrame {
            jpeg,
            capture,
            wall: super::wall_at(capture),
        }))
    }

    fn format(&self) -> Format {
        self.format
    }
}

fn no_frames(path: &Path) -> SourceError {
    SourceError(format!(
        "MJPEG file {}: no JPEG frames in it (expected concatenated JPEGs, e.g. `ffmpeg ... -c:v mjpeg -f mjpeg FILE`)",
        path.display()
    ))
}

/// Size of the first JPEG in the file whose header parses; 0x0 for one
/// over the size limit (a JPEG file, but its frames are refused as broken).
fn first_frame_size(path: &Path) -> Result<(u32, u32), SourceError> {
    let mut pass = Pass::open(path, CHUNK)?;
    while let Some(jpeg) = pass.next(path)? {
        match super::jpeg::parse_header(&jpeg) {
            Ok(head) => return Ok((head.width, head.height)),
            Err(super::jpeg::TOO_LARGE) => return Ok((0, 0)),
            Err(_) => {}
        }
    }
    Err(no_frames(path))
}

/// One read through the file.
struct Pass {
    file: File,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    chunk: usize,
}

impl Pass {
    fn open(path: &Path, chunk: usize) -> Result<Pass, SourceError> {
        let file = File::open(path)
            .map_err(|e| SourceError(format!("MJPEG file {}: cannot open: {e}", path.display())))?;
        Ok(Pass {
            file,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            chunk,
        })
    }

    /// The next JPEG (possibly broken: the caller's checks count those), or
    /// `None` at the end of the file.
    fn next(&mut self, path: &Path) -> Result<Option<Vec<u8>>, SourceError> {
        loop {
            let rest = &self.buf[self.pos..];
            match next_jpeg(rest) {
                Scan::Frame(r) => {
                    let jpeg = rest[r.clone()].to_vec();
                    self.pos += r.end;
                    return Ok(Some(jpeg));
                }
                Scan::Incomplete(start) => {
                    if self.eof || rest.len() - start > MAX_FRAME {
                        // A truncated last frame: out it goes, to be counted.
                        let jpeg = rest[start..].to_vec();
                        self.pos = self.buf.len();
                        return Ok(Some(jpeg));
                    }
                    self.buf.drain(..self.pos + start);
                }
                Scan::Nothing(keep) => {
                    if self.eof {
                        return Ok(None);
                    }
                    self.buf.drain(..self.pos + keep);
                }
            }
            self.pos = 0;
            self.fill(path)?;
        }
    }

    fn fill(&mut self, path: &Path) -> Result<(), SourceError> {
        let old = self.buf.len();
        self.buf.resize(old + self.chunk, 0);
        let n = loop {
            match self.file.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(SourceError(format!(
                        "MJPEG file {}: read error: {e}",
                        path.display()
                    )));
                }
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::jpeg::{sanitize, tests::sample_jpeg};

    fn want() -> Format {
        Format {
            width: 1280,
            height: 720,
            fps: 200,
        }
    }

    fn write(dir: &Path, name: &str, frames: &[Vec<u8>]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, frames.concat()).unwrap();
        p
    }

    #[test]
    fn reads_frames_in_small_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let frames = vec![
            sample_jpeg(32, 16),
            sample_jpeg(48, 32),
            sample_jpeg(16, 16),
        ];
        let p = write(dir.path(), "a.mjpeg", &frames);
        for chunk in [1, 7, 100, CHUNK] {
            let mut pass = Pass::open(&p, chunk).unwrap();
            let mut got = Vec::new();
            while let Some(j) = pass.next(&p).unwrap() {
                got.push(j);
            }
            assert_eq!(got, frames, "chunk {chunk}");
        }
    }

    #[test]
    fn reports_first_frame_size_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "b.mjpeg",
            &[sample_jpeg(48, 32), sample_jpeg(48, 32)],
        );
        let mut src = FileSource::open(&p, want()).unwrap();
        assert_eq!(
            src.format(),
            Format {
                width: 48,
                height: 32,
                fps: 200
            }
        );
        let mut last = Duration::ZERO;
        for _ in 0..5 {
            let f = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
            assert_eq!(sanitize(f.jpeg).unwrap().1, (48, 32));
            assert!(f.capture > last);
            last = f.capture;
        }
    }

    #[test]
    fn a_file_of_frames_over_the_size_limit_gives_no_size_and_no_frame() {
        let dir = tempfile::tempdir().unwrap();
        let huge = crate::source::jpeg::tests::with_sof_size(sample_jpeg(16, 16), 65535, 65535);
        let p = write(dir.path(), "huge.mjpeg", &[huge.clone(), huge]);
        let mut src = FileSource::open(&p, want()).unwrap();
        assert_eq!((src.format().width, src.format().height), (0, 0));
        let f = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        assert_eq!(sanitize(f.jpeg), Err(crate::source::jpeg::TOO_LARGE));
    }

    #[test]
    fn vanished_file_fails_naming_the_path_and_returns() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "c.mjpeg", &[sample_jpeg(32, 16)]);
        let mut src = FileSource::open(&p, want()).unwrap();
        src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        let away = dir.path().join("away.mjpeg");
        std::fs::rename(&p, &away).unwrap();
        let err = src.next_frame(Duration::from_secs(1)).unwrap_err();
        assert!(
            err.0.contains("c.mjpeg") && err.0.contains("cannot open"),
            "{err}"
        );
        let err = FileSource::open(&p, want()).err().unwrap();
        assert!(err.0.contains("c.mjpeg"), "{err}");
        std::fs::rename(&away, &p).unwrap();
        assert!(src.next_frame(Duration::from_secs(1)).unwrap().is_some());
    }

    #[test]
    fn file_without_jpeg_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.txt");
        std::fs::write(&p, b"hello, not a video\xFF").unwrap();
        let err = FileSource::open(&p, want()).err().unwrap();
        assert!(
            err.0.contains("notes.txt") && err.0.contains("no JPEG frames"),
            "{err}"
        );
        let empty = dir.path().join("empty.mjpeg");
        std::fs::write(&empty, b"").unwrap();
        assert!(FileSource::open(&empty, want()).is_err());
        let missing = FileSource::open(&dir.path().join("missing.mjpeg"), want());
        assert!(missing.err().unwrap().0.contains("missing.mjpeg"));
    }

    #[test]
    fn truncated_last_frame_is_handed_out_for_counting() {
        let dir = tempfile::tempdir().unwrap();
        let j = sample_jpeg(64, 64);
        let p = write(
            dir.path(),
            "d.mjpeg",
            &[j.clone(), j[..j.len() - 300].to_vec()],
        );
        let mut src = FileSource::open(&p, want()).unwrap();
        let a = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        let b = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        let c = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        assert!(sanitize(a.jpeg).is_ok());
        assert!(sanitize(b.jpeg).is_err());
        assert_eq!(c.jpeg, j, "loops back to the start");
    }
}
