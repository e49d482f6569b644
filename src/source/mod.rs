//! Frame sources behind one trait: a V4L2 webcam in MJPEG mode, the synthetic
//! `test` pattern, and an MJPEG file looped at its rate.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub mod card;
pub mod detached;
pub mod file;
pub mod http_mjpeg;
pub mod jpeg;
pub mod rtsp;
pub mod split;
pub mod test;
pub mod v4l2;

/// One JPEG as delivered by a source, before validation.
#[derive(Debug)]
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

pub use crate::budget::Excess;

pub trait Source: Send {
    /// Blocks up to `timeout` for the next frame; `Ok(None)` means nothing came
    /// in time (a stall), an error means the source is gone and must be reopened.
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError>;
    /// The format actually delivered (after negotiation).
    fn format(&self) -> Format;
    /// What the source itself delivers (frames reach the hub as JPEGs).
    fn pixel_format(&self) -> &'static str {
        "MJPEG"
    }
    /// What it refused since last asked (taken: the next call starts at 0).
    fn take_excess(&mut self) -> Excess {
        Excess::default()
    }
}

/// Paces a synthetic source on CLOCK_MONOTONIC. Tick `n` is computed as
/// `start + n * period`, never accumulated, so the rate does not drift; a
/// frame's capture time is its tick, not the moment it was handed out.
pub struct Pacer {
    start: Duration,
    n: u64,
    fps: u32,
}

impl Pacer {
    pub fn new(fps: u32) -> Pacer {
        Pacer {
            start: crate::clock::monotonic_now(),
            n: 0,
            fps: fps.max(1),
        }
    }

    fn tick(&self, n: u64) -> Duration {
        let ns = u128::from(n) * 1_000_000_000 / u128::from(self.fps);
        self.start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn period(&self) -> Duration {
        Duration::from_secs(1) / self.fps
    }

    /// Sleeps until the next tick, at most `timeout`; the tick if it came.
    /// A consumer that fell behind skips the missed ticks (as a camera drops
    /// frames) instead of getting a burst of stale ones.
    pub fn wait(&mut self, timeout: Duration) -> Option<Duration> {
        let now = crate::clock::monotonic_now();
        let mut tick = self.tick(self.n);
        if now > tick + 2 * self.period() {
            let behind = (now - self.start).as_nanos() * u128::from(self.fps) / 1_000_000_000;
            self.n = u64::try_from(behind).unwrap_or(u64::MAX);
            tick = self.tick(self.n);
        }
        if tick > now {
            let wait = tick - now;
            if wait > timeout {
                std::thread::sleep(timeout);
                return None;
            }
            std::thread::sleep(wait);
        }
        self.n += 1;
        Some(tick)
    }
}

/// The wall-clock time at which CLOCK_MONOTONIC read `capture`.
pub fn wall_at(capture: Duration) -> SystemTime {
    let now_mono = crate::clock::monotonic_now();
    let now = SystemTime::now();
    if capture <= now_mono {
        now.checked_sub(now_mono - capture).unwrap_or(now)
    } else {
        now + (capture - now_mono)
    }
}

/// Which source the configuration names. `Debug` shows the URL redacted.
#[derive(Clone, PartialEq)]
pub enum SourceSpec {
    /// `/dev/video0` if it opens, else `test` with a loud warning.
    Auto,
    Test,
    Device(PathBuf),
    File(PathBuf),
    /// An HTTP MJPEG network camera (`http://` or `https://`, perhaps with
    /// credentials, which never leave this value).
    Http(String),
    /// An RTSP network camera (H.264/H.265), credentials split off.
    Rtsp(rtsp::RtspUrl),
}

impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Http(url) => write!(f, "Http({:?})", http_mjpeg::redact(url)),
            SourceSpec::Rtsp(url) => write!(f, "Rtsp({:?})", url.shown()),
            SourceSpec::Auto => f.write_str("Auto"),
            SourceSpec::Test => f.write_str("Test"),
            SourceSpec::Device(p) => write!(f, "Device({p:?})"),
            SourceSpec::File(p) => write!(f, "File({p:?})"),
        }
    }
}

impl SourceSpec {
    /// Reads a `source` setting; schemes we cannot open yet are refused
    /// here rather than taken for a file name.
    pub fn parse(s: &str) -> Result<SourceSpec, String> {
        let lower = s.to_ascii_lowercase();
        Ok(match s {
            "auto" => SourceSpec::Auto,
            "test" => SourceSpec::Test,
            _ if lower.starts_with("http://") || lower.starts_with("https://") => {
                http_mjpeg::check(s)?;
                SourceSpec::Http(s.to_string())
            }
            _ if lower.starts_with("rtsp://") || lower.starts_with("rtsps://") => {
                SourceSpec::Rtsp(rtsp::RtspUrl::parse(s)?)
            }
            _ if s.contains("://") => {
                return Err(
                    "unknown URL scheme: use rtsp://, http:// or https:// for a network camera"
                        .into(),
                );
            }
            p if p.starts_with("/dev/") => SourceSpec::Device(PathBuf::from(p)),
            p => SourceSpec::File(PathBuf::from(p)),
        })
    }

    /// `v4l2`, `test`, `file` or `http`, for `/status`.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceSpec::Auto | SourceSpec::Device(_) => "v4l2",
            SourceSpec::Test => "test",
            SourceSpec::File(_) => "file",
            SourceSpec::Http(_) => "http",
            SourceSpec::Rtsp(_) => "rtsp",
        }
    }

    /// The name shown in logs, `/status` and the page: never credentials.
    pub fn display_name(&self) -> String {
        match self {
            SourceSpec::Auto => "auto".into(),
            SourceSpec::Test => "test".into(),
            SourceSpec::Device(p) | SourceSpec::File(p) => p.display().to_string(),
            SourceSpec::Http(url) => http_mjpeg::redact(url),
            SourceSpec::Rtsp(url) => url.shown(),
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
        SourceSpec::Http(url) => Ok(Box::new(http_mjpeg::HttpMjpegSource::open(url, want)?)),
        // Its own capture thread (`rtsp::spawn`), not a JPEG source.
        SourceSpec::Rtsp(url) => Err(SourceError(format!(
            "{} is an RTSP camera, not a JPEG source",
            url.shown()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let parse = |s| SourceSpec::parse(s).unwrap();
        assert_eq!(parse("auto"), SourceSpec::Auto);
        assert_eq!(parse("test"), SourceSpec::Test);
        assert_eq!(
            parse("/dev/v4l/by-id/usb-cam-video-index0"),
            SourceSpec::Device(PathBuf::from("/dev/v4l/by-id/usb-cam-video-index0"))
        );
        assert_eq!(
            parse("cam.mjpeg"),
            SourceSpec::File(PathBuf::from("cam.mjpeg"))
        );
        let door = "http://admin:s3cret@192.168.1.50:81/stream";
        assert_eq!(parse(door), SourceSpec::Http(door.into()));
        assert_eq!(parse(door).display_name(), "http://192.168.1.50:81/stream");
        assert_eq!(parse(door).kind(), "http");
        let rtsp = parse("rtsp://admin:Kx7@cam/stream");
        assert_eq!(rtsp.kind(), "rtsp");
        assert_eq!(rtsp.display_name(), "rtsp://cam/stream");
        assert!(!format!("{rtsp:?}").contains("Kx7"));
        assert!(SourceSpec::parse("ftp://cam/x").is_err());
    }

    #[test]
    fn pacer_ticks_on_a_fixed_grid() {
        let mut p = Pacer::new(100);
        let t0 = p.wait(Duration::from_secs(1)).unwrap();
        let t1 = p.wait(Duration::from_secs(1)).unwrap();
        let t2 = p.wait(Duration::from_secs(1)).unwrap();
        assert_eq!(t1 - t0, Duration::from_millis(10));
        assert_eq!(t2 - t0, Duration::from_millis(20));
        // The tick, not the hand-out time, is the capture time.
        assert!(crate::clock::monotonic_now() >= t2);
    }

    #[test]
    fn pacer_times_out_and_skips_missed_ticks() {
        let mut p = Pacer::new(1);
        p.wait(Duration::from_secs(1)).unwrap();
        assert!(
            p.wait(Duration::from_millis(5)).is_none(),
            "next tick is 1 s away"
        );
        let mut p = Pacer::new(1000);
        let first = p.wait(Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let before = crate::clock::monotonic_now();
        let late = p.wait(Duration::ZERO).unwrap();
        // Skipped the ticks missed while asleep: the tick handed out is the
        // last one due when asked, not the one after `first`.
        assert!(
            late > first + Duration::from_millis(29),
            "{:?}",
            late - first
        );
        // Within one period of the moment it was asked for, by construction.
        assert!(
            late + Duration::from_millis(1) > before,
            "{:?}",
            before - late
        );
        assert!(late <= crate::clock::monotonic_now());
        assert_eq!(
            (late - p.start).as_nanos() % 1_000_000,
            0,
            "still on the grid"
        );
    }

    #[test]
    fn wall_at_maps_monotonic_to_wall_time() {
        let now = crate::clock::monotonic_now();
        let wall = wall_at(now - Duration::from_millis(500));
        let age = SystemTime::now().duration_since(wall).unwrap();
        assert!(
            age >= Duration::from_millis(499) && age < Duration::from_secs(2),
            "{age:?}"
        );
    }
}
