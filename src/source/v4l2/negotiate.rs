//! The camera-independent part of V4L2 setup: which format, size and rate
//! to ask for, whether to trust buffer timestamps, and error text a user can
//! act on. Pure functions, tested here without a camera.

use std::io;

use rscam::{IntervalInfo, ResolutionInfo};

/// `YUYV (YUYV 4:2:2), MJPG (Motion-JPEG)`, for logs and errors.
pub fn offered_text(offered: &[([u8; 4], String)]) -> String {
    if offered.is_empty() {
        return "no formats".into();
    }
    offered
        .iter()
        .map(|(cc, desc)| format!("{} ({desc})", String::from_utf8_lossy(cc)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// MJPG (or JPEG, as some cameras call the same thing), passed through;
/// else YUYV, encoded here; else an error that lists what the camera offers.
pub fn pick_fourcc(offered: &[([u8; 4], String)]) -> Result<[u8; 4], String> {
    for want in [b"MJPG", b"JPEG", b"YUYV"] {
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
        "offers neither MJPEG nor YUYV, the formats this recorder reads; it offers {}",
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
                .filter(|&&s| crate::frame::size_ok(s))
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
                let max = max.min(crate::frame::MAX_SIDE);
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
            "not enough USB bandwidth for this size and rate (another camera on the same USB bus?): \
             try a lower size or rate, MJPEG rather than an uncompressed format, or another USB bus"
        }
        Some(libc::EIO) | Some(libc::EPROTO) => {
            "I/O error (often the USB cable, hub or power supply)"
        }
        _ => return format!("camera {dev}: {what}: {e}"),
    };
    format!("camera {dev}: {hint}: {e}")
}

/// Why streaming did not start, for the log and `/status`.
pub fn start_error_text(
    dev: &str,
    size: (u32, u32),
    interval: (u32, u32),
    e: &rscam::Error,
) -> String {
    let fps = interval.1 as f64 / interval.0.max(1) as f64;
    match e {
        rscam::Error::Io(io) => io_error_text(dev, "cannot start streaming", io),
        rscam::Error::BadResolution => format!(
            "camera {dev}: would not deliver MJPEG at {}x{} (the driver changed the size it had offered)",
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
    fn prefers_mjpeg_then_yuyv_and_lists_what_is_offered() {
        let cam = [fmt(b"YUYV", "YUYV 4:2:2"), fmt(b"MJPG", "Motion-JPEG")];
        assert_eq!(pick_fourcc(&cam), Ok(*b"MJPG"));
        assert_eq!(pick_fourcc(&[fmt(b"JPEG", "JFIF JPEG")]), Ok(*b"JPEG"));
        let yuyv = [fmt(b"YUYV", "YUYV 4:2:2"), fmt(b"H264", "H.264")];
        assert_eq!(pick_fourcc(&yuyv), Ok(*b"YUYV"));
        let err = pick_fourcc(&[fmt(b"NV12", "Y/UV 4:2:0"), fmt(b"H264", "H.264")]).unwrap_err();
        assert!(err.contains("neither MJPEG nor YUYV"), "{err}");
        assert!(err.contains("NV12 (Y/UV 4:2:0), H264 (H.264)"), "{err}");
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
        // Sizes over the one size rule are never picked.
        let huge = ResolutionInfo::Discretes(vec![(65535, 65535), (640, 480), (7680, 4320)]);
        assert_eq!(choose_size(&huge, (7680, 4320)), (640, 480));
        let huge = ResolutionInfo::Stepwise {
            min: (16, 16),
            max: (65535, 65535),
            step: (2, 2),
        };
        assert_eq!(choose_size(&huge, (65535, 100)), (3840, 100));
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
}
