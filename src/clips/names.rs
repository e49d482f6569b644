//! What clips are called. An id names its camera and when it began:
//! `front-20261201-184233`, with `-2`, `-3`… for clips of one camera in the
//! same second. Ids from before cameras had names (`20261201-184233`) are
//! still read, as the first camera's. Anything else (`..`, `/`, absolute
//! paths) is never a clip. One clip goes by three file names.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::config::valid_camera_id;

/// An id taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParts<'a> {
    /// `None` for an id from before cameras had names.
    pub camera: Option<&'a str>,
    /// `YYYYMMDD-HHMMSS` (UTC).
    pub stamp: &'a str,
    /// 1, or the collision number.
    pub n: u64,
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    b.len() == 15 && digits(&b[..8]) && b[8] == b'-' && digits(&b[9..])
}

/// `[camera-]stamp` without a collision number.
fn parse_body(body: &str) -> Option<(Option<&str>, &str)> {
    if is_stamp(body) {
        return Some((None, body));
    }
    let split = body.len().checked_sub(16)?;
    let (camera, rest) = (body.get(..split)?, body.get(split..)?);
    let stamp = rest.strip_prefix('-')?;
    (is_stamp(stamp) && valid_camera_id(camera)).then_some((Some(camera), stamp))
}

/// Takes an id apart; `None` if it is not one.
pub fn parse_id(id: &str) -> Option<IdParts<'_>> {
    if id.len() > 64 {
        return None;
    }
    if let Some((camera, stamp)) = parse_body(id) {
        return Some(IdParts {
            camera,
            stamp,
            n: 1,
        });
    }
    let (body, n) = id.rsplit_once('-')?;
    let n_ok = (1..=9).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    let (camera, stamp) = parse_body(body).filter(|_| n_ok)?;
    Some(IdParts {
        camera,
        stamp,
        n: n.parse().ok()?,
    })
}

pub fn valid_id(id: &str) -> bool {
    parse_id(id).is_some()
}

/// Whether `id` is a clip of the directory of `camera` (`None`: the clips
/// directory itself, which holds any camera's and old unnamed ones).
pub fn belongs(id: &str, camera: Option<&str>) -> bool {
    match (parse_id(id), camera) {
        (Some(_), None) => true,
        (Some(p), Some(dir)) => p.camera == Some(dir),
        (None, _) => false,
    }
}

/// Sort key over all cameras: oldest first (the stamp, then the collision
/// number, then the camera, so the order is total).
pub fn age_key(id: &str) -> (String, u64, String) {
    match parse_id(id) {
        Some(p) => (
            p.stamp.to_string(),
            p.n,
            p.camera.unwrap_or_default().to_string(),
        ),
        None => (String::new(), 0, id.to_string()),
    }
}

/// The id for a camera's clip starting at `stamp`, `n`-th in that second.
pub fn make_id(camera: &str, stamp: &str, n: u64) -> String {
    if n <= 1 {
        format!("{camera}-{stamp}")
    } else {
        format!("{camera}-{stamp}-{n}")
    }
}

/// The stamp a new clip is named by: the clock's, except that names do not
/// go backwards while the clock is plausibly wrong. A Pi without a
/// real-time clock boots at 1970, or at its last shutdown (fake-hwclock),
/// until network time arrives, and the ring buffer deletes by name order:
/// such a clip is named one second after the newest. But a clip named in the
/// future (a clock once wrong the other way, a spoofed NTP) must not drag
/// every later name with it: a synchronised clock, or a skew beyond
/// `MAX_BEHIND`, names by the clock; and a name that would not be a valid
/// stamp (past year 9999) is never made.
pub fn stamp_for(now: SystemTime, newest: Option<String>, synchronised: Option<bool>) -> String {
    /// Before this the clock has never been set (this code did not exist).
    const NEVER_SET: u64 = 1_704_067_200; // 2024-01-01
    /// How far a not-yet-synchronised clock may plausibly lag.
    const MAX_BEHIND: Duration = Duration::from_secs(90 * 86_400);
    let stamp = crate::clock::file_stamp(now);
    let Some(newest) = newest.filter(|n| *n > stamp) else {
        return stamp;
    };
    let Some(t) = crate::clock::parse_file_stamp(&newest) else {
        return stamp;
    };
    let unset = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|d| d.as_secs() < NEVER_SET);
    let behind = t.duration_since(now).unwrap_or_default();
    let after = crate::clock::file_stamp(t + Duration::from_secs(1));
    let plausible = unset || (synchronised != Some(true) && behind <= MAX_BEHIND);
    if plausible && is_stamp(&after) {
        log::warn!(
            "the clock ({stamp}) is behind the newest clip ({newest}); is time synchronised? \
             naming the new clip {after}"
        );
        after
    } else {
        log::warn!(
            "the newest clip ({newest}) is named after the clock ({stamp}); trusting the \
             clock (it is {}), so this clip sorts before that one",
            if synchronised == Some(true) {
                "synchronised".to_string()
            } else {
                format!("{} days behind", behind.as_secs() / 86_400)
            }
        );
        stamp
    }
}

/// The three names one clip goes by, in its camera's directory.
#[derive(Debug, Clone)]
pub struct ClipPaths {
    pub id: String,
    pub dir: PathBuf,
    pub part: PathBuf,
    pub journal: PathBuf,
    pub fin: PathBuf,
}

impl ClipPaths {
    pub fn new(dir: &Path, id: &str) -> ClipPaths {
        ClipPaths {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            part: dir.join(format!("{id}.mp4.part")),
            journal: dir.join(format!("{id}.journal")),
            fin: dir.join(format!("{id}.mp4")),
        }
    }

    /// True if any file of this id exists (ids must never be reused).
    pub fn taken(&self) -> bool {
        [&self.part, &self.journal, &self.fin]
            .iter()
            .any(|p| p.symlink_metadata().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_their_camera() {
        let p = parse_id("front-20261201-184233").unwrap();
        assert_eq!(
            (p.camera, p.stamp, p.n),
            (Some("front"), "20261201-184233", 1)
        );
        let p = parse_id("door-2-20261201-184233-3").unwrap();
        assert_eq!(
            (p.camera, p.stamp, p.n),
            (Some("door-2"), "20261201-184233", 3)
        );
        // A camera may be named like a date.
        let p = parse_id("20261201-184233-20261202-000000").unwrap();
        assert_eq!(p.camera, Some("20261201-184233"));
        assert_eq!(parse_id("20261201-184233").unwrap().camera, None);
        assert_eq!(parse_id("20261201-184233-2").unwrap().n, 2);
        for bad in [
            "Front-20261201-184233",
            "-20261201-184233",
            "front_20261201-184233",
            "front-20261201-184233-",
            "front-20261201-184233-0x1",
            "front/../20261201-184233",
            "../front-20261201-184233",
        ] {
            assert!(!valid_id(bad), "{bad:?} accepted");
        }
        assert_eq!(
            make_id("front", "20261201-184233", 1),
            "front-20261201-184233"
        );
        assert_eq!(
            make_id("front", "20261201-184233", 2),
            "front-20261201-184233-2"
        );
        assert!(age_key("b-20261201-000000") < age_key("a-20261201-000001"));
        assert!(age_key("a-20261201-000000-2") < age_key("a-20261201-000000-10"));
    }
}
