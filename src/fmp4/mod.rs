//! Fragmented MP4 (ISO BMFF) for live H.264/H.265 to browsers via Media Source
//! Extensions: one init segment, then one `moof`+`mdat` fragment per frame, so a
//! frame can be sent as soon as it arrives. Also splices a sample entry into a
//! normal MP4's `moov`, for writers that only know how to describe `avc1`.
//!
//! Assumes no B-frames (presentation time == decode time), as with typical cameras.

/// Identity transform matrix used by `mvhd` and `tkhd` (16.16, last column 2.30).
const MATRIX: [u32; 9] = [0x1_0000, 0, 0, 0, 0x1_0000, 0, 0, 0, 0x4000_0000];

/// Where `replace_sample_entry` finds the sample entries.
const STSD_PATH: [&[u8; 4]; 6] = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"];

/// trun sample_flags for a key frame: sample_depends_on=2 (depends on no other sample).
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Other frames: sample_depends_on=1 plus sample_is_non_sync_sample (not a seek point).
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

fn put16(out: &mut Vec<u8>, vals: &[u16]) {
    for v in vals {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn put32(out: &mut Vec<u8>, vals: &[u32]) {
    for v in vals {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends an ISO BMFF box: 32-bit size, fourcc, then what `body` writes.
///
/// The size is patched in afterwards, so nested boxes need no size bookkeeping.
/// Panics if the box would exceed 4 GiB (never the case for init segments or frames).
pub fn write_box(out: &mut Vec<u8>, fourcc: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(fourcc);
    body(out);
    let size = u32::try_from(out.len() - start).expect("box larger than 4 GiB");
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Same for a full box (version + 24-bit flags after the fourcc).
pub fn write_full_box(
    out: &mut Vec<u8>,
    fourcc: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, fourcc, |out| {
        put32(out, &[u32::from(version) << 24 | (flags & 0xFF_FFFF)]);
        body(out);
    });
}

/// The init segment (ftyp + moov with mvex/trex, one video track, id 1, no samples)
/// for a stream whose `stsd` holds `sample_entry` (a complete avc1/hvc1 box as bytes,
/// e.g. what retina's `VideoParameters::mp4_sample_entry().build()` returns),
/// `width` x `height`, media timescale `timescale` (90000 for RTP video).
///
/// Durations are 0 and the sample tables empty: samples come later in fragments.
pub fn init_segment(sample_entry: &[u8], width: u16, height: u16, timescale: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(600 + sample_entry.len());
    write_box(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        put32(o, &[512]); // minor_version
        o.extend_from_slice(b"iso5iso6mp41avc1");
    });
    write_box(&mut out, b"moov", |o| {
        write_full_box(o, b"mvhd", 0, 0, |o| {
            put32(o, &[0, 0, timescale, 0, 0x1_0000]); // times, timescale, duration, rate
            put16(o, &[0x0100, 0]); // volume 1.0, reserved
            put32(o, &[0, 0]);
            put32(o, &MATRIX);
            put32(o, &[0; 6]); // pre_defined
            put32(o, &[2]); // next_track_ID
        });
        write_box(o, b"trak", |o| {
            // flags 3: track_enabled | track_in_movie.
            write_full_box(o, b"tkhd", 0, 3, |o| {
                put32(o, &[0, 0, 1, 0, 0, 0, 0]); // times, track_ID, -, duration, -, -
                put16(o, &[0, 0, 0, 0]); // layer, alternate_group, volume, reserved
                put32(o, &MATRIX);
                put32(o, &[u32::from(width) << 16, u32::from(height) << 16]);
            });
            write_box(o, b"mdia", |o| {
                write_full_box(o, b"mdhd", 0, 0, |o| {
                    put32(o, &[0, 0, timescale, 0]);
                    put16(o, &[0x55C4, 0]); // language "und", pre_defined
                });
                write_full_box(o, b"hdlr", 0, 0, |o| {
                    put32(o, &[0]);
                    o.extend_from_slice(b"vide");
                    put32(o, &[0; 3]);
                    o.extend_from_slice(b"VideoHandler\0");
                });
                write_box(o, b"minf", |o| {
                    write_full_box(o, b"vmhd", 0, 1, |o| put16(o, &[0; 4]));
                    write_box(o, b"dinf", |o| {
                        write_full_box(o, b"dref", 0, 0, |o| {
                            put32(o, &[1]);
                            // flags 1: media data is in this file.
                            write_full_box(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    write_box(o, b"stbl", |o| {
                        write_full_box(o, b"stsd", 0, 0, |o| {
                            put32(o, &[1]);
                            o.extend_from_slice(sample_entry);
                        });
                        write_full_box(o, b"stts", 0, 0, |o| put32(o, &[0]));
                        write_full_box(o, b"stsc", 0, 0, |o| put32(o, &[0]));
                        write_full_box(o, b"stsz", 0, 0, |o| put32(o, &[0, 0]));
                        write_full_box(o, b"stco", 0, 0, |o| put32(o, &[0]));
                    });
                });
            });
        });
        write_box(o, b"mvex", |o| {
            // track 1, sample description 1, no default duration/size/flags.
            write_full_box(o, b"trex", 0, 0, |o| put32(o, &[1, 1, 0, 0, 0]));
        });
    });
    out
}

/// Where `fragment_head` puts the 8-byte decode time (tfdt version 1): moof
/// (8) + mfhd (16) + traf (8) + tfhd (16) + tfdt's header and version (12).
pub const DECODE_TIME_AT: usize = 60;

/// moof (mfhd with `sequence`, traf: tfhd with default-base-is-moof, tfdt version 1 with
/// `decode_time`, trun with one sample: duration, size, flags (sync or non-sync,
/// depends_on etc. set properly), data offset pointing just past the mdat header)
/// followed by the 8-byte mdat header for `size` bytes of sample data. The caller
/// writes the sample's bytes (AVCC/HVCC length-prefixed NAL units) right after.
///
/// default-base-is-moof makes each fragment self-contained (no file offsets), as MSE wants.
/// Panics if `size` > `u32::MAX - 8`.
pub fn fragment_head(
    sequence: u32,
    decode_time: u64,
    duration: u32,
    size: u32,
    key: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(108);
    let mut offset_at = 0;
    write_box(&mut out, b"moof", |o| {
        write_full_box(o, b"mfhd", 0, 0, |o| put32(o, &[sequence]));
        write_box(o, b"traf", |o| {
            write_full_box(o, b"tfhd", 0, 0x02_0000, |o| put32(o, &[1]));
            write_full_box(o, b"tfdt", 1, 0, |o| {
                o.extend_from_slice(&decode_time.to_be_bytes())
            });
            // data-offset, sample-duration, sample-size and sample-flags present.
            write_full_box(o, b"trun", 0, 0x0701, |o| {
                put32(o, &[1]); // sample_count
                offset_at = o.len();
                let flags = if key {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                };
                put32(o, &[0, duration, size, flags]);
            });
        });
    });
    let data_offset = out.len() as u32 + 8;
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    put32(
        &mut out,
        &[size.checked_add(8).expect("sample too large for an mdat")],
    );
    out.extend_from_slice(b"mdat");
    out
}

#[cfg(test)] // cameras send their own sample entry; tests build one
/// Writes a VisualSampleEntry box (`avc1`, `hvc1`, ...) whose codec-specific
/// children (e.g. `avcC`) are written by `children`.
fn visual_sample_entry(
    out: &mut Vec<u8>,
    fourcc: &[u8; 4],
    width: u16,
    height: u16,
    children: impl FnOnce(&mut Vec<u8>),
) {
    write_box(out, fourcc, |o| {
        put16(o, &[0, 0, 0, 1]); // reserved[6], data_reference_index
        put32(o, &[0; 4]); // pre_defined, reserved, pre_defined[3]
        put16(o, &[width, height]);
        put32(o, &[0x48_0000, 0x48_0000, 0]); // 72 dpi, 72 dpi, reserved
        put16(o, &[1]); // frame_count
        o.extend_from_slice(&[0; 32]); // compressorname (empty)
        put16(o, &[0x18, 0xFFFF]); // depth, pre_defined = -1
        children(o);
    });
}

#[cfg(test)] // cameras send their own sample entry; tests build one
/// Builds an avc1 sample entry box from one SPS and one PPS (NAL units without start
/// codes), for width x height: avcC with 4-byte NAL lengths.
///
/// Except for Baseline/Main/Extended, the avcC chroma/bit-depth extension is filled
/// from the SPS, as ISO/IEC 14496-15 asks (omitted if the SPS can't be parsed). Panics if `sps` is shorter than 4 bytes or either is over 64 KiB.
pub fn avc1_sample_entry(sps: &[u8], pps: &[u8], width: u16, height: u16) -> Vec<u8> {
    assert!(sps.len() >= 4, "SPS too short");
    let len16 = |nal: &[u8]| u16::try_from(nal.len()).expect("parameter set over 64 KiB");
    let mut out = Vec::with_capacity(120 + sps.len() + pps.len());
    visual_sample_entry(&mut out, b"avc1", width, height, |o| {
        write_box(o, b"avcC", |o| {
            // version 1, profile, compatibility, level; 0xFF: 4-byte lengths; 0xE1: 1 SPS.
            o.extend_from_slice(&[1, sps[1], sps[2], sps[3], 0xFF, 0xE1]);
            put16(o, &[len16(sps)]);
            o.extend_from_slice(sps);
            o.push(1);
            put16(o, &[len16(pps)]);
            o.extend_from_slice(pps);
            if !matches!(sps[1], 66 | 77 | 88)
                && let Some((chroma, luma, chroma_depth)) = sps_format(sps)
            {
                o.extend_from_slice(&[0xFC | chroma, 0xF8 | luma, 0xF8 | chroma_depth, 0]);
            }
        });
    });
    out
}

#[cfg(test)]
/// Reads Exp-Golomb codes from an RBSP (emulation prevention already removed).
struct Bits<'a>(&'a [u8], usize);

#[cfg(test)]
impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.0.get(self.1 / 8)?;
        self.1 += 1;
        Some(u32::from(byte >> (7 - (self.1 - 1) % 8)) & 1)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v = 0;
        for _ in 0..zeros {
            v = v << 1 | self.bit()?;
        }
        Some((1u32 << zeros) - 1 + v)
    }
}

#[cfg(test)] // cameras send their own sample entry; tests build one
/// (chroma_format_idc, bit_depth_luma_minus8, bit_depth_chroma_minus8) of a High-profile SPS.
fn sps_format(sps: &[u8]) -> Option<(u8, u8, u8)> {
    let (mut rbsp, mut zeros) = (Vec::with_capacity(sps.len()), 0);
    for &b in &sps[1..] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut bits = Bits(&rbsp, 24); // skip profile_idc, constraint flags, level_idc
    bits.ue()?; // seq_parameter_set_id
    let chroma = bits.ue()?;
    if chroma == 3 {
        bits.bit()?; // separate_colour_plane_flag
    }
    let (luma, chroma_depth) = (bits.ue()?, bits.ue()?);
    (chroma <= 3 && luma <= 6 && chroma_depth <= 6).then_some((
        chroma as u8,
        luma as u8,
        chroma_depth as u8,
    ))
}

/// Given a serialized `moov` box (e.g. as written by the `mp4` crate 0.14) whose first
/// trak's stsd has exactly one entry, returns that moov with the entry replaced by
/// `entry` (one complete box, e.g. `hvc1`) and the sizes of stsd, stbl, minf, mdia,
/// trak and moov fixed up. Lets a writer that only knows `avc1` store H.265.
///
/// Reads 32-bit, 64-bit (size 1) and to-end (size 0) box sizes; writes 32-bit ones
/// unless a box outgrows them. Chunk offsets (stco/co64) are left alone: correct
/// when moov comes after mdat, as the `mp4` crate writes it.
pub fn replace_sample_entry(moov: &[u8], entry: &[u8]) -> Result<Vec<u8>, String> {
    if box_at(entry, 0)?.2 != entry.len() {
        return Err("entry must be exactly one box".into());
    }
    splice(moov, &STSD_PATH, entry)
}

/// Header of the box at `pos` in `buf`: (fourcc, header length, end offset).
fn box_at(buf: &[u8], pos: usize) -> Result<([u8; 4], usize, usize), String> {
    let head = buf.get(pos..pos + 8).ok_or("truncated box header")?;
    let fourcc: [u8; 4] = head[4..8].try_into().unwrap();
    let name = String::from_utf8_lossy(&fourcc);
    let (head_len, size) = match u32::from_be_bytes(head[..4].try_into().unwrap()) {
        0 => (8, (buf.len() - pos) as u64),
        1 => {
            let large = buf
                .get(pos + 8..pos + 16)
                .ok_or_else(|| format!("truncated size of {name}"))?;
            (16, u64::from_be_bytes(large.try_into().unwrap()))
        }
        size => (8, u64::from(size)),
    };
    usize::try_from(size)
        .ok()
        .and_then(|size| pos.checked_add(size))
        .filter(|&end| size >= head_len as u64 && end <= buf.len())
        .map(|end| (fourcc, head_len, end))
        .ok_or_else(|| format!("box {name} has bad size {size}"))
}

/// Rebuilds the sequence of boxes `buf` with the first box at `path` (ending at
/// stsd) holding `entry` as its only sample entry.
fn splice(buf: &[u8], path: &[&[u8; 4]], entry: &[u8]) -> Result<Vec<u8>, String> {
    let mut pos = 0;
    while pos < buf.len() {
        let (fourcc, head_len, end) = box_at(buf, pos)?;
        if &fourcc != path[0] {
            pos = end;
            continue;
        }
        let name = String::from_utf8_lossy(&fourcc);
        let body = &buf[pos + head_len..end];
        let body = if path.len() == 1 {
            let head = body.get(..8).ok_or("truncated stsd")?; // version/flags, entry_count
            if head[4..] != [0, 0, 0, 1] {
                return Err("stsd must have exactly one entry".into());
            }
            [head, entry].concat()
        } else {
            splice(body, &path[1..], entry).map_err(|e| format!("{name}: {e}"))?
        };
        let mut out = Vec::with_capacity(buf.len() + entry.len());
        out.extend_from_slice(&buf[..pos]);
        let size = body.len() as u64 + 8;
        if let Ok(size) = u32::try_from(size) {
            put32(&mut out, &[size]);
            out.extend_from_slice(&fourcc);
        } else {
            put32(&mut out, &[1]); // 64-bit size follows the fourcc
            out.extend_from_slice(&fourcc);
            out.extend_from_slice(&(size + 8).to_be_bytes());
        }
        out.extend_from_slice(&body);
        out.extend_from_slice(&buf[end..]);
        return Ok(out);
    }
    Err(format!(
        "box {} not found",
        String::from_utf8_lossy(path[0])
    ))
}

#[cfg(test)]
mod tests;
