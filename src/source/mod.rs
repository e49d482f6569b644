//! Frame sources behind one trait: a V4L2 webcam in MJPEG mode, the synthetic
//! `test` pattern, and an MJPEG file looped at its rate.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub mod file;
pub mod test;
pub mod v4l2;

/// One JPEG as delivered by a source, before validation.
pub struct RawFrame {
    pub jpeg: Vec<u8>,
    /// CLOCK_MONOTONIC capture time (V4L2 buffer timestamp or the source's clock).
    pub capture: Duration,
    pub wall: SystemTime,
}

/// What a source was asked for; it reports what it actually gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// An error with its context (device or path) already in the message.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceError(pub String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

pub trait Source: Send {
    /// Blocks up to `timeout` for the next frame; `Ok(None)` means nothing came
    /// in time (a stall), an error means the source is gone and must be reopened.
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError>;
    /// The format actually delivered (after negotiation).
    fn format(&self) -> Format;
}

/// Which source the configuration names.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// `/dev/video0` if it opens, else `test` with a loud warning.
    Auto,
    Test,
    Device(PathBuf),
    File(PathBuf),
}

impl SourceSpec {
    pub fn parse(s: &str) -> SourceSpec {
        match s {
            "auto" => SourceSpec::Auto,
            "test" => SourceSpec::Test,
            p if p.starts_with("/dev/") => SourceSpec::Device(PathBuf::from(p)),
            p => SourceSpec::File(PathBuf::from(p)),
        }
    }

    /// `v4l2`, `test` or `file`, for `/status`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Auto | SourceSpec::Device(_) => "v4l2",
            SourceSpec::Test => "test",
            SourceSpec::File(_) => "file",
        }
    }
}

/// Opens the source the spec names (`Auto` is resolved by the capture thread).
pub fn open(spec: &SourceSpec, want: Format) -> Result<Box<dyn Source>, SourceError> {
    match spec {
        SourceSpec::Auto => v4l2::open(std::path::Path::new("/dev/video0"), want),
        SourceSpec::Device(p) => v4l2::open(p, want),
        SourceSpec::Test => Ok(Box::new(test::TestSource::new(want)?)),
        SourceSpec::File(p) => Ok(Box::new(file::FileSource::open(p, want)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(SourceSpec::parse("auto"), SourceSpec::Auto);
        assert_eq!(SourceSpec::parse("test"), SourceSpec::Test);
        assert_eq!(
            SourceSpec::parse("/dev/v4l/by-id/usb-cam-video-index0"),
            SourceSpec::Device(PathBuf::from("/dev/v4l/by-id/usb-cam-video-index0"))
        );
        assert_eq!(
            SourceSpec::parse("cam.mjpeg"),
            SourceSpec::File(PathBuf::from("cam.mjpeg"))
        );
    }
}
