//! Finds whole JPEGs in a byte stream of concatenated JPEGs (what
//! `ffmpeg -f mjpeg` writes). Marker segments are skipped by their length, so
//! an APP segment holding a thumbnail (with its own SOI/EOI) is not mistaken
//! for a frame boundary; only the entropy-coded data after SOS is scanned,
//! where a 0xFF byte is always followed by 0x00 (stuffing), a restart marker
//! or a real marker.

use std::ops::Range;

/// What [`next_jpeg`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// A frame occupies this range. A broken frame (one that a second SOI or
    /// garbage cut short) is returned too, so the caller's checks count it.
    Frame(Range<usize>),
    /// A frame starts at this offset but has not ended yet: read more.
    Incomplete(usize),
    /// No frame starts in the buffer; bytes before this offset can go.
    Nothing(usize),
}

/// Looks for the first JPEG in `data`.
pub fn next_jpeg(data: &[u8]) -> Scan {
    let Some(start) = find_soi(data) else {
        // Keep a trailing 0xFF: it may be the first half of the next SOI.
        let keep = if data.last() == Some(&0xFF) { 1 } else { 0 };
        return Scan::Nothing(data.len() - keep);
    };
    let mut pos = start + 2;
    loop {
        // Expect a marker: 0xFF, optional fill bytes, marker code.
        let Some(&b) = data.get(pos) else {
            return Scan::Incomplete(start);
        };
        if b != 0xFF {
            return Scan::Frame(start..pos);
        }
        let marker_at = pos;
        while data.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return Scan::Incomplete(start);
        };
        pos += 1;
        match marker {
            0xD9 => return Scan::Frame(start..pos),
            // A new frame begins: this one was cut short.
            0xD8 => return Scan::Frame(start..marker_at),
            0x00 => return Scan::Frame(start..marker_at),
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        if pos + 2 > data.len() {
            return Scan::Incomplete(start);
        }
        let len = usize::from(data[pos]) << 8 | usize::from(data[pos + 1]);
        if len < 2 {
            return Scan::Frame(start..marker_at);
        }
        pos += len;
        if pos > data.len() {
            return Scan::Incomplete(start);
        }
        if marker == 0xDA {
            match skip_entropy_data(data, pos) {
                Some(next_marker) => pos = next_marker,
                None => return Scan::Incomplete(start),
            }
        }
    }
}

fn find_soi(data: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = data[from..].iter().position(|&b| b == 0xFF) {
        let at = from + i;
        match data.get(at + 1) {
            Some(0xD8) => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// Offset of the first real marker after entropy-coded data starting at
/// `from`, or `None` if the data ends first.
fn skip_entropy_data(data: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + data.get(from..)?.iter().position(|&b| b == 0xFF)?;
        match *data.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => from = at + 2,
            0xFF => from = at + 1,
            _ => return Some(at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::jpeg::tests::sample_jpeg;

    fn split_all(mut data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match next_jpeg(data) {
                Scan::Frame(r) => {
                    out.push(data[r.clone()].to_vec());
                    data = &data[r.end..];
                }
                Scan::Incomplete(_) | Scan::Nothing(_) => return out,
            }
        }
    }

    #[test]
    fn splits_concatenated_frames_with_junk_between() {
        let a = sample_jpeg(32, 16);
        let b = sample_jpeg(64, 48);
        let mut stream = b"junk\xFF".to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&[0, 0, 0xFF]);
        stream.extend_from_slice(&b);
        stream.extend_from_slice(&a);
        assert_eq!(split_all(&stream), vec![a.clone(), b, a]);
    }

    #[test]
    fn thumbnail_in_app_segment_is_not_a_frame_end() {
        let j = sample_jpeg(32, 32);
        let thumb = sample_jpeg(8, 8);
        let mut f = j[..2].to_vec();
        f.extend_from_slice(&[0xFF, 0xE1]);
        f.extend_from_slice(&((thumb.len() + 2) as u16).to_be_bytes());
        f.extend_from_slice(&thumb);
        f.extend_from_slice(&j[2..]);
        let mut stream = f.clone();
        stream.extend_from_slice(&j);
        assert_eq!(split_all(&stream), vec![f, j]);
    }

    #[test]
    fn progressive_frames_with_several_scans() {
        let mut px = vec![0u8; 64 * 64 * 3];
        for (i, p) in px.iter_mut().enumerate() {
            *p = (i * 13 % 251) as u8;
        }
        let mut j = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut j, 85);
        enc.set_progressive(true);
        enc.encode(&px, 64, 64, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let scans = j.windows(2).filter(|w| w == &[0xFF, 0xDA]).count();
        assert!(scans > 1, "expected several scans, got {scans}");
        let mut stream = j.clone();
        stream.extend_from_slice(&j);
        assert_eq!(split_all(&stream), vec![j.clone(), j]);
    }

    #[test]
    fn waits_for_more_data_and_keeps_a_split_soi() {
        let j = sample_jpeg(32, 16);
        for cut in [1, 2, 5, 30, j.len() / 2, j.len() - 1] {
            let mut data = b"xx".to_vec();
            data.extend_from_slice(&j[..cut]);
            match next_jpeg(&data) {
                Scan::Incomplete(2) => assert!(cut >= 2),
                Scan::Nothing(keep) => {
                    assert_eq!(cut, 1);
                    assert_eq!(keep, 2, "the 0xFF of a split SOI is kept");
                }
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert_eq!(next_jpeg(b"no jpeg here"), Scan::Nothing(12));
    }

    #[test]
    fn frame_cut_short_by_next_soi_is_returned_for_counting() {
        // Cut inside the entropy-coded data (the header is ~620 bytes).
        let j = sample_jpeg(128, 128);
        assert!(j.len() > 1000);
        let mut stream = j[..j.len() - 200].to_vec();
        stream.extend_from_slice(&j);
        let frames = split_all(&stream);
        assert_eq!(frames.len(), 2);
        assert!(crate::source::jpeg::sanitize(frames[0].clone()).is_err());
        assert_eq!(frames[1], j);
    }
}
