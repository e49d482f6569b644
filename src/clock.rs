//! Clocks: the monotonic clock V4L2 stamps buffers with, and wall time for people.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// CLOCK_MONOTONIC now, the same clock V4L2 uses for buffer timestamps, so
/// frames from a camera and from synthetic sources share one time base.
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Seconds since the Unix epoch as a float, for `X-Timestamp` and JSON.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T05:01:02.345Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, s) = civil(d.as_secs());
    format!(
        "{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        d.subsec_millis()
    )
}

/// Compact UTC stamp for file names, e.g. `20261124-050102`.
pub fn file_stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, da, h, mi, s) = civil(d.as_secs());
    format!("{y:04}{mo:02}{da:02}-{h:02}{mi:02}{s:02}")
}

/// Inverse of `file_stamp`: `20261124-050102` back to a time.
pub fn parse_file_stamp(stamp: &str) -> Option<SystemTime> {
    let b = stamp.as_bytes();
    if b.len() != 15 || b[8] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Whether the kernel's clock is synchronised (NTP, timesyncd, chrony): the
/// same test `timedatectl` makes. `None` when it cannot be known, e.g. under
/// a seccomp filter that forbids adjtimex; then timesyncd's flag file is asked.
pub fn synchronized() -> Option<bool> {
    // SAFETY: modes = 0 only reads the kernel's state into a struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::adjtimex(&mut tx) };
    if rc >= 0 {
        return Some(tx.status & libc::STA_UNSYNC == 0);
    }
    if std::path::Path::new("/run/systemd/timesync/synchronized").exists() {
        return Some(true);
    }
    None
}

/// Days-from-civil inverse (Howard Hinnant's algorithm), avoiding a date crate.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The media clock of clips and live.mp4 (90 kHz, RTP video's): capture
/// times keep sub-millisecond precision and u32 sample deltas last 13 hours.
pub const TIMESCALE: u32 = 90_000;

/// A duration in `TIMESCALE` ticks.
pub fn ticks(d: Duration) -> u64 {
    (d.as_nanos() * u128::from(TIMESCALE) / 1_000_000_000) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_496_462_345);
        assert_eq!(rfc3339(t), "2026-11-24T05:01:02.345Z");
        assert_eq!(file_stamp(t), "20261124-050102");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // Leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(file_stamp(leap), "20000229-000000");
    }

    #[test]
    fn file_stamps_round_trip() {
        for secs in [0u64, 951_782_400, 1_795_496_462, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_file_stamp(&file_stamp(t)), Some(t), "{secs}");
        }
        assert_eq!(parse_file_stamp("20261324-000000"), None);
        assert_eq!(parse_file_stamp("2026112-0000000"), None);
        assert_eq!(parse_file_stamp("20261124-000000-2"), None);
    }

    #[test]
    fn monotonic_advances() {
        let a = monotonic_now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_now() > a);
    }
}
