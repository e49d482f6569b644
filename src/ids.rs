//! The names the rest of the crate passes around: camera ids and clip ids,
//! each checked once, where it enters (config, a directory listing, a
//! request path), and cheap to clone after. A clip id names its camera and
//! when it began: `front-20261201-184233`, with `-2`, `-3`… for clips of
//! one camera in the same second; ids from before cameras had names
//! (`20261201-184233`) are still read. One clip goes by several file names
//! (`ClipFile`); this is the one place that makes and reads them.
//!
//! A leaf: nothing of the crate is imported here.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

/// `[a-z0-9-]{1,32}`: it names clips, directories and routes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CameraId(Arc<str>);

/// What a camera id must be, as config errors say it.
pub const CAMERA_ID_RULE: &str = "must be 1 to 32 of a-z, 0-9 and '-'";

fn is_camera_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl FromStr for CameraId {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<CameraId, &'static str> {
        if is_camera_id(s) {
            Ok(CameraId(s.into()))
        } else {
            Err(CAMERA_ID_RULE)
        }
    }
}

/// A clip id, kept with where its parts are (it is parsed once).
#[derive(Clone)]
pub struct ClipId {
    text: Arc<str>,
    /// Length of the camera part; 0 for an id from before camera names.
    camera: u8,
    /// 1, or the collision number.
    n: u32,
}

/// `YYYYMMDD-HHMMSS` (UTC), as clip ids carry it.
pub fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    b.len() == 15 && digits(&b[..8]) && b[8] == b'-' && digits(&b[9..])
}

/// `[camera-]stamp` without a collision number: the camera part's length.
fn parse_body(body: &str) -> Option<usize> {
    if is_stamp(body) {
        return Some(0);
    }
    let split = body.len().checked_sub(16)?;
    let (camera, rest) = (body.get(..split)?, body.get(split..)?);
    let stamp = rest.strip_prefix('-')?;
    (is_stamp(stamp) && is_camera_id(camera)).then_some(split)
}

fn parse_clip_id(id: &str) -> Option<(usize, u32)> {
    if id.len() > 64 {
        return None;
    }
    if let Some(camera) = parse_body(id) {
        return Some((camera, 1));
    }
    let (body, n) = id.rsplit_once('-')?;
    let n_ok = (1..=9).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    let camera = parse_body(body).filter(|_| n_ok)?;
    Some((camera, n.parse().ok()?))
}

impl FromStr for ClipId {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<ClipId, &'static str> {
        let (camera, n) = parse_clip_id(s).ok_or("not a clip id")?;
        Ok(ClipId {
            text: s.into(),
            // At most 64 - 16 bytes.
            camera: camera as u8,
            n,
        })
    }
}

impl ClipId {
    /// The id of `camera`'s clip starting at `stamp`, `n`-th in that second
    /// (`None` if `stamp` is not one).
    pub fn new(camera: &CameraId, stamp: &str, n: u32) -> Option<ClipId> {
        let text = if n <= 1 {
            format!("{camera}-{stamp}")
        } else {
            format!("{camera}-{stamp}-{n}")
        };
        text.parse().ok()
    }

    /// `None` for an id from before cameras had names.
    pub fn camera(&self) -> Option<&str> {
        (self.camera > 0).then(|| &self.text[..usize::from(self.camera)])
    }

    /// The camera part as a camera id.
    pub fn camera_id(&self) -> Option<CameraId> {
        self.camera().map(|c| CameraId(c.into()))
    }

    /// `YYYYMMDD-HHMMSS` (UTC).
    pub fn stamp(&self) -> &str {
        let start = match self.camera {
            0 => 0,
            c => usize::from(c) + 1,
        };
        &self.text[start..start + 15]
    }

    /// Sort key over all cameras: oldest first (the stamp, then the
    /// collision number, then the camera, so the order is total).
    pub fn age_key(&self) -> (&str, u32, &str) {
        (self.stamp(), self.n, self.camera().unwrap_or_default())
    }

    /// The name this clip's `file` goes by.
    pub fn file_name(&self, file: ClipFile) -> String {
        format!("{}{}", self.text, file.suffix())
    }

    /// The clip and which of its files a name is, if it is one.
    pub fn from_file_name(name: &str) -> Option<(ClipId, ClipFile)> {
        ClipFile::ALL.into_iter().find_map(|f| {
            let id = name.strip_suffix(f.suffix())?.parse().ok()?;
            Some((id, f))
        })
    }
}

/// The names one clip goes by: its files beside each other in its
/// camera's directory, and its thumbnail's (a URL; the picture is stored
/// in the clip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipFile {
    /// The finished clip.
    Mp4,
    /// A recording in progress, and its journal.
    Part,
    Journal,
    /// Its upload record.
    Upload,
    Thumbnail,
}

impl ClipFile {
    const ALL: [ClipFile; 5] = [
        ClipFile::Mp4,
        ClipFile::Part,
        ClipFile::Journal,
        ClipFile::Upload,
        ClipFile::Thumbnail,
    ];

    fn suffix(self) -> &'static str {
        match self {
            ClipFile::Mp4 => ".mp4",
            ClipFile::Part => ".mp4.part",
            ClipFile::Journal => ".journal",
            ClipFile::Upload => ".upload",
            ClipFile::Thumbnail => ".jpg",
        }
    }
}

/// What both ids share: read as a `str`, shown and serialised as one.
macro_rules! text_id {
    ($t:ty, $text:tt) => {
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.$text
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.$text
            }
        }

        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.$text
            }
        }

        impl $t {
            pub fn as_str(&self) -> &str {
                &self.$text
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.$text)
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.$text, f)
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                &*self.$text == other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &*self.$text == other.as_str()
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                &*self.$text == *other
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.$text)
            }
        }
    };
}

text_id!(CameraId, 0);
text_id!(ClipId, text);

// The parts follow from the text: comparing the text is comparing ids (and
// agrees with `Borrow<str>`, so maps keyed by ids are looked up by `&str`).
impl PartialEq for ClipId {
    fn eq(&self, other: &ClipId) -> bool {
        self.text == other.text
    }
}

impl Eq for ClipId {}

impl std::hash::Hash for ClipId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.text.hash(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(s: &str) -> ClipId {
        s.parse().unwrap()
    }

    #[test]
    fn camera_ids() {
        for ok in ["cam", "front-door", "2", &"a".repeat(32)] {
            assert!(ok.parse::<CameraId>().is_ok(), "{ok}");
        }
        for bad in ["", "Front", "a_b", "../x", "a/b", &"a".repeat(33)] {
            assert!(bad.parse::<CameraId>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn clip_ids_name_their_camera() {
        let p = clip("front-20261201-184233");
        assert_eq!(
            (p.camera(), p.stamp(), p.n),
            (Some("front"), "20261201-184233", 1)
        );
        let p = clip("door-2-20261201-184233-3");
        assert_eq!(
            (p.camera(), p.stamp(), p.n),
            (Some("door-2"), "20261201-184233", 3)
        );
        // A camera may be named like a date.
        assert_eq!(
            clip("20261201-184233-20261202-000000").camera(),
            Some("20261201-184233")
        );
        let old = clip("20261201-184233");
        assert_eq!((old.camera(), old.stamp()), (None, "20261201-184233"));
        assert_eq!(clip("20261201-184233-2").n, 2);
        for bad in [
            "Front-20261201-184233",
            "-20261201-184233",
            "front_20261201-184233",
            "front-20261201-184233-",
            "front-20261201-184233-0x1",
            "front/../20261201-184233",
            "../front-20261201-184233",
        ] {
            assert!(bad.parse::<ClipId>().is_err(), "{bad:?} accepted");
        }
        let front: CameraId = "front".parse().unwrap();
        assert_eq!(
            ClipId::new(&front, "20261201-184233", 1).unwrap(),
            "front-20261201-184233"
        );
        assert_eq!(
            ClipId::new(&front, "20261201-184233", 2).unwrap(),
            "front-20261201-184233-2"
        );
        assert!(ClipId::new(&front, "2026", 1).is_none());
        assert!(clip("b-20261201-000000").age_key() < clip("a-20261201-000001").age_key());
        assert!(clip("a-20261201-000000-2").age_key() < clip("a-20261201-000000-10").age_key());
    }

    #[test]
    fn file_names() {
        let id = clip("front-20261201-184233-2");
        for f in ClipFile::ALL {
            assert_eq!(
                ClipId::from_file_name(&id.file_name(f)),
                Some((id.clone(), f))
            );
        }
        assert_eq!(
            id.file_name(ClipFile::Part),
            "front-20261201-184233-2.mp4.part"
        );
        for bad in [
            "front-20261201-184233",
            "x.mp4",
            "front-20261201-184233.mp4.tmp",
            ".mp4",
        ] {
            assert!(ClipId::from_file_name(bad).is_none(), "{bad}");
        }
    }
}
