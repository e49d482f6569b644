//! Unit tests, and an independent reader (ffprobe) of what is built.
use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Walks a sequence of boxes, descending into known containers, and returns the
/// path of every box seen. Errors if any size does not add up exactly within its
/// parent, or an entry count disagrees with the entries found.
fn walk(buf: &[u8]) -> Result<Vec<String>, String> {
    fn go(buf: &[u8], prefix: &str, seen: &mut Vec<String>) -> Result<usize, String> {
        let (mut pos, mut count) = (0, 0);
        while pos < buf.len() {
            let (fourcc, head_len, end) = box_at(buf, pos)?;
            let name = format!("{prefix}/{}", String::from_utf8_lossy(&fourcc));
            seen.push(name.clone());
            let body = &buf[pos + head_len..end];
            let skip = match &fourcc {
                b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof"
                | b"traf" => Some(0),
                b"dref" | b"stsd" => Some(8),
                b"avc1" | b"hvc1" => Some(78),
                _ => None,
            };
            if let Some(skip) = skip {
                let children = go(body.get(skip..).ok_or("short container")?, &name, seen)?;
                if skip == 8
                    && u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize != children
                {
                    return Err(format!("{name}: entry_count mismatch"));
                }
            }
            pos = end;
            count += 1;
        }
        Ok(count)
    }
    let mut seen = Vec::new();
    go(buf, "", &mut seen)?;
    Ok(seen)
}

/// The whole box (header included) at `path`, taking the first match at each level.
fn find<'a>(buf: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    let mut pos = 0;
    loop {
        let (fourcc, head_len, end) = box_at(buf, pos).unwrap();
        if &fourcc == path[0] {
            if path.len() == 1 {
                return &buf[pos..end];
            }
            let skip = match &fourcc {
                b"stsd" => 8,
                b"avc1" | b"hvc1" => 78,
                _ => 0,
            };
            return find(&buf[pos + head_len + skip..end], &path[1..]);
        }
        pos = end;
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(buf[at..at + 4].try_into().unwrap())
}

fn hvc1_entry() -> Vec<u8> {
    let mut out = Vec::new();
    visual_sample_entry(&mut out, b"hvc1", 1920, 1080, |o| {
        write_box(o, b"hvcC", |o| o.extend_from_slice(&[1, 2, 3, 4, 5]))
    });
    out
}

// Baseline-ish SPS and a PPS; contents only matter for the profile bytes.
const SPS: &[u8] = &[0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x05, 0x07, 0xC4];
const PPS: &[u8] = &[0x68, 0xCE, 0x3C, 0x80];

#[test]
fn init_segment_layout() {
    let entry = avc1_sample_entry(SPS, PPS, 1280, 720);
    let init = init_segment(&entry, 1280, 720, 90_000);
    let seen = walk(&init).unwrap();
    for want in [
        "/ftyp",
        "/moov/mvhd",
        "/moov/trak/tkhd",
        "/moov/trak/mdia/mdhd",
        "/moov/trak/mdia/hdlr",
        "/moov/trak/mdia/minf/vmhd",
        "/moov/trak/mdia/minf/dinf/dref/url ",
        "/moov/trak/mdia/minf/stbl/stsd/avc1/avcC",
        "/moov/trak/mdia/minf/stbl/stts",
        "/moov/trak/mdia/minf/stbl/stsc",
        "/moov/trak/mdia/minf/stbl/stsz",
        "/moov/trak/mdia/minf/stbl/stco",
        "/moov/mvex/trex",
    ] {
        assert!(seen.iter().any(|s| s == want), "missing {want} in {seen:?}");
    }
    assert_eq!(
        &find(&init, &[b"ftyp"])[8..],
        b"iso5\0\0\x02\0iso5iso6mp41avc1"
    );
    let tkhd = find(&init, &[b"moov", b"trak", b"tkhd"]);
    assert_eq!((tkhd.len(), u32_at(tkhd, 8)), (92, 3)); // version 0, flags 3
    assert_eq!(
        (u32_at(tkhd, 84), u32_at(tkhd, 88)),
        (1280 << 16, 720 << 16)
    );
    let mdhd = find(&init, &[b"moov", b"trak", b"mdia", b"mdhd"]);
    assert_eq!((u32_at(mdhd, 20), u32_at(mdhd, 24)), (90_000, 0));
    assert_eq!(find(&init, &[b"moov", b"mvhd"]).len(), 108);
    let trex = find(&init, &[b"moov", b"mvex", b"trex"]);
    assert_eq!((u32_at(trex, 12), u32_at(trex, 16)), (1, 1));
    let stsd = [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"];
    assert_eq!(find(&init, &[&stsd[..], &[b"avc1"]].concat()), &entry[..]);
}

#[test]
fn avc1_entry_fields() {
    let entry = avc1_sample_entry(SPS, PPS, 320, 240);
    assert_eq!(&entry[4..8], b"avc1");
    assert_eq!(&entry[32..36], &[1, 64, 0, 240]); // width, height
    let avcc = &entry[86..];
    assert_eq!(avcc.len(), 8 + 6 + 2 + SPS.len() + 3 + PPS.len()); // no High extension
    assert_eq!(
        &avcc[4..14],
        &[b'a', b'v', b'c', b'C', 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1]
    );
    assert_eq!(&avcc[16..16 + SPS.len()], SPS);
    // High 4:2:0 8-bit: sps_id=0 '1', chroma=1 '010', depths 0 '1' '1'.
    let high = avc1_sample_entry(&[0x67, 100, 0, 30, 0b1010_1110], PPS, 320, 240);
    assert_eq!(&high[high.len() - 4..], &[0xFD, 0xF8, 0xF8, 0]);
    // High 4:4:4 10-bit: '1' '00100' '0' '011' '011', with an emulation-prevention byte.
    assert_eq!(
        sps_format(&[0x67, 244, 0, 30, 0b1001_0000, 0b1101_1100]),
        Some((3, 2, 2))
    );
    assert_eq!(
        sps_format(&[0x67, 244, 0, 0, 3, 0b1001_0000, 0b1101_1100]),
        Some((3, 2, 2))
    );
    assert_eq!(sps_format(&[0x67, 100, 0, 30]), None); // truncated
}

#[test]
fn fragment_offsets() {
    for (key, flags) in [(true, 0x0200_0000), (false, 0x0101_0000)] {
        let head = fragment_head(7, 1 << 40, 3000, 12_345, key);
        let seen = walk(&head[..head.len() - 8]).unwrap();
        assert_eq!(
            seen,
            [
                "/moof",
                "/moof/mfhd",
                "/moof/traf",
                "/moof/traf/tfhd",
                "/moof/traf/tfdt",
                "/moof/traf/trun"
            ]
        );
        let moof = find(&head, &[b"moof"]);
        let mdat = &head[moof.len()..];
        assert_eq!((u32_at(mdat, 0), &mdat[4..]), (12_345 + 8, &b"mdat"[..]));
        assert_eq!(u32_at(find(&head, &[b"moof", b"mfhd"]), 12), 7);
        assert_eq!(
            u32_at(find(&head, &[b"moof", b"traf", b"tfhd"]), 8),
            0x0002_0000
        );
        let tfdt = find(&head, &[b"moof", b"traf", b"tfdt"]);
        assert_eq!((tfdt[8], &tfdt[12..]), (1, &(1u64 << 40).to_be_bytes()[..]));
        let trun = find(&head, &[b"moof", b"traf", b"trun"]);
        assert_eq!(u32_at(trun, 8), 0x0701);
        assert_eq!(u32_at(trun, 12), 1);
        assert_eq!(u32_at(trun, 16) as usize, moof.len() + 8);
        assert_eq!(
            [u32_at(trun, 20), u32_at(trun, 24), u32_at(trun, 28)],
            [3000, 12_345, flags]
        );
    }
}

#[test]
fn replace_in_init_moov_matches_fresh_build() {
    let avc = avc1_sample_entry(SPS, PPS, 1920, 1080);
    let (old, new) = (
        init_segment(&avc, 1920, 1080, 90_000),
        init_segment(&hvc1_entry(), 1920, 1080, 90_000),
    );
    let replaced = replace_sample_entry(find(&old, &[b"moov"]), &hvc1_entry()).unwrap();
    assert_eq!(replaced, find(&new, &[b"moov"]));
}

#[test]
fn replace_sample_entry_fixes_sizes() {
    let box64 = |fourcc: &[u8; 4], body: &[u8]| {
        let mut out = vec![0, 0, 0, 1];
        out.extend_from_slice(fourcc);
        out.extend_from_slice(&(body.len() as u64 + 16).to_be_bytes());
        out.extend_from_slice(body);
        out
    };
    let mut trak = Vec::new();
    write_full_box(&mut trak, b"tkhd", 0, 3, |o| o.extend_from_slice(&[9; 80]));
    write_box(&mut trak, b"mdia", |o| {
        write_box(o, b"minf", |o| {
            write_box(o, b"stbl", |o| {
                write_full_box(o, b"stsd", 0, 0, |o| {
                    put32(o, &[1]);
                    o.extend_from_slice(&avc1_sample_entry(SPS, PPS, 640, 480));
                });
                write_full_box(o, b"stts", 0, 0, |o| put32(o, &[1, 5, 3000]));
            });
        });
    });
    let mut moov = Vec::new();
    write_box(&mut moov, b"moov", |o| {
        write_full_box(o, b"mvhd", 0, 0, |o| o.extend_from_slice(&[7; 96]));
        o.extend_from_slice(&box64(b"trak", &trak));
        write_box(o, b"udta", |o| o.extend_from_slice(b"tail"));
    });
    walk(&moov).unwrap();
    let hvc = hvc1_entry();
    let out = replace_sample_entry(&moov, &hvc).unwrap();
    let seen = walk(&out).unwrap();
    assert!(
        seen.contains(&"/moov/trak/mdia/minf/stbl/stsd/hvc1/hvcC".to_string()),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|s| s.contains("avc1")));
    let stsd = find(&out, &STSD_PATH);
    assert_eq!(&stsd[16..], &hvc[..]);
    assert_eq!(u32_at(&out, 0) as usize, out.len());
    let path = |last: &'static [u8; 4]| [b"moov", b"trak", b"mdia", b"minf", b"stbl", last];
    assert_eq!(find(&out, &path(b"stts")), find(&moov, &path(b"stts")));
    assert_eq!(
        find(&out, &[b"moov", b"mvhd"]),
        find(&moov, &[b"moov", b"mvhd"])
    );
    assert_eq!(find(&out, &[b"moov", b"udta"]), b"\0\0\0\x0cudtatail");

    let err = |m: &[u8], e: &[u8]| replace_sample_entry(m, e).unwrap_err();
    assert!(err(find(&moov, &[b"moov", b"mvhd"]), &hvc).contains("moov not found"));
    assert!(err(&moov, &hvc[..hvc.len() - 1]).contains("bad size"));
    let mut no_stsd = Vec::new();
    write_box(&mut no_stsd, b"moov", |o| write_box(o, b"trak", |_| {}));
    assert_eq!(err(&no_stsd, &hvc), "moov: trak: box mdia not found");
}

// ---- integration with ffmpeg/ffprobe ----

/// ffmpeg and ffprobe both (skipped, or a CI failure, without them).
fn tools() -> bool {
    crate::test_tools::have("ffmpeg") && crate::test_tools::have("ffprobe")
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fmp4-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Encodes 320x240 test video to Annex B (`extra` output args), or from `input`.
fn encode(args: &[&str], out: &Path) {
    let encoders = run("ffmpeg", &["-hide_banner", "-encoders"]);
    let codec = if encoders.contains(" libx264 ") {
        "libx264"
    } else {
        "h264"
    };
    let mut all = vec![
        "-y",
        "-v",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30",
    ];
    all.extend_from_slice(&["-c:v", codec, "-g", "30"]);
    all.extend_from_slice(args);
    all.push(out.to_str().unwrap());
    run("ffmpeg", &all);
}

/// NAL units of an Annex B stream, without start codes or trailing zero bytes.
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = (0..data.len().saturating_sub(2))
        .filter(|&i| data[i..i + 3] == [0, 0, 1])
        .map(|i| i + 3)
        .collect();
    let ends = starts.iter().skip(1).map(|s| s - 3).chain([data.len()]);
    starts
        .iter()
        .zip(ends)
        .map(|(&s, e)| {
            let mut nal = &data[s..e];
            while let [rest @ .., 0] = nal {
                nal = rest;
            }
            nal
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// An access unit: 4-byte-length-prefixed NAL units, and whether it is an IDR.
type Au = (Vec<u8>, bool);

/// SPS, PPS and access units of an Annex B stream.
fn access_units(stream: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Au>) {
    let (mut sps, mut pps, mut aus) = (None, None, Vec::<Au>::new());
    let mut cur_has_slice = false;
    for nal in nal_units(stream) {
        let kind = nal[0] & 0x1F;
        let slice = kind == 1 || kind == 5;
        let starts_picture = slice && nal.get(1).is_some_and(|b| b & 0x80 != 0);
        if aus.is_empty() || cur_has_slice && (starts_picture || (6..=9).contains(&kind)) {
            aus.push((Vec::new(), false));
            cur_has_slice = false;
        }
        match kind {
            7 => drop(sps.get_or_insert_with(|| nal.to_vec())),
            8 => drop(pps.get_or_insert_with(|| nal.to_vec())),
            9 => {}
            _ => {
                let au = aus.last_mut().unwrap();
                au.0.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                au.0.extend_from_slice(nal);
                au.1 |= kind == 5;
                cur_has_slice |= slice;
            }
        }
    }
    (sps.unwrap(), pps.unwrap(), aus)
}

fn probe(file: &Path) -> String {
    let args = [
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name,width,height,nb_read_frames",
        "-of",
        "json",
        file.to_str().unwrap(),
    ];
    let json: String = run("ffprobe", &args).split_whitespace().collect();
    eprintln!("ffprobe {}: {json}", file.display());
    json
}

#[test]
fn ffprobe_reads_live_fragments() {
    if !tools() {
        return;
    }
    let dir = scratch_dir("live");
    let h264 = dir.join("out.h264");
    encode(
        &["-t", "2", "-bsf:v", "h264_mp4toannexb", "-f", "h264"],
        &h264,
    );
    let (sps, pps, aus) = access_units(&std::fs::read(&h264).unwrap());
    assert_eq!(aus.len(), 60);
    let mut file = init_segment(&avc1_sample_entry(&sps, &pps, 320, 240), 320, 240, 90_000);
    for (i, (data, key)) in aus.iter().enumerate() {
        file.extend(fragment_head(
            i as u32 + 1,
            i as u64 * 3000,
            3000,
            data.len() as u32,
            *key,
        ));
        file.extend_from_slice(data);
    }
    let live = dir.join("live.mp4");
    std::fs::write(&live, &file).unwrap();
    let json = probe(&live);
    for want in [
        r#""codec_name":"h264""#,
        r#""width":320"#,
        r#""height":240"#,
        r#""nb_read_frames":"60""#,
    ] {
        assert!(json.contains(want), "{want} not in {json}");
    }
    // Key frames (from trun sample flags) and timestamps as we wrote them.
    let packets = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=dts,flags",
            "-of",
            "csv=p=0",
            live.to_str().unwrap(),
        ],
    );
    let rows: Vec<(&str, bool)> = packets
        .lines()
        .map(|l| l.split_once(',').unwrap())
        .map(|(dts, f)| (dts, f.starts_with('K')))
        .collect();
    let dts: Vec<String> = (0..aus.len()).map(|i| (i * 3000).to_string()).collect();
    let want: Vec<(&str, bool)> = dts
        .iter()
        .zip(&aus)
        .map(|(d, au)| (d.as_str(), au.1))
        .collect();
    assert_eq!(rows, want);
    assert_eq!(aus.iter().filter(|a| a.1).count(), 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ffprobe_reads_spliced_mp4() {
    if !tools() {
        return;
    }
    // ffmpeg's plain MP4 (moov after mdat, like the mp4 crate), with its avc1 entry
    // swapped for ours built from the same stream's SPS/PPS.
    let dir = scratch_dir("splice");
    let (mp4, h264) = (dir.join("small.mp4"), dir.join("small.h264"));
    encode(&["-t", "1"], &mp4);
    run(
        "ffmpeg",
        &[
            "-y",
            "-v",
            "error",
            "-i",
            mp4.to_str().unwrap(),
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            h264.to_str().unwrap(),
        ],
    );
    let (sps, pps, _) = access_units(&std::fs::read(&h264).unwrap());
    let file = std::fs::read(&mp4).unwrap();
    let top = walk(&file)
        .unwrap()
        .into_iter()
        .filter(|p| p.matches('/').count() == 1)
        .collect::<Vec<_>>();
    assert!(
        top.iter().position(|p| p == "/mdat") < top.iter().position(|p| p == "/moov"),
        "{top:?}"
    );
    let moov = find(&file, &[b"moov"]);
    let at = moov.as_ptr() as usize - file.as_ptr() as usize;
    let entry = avc1_sample_entry(&sps, &pps, 320, 240);
    // Our avcC (High extension included) should match what ffmpeg wrote.
    let theirs = find(moov, &[&STSD_PATH[..], &[b"avc1", b"avcC"]].concat());
    assert_eq!(find(&entry, &[b"avc1", b"avcC"]), theirs);
    let new_moov = replace_sample_entry(moov, &entry).unwrap();
    assert_eq!(
        find(&new_moov, &[&STSD_PATH[..], &[b"avc1"]].concat()),
        &entry[..]
    );
    let spliced = dir.join("spliced.mp4");
    std::fs::write(
        &spliced,
        [&file[..at], &new_moov, &file[at + moov.len()..]].concat(),
    )
    .unwrap();
    let json = probe(&spliced);
    assert!(
        json.contains(r#""nb_read_frames":"30""#) && json.contains(r#""width":320"#),
        "{json}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_decode_time_is_where_decode_time_at_says() {
    let h = fragment_head(7, 0x0102_0304_0506_0708, 3000, 100, true);
    assert_eq!(
        &h[DECODE_TIME_AT..DECODE_TIME_AT + 8],
        &0x0102_0304_0506_0708u64.to_be_bytes()
    );
    assert_eq!(&h[DECODE_TIME_AT - 8..DECODE_TIME_AT - 4], b"tfdt");
}
