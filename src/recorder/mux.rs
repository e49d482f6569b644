//! MP4 layout of a clip, built with the `mp4` crate's box types.
//!
//! File: `ftyp`, an `mdat` with a 64-bit size header (patched when the clip is
//! finished), the AVCC samples back to back, then `moov` appended at the end.
//! The `moov` is built from a [`SampleTable`], which the recorder keeps in
//! memory and recovery rebuilds from the journal: one code path for both.

use mp4::{BoxType, FourCC, FtypBox, MoovBox, WriteBox};

pub use crate::clock::TIMESCALE;
const MOVIE_TIMESCALE: u32 = 1000;
/// Seconds between 1904-01-01 (MP4 epoch) and 1970-01-01.
const MP4_EPOCH_OFFSET: u64 = 2_082_844_800;

/// `ftyp` bytes, identical for every clip.
pub fn ftyp() -> Vec<u8> {
    let brand = |b: &[u8; 4]| FourCC::from(*b);
    let ftyp = FtypBox {
        major_brand: brand(b"isom"),
        minor_version: 512,
        compatible_brands: vec![
            brand(b"isom"),
            brand(b"iso2"),
            brand(b"avc1"),
            brand(b"mp41"),
        ],
    };
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ftyp.write_box(&mut out);
    out
}

/// `mdat` header with a 64-bit size, zero until the clip is finished.
pub const MDAT_HEADER_LEN: u64 = 16;

pub fn mdat_header(total_size: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&1u32.to_be_bytes());
    h[4..8].copy_from_slice(b"mdat");
    h[8..].copy_from_slice(&total_size.to_be_bytes());
    h
}

/// Where samples start in every clip file.
pub fn data_start() -> u64 {
    ftyp().len() as u64 + MDAT_HEADER_LEN
}

/// What the decoder needs to know about the track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub width: u16,
    pub height: u16,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    /// The camera's own sample entry (`hvc1`), put in place of the `avc1`
    /// built from `sps`/`pps`; `None` for H.264.
    pub entry: Option<Vec<u8>>,
    pub timescale: u32,
    /// Wall clock of the first sample, Unix seconds (for `creation_time`).
    pub created_unix: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleEntry {
    pub size: u32,
    /// Presentation time in `timescale` ticks from the clip's first sample.
    pub pts: u64,
    pub sync: bool,
}

/// Everything `moov` describes; samples lie contiguously from `data_start`.
#[derive(Debug, Clone)]
pub struct SampleTable {
    pub info: TrackInfo,
    pub data_start: u64,
    pub samples: Vec<SampleEntry>,
    /// When the last sample stops showing, in ticks (the clip's duration).
    pub end: u64,
    /// The camera's own JPEG of the first frame, stored as the clip's cover
    /// picture (`udta/meta/ilst/covr`) for the library; recovery has none.
    pub thumbnail: Option<Vec<u8>>,
}

impl SampleTable {
    pub fn data_end(&self) -> u64 {
        self.data_start + self.samples.iter().map(|s| u64::from(s.size)).sum::<u64>()
    }

    /// Sample durations: differences of presentation times; the last lasts until `end`.
    fn durations(&self) -> Vec<u32> {
        let n = self.samples.len();
        (0..n)
            .map(|i| {
                let next = if i + 1 < n {
                    self.samples[i + 1].pts
                } else {
                    self.end
                };
                next.saturating_sub(self.samples[i].pts)
                    .clamp(1, u64::from(u32::MAX)) as u32
            })
            .collect()
    }

    /// The `moov` box for this table.
    pub fn moov(&self) -> Result<Vec<u8>, String> {
        let first = self.samples.first().ok_or("clip has no samples")?;
        if !first.sync {
            return Err("clip does not start with a keyframe".into());
        }
        let info = &self.info;
        if info.entry.is_none() && (info.sps.len() < 4 || info.pps.is_empty()) {
            return Err("missing H.264 SPS/PPS".into());
        }
        let ts = u64::from(info.timescale);
        let durations = self.durations();
        let media_duration: u64 = durations.iter().map(|&d| u64::from(d)).sum();
        let movie_duration = media_duration * u64::from(MOVIE_TIMESCALE) / ts;
        let created = info.created_unix + MP4_EPOCH_OFFSET;
        let v = |d: u64| u8::from(d > u64::from(u32::MAX) || created > u64::from(u32::MAX));

        let mut moov = MoovBox::default();
        moov.mvhd.version = v(movie_duration);
        moov.mvhd.timescale = MOVIE_TIMESCALE;
        moov.mvhd.duration = movie_duration;
        moov.mvhd.creation_time = created;
        moov.mvhd.modification_time = created;
        moov.mvhd.next_track_id = 2;
        moov.traks.push(Default::default());
        let trak = &mut moov.traks[0];

        trak.tkhd.version = v(movie_duration);
        // Enabled, in movie, in preview: what other muxers write.
        trak.tkhd.flags = 3;
        trak.tkhd.track_id = 1;
        trak.tkhd.duration = movie_duration;
        trak.tkhd.creation_time = created;
        trak.tkhd.modification_time = created;
        trak.tkhd.set_width(info.width);
        trak.tkhd.set_height(info.height);

        let mdia = &mut trak.mdia;
        mdia.mdhd.version = v(media_duration);
        mdia.mdhd.timescale = info.timescale;
        mdia.mdhd.duration = media_duration;
        mdia.mdhd.creation_time = created;
        mdia.mdhd.modification_time = created;
        mdia.mdhd.language = "und".into();
        mdia.hdlr.handler_type = FourCC::from(BoxType::from(u32::from_be_bytes(*b"vide")));
        mdia.hdlr.name = "VideoHandler".into();

        let minf = &mut mdia.minf;
        minf.vmhd = Some(Default::default());
        if let Some(vmhd) = minf.vmhd.as_mut() {
            // ISO 14496-12 requires flags = 1; the crate writes 0, which
            // Android refuses to play (mp4 crate issue #123).
            vmhd.flags = 1;
        }

        let stbl = &mut minf.stbl;
        stbl.stsd.avc1 = Some(Default::default());
        if let Some(avc1) = stbl.stsd.avc1.as_mut() {
            avc1.data_reference_index = 1;
            avc1.width = info.width;
            avc1.height = info.height;
            let avcc = &mut avc1.avcc;
            avcc.configuration_version = 1;
            avcc.avc_profile_indication = info.sps.get(1).copied().unwrap_or(0);
            avcc.profile_compatibility = info.sps.get(2).copied().unwrap_or(0);
            avcc.avc_level_indication = info.sps.get(3).copied().unwrap_or(0);
            avcc.length_size_minus_one = 0xFF; // 4-byte lengths (reserved bits set)
            avcc.sequence_parameter_sets = vec![From::from(info.sps.as_slice())];
            avcc.picture_parameter_sets = vec![From::from(info.pps.as_slice())];
        }

        // stts: run-length durations.
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &d in &durations {
            match runs.last_mut() {
                Some((count, delta)) if *delta == d => *count += 1,
                _ => runs.push((1, d)),
            }
        }
        stbl.stts.entries.resize(runs.len(), Default::default());
        for (e, (count, delta)) in stbl.stts.entries.iter_mut().zip(runs) {
            e.sample_count = count;
            e.sample_delta = delta;
        }

        // stss: 1-based numbers of keyframes.
        stbl.stss = Some(Default::default());
        if let Some(stss) = stbl.stss.as_mut() {
            stss.entries = (1u32..)
                .zip(&self.samples)
                .filter(|(_, s)| s.sync)
                .map(|(i, _)| i)
                .collect();
        }

        // stsz: sizes one by one.
        stbl.stsz.sample_size = 0;
        stbl.stsz.sample_count = self.samples.len() as u32;
        stbl.stsz.sample_sizes = self.samples.iter().map(|s| s.size).collect();

        // Chunks of about one second each.
        let mut chunk_offsets: Vec<u64> = Vec::new();
        let mut chunk_counts: Vec<u32> = Vec::new();
        let mut offset = self.data_start;
        let mut chunk_dur = u64::MAX;
        for (s, &d) in self.samples.iter().zip(&durations) {
            if chunk_dur >= ts {
                chunk_offsets.push(offset);
                chunk_counts.push(0);
                chunk_dur = 0;
            }
            if let Some(c) = chunk_counts.last_mut() {
                *c += 1;
            }
            chunk_dur += u64::from(d);
            offset += u64::from(s.size);
        }
        let mut stsc_runs: Vec<(u32, u32, u32)> = Vec::new(); // first chunk, per chunk, first sample
        let mut first_sample = 1;
        for (i, &n) in chunk_counts.iter().enumerate() {
            if stsc_runs.last().is_none_or(|r| r.1 != n) {
                stsc_runs.push((i as u32 + 1, n, first_sample));
            }
            first_sample += n;
        }
        stbl.stsc
            .entries
            .resize(stsc_runs.len(), Default::default());
        for (e, (first_chunk, per_chunk, first_sample)) in
            stbl.stsc.entries.iter_mut().zip(stsc_runs)
        {
            e.first_chunk = first_chunk;
            e.samples_per_chunk = per_chunk;
            e.sample_description_index = 1;
            e.first_sample = first_sample;
        }
        // 32-bit offsets unless the clip passes 4 GiB.
        if chunk_offsets
            .last()
            .is_some_and(|&o| o > u64::from(u32::MAX))
        {
            stbl.co64 = Some(Default::default());
            if let Some(co64) = stbl.co64.as_mut() {
                co64.entries = chunk_offsets;
            }
            stbl.stco = None;
        } else {
            stbl.stco = Some(Default::default());
            if let Some(stco) = stbl.stco.as_mut() {
                stco.entries = chunk_offsets.iter().map(|&o| o as u32).collect();
            }
            stbl.co64 = None;
        }

        let mut out = Vec::new();
        moov.write_box(&mut out)
            .map_err(|e| format!("building moov: {e}"))?;
        if let Some(entry) = &info.entry {
            // The crate knows `avc1` only: put the camera's entry in its place.
            out = crate::fmp4::replace_sample_entry(&out, entry)?;
        }
        if let Some(jpeg) = &self.thumbnail {
            // The crate cannot build `udta` boxes: append ours and grow
            // `moov`'s size to hold it.
            out.extend_from_slice(&cover(jpeg));
            let size = u32::try_from(out.len()).map_err(|_| "moov too large")?;
            out[..4].copy_from_slice(&size.to_be_bytes());
        }
        Ok(out)
    }
}

/// A box: 32-bit size, type, body.
fn mp4_box(kind: &[u8; 4], body: &[&[u8]]) -> Vec<u8> {
    let len = 8 + body.iter().map(|b| b.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(kind);
    for b in body {
        out.extend_from_slice(b);
    }
    out
}

/// `udta/meta/ilst/covr` holding a JPEG: the cover picture players and
/// file managers show, and the library's thumbnail.
fn cover(jpeg: &[u8]) -> Vec<u8> {
    // data: type 13 (JPEG) in the low 24 bits of a full-box header, locale 0.
    let data = mp4_box(b"data", &[&13u32.to_be_bytes(), &[0; 4], jpeg]);
    let ilst = mp4_box(b"ilst", &[&mp4_box(b"covr", &[&data])]);
    // hdlr: version/flags, pre_defined, handler `mdir`, reserved (`appl`
    // first, as iTunes writes), empty name.
    let hdlr = mp4_box(
        b"hdlr",
        &[&[0; 4], &[0; 4], b"mdir", b"appl", &[0; 8], &[0]],
    );
    let meta = mp4_box(b"meta", &[&[0; 4], &hdlr, &ilst]);
    mp4_box(b"udta", &[&meta])
}

#[cfg(test)]
mod tests;
