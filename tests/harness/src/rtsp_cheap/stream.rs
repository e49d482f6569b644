//! The cheap camera's video: a real H.264 elementary stream made once per
//! test process by ffmpeg (libx264, parameter sets repeated before every
//! IDR, a keyframe a second, no B-frames, a bitrate high enough that every
//! picture is larger than one packet), cut into access units, and cut again
//! into RTP packets as a camera with a 1,500-byte MTU sends them: a NAL unit
//! that fits goes alone, a larger one as FU-A fragments (RFC 6184).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::RunWithin;

/// Largest RTP payload: a 1,500-byte Ethernet MTU less the IPv4 (20), UDP
/// (8) and RTP (12) headers.
pub const MTU_PAYLOAD: usize = 1500 - 20 - 8 - 12;
/// Size, rate and keyframe interval of the stream ffmpeg makes.
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 360;
pub const FPS: u32 = 30;
pub const KEY_INT: usize = 30;
/// Frames in the file, looped for as long as a client plays.
const FRAMES: usize = 150;

/// One access unit: its NAL units (without start codes) in order.
#[derive(Debug, Clone)]
pub struct AccessUnit {
    pub nals: Vec<Vec<u8>>,
    /// Holds an IDR slice.
    pub idr: bool,
}

/// The H.264 NAL unit type (RFC 6184 §1.3).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units of an Annex B byte stream (3- or 4-byte start codes).
pub fn split_annex_b(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |&e| e - 3);
        // A 4-byte start code's leading zero (and trailing zero bytes).
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(data[s..end].to_vec());
        }
    }
    out
}

/// Groups NAL units into access units: a picture's slice with the
/// parameter sets and SEI before it (one slice a picture, as x264 makes
/// without sliced threads: a slice starting at macroblock 0 begins one).
pub fn access_units(nals: Vec<Vec<u8>>) -> Vec<AccessUnit> {
    let mut out: Vec<AccessUnit> = Vec::new();
    let mut pending = Vec::new();
    for nal in nals {
        let t = nal_type(&nal);
        if t == 1 || t == 5 {
            // first_mb_in_slice is ue(v): 0 is the single bit 1.
            let first = nal.get(1).is_some_and(|b| b & 0x80 != 0);
            if first || out.is_empty() {
                pending.push(nal);
                out.push(AccessUnit {
                    idr: t == 5,
                    nals: std::mem::take(&mut pending),
                });
            } else if let Some(last) = out.last_mut() {
                last.nals.push(nal);
            }
        } else {
            pending.push(nal);
        }
    }
    out
}

/// RTP payloads for one NAL unit: itself when it fits, else FU-A fragments
/// (indicator with the NAL's NRI and type 28, header with start/end bits
/// and the NAL's type).
pub fn payloads(nal: &[u8]) -> Vec<Vec<u8>> {
    if nal.len() <= MTU_PAYLOAD {
        return vec![nal.to_vec()];
    }
    let (head, body) = (nal[0], &nal[1..]);
    let chunks: Vec<&[u8]> = body.chunks(MTU_PAYLOAD - 2).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut fu = (head & 0x1f) | if i == 0 { 0x80 } else { 0 };
            if i == last {
                fu |= 0x40;
            }
            [vec![(head & 0x60) | 28, fu], c.to_vec()].concat()
        })
        .collect()
}

/// A whole access unit's payloads, the last one of the picture marked.
pub fn packetize(au: &AccessUnit) -> Vec<(Vec<u8>, bool)> {
    let all: Vec<Vec<u8>> = au.nals.iter().flat_map(|n| payloads(n)).collect();
    let n = all.len();
    all.into_iter()
        .enumerate()
        .map(|(i, p)| (p, i + 1 == n))
        .collect()
}

/// One RTP packet (RFC 3550: version 2, payload type 96).
pub fn rtp(payload: &[u8], marker: bool, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(96 | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The stream the cheap camera sends, made once per test process; `Err`
/// says why it could not be (no ffmpeg, no libx264).
pub fn stream() -> Result<&'static [AccessUnit], String> {
    static MADE: OnceLock<Result<Vec<AccessUnit>, String>> = OnceLock::new();
    static MAKING: Mutex<()> = Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(|e| e.into_inner());
    MADE.get_or_init(make)
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// The frame interval.
pub fn interval() -> Duration {
    Duration::from_secs(1) / FPS
}

fn make() -> Result<Vec<AccessUnit>, String> {
    // A temporary file (the test binaries' and `cheap-camera`'s alike).
    let file = tempfile::Builder::new()
        .prefix("cheap-camera-")
        .suffix(".264")
        .tempfile()
        .map_err(|e| format!("a temporary file for the stream: {e}"))?;
    let path = file.path().to_path_buf();
    let x264 = format!("repeat-headers=1:keyint={KEY_INT}:min-keyint={KEY_INT}:scenecut=0");
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}"))
        .args(["-frames:v", &FRAMES.to_string(), "-c:v", "libx264"])
        .args(["-preset", "ultrafast", "-b:v", "2M", "-bf", "0"])
        .args(["-pix_fmt", "yuv420p", "-x264-params", &x264, "-f", "h264"])
        .arg(&path)
        .output_within(crate::CHILD_TIMEOUT)
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ffmpeg (libx264) could not make the cheap camera's stream: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    drop(file);
    let aus = access_units(split_annex_b(&data));
    // What the tests rely on: a keyframe every KEY_INT frames, each with
    // SPS and PPS in band, and no picture small enough to go unfragmented.
    if aus.len() != FRAMES {
        return Err(format!("{} access units, not {FRAMES}", aus.len()));
    }
    for (i, au) in aus.iter().enumerate() {
        let types: Vec<u8> = au.nals.iter().map(|n| nal_type(n)).collect();
        let want_idr = i % KEY_INT == 0;
        if au.idr != want_idr || (want_idr && !(types.contains(&7) && types.contains(&8))) {
            return Err(format!("access unit {i}: NAL types {types:?}"));
        }
        if au.nals.last().is_none_or(|n| n.len() <= MTU_PAYLOAD) {
            return Err(format!("access unit {i}: a picture that fits one packet"));
        }
    }
    Ok(aus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_into_access_units() {
        let sps = [0x67, 0x42, 0, 0x1e];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let idr = [0x65, 0x88, 1, 2];
        let p = [0x41, 0x9a, 3];
        let data = [
            &[0, 0, 0, 1][..],
            &sps,
            &[0, 0, 1],
            &pps,
            &[0, 0, 0, 1],
            &idr,
            &[0, 0, 0, 1],
            &p,
            &[0, 0, 0, 1],
            &p,
        ]
        .concat();
        let nals = split_annex_b(&data);
        assert_eq!(nals.len(), 5);
        assert_eq!(nals[1], pps);
        let aus = access_units(nals);
        assert_eq!(aus.len(), 3);
        assert!(aus[0].idr && !aus[1].idr);
        assert_eq!(aus[0].nals.len(), 3);
        assert_eq!(aus[2].nals, vec![p.to_vec()]);
    }

    #[test]
    fn fu_a_fragments_reassemble_and_fit_the_mtu() {
        let mut nal = vec![0x65];
        nal.extend((0..5000u32).map(|i| i as u8));
        let ps = payloads(&nal);
        assert_eq!(ps.len(), 4);
        assert!(ps.iter().all(|p| p.len() <= MTU_PAYLOAD));
        assert_eq!(ps[0][..2], [0x60 | 28, 0x80 | 5]);
        assert_eq!(ps[1][1], 5, "a middle: neither start nor end");
        assert_eq!(ps[3][1], 0x40 | 5);
        let back: Vec<u8> = ps.iter().flat_map(|p| p[2..].to_vec()).collect();
        assert_eq!(back, nal[1..]);
        let small = AccessUnit {
            nals: vec![vec![0x67, 1], nal.clone()],
            idr: true,
        };
        let marks: Vec<bool> = packetize(&small).iter().map(|p| p.1).collect();
        assert_eq!(marks, [false, false, false, false, true]);
        let r = rtp(&[9], true, 7, 3000, 0xBEEF);
        assert_eq!(r[..4], [0x80, 0xE0, 0, 7]);
        assert_eq!(r.len(), 13);
    }

    #[test]
    fn ffmpegs_stream_is_what_the_camera_needs() {
        if !crate::have_tool("ffmpeg") {
            return;
        }
        let aus = stream().unwrap();
        assert_eq!(aus.len(), FRAMES);
        assert!(aus.iter().all(|a| packetize(a).len() >= 2));
    }
}
