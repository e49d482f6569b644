use super::*;

fn info() -> TrackInfo {
    TrackInfo {
        width: 64,
        height: 48,
        sps: vec![0x67, 66, 0xC0, 30],
        pps: vec![0x68, 0xCE],
        entry: None,
        timescale: 90_000,
        created_unix: 1_700_000_000,
    }
}

#[test]
fn journal_round_trips_and_ignores_a_torn_last_line() {
    let mut text = header(&info());
    text.push_str("s 10 0 k\ns 20 3000 -\ns 30 6000 -\ns 4");
    let t = parse(&text).unwrap();
    assert_eq!(t.info, info());
    assert_eq!(t.data_start, mux::data_start());
    assert_eq!(t.samples.len(), 3);
    assert_eq!(
        t.samples[1],
        SampleEntry {
            size: 20,
            pts: 3000,
            sync: false
        }
    );
    assert_eq!(t.end, 9000);
    assert_eq!(t.data_end(), mux::data_start() + 60);
}

#[test]
fn damaged_lines_end_the_table() {
    let mut text = header(&info());
    text.push_str("s 10 0 k\ns 20 0 -\ns 30 6000 -\n");
    assert_eq!(parse(&text).unwrap().samples.len(), 1, "pts must increase");
    let mut text = header(&info());
    text.push_str("s 10 0 k\ngarbage\ns 30 6000 -\n");
    assert_eq!(parse(&text).unwrap().samples.len(), 1);
    assert!(parse("something else\n").is_none());
    assert!(parse(&header(&info())[..40]).is_none(), "torn header");
}

#[test]
fn writer_journals_only_durable_samples() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ClipPaths::new(dir.path(), &"20240101-000000".parse().unwrap());
    let mut w = ClipWriter::create(paths.clone()).unwrap();
    assert!(paths.taken());
    assert!(
        ClipWriter::create(paths.clone()).is_err(),
        "never overwrite"
    );
    // Opened at the start, empty until the first samples are durable
    // (recovery removes a clip whose journal has no header).
    assert_eq!(std::fs::read(&paths.journal).unwrap(), b"");
    assert!(parse("").is_none());
    w.info = Some(info());
    w.write_sample(&[1; 10], 0, true).unwrap();
    w.make_durable().unwrap();
    w.write_sample(&[2; 20], 3000, false).unwrap();
    let t = parse(&std::fs::read_to_string(&paths.journal).unwrap()).unwrap();
    assert_eq!(t.samples.len(), 1);
    assert_eq!(w.durable_ticks(), 0, "the second sample is not durable yet");
    w.make_durable().unwrap();
    let t = parse(&std::fs::read_to_string(&paths.journal).unwrap()).unwrap();
    assert_eq!(t.samples.len(), 2);
    assert_eq!(w.durable_ticks(), 3000);
    assert_eq!(
        std::fs::metadata(&paths.part).unwrap().len(),
        mux::data_start() + 30
    );
}

#[test]
fn a_deleted_directory_is_recreated_and_the_clip_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    let paths = ClipPaths::new(&dir, &"20240101-000000".parse().unwrap());
    std::fs::create_dir(&dir).unwrap();
    let mut w = ClipWriter::create(paths.clone()).unwrap();
    w.info = Some(info());
    w.write_sample(&[1; 10], 0, true).unwrap();
    w.make_durable().unwrap();
    w.write_sample(&[2; 20], 3000, false).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    w.make_durable().unwrap();
    let t = parse(&std::fs::read_to_string(&paths.journal).unwrap()).unwrap();
    assert_eq!(t.samples.len(), 2);
    let part = std::fs::read(&paths.part).unwrap();
    assert_eq!(part.len() as u64, mux::data_start() + 30);
    assert_eq!(&part[part.len() - 30..part.len() - 20], &[1; 10]);
    // Deleted again just before the stop: still finished.
    w.write_sample(&[3; 5], 6000, false).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let (size, table) = w.finish(9000).unwrap();
    assert_eq!(table.samples.len(), 3);
    assert_eq!(std::fs::metadata(&paths.fin).unwrap().len(), size);
    assert!(!paths.part.exists() && !paths.journal.exists());
}
