//! Recording cost per frame (decode + encode + mux), for bench/. Not a
//! pass/fail test: it prints numbers.

use std::time::Duration;

use super::tests::render;
use super::{decode, encode, journal, mux};

/// Recording cost per 720p frame (decode + encode + mux), for bench/:
/// `cargo test --release recording_cost -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark, not a check: run on purpose with --ignored (bench/README.md)"]
fn recording_cost_720p() {
    let src = std::env::var("VR_BENCH_MJPEG").ok();
    let frames: Vec<Vec<u8>> = match src {
        Some(p) => split_mjpeg(&std::fs::read(p).unwrap()),
        None => (0..30).map(|i| render(1280, 720, i)).collect(),
    };
    let n = 300;
    let mut dec = decode::Decoder::new();
    let mut pic = decode::Yuv420::new(2, 2);
    let (mut t_dec, mut t_enc) = (Duration::ZERO, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    // VR_BENCH_KEEP=DIR keeps the clip (DIR/bench-20240101-000000.mp4) to
    // compare with the source.
    let out_dir = std::env::var_os("VR_BENCH_KEEP").map_or(dir.path().to_path_buf(), Into::into);
    let paths = journal::ClipPaths::new(&out_dir, &"bench-20240101-000000".parse().unwrap());
    let _ = std::fs::remove_file(&paths.fin);
    let mut w = journal::ClipWriter::create(paths).unwrap();
    let mut enc: Option<encode::H264> = None;
    // With VR_BENCH_DUMP_YUV=1 the decoded I420 goes to DIR/bench.yuv (not timed fairly).
    let mut yuv_dump = std::env::var_os("VR_BENCH_DUMP_YUV")
        .map(|_| std::fs::File::create(out_dir.join("bench.yuv")).unwrap());
    println!("{} source frames", frames.len());
    let cpu0 = cpu_time();
    let wall0 = std::time::Instant::now();
    for i in 0..n {
        let t = thread_cpu();
        dec.decode(&frames[i % frames.len()], &mut pic).unwrap();
        t_dec += thread_cpu() - t;
        if let Some(yuv) = yuv_dump.as_mut() {
            std::io::Write::write_all(yuv, &pic.data).unwrap();
        }
        let t = thread_cpu();
        let e =
            enc.get_or_insert_with(|| encode::H264::new(pic.width, pic.height, 30.0, 0).unwrap());
        if let Some(s) = e.encode(&pic, i as u64 * 33).unwrap() {
            if w.info.is_none() {
                w.info = Some(mux::TrackInfo {
                    width: pic.width as u16,
                    height: pic.height as u16,
                    sps: e.sps.clone().unwrap(),
                    pps: e.pps.clone().unwrap(),
                    entry: None,
                    timescale: mux::TIMESCALE,
                    created_unix: 0,
                });
            }
            w.write_sample(&s.data, i as u64 * 3000, s.sync).unwrap();
        }
        if i % 30 == 29 {
            w.make_durable().unwrap();
        }
        t_enc += thread_cpu() - t;
    }
    let (size, _) = w.finish(n as u64 * 3000).unwrap();
    let cpu = cpu_time() - cpu0;
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "{}x{}: CPU per frame: decode to I420 {:.2} ms, encode+mux {:.2} ms, process {:.2} ms; wall {:.2} ms/frame; {} bytes for {n} frames",
        pic.width,
        pic.height,
        per(t_dec),
        per(t_enc),
        per(cpu),
        per(wall0.elapsed()),
        size
    );
}

fn split_mjpeg(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..data.len().saturating_sub(1) {
        match (data[i], data[i + 1], start) {
            (0xFF, 0xD8, None) => start = Some(i),
            (0xFF, 0xD9, Some(s)) => {
                out.push(data[s..i + 2].to_vec());
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn cpu_time() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn thread_cpu() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes into the timespec we own.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
