//! A V4L2 webcam in MJPEG mode, through `rscam` (no libv4l2, no bindgen).
//!
//! This layer stays thin because it cannot run here (no /dev/video*): the
//! choices (format, size, rate, timestamps, error text) are pure functions
//! with unit tests; the rest is calls into rscam.
//!
//! rscam opens the device blocking and does not expose its descriptor, so to
//! have a timeout (a stalled camera must be noticed) we find the descriptor
//! in /proc/self/fd by its device number, make it non-blocking and poll(2)
//! it before each capture.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::RawFd;
use std::path::Path;
use std::time::Duration;

use rscam::{IntervalInfo, ResolutionInfo};

use super::{Format, RawFrame, Source, SourceError};

/// Buffers queued in the driver: enough to ride out a slow moment, few
/// enough to keep latency low.
const BUFFERS: u32 = 4;

pub struct V4l2Source {
    cam: rscam::Camera,
    fd: Option<RawFd>,
    dev: String,
    format: Format,
    warned_timestamp: bool,
}

/// Opens the camera, requires MJPEG, negotiates the closest size and rate.
pub fn open(path: &Path, want: Format) -> Result<Box<dyn Source>, SourceError> {
    let dev = path.display().to_string();
    let err = |what: &str, e: &io::Error| SourceError(io_error_text(&dev, what, e));
    let path_str = path
        .to_str()
        .ok_or_else(|| SourceError(format!("camera {dev}: path is not UTF-8")))?;
    let rdev = std::fs::metadata(path)
        .map_err(|e| err("cannot open", &e))?
        .rdev();
    let before = device_fds(rdev);
    let mut cam = rscam::Camera::new(path_str).map_err(|e| err("cannot open", &e))?;
    let fd = {
        let new: Vec<RawFd> = device_fds(rdev).difference(&before).copied().collect();
        match new.as_slice() {
            [fd] => Some(*fd),
            _ => None,
        }
    };

    let offered = cam
        .formats()
        .map(|f| f.map(|f| (f.format, f.description)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| err("cannot list formats", &e))?;
    let fourcc = pick_fourcc(&offered).map_err(|m| SourceError(format!("camera {dev}: {m}")))?;
    let size = match cam.resolutions(&fourcc) {
        Ok(info) => choose_size(&info, (want.width, want.height)),
        Err(_) => (want.width, want.height),
    };
    let intervals = match cam.intervals(&fourcc, size) {
        Ok(info) => rank_intervals(&info, want.fps),
        Err(_) => vec![(1, want.fps)],
    };
    let mut last_err = None;
    let mut chosen = None;
    for &interval in intervals.iter().take(8) {
        let cfg = rscam::Config {
            interval,
            resolution: size,
            format: &fourcc,
            field: rscam::FIELD_NONE,
            nbuffers: BUFFERS,
        };
        match cam.start(&cfg) {
            Ok(()) => {
                chosen = Some(interval);
                break;
            }
            // The driver adjusted the rate: try the next closest one.
            Err(rscam::Error::BadInterval) => last_err = Some(rscam::Error::BadInterval),
            Err(e) => return Err(SourceError(start_error_text(&dev, size, interval, &e))),
        }
    }
    let Some(interval) = chosen else {
        let e = last_err.unwrap_or(rscam::Error::BadInterval);
        return Err(SourceError(start_error_text(&dev, size, (1, want.fps), &e)));
    };
    let fps = interval.1 as f64 / interval.0.max(1) as f64;
    let format = Format {
        width: size.0,
        height: size.1,
        fps: (fps.round() as u32).max(1),
    };
    log::info!(
        "camera {dev}: {} {}x{} at {fps:.2} fps (asked for {}x{} at {} fps); it offers {}",
        String::from_utf8_lossy(&fourcc),
        size.0,
        size.1,
        want.width,
        want.height,
        want.fps,
        offered_text(&offered)
    );
    let fd = fd.filter(|&fd| set_nonblocking(fd).is_ok());
    if fd.is_none() {
        log::warn!(
            "camera {dev}: cannot find its descriptor to poll; a stalled camera will only be noticed when it is unplugged"
        );
    }
    Ok(Box::new(V4l2Source {
        cam,
        fd,
        dev,
        format,
        warned_timestamp: false,
    }))
}

impl Source for V4l2Source {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        let mut revents = 0;
        if let Some(fd) = self.fd {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one pollfd we own, for a descriptor the camera keeps open.
            let r = unsafe { libc::poll(&mut p, 1, ms) };
            if r == 0 {
                return Ok(None);
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    return Ok(None);
                }
                return Err(SourceError(io_error_text(&self.dev, "poll", &e)));
            }
            revents = p.revents;
        }
        match self.cam.capture() {
            Ok(frame) => {
                let now = crate::clock::monotonic_now();
                let capture = match capture_time(frame.get_timestamp(), now) {
                    Some(t) => t,
                    None => {
                        if !self.warned_timestamp {
                            self.warned_timestamp = true;
                            log::warn!(
                                "camera {}: buffer timestamps are not on the monotonic clock; using the time frames arrive",
                                self.dev
                            );
                        }
                        now
                    }
                };
                let jpeg = frame.to_vec();
                drop(frame); // gives the buffer back to the driver
                Ok(Some(RawFrame {
                    jpeg,
                    capture,
                    wall: super::wall_at(capture),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    Err(SourceError(format!(
                        "camera {}: the device reported an error",
                        self.dev
                    )))
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(SourceError(io_error_text(&self.dev, "capture", &e))),
        }
    }

    fn format(&self) -> Format {
        self.format
    }
}

/// Descriptors of this process open on the character device `rdev`.
fn device_fds(rdev: u64) -> HashSet<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return HashSet::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let fd: RawFd = e.file_name().to_str()?.parse().ok()?;
            let meta = std::fs::metadata(e.path()).ok()?;
            (meta.file_type().is_char_device() && meta.rdev() == rdev).then_some(fd)
        })
        .collect()
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; only the O_NONBLOCK flag changes.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn offered_text(offered: &[([u8; 4], String)]) -> String {
    if offered.is_empty() {
        return "no formats".into();
    }
    offered
        .iter()
        .map(|(cc, desc)| format!("{} ({desc})", String::from_utf8_lossy(cc)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// MJPG, or JPEG as some cameras call the same thing; else an error that
/// lists what the camera offers.
pub fn pick_fourcc(offered: &[([u8; 4], String)]) -> Result<[u8; 4], String> {
    for want in [b"MJPG", b"JPEG"] {
        if offered.iter().any(|(cc, _)| cc == want) {
            return Ok(*want);
        }
    }
    if offered.is_empty() {
        return Err("offers no video capture formats (not a capture device? \
             a webcam often has a second /dev/videoN for metadata: try the other one)"
            .into());
    }
    Err(format!(
        "offers no MJPEG format, which this recorder needs (it passes the camera's own JPEGs through); it offers {}",
        offered_text(offered)
    ))
}

/// The offered size closest to `want`: size difference counts, a different
/// shape (aspect ratio) counts three times as much.
pub fn choose_size(info: &ResolutionInfo, want: (u32, u32)) -> (u32, u32) {
    match info {
        ResolutionInfo::Discretes(sizes) => {
            let score = |&(w, h): &(u32, u32)| {
                let area = (f64::from(w) * f64::from(h))
                    / (f64::from(want.0) * f64::from(want.1)).max(1.0);
                let aspect = (f64::from(w) / f64::from(h.max(1)))
                    / (f64::from(want.0) / f64::from(want.1.max(1)));
                area.ln().abs() + 3.0 * aspect.ln().abs()
            };
            sizes
                .iter()
                .filter(|(w, h)| *w > 0 && *h > 0)
                .min_by(|a, b| {
                    score(a)
                        .total_cmp(&score(b))
                        // Equal scores: the larger size.
                        .then((b.0 * b.1).cmp(&(a.0 * a.1)))
                })
                .copied()
                .unwrap_or(want)
        }
        ResolutionInfo::Stepwise { min, max, step } => {
            let fit = |want: u32, min: u32, max: u32, step: u32| {
                let v = want.clamp(min, max.max(min));
                let step = step.max(1);
                min + (v - min) / step * step
            };
            (
                fit(want.0, min.0, max.0, step.0),
                fit(want.1, min.1, max.1, step.1),
            )
        }
    }
}

/// Frame intervals (seconds as numerator/denominator) to try, the one
/// closest to `fps` first; on equal distance the faster one.
pub fn rank_intervals(info: &IntervalInfo, fps: u32) -> Vec<(u32, u32)> {
    let rate = |&(n, d): &(u32, u32)| f64::from(d) / f64::from(n.max(1));
    let want = f64::from(fps);
    match info {
        IntervalInfo::Discretes(list) => {
            let mut list: Vec<(u32, u32)> = list
                .iter()
                .filter(|(n, d)| *n > 0 && *d > 0)
                .copied()
                .collect();
            list.sort_by(|a, b| {
                (rate(a) - want)
                    .abs()
                    .total_cmp(&(rate(b) - want).abs())
                    .then(rate(b).total_cmp(&rate(a)))
            });
            list
        }
        // `min` is the shortest interval, so the fastest rate.
        IntervalInfo::Stepwise { min, max, .. } => {
            let (fast, slow) = (rate(min), rate(max));
            if want > fast {
                vec![*min]
            } else if want < slow {
                vec![*max]
            } else {
                vec![(1, fps)]
            }
        }
    }
}

/// The buffer's timestamp as the capture time, if it is on our monotonic
/// clock (it should be: uvcvideo stamps with CLOCK_MONOTONIC); a stamp that
/// is zero, in the future or seconds old is not trusted.
pub fn capture_time(ts_us: u64, now: Duration) -> Option<Duration> {
    let ts = Duration::from_micros(ts_us);
    let trusted = ts_us != 0
        && ts <= now + Duration::from_millis(50)
        && now.saturating_sub(ts) < Duration::from_secs(2);
    trusted.then_some(ts)
}

/// An I/O error on the camera in words a user can act on.
pub fn io_error_text(dev: &str, what: &str, e: &io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::ENODEV) => "disconnected",
        Some(libc::ENOENT) => "not found (is the camera plugged in?)",
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied (add the service user to the `video` group)"
        }
        Some(libc::EBUSY) => "busy (another program is using it)",
        Some(libc::ENOSPC) => {
            "not enough USB bandwidth (another camera on the same bus? try a lower size or rate)"
        }
        Some(libc::EIO) | Some(libc::EPROTO) => {
            "I/O error (often the USB cable, hub or power supply)"
        }
        _ => return format!("camera {dev}: {what}: {e}"),
    };
    format!("camera {dev}: {hint}: {e}")
}

fn start_error_text(dev: &str, size: (u32, u32), interval: (u32, u32), e: &rscam::Error) -> String {
    let fps = interval.1 as f64 / interval.0.max(1) as f64;
    match e {
        rscam::Error::Io(io) => io_error_text(dev, "cannot start streaming", io),
        rscam::Error::BadResolution => format!(
            "camera {dev}: refused MJPEG at {}x{} (it offers other sizes; see the log)",
            size.0, size.1
        ),
        rscam::Error::BadInterval => format!(
            "camera {dev}: refused every frame rate offered for {}x{} (last tried {fps:.2} fps)",
            size.0, size.1
        ),
        other => format!("camera {dev}: cannot start streaming: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(cc: &[u8; 4], desc: &str) -> ([u8; 4], String) {
        (*cc, desc.to_string())
    }

    #[test]
    fn requires_mjpeg_and_lists_what_is_offered() {
        let cam = [fmt(b"YUYV", "YUYV 4:2:2"), fmt(b"MJPG", "Motion-JPEG")];
        assert_eq!(pick_fourcc(&cam), Ok(*b"MJPG"));
        assert_eq!(pick_fourcc(&[fmt(b"JPEG", "JFIF JPEG")]), Ok(*b"JPEG"));
        let err = pick_fourcc(&[fmt(b"YUYV", "YUYV 4:2:2"), fmt(b"H264", "H.264")]).unwrap_err();
        assert!(err.contains("no MJPEG"), "{err}");
        assert!(err.contains("YUYV (YUYV 4:2:2), H264 (H.264)"), "{err}");
        assert!(pick_fourcc(&[]).unwrap_err().contains("metadata"));
    }

    #[test]
    fn picks_the_closest_size() {
        let sizes =
            ResolutionInfo::Discretes(vec![(640, 480), (1280, 720), (1920, 1080), (320, 240)]);
        assert_eq!(choose_size(&sizes, (1280, 720)), (1280, 720));
        assert_eq!(choose_size(&sizes, (1366, 768)), (1280, 720));
        assert_eq!(choose_size(&sizes, (800, 600)), (640, 480));
        assert_eq!(choose_size(&sizes, (4000, 3000)), (1920, 1080));
        // Same shape beats a closer area of another shape.
        let sizes = ResolutionInfo::Discretes(vec![(1024, 768), (1920, 1080)]);
        assert_eq!(choose_size(&sizes, (1280, 720)), (1920, 1080));
        let step = ResolutionInfo::Stepwise {
            min: (160, 120),
            max: (1920, 1080),
            step: (16, 8),
        };
        assert_eq!(choose_size(&step, (1280, 720)), (1280, 720));
        assert_eq!(choose_size(&step, (1290, 725)), (1280, 720));
        assert_eq!(choose_size(&step, (4000, 3000)), (1920, 1080));
        assert_eq!(choose_size(&step, (16, 16)), (160, 120));
    }

    #[test]
    fn ranks_rates_closest_first() {
        let ivals = IntervalInfo::Discretes(vec![(1, 5), (1, 15), (1, 30), (1, 60), (1001, 30000)]);
        assert_eq!(rank_intervals(&ivals, 30)[..2], [(1, 30), (1001, 30000)]);
        assert_eq!(rank_intervals(&ivals, 40)[0], (1, 30));
        assert_eq!(rank_intervals(&ivals, 100)[0], (1, 60));
        assert_eq!(rank_intervals(&ivals, 1)[0], (1, 5));
        let step = IntervalInfo::Stepwise {
            min: (1, 60),
            max: (1, 1),
            step: (1, 1),
        };
        assert_eq!(rank_intervals(&step, 30), vec![(1, 30)]);
        assert_eq!(rank_intervals(&step, 120), vec![(1, 60)]);
    }

    #[test]
    fn trusts_only_plausible_buffer_timestamps() {
        let now = Duration::from_secs(1000);
        let ts = |d: Duration| d.as_micros() as u64;
        assert_eq!(
            capture_time(ts(now - Duration::from_millis(30)), now),
            Some(now - Duration::from_millis(30))
        );
        assert_eq!(capture_time(0, now), None);
        assert_eq!(capture_time(ts(now + Duration::from_secs(1)), now), None);
        assert_eq!(capture_time(ts(now - Duration::from_secs(60)), now), None);
        // A realtime-clock stamp (seconds since 1970) is far in the future.
        assert_eq!(capture_time(1_700_000_000_000_000, now), None);
    }

    #[test]
    fn errors_name_the_device_and_say_what_to_do() {
        let e = io::Error::from_raw_os_error(libc::ENODEV);
        let t = io_error_text("/dev/video0", "capture", &e);
        assert!(t.starts_with("camera /dev/video0: disconnected"), "{t}");
        let t = io_error_text(
            "/dev/video2",
            "cannot open",
            &io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(
            t.contains("/dev/video2") && t.contains("video` group"),
            "{t}"
        );
        let t = io_error_text(
            "/dev/video0",
            "cannot open",
            &io::Error::from_raw_os_error(libc::EINVAL),
        );
        assert!(t.starts_with("camera /dev/video0: cannot open: "), "{t}");
        let t = start_error_text(
            "/dev/video0",
            (640, 480),
            (1, 30),
            &rscam::Error::BadInterval,
        );
        assert!(t.contains("640x480"), "{t}");
    }

    #[test]
    fn missing_device_is_an_error_naming_it() {
        let err = open(
            Path::new("/dev/video-does-not-exist"),
            Format {
                width: 640,
                height: 480,
                fps: 30,
            },
        )
        .err()
        .unwrap();
        assert!(
            err.0.contains("/dev/video-does-not-exist") && err.0.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn finds_its_own_descriptor_by_device_number() {
        // /dev/null is a character device every machine has.
        let rdev = std::fs::metadata("/dev/null").unwrap().rdev();
        let before = device_fds(rdev);
        let f = std::fs::File::open("/dev/null").unwrap();
        let after = device_fds(rdev);
        let new: Vec<_> = after.difference(&before).copied().collect();
        use std::os::unix::io::AsRawFd;
        assert_eq!(new, vec![f.as_raw_fd()]);
    }
}
