//! A V4L2 webcam through `rscam` (no libv4l2, no bindgen): MJPEG, passed
//! through as the camera made it; or, for a camera without MJPEG, YUYV
//! encoded to JPEG here (at a CPU cost the log states).
//!
//! The choices (format, size, rate, timestamps, error text) are pure
//! functions with unit tests; the integration tests run this code against a
//! stand-in camera (`tests/fakecam`).
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

use super::{Format, RawFrame, Source, SourceError};

mod negotiate;
mod stamps;
mod yuyv;

use negotiate::{
    choose_size, io_error_text, offered_text, pick_fourcc, rank_intervals, start_error_text,
};
use stamps::{Jump, Stamps};

/// Buffers queued in the driver: enough to ride out a slow moment, few
/// enough to keep latency low.
const BUFFERS: u32 = 4;

pub struct V4l2Source {
    cam: rscam::Camera,
    fd: Option<RawFd>,
    dev: String,
    format: Format,
    stamps: Stamps,
    /// When the log last said the camera's clock jumped (at most every 10 s).
    jump_logged: Option<std::time::Instant>,
    /// Set for a camera without MJPEG: its frames are encoded here.
    encoder: Option<yuyv::Encoder>,
}

/// Opens the camera, picks MJPEG (else YUYV), negotiates the closest size
/// and rate.
pub fn open(path: &Path, want: Format) -> Result<Box<dyn Source>, SourceError> {
    // A stable name (/dev/v4l/by-id/…) is resolved at every open, so a camera
    // that comes back as another /dev/videoN is found again; say which.
    let dev = match std::fs::canonicalize(path) {
        Ok(real) if real != path => format!("{} (-> {})", path.display(), real.display()),
        _ => path.display().to_string(),
    };
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
    if !crate::frame::size_ok(size) {
        return Err(SourceError(format!(
            "camera {dev}: offers only sizes over the limit ({}), {}x{} the closest",
            crate::frame::SIZE_RULE,
            size.0,
            size.1
        )));
    }
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
    let encoder = (&fourcc == b"YUYV").then(|| {
        log::warn!(
            "camera {dev}: no MJPEG, so its YUYV frames are encoded to JPEG here, which costs \
             CPU at every frame (a camera with MJPEG, or a lower size or rate, spares it)"
        );
        yuyv::Encoder::new(size)
    });
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
        stamps: Stamps::default(),
        jump_logged: None,
        encoder,
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
                let (capture, jump) = self.stamps.capture(frame.get_timestamp(), now);
                if let Some(jump) = jump {
                    self.log_jump(jump);
                }
                let jpeg = match &mut self.encoder {
                    Some(enc) => enc.encode(&frame),
                    None => frame.to_vec(),
                };
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

    fn pixel_format(&self) -> &'static str {
        if self.encoder.is_some() {
            "YUYV"
        } else {
            "MJPEG"
        }
    }
}

impl V4l2Source {
    fn log_jump(&mut self, jump: Jump) {
        let due = self
            .jump_logged
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10));
        if !due {
            return;
        }
        self.jump_logged = Some(std::time::Instant::now());
        match jump {
            Jump::Untrusted => log::warn!(
                "camera {}: buffer timestamps are not on the monotonic clock; \
                 following them from the time frames arrive",
                self.dev
            ),
            Jump::By(ns) => log::warn!(
                "camera {}: its timestamps jumped by {:+.3} s; capture times carry on from the \
                 time the frame arrived",
                self.dev,
                ns as f64 / 1e9
            ),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
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
        // /dev/null is a character device every machine has. Other tests
        // of this process may open it meanwhile (a child's stdin): ours must
        // be among those found, and nothing but that device.
        use std::os::unix::io::AsRawFd;
        let rdev = std::fs::metadata("/dev/null").unwrap().rdev();
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(device_fds(rdev).contains(&f.as_raw_fd()));
        let zero = std::fs::File::open("/dev/zero").unwrap();
        assert!(!device_fds(rdev).contains(&zero.as_raw_fd()));
    }
}
