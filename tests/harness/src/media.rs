//! Clips checked by an independent reader (ffprobe) and by our own, and
//! MJPEG files made by ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{CHILD_TIMEOUT, RunWithin, command};

/// ffprobe's view of a clip's video stream and format, as JSON.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output_within(CHILD_TIMEOUT)
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Each video packet's presentation time and keyframe flag, in file
/// order, as ffprobe reads the clip.
pub fn packets(path: &Path) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path)
        .output_within(CHILD_TIMEOUT)
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, f) = l.trim().split_once(',')?;
            Some((t.parse().ok()?, f.starts_with('K')))
        })
        .collect()
}

/// Our own reader's view (`video-recorder probe FILE`).
pub fn own_probe(path: &Path) -> serde_json::Value {
    let out = command()
        .arg("probe")
        .arg(path)
        .output_within(CHILD_TIMEOUT)
        .expect("run probe");
    assert!(
        out.status.success(),
        "probe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("probe JSON")
}

/// An MJPEG file made by ffmpeg (`testsrc2`), `frames` long.
pub fn make_mjpeg(dir: &Path, width: u32, height: u32, fps: u32, frames: u32) -> PathBuf {
    let path = dir.join(format!("in-{width}x{height}-{fps}.mjpeg"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate={fps}"))
        .args([
            "-frames:v",
            &frames.to_string(),
            "-c:v",
            "mjpeg",
            "-q:v",
            "5",
            "-f",
            "mjpeg",
        ])
        .arg(&path)
        .status_within(CHILD_TIMEOUT)
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    path
}

/// Width and height from a JPEG's baseline or progressive frame header.
pub fn jpeg_size(j: &[u8]) -> Option<(u16, u16)> {
    let at = j
        .windows(2)
        .position(|w| w[0] == 0xFF && (w[1] == 0xC0 || w[1] == 0xC2))?;
    let b = j.get(at + 5..at + 9)?;
    Some((
        u16::from_be_bytes([b[2], b[3]]),
        u16::from_be_bytes([b[0], b[1]]),
    ))
}

/// The parameter sets in a clip's `avcC` (SPS, PPS), read from its bytes.
pub fn avcc_sets(mp4: &[u8]) -> Vec<Vec<u8>> {
    let at = super::find(mp4, b"avcC").expect("an avcC box") + 4;
    let b = &mp4[at..];
    let mut sets = Vec::new();
    let mut i = 5;
    let sps = usize::from(b[i] & 0x1f);
    i += 1;
    for n in 0..=sps {
        if n == sps {
            let pps = usize::from(b[i]);
            i += 1;
            for _ in 0..pps {
                let len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
                sets.push(b[i + 2..i + 2 + len].to_vec());
                i += 2 + len;
            }
            break;
        }
        let len = usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
        sets.push(b[i + 2..i + 2 + len].to_vec());
        i += 2 + len;
    }
    sets
}

/// The parameter sets in a clip's `hvcC` (VPS, SPS, PPS in the order of
/// its arrays), read from its bytes (ISO/IEC 14496-15 8.3.3.1: 22 bytes of
/// fields, then the arrays, each a NAL type byte and counted units).
pub fn hvcc_sets(mp4: &[u8]) -> Vec<Vec<u8>> {
    let at = super::find(mp4, b"hvcC").expect("an hvcC box") + 4;
    let b = &mp4[at..];
    let be16 = |i: usize| usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
    let mut sets = Vec::new();
    let mut i = 23;
    for _ in 0..b[22] {
        let units = be16(i + 1);
        i += 3;
        for _ in 0..units {
            let len = be16(i);
            sets.push(b[i + 2..i + 2 + len].to_vec());
            i += 2 + len;
        }
    }
    sets
}

/// Side of the grey thumbnails pictures are compared at: small enough that
/// an encoder's noise averages out, large enough to tell pictures apart.
pub const THUMB: (u32, u32) = (64, 36);

/// A picture as ffmpeg decodes it, as a `THUMB` grey thumbnail: the frame
/// shown at `at` seconds of a clip, or an image file's only one (`None`).
pub fn grey_thumb(path: &Path, at: Option<f64>) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(t) = at {
        cmd.args(["-ss", &format!("{t:.3}")]);
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!("scale={}:{},format=gray", THUMB.0, THUMB.1))
        .args(["-f", "rawvideo", "-"])
        .output_within(CHILD_TIMEOUT)
        .expect("run ffmpeg");
    assert!(
        out.status.success() && out.stdout.len() == (THUMB.0 * THUMB.1) as usize,
        "ffmpeg could not decode {} at {at:?}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The same for a JPEG in memory.
pub fn jpeg_thumb(jpeg: &[u8]) -> Vec<u8> {
    let file = tempfile::Builder::new().suffix(".jpg").tempfile().unwrap();
    std::fs::write(file.path(), jpeg).unwrap();
    grey_thumb(file.path(), None)
}

/// Peak signal-to-noise ratio of two thumbnails, in dB (infinite when
/// equal): above ~30 dB the same picture re-encoded, below ~15 another one.
pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// The best match of `thumb` among `pictures` (its PSNR).
pub fn best_psnr(thumb: &[u8], pictures: &[Vec<u8>]) -> f64 {
    pictures
        .iter()
        .map(|p| psnr(thumb, p))
        .fold(f64::NEG_INFINITY, f64::max)
}
