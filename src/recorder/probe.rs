//! `video-recorder probe FILE`: our own reader's view of a clip, as JSON. The
//! tests use it next to ffprobe, so it checks what players rely on.

use std::path::Path;

use serde_json::json;

pub fn probe(path: &Path) -> Result<serde_json::Value, String> {
    let p = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{p}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("{p}: {e}"))?.len();
    let r = mp4::read_mp4(file).map_err(|e| format!("{p}: not a readable MP4: {e}"))?;
    // H.264 (`avc1`, which the mp4 crate reads) or H.265 (`hvc1`/`hev1`: a
    // camera's stream copied; the crate skips `hvc1`, so the video track is
    // found by its handler and the entry named from the file's bytes).
    let vide: mp4::FourCC = str::parse("vide").expect("a four-character code");
    let trak = r
        .moov
        .traks
        .iter()
        .find(|t| t.mdia.minf.stbl.stsd.avc1.is_some())
        .or_else(|| {
            r.moov
                .traks
                .iter()
                .find(|t| t.mdia.hdlr.handler_type == vide)
        })
        .ok_or_else(|| format!("{p}: no video track"))?;
    let stbl = &trak.mdia.minf.stbl;
    let (codec, profile, level, width, height) = match &stbl.stsd.avc1 {
        Some(avc1) => (
            "h264",
            Some(profile_name(
                avc1.avcc.avc_profile_indication,
                avc1.avcc.profile_compatibility,
            )),
            Some(f64::from(avc1.avcc.avc_level_indication) / 10.0),
            avc1.width,
            avc1.height,
        ),
        None => {
            let bytes = std::fs::read(path).map_err(|e| format!("{p}: {e}"))?;
            let has = |tag: &[u8]| bytes.windows(4).any(|w| w == tag);
            if !(has(b"hvc1") || has(b"hev1")) || !has(b"hvcC") {
                return Err(format!("{p}: the video track is neither H.264 nor H.265"));
            }
            (
                "h265",
                None,
                None,
                trak.tkhd.width.value(),
                trak.tkhd.height.value(),
            )
        }
    };
    let timescale = trak.mdia.mdhd.timescale;
    let frames = stbl.stsz.sample_count;
    let sizes: Vec<u64> = (0..frames as usize)
        .map(|i| {
            u64::from(if stbl.stsz.sample_size > 0 {
                stbl.stsz.sample_size
            } else {
                stbl.stsz.sample_sizes.get(i).copied().unwrap_or(0)
            })
        })
        .collect();
    // Sample start times from stts, for keyframe spacing.
    let mut times = Vec::with_capacity(frames as usize);
    let mut t = 0u64;
    for e in &stbl.stts.entries {
        for _ in 0..e.sample_count {
            times.push(t);
            t += u64::from(e.sample_delta);
        }
    }
    let keys: Vec<u32> = match &stbl.stss {
        Some(stss) => stss.entries.clone(),
        None => (1..=frames).collect(), // no stss: every sample is a sync sample
    };
    let key_times: Vec<f64> = keys
        .iter()
        .filter_map(|&k| times.get(k as usize - 1))
        .map(|&t| t as f64 / f64::from(timescale.max(1)))
        .collect();
    let max_key_gap = key_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(0.0, f64::max);
    let offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(s), _) => s.entries.iter().map(|&o| u64::from(o)).collect(),
        (_, Some(c)) => c.entries.clone(),
        _ => Vec::new(),
    };
    let stsc: Vec<(u32, u32)> = stbl
        .stsc
        .entries
        .iter()
        .map(|e| (e.first_chunk, e.samples_per_chunk))
        .collect();
    let data_end = last_sample_end(&stsc, &offsets, &sizes);
    let vmhd_flags = trak.mdia.minf.vmhd.as_ref().map(|v| v.flags);
    Ok(json!({
        "codec": codec,
        "profile": profile,
        "level": level,
        "width": width,
        "height": height,
        "frames": frames,
        "duration_sec": trak.mdia.mdhd.duration as f64 / f64::from(timescale.max(1)),
        "stts_duration_sec": t as f64 / f64::from(timescale.max(1)),
        "keyframes": keys.len(),
        "first_is_keyframe": keys.first() == Some(&1),
        "max_keyframe_interval_sec": max_key_gap,
        "timescale": timescale,
        "size_bytes": size,
        "samples_inside_file": data_end.is_some_and(|e| e <= size),
        "vmhd_flags": vmhd_flags,
        "vmhd_flags_ok": vmhd_flags == Some(1),
    }))
}

fn profile_name(idc: u8, compat: u8) -> String {
    match (idc, compat & 0x40 != 0) {
        (66, true) => "Constrained Baseline".into(),
        (66, false) => "Baseline".into(),
        (77, _) => "Main".into(),
        (100, _) => "High".into(),
        (n, _) => format!("profile {n}"),
    }
}

/// Where the samples end, walking stsc over the chunk offsets; `None` when
/// the tables do not account for every sample.
fn last_sample_end(stsc: &[(u32, u32)], offsets: &[u64], sizes: &[u64]) -> Option<u64> {
    let mut sample = 0usize;
    let mut end = 0u64;
    for (c, &offset) in offsets.iter().enumerate() {
        let chunk = c as u32 + 1;
        let per_chunk = stsc.iter().rev().find(|e| e.0 <= chunk)?.1 as usize;
        let mut pos = offset;
        for _ in 0..per_chunk {
            pos += sizes.get(sample)?;
            sample += 1;
        }
        end = end.max(pos);
    }
    (sample == sizes.len()).then_some(end)
}
