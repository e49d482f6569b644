use super::*;

fn table(n: usize, size: u32) -> SampleTable {
    SampleTable {
        info: TrackInfo {
            width: 320,
            height: 240,
            sps: vec![0x67, 66, 0xC0, 30, 1, 2],
            pps: vec![0x68, 1],
            entry: None,
            timescale: TIMESCALE,
            created_unix: 1_700_000_000,
        },
        data_start: data_start(),
        thumbnail: None,
        samples: (0..n)
            .map(|i| SampleEntry {
                size,
                pts: i as u64 * 3000,
                sync: i % 30 == 0,
            })
            .collect(),
        end: n as u64 * 3000 + 1500,
    }
}

fn parse(moov: &[u8], t: &SampleTable) -> mp4::Mp4Reader<std::io::Cursor<Vec<u8>>> {
    let mut file = ftyp();
    let data = t.data_end() - t.data_start;
    file.extend_from_slice(&mdat_header(MDAT_HEADER_LEN + data));
    // Sample i is filled with byte i, so reads prove the offsets.
    for (i, smp) in t.samples.iter().enumerate() {
        file.extend(std::iter::repeat_n(i as u8, smp.size as usize));
    }
    file.extend_from_slice(moov);
    let len = file.len() as u64;
    mp4::Mp4Reader::read_header(std::io::Cursor::new(file), len).unwrap()
}

#[test]
fn moov_describes_the_table() {
    let t = table(95, 100);
    let moov = t.moov().unwrap();
    let mut r = parse(&moov, &t);
    let trak = &r.moov.traks[0];
    assert_eq!(trak.mdia.minf.vmhd.as_ref().unwrap().flags, 1);
    assert_eq!(trak.mdia.mdhd.timescale, TIMESCALE);
    assert_eq!(trak.mdia.mdhd.duration, 94 * 3000 + 4500);
    assert_eq!(trak.mdia.minf.stbl.stsz.sample_sizes.len(), 95);
    assert_eq!(
        trak.mdia.minf.stbl.stss.as_ref().unwrap().entries,
        vec![1, 31, 61, 91]
    );
    // 30 samples of 3000 ticks = 1 s per chunk: 4 chunks (30, 30, 30, 5).
    let stco = trak.mdia.minf.stbl.stco.as_ref().unwrap();
    assert_eq!(stco.entries.len(), 4);
    assert_eq!(u64::from(stco.entries[0]), t.data_start);
    assert_eq!(u64::from(stco.entries[1]), t.data_start + 3000);
    assert_eq!(r.tracks().get(&1).unwrap().sample_count(), 95);
    assert_eq!(r.moov.mvhd.duration, (94 * 3000 + 4500) / 90);
    for id in [1u32, 30, 31, 61, 95] {
        let s = r.read_sample(1, id).unwrap().unwrap();
        assert_eq!(s.bytes.len(), 100);
        assert!(s.bytes.iter().all(|&b| b == (id - 1) as u8), "sample {id}");
        assert_eq!(s.is_sync, (id - 1) % 30 == 0);
    }
}

#[test]
fn big_clips_use_co64() {
    let mut t = table(3, 100);
    t.data_start = 5 << 30;
    let moov = t.moov().unwrap();
    assert!(moov.windows(4).any(|w| w == b"co64"));
    assert!(!moov.windows(4).any(|w| w == b"stco"));
}

#[test]
fn refuses_tables_that_cannot_play() {
    let mut t = table(0, 1);
    assert!(t.moov().is_err());
    t = table(2, 1);
    t.samples[0].sync = false;
    assert!(t.moov().is_err());
}

#[test]
fn last_sample_lasts_until_end_and_never_zero() {
    let mut t = table(3, 1);
    t.end = t.samples[2].pts; // stop exactly at the last frame
    assert_eq!(t.durations(), vec![3000, 3000, 1]);
}

#[test]
fn the_thumbnail_is_the_cover_picture() {
    let mut t = table(30, 100);
    let jpeg = vec![0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
    t.thumbnail = Some(jpeg.clone());
    let moov = t.moov().unwrap();
    assert_eq!(
        u32::from_be_bytes(moov[..4].try_into().unwrap()) as usize,
        moov.len()
    );
    let r = parse(&moov, &t);
    use mp4::Metadata;
    assert_eq!(r.metadata().poster(), Some(&jpeg[..]));
    assert_eq!(r.moov.traks[0].mdia.minf.stbl.stsz.sample_sizes.len(), 30);
}
