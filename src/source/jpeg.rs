//! JPEG hygiene for frames from cameras and files, without decoding: check
//! the frame is whole (SOI … SOF … SOS … EOI), read its size from SOF, and
//! give frames without Huffman tables the standard ones, as µStreamer and
//! mjpg-streamer do, because browsers show nothing for such frames.
//!
//! Only marker segments before the first SOS are parsed (a few hundred
//! bytes); the entropy-coded data is never scanned here, so this costs
//! microseconds per frame whatever its size.

/// Why a frame was dropped (for the log; the count goes to `/status`).
pub type Broken = &'static str;

/// A SOF giving a size over [`crate::frame::size_ok`]'s rule: such a frame
/// is refused (counted as broken) before anyone allocates for its size.
pub const TOO_LARGE: Broken =
    "SOF gives a size over the limit (at most 3840 pixels a side and 3840x2160 pixels in all)";

/// What the header says about a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// A DHT segment came before the first SOS.
    pub has_dht: bool,
    /// Offset of the first SOS marker (its 0xFF byte).
    pub sos: usize,
}

/// Standard Huffman tables (ITU T.81 Annex K.3, tables K.3 to K.6) as one
/// DHT segment: luminance DC (0) and AC (0), chrominance DC (1) and AC (1).
/// These are what motion-JPEG cameras that omit DHT encode with (AVI1 / UVC).
pub static STD_DHT: [u8; 420] = std_dht();

const DC_LUMA_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
#[rustfmt::skip]
const AC_LUMA_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
    0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
    0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];
const AC_CHROMA_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
#[rustfmt::skip]
const AC_CHROMA_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
    0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
    0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
    0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
    0xf9, 0xfa,
];

/// Builds the DHT segment at compile time: marker, length, then for each
/// table its class/id byte, 16 code-length counts and the values.
const fn std_dht() -> [u8; 420] {
    let mut out = [0u8; 420];
    out[0] = 0xFF;
    out[1] = 0xC4;
    out[2] = (418 >> 8) as u8;
    out[3] = (418 & 0xFF) as u8;
    let mut pos = 4;
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &DC_LUMA_BITS, &DC_VALUES),
        (0x10, &AC_LUMA_BITS, &AC_LUMA_VALUES),
        (0x01, &DC_CHROMA_BITS, &DC_VALUES),
        (0x11, &AC_CHROMA_BITS, &AC_CHROMA_VALUES),
    ];
    let mut t = 0;
    while t < 4 {
        let (class_id, bits, values) = tables[t];
        out[pos] = class_id;
        pos += 1;
        let mut i = 0;
        while i < 16 {
            out[pos] = bits[i];
            pos += 1;
            i += 1;
        }
        let mut i = 0;
        while i < values.len() {
            out[pos] = values[i];
            pos += 1;
            i += 1;
        }
        t += 1;
    }
    assert!(pos == 420);
    out
}

/// True for the start-of-frame markers SOF0..SOF15 (C4 DHT, C8 JPG and CC DAC
/// share the range but are not frame headers).
fn is_sof(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

fn be16(data: &[u8], at: usize) -> usize {
    usize::from(data[at]) << 8 | usize::from(data[at + 1])
}

/// Parses the marker segments from SOI up to the first SOS.
pub fn parse_header(data: &[u8]) -> Result<Header, Broken> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err("does not start with SOI (FFD8)");
    }
    let mut pos = 2;
    let mut size = None;
    let mut has_dht = false;
    loop {
        if pos >= data.len() {
            return Err("ends inside the header");
        }
        if data[pos] != 0xFF {
            return Err("garbage where a marker should be");
        }
        let marker_at = pos;
        // Any number of 0xFF fill bytes may precede a marker.
        while pos < data.len() && data[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos) else {
            return Err("ends inside the header");
        };
        pos += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 => return Err("second SOI inside the header"),
            0xD9 => return Err("EOI before any scan"),
            0x00 => return Err("garbage where a marker should be"),
            _ => {}
        }
        if pos + 2 > data.len() {
            return Err("ends inside the header");
        }
        let len = be16(data, pos);
        if len < 2 || pos + len > data.len() {
            return Err("segment runs past the end");
        }
        if is_sof(marker) {
            if len < 8 {
                return Err("SOF segment too short");
            }
            let height = be16(data, pos + 3) as u32;
            let width = be16(data, pos + 5) as u32;
            if width == 0 || height == 0 {
                return Err("SOF gives a zero frame size");
            }
            if !crate::frame::size_ok((width, height)) {
                return Err(TOO_LARGE);
            }
            size = Some((width, height));
        } else if marker == 0xC4 {
            has_dht = true;
        } else if marker == 0xDA {
            let Some((width, height)) = size else {
                return Err("no SOF before the scan");
            };
            return Ok(Header {
                width,
                height,
                has_dht,
                sos: marker_at,
            });
        }
        pos += len;
    }
}

/// Checks a frame and makes it fit to send: trims padding after EOI, drops
/// frames that are truncated or lack SOF/SOS, inserts the standard Huffman
/// tables when the frame has none. Returns the frame and its size.
pub fn sanitize(mut jpeg: Vec<u8>) -> Result<(Vec<u8>, (u32, u32)), Broken> {
    // UVC drivers hand out whole buffers; some cameras pad after EOI with zeros.
    let end = jpeg.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    jpeg.truncate(end);
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return Err("does not start with SOI (FFD8)");
    }
    if !jpeg.ends_with(&[0xFF, 0xD9]) || jpeg.len() < 4 {
        return Err("truncated: does not end with EOI (FFD9)");
    }
    let head = parse_header(&jpeg)?;
    if !head.has_dht {
        jpeg = with_std_dht(&jpeg, head.sos);
    }
    Ok((jpeg, (head.width, head.height)))
}

/// A copy of `jpeg` with [`STD_DHT`] inserted at `at` (before the first SOS).
fn with_std_dht(jpeg: &[u8], at: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(jpeg.len() + STD_DHT.len());
    out.extend_from_slice(&jpeg[..at]);
    out.extend_from_slice(&STD_DHT);
    out.extend_from_slice(&jpeg[at..]);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;

    /// A JPEG made by jpeg-encoder (standard tables) with some texture.
    pub(crate) fn sample_jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut px = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h as usize {
            for x in 0..w as usize {
                px.extend_from_slice(&[(x * 7) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8]);
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&px, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    /// Removes every DHT segment before SOS, as some UVC cameras send them.
    pub(crate) fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut pos = 2;
        loop {
            let marker = jpeg[pos + 1];
            let len = be16(jpeg, pos + 2);
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[pos..]);
                return out;
            }
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
            }
            pos += 2 + len;
        }
    }

    fn decode(jpeg: &[u8]) -> Vec<u8> {
        JpegDecoder::new(ZCursor::new(jpeg)).decode().unwrap()
    }

    #[test]
    fn reads_size_from_sof() {
        let (out, size) = sanitize(sample_jpeg(48, 32)).unwrap();
        assert_eq!(size, (48, 32));
        assert!(parse_header(&out).unwrap().has_dht);
    }

    #[test]
    fn keeps_good_frames_untouched() {
        let j = sample_jpeg(32, 16);
        let (out, _) = sanitize(j.clone()).unwrap();
        assert_eq!(out, j);
    }

    #[test]
    fn trims_zero_padding_after_eoi() {
        let j = sample_jpeg(32, 16);
        let mut padded = j.clone();
        padded.extend_from_slice(&[0; 1000]);
        assert_eq!(sanitize(padded).unwrap().0, j);
    }

    #[test]
    fn drops_truncated_and_broken_frames() {
        let j = sample_jpeg(64, 64);
        assert!(sanitize(j[..j.len() / 2].to_vec()).is_err());
        assert!(sanitize(j[..j.len() - 1].to_vec()).is_err());
        assert!(sanitize(j[2..].to_vec()).is_err(), "no SOI");
        assert!(sanitize(Vec::new()).is_err());
        assert!(
            sanitize(vec![0xFF, 0xD8, 0xFF, 0xD9]).is_err(),
            "no SOF/SOS"
        );
        // Header cut off, but tail kept: segment lengths run past the end.
        let mut cut = j[..20].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        assert!(sanitize(cut).is_err());
        // Garbage in the header.
        let mut bad = j.clone();
        bad[2] = 0x12;
        assert!(sanitize(bad).is_err());
    }

    /// `jpeg` with its SOF saying `w`x`h` (the data stays as it was).
    pub(crate) fn with_sof_size(mut jpeg: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
        let mut pos = 2;
        while !is_sof(jpeg[pos + 1]) {
            pos += 2 + be16(&jpeg, pos + 2);
        }
        jpeg[pos + 5..pos + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[pos + 7..pos + 9].copy_from_slice(&w.to_be_bytes());
        jpeg
    }

    #[test]
    fn frames_over_the_size_rule_are_refused_by_their_header() {
        let j = sample_jpeg(16, 16);
        assert_eq!(
            sanitize(with_sof_size(j.clone(), 320, 240)).unwrap().1,
            (320, 240)
        );
        for (w, h) in [(65535, 65535), (16384, 16384), (3841, 16), (3840, 2161)] {
            let big = with_sof_size(j.clone(), w, h);
            assert_eq!(parse_header(&big), Err(TOO_LARGE), "{w}x{h}");
            assert_eq!(sanitize(big), Err(TOO_LARGE), "{w}x{h}");
        }
        assert!(TOO_LARGE.contains(crate::frame::SIZE_RULE));
        let wide = with_sof_size(j, 3840, 2160);
        assert_eq!(sanitize(wide).unwrap().1, (3840, 2160));
    }

    #[test]
    fn frame_without_sof_is_broken() {
        // SOI, DQT-like APP0 segment, SOS, EOI: no frame header.
        let f = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xDA, 0, 2, 0xFF, 0xD9,
        ];
        assert_eq!(sanitize(f), Err("no SOF before the scan"));
    }

    #[test]
    fn std_dht_matches_the_encoders_tables() {
        // jpeg-encoder writes the same Annex K tables as four DHT segments.
        let j = sample_jpeg(16, 16);
        let mut theirs = Vec::new();
        let mut pos = 2;
        while j[pos + 1] != 0xDA {
            let len = be16(&j, pos + 2);
            if j[pos + 1] == 0xC4 {
                theirs.extend_from_slice(&j[pos + 4..pos + 2 + len]);
            }
            pos += 2 + len;
        }
        let mut theirs = split_tables(&theirs);
        let mut ours = split_tables(&STD_DHT[4..]);
        theirs.sort();
        ours.sort();
        assert_eq!(ours.len(), 4);
        assert_eq!(ours, theirs);
    }

    fn split_tables(mut d: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !d.is_empty() {
            let n: usize = d[1..17].iter().map(|&b| usize::from(b)).sum();
            out.push(d[..17 + n].to_vec());
            d = &d[17 + n..];
        }
        out
    }

    #[test]
    fn inserts_standard_tables_that_decode_to_the_same_pixels() {
        let j = sample_jpeg(40, 24);
        let stripped = strip_dht(&j);
        assert!(!parse_header(&stripped).unwrap().has_dht);
        assert!(
            JpegDecoder::new(ZCursor::new(&stripped)).decode().is_err(),
            "the stripped frame must really be undecodable"
        );
        let (fixed, size) = sanitize(stripped.clone()).unwrap();
        assert_eq!(size, (40, 24));
        assert_eq!(fixed.len(), stripped.len() + STD_DHT.len());
        let head = parse_header(&fixed).unwrap();
        assert!(head.has_dht);
        assert_eq!(&fixed[head.sos - STD_DHT.len()..head.sos], &STD_DHT[..]);
        assert_eq!(decode(&fixed), decode(&j));
    }

    #[test]
    fn skips_fill_bytes_and_thumbnails_in_app_segments() {
        // An APP1 segment holding a whole thumbnail JPEG (with its own EOI)
        // must be skipped by length, not mistaken for the frame's end.
        let j = sample_jpeg(32, 32);
        let thumb = sample_jpeg(8, 8);
        let mut app1 = vec![0xFF, 0xFF, 0xE1];
        let len = (thumb.len() + 2) as u16;
        app1.extend_from_slice(&len.to_be_bytes());
        app1.extend_from_slice(&thumb);
        let mut f = j[..2].to_vec();
        f.extend_from_slice(&app1);
        f.extend_from_slice(&j[2..]);
        let (out, size) = sanitize(f.clone()).unwrap();
        assert_eq!(size, (32, 32));
        assert_eq!(out, f);
        assert_eq!(decode(&out), decode(&j));
    }
}
