//! `video-recorder probe FILE`: our own reader's view of a clip, as JSON. The
//! tests use it next to ffprobe, so it checks what players rely on.

use std::path::Path;

use serde_json::json;

pub fn probe(path: &Path) -> Result<serde_json::Value, String> {
    let p = path.display();
    let file = std::fs::File::open(path).map_err(|e| format!("{p}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("{p}: {e}"))?.len();
    let r = mp4::read_mp4(file).map_err(|e| format!("{p}: not a readable MP4: {e}"))?;
    let trak = r
        .moov
        .traks
        .iter()
        .find(|t| t.mdia.minf.stbl.stsd.avc1.is_some())
        .ok_or_else(|| format!("{p}: no H.264 (avc1) track"))?;
    let stbl = &trak.mdia.minf.stbl;
    let avc1 = stbl.stsd.avc1.as_ref().ok_or("no avc1")?;
    let avcc = &avc1.avcc;
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
        "codec": "h264",
        "profile": profile_name(avcc.avc_profile_indication, avcc.profile_compatibility),
        "level": f64::from(avcc.avc_level_indication) / 10.0,
        "width": avc1.width,
        "height": avc1.height,
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
