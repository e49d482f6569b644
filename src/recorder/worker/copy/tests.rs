//! Stream copy: a camera whose parameters flap (splits are rate-limited),
//! and frames that reach a held-up recorder late and all at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::MIN_SPLIT_SPAN;
use crate::frame::{Codec, Frame, Payload, Video, VideoParams};
use crate::recorder::StartOptions;
use crate::recorder::tests::rig;

/// Parameters that differ only in their SPS bytes (as a broken camera's do).
fn params(n: u8) -> Arc<VideoParams> {
    Arc::new(VideoParams {
        codec: Codec::H264,
        rfc6381: "avc1.42C01E".into(),
        width: 320,
        height: 240,
        frame_rate: None,
        sets: vec![
            vec![0x67, 0x42, 0xC0, 0x1E, n],
            vec![0x68, 0xCE, 0x3C, 0x80],
        ],
        sample_entry: vec![0, 0, 0, 8, b'a', b'v', b'c', b'1'],
    })
}

#[test]
fn parameters_that_change_with_every_frame_do_not_make_a_clip_per_frame() {
    let mut r = rig(Duration::ZERO);
    r.rec.start(StartOptions::default()).unwrap();
    let t0 = crate::clock::monotonic_now();
    let step = Duration::from_millis(100);
    // 25 s at 10 fps, every frame a keyframe with new parameters.
    let frames = 250u32;
    for i in 0..frames {
        r.seq += 1;
        let v = Video {
            data: vec![0, 0, 0, 2, 0x65, i as u8],
            key: true,
            params: params(i as u8),
        };
        let capture = t0 + step * i;
        r.hub.publish(Frame::new(
            r.seq,
            Payload::Video(v),
            capture,
            SystemTime::now(),
            (320, 240),
            false,
        ));
        // The recorder takes frames from a bounded tap: keep pace with it.
        std::thread::sleep(Duration::from_millis(2));
    }
    let last = r.rec.stop_at(t0 + step * frames).unwrap();
    let clips = r.clips.list(None, None, 1000);
    let span = step * frames;
    // The first change splits at once; after that, at most one a span.
    let most = 2 + (span.as_secs() / MIN_SPLIT_SPAN.as_secs()) as usize;
    assert!(
        (2..=most).contains(&clips.len()),
        "{} clips in {} s (at most {most})",
        clips.len(),
        span.as_secs()
    );
    // The clip that ends the recording runs to its stop: it took frames.
    assert!(last.frames >= 1, "{last:?}");
}

/// A frame of the steady stream: a keyframe every 30.
fn frame(seq: u64, capture: Duration) -> Frame {
    let key = seq % 30 == 1;
    let v = Video {
        data: vec![0, 0, 0, 2, if key { 0x65 } else { 0x41 }, seq as u8],
        key,
        params: params(0),
    };
    Frame::new(
        seq,
        Payload::Video(v),
        capture,
        SystemTime::now(),
        (320, 240),
        false,
    )
}

#[test]
fn late_frames_are_the_clips_and_a_held_up_recorder_drops_none() {
    let mut r = rig(Duration::ZERO);
    let step = Duration::from_nanos(33_333_333);
    let t0 = crate::clock::monotonic_now();
    // A keyframe and a few frames, then /start.
    for _ in 0..5 {
        r.seq += 1;
        r.hub.publish(frame(r.seq, t0 + step * r.seq as u32));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let started = crate::clock::monotonic_now();
    r.rec.start(StartOptions::default()).unwrap();
    // The rest of the backlog (captured before /start, delivered after:
    // we were slow), then 10 s of frames in one burst, far faster than
    // the recorder takes them.
    let total = 5 + 300;
    while r.seq < total {
        r.seq += 1;
        r.hub.publish(frame(r.seq, t0 + step * r.seq as u32));
    }
    assert!(
        t0 + step * 20 < started,
        "the backlog was captured before /start"
    );
    let clip = r.rec.stop_at(t0 + step * (total as u32 + 1)).unwrap();
    assert_eq!(
        (clip.frames, clip.dropped_frames),
        (total, 0),
        "every frame from the keyframe on: {clip:?}"
    );
    let want = step.as_secs_f64() * total as f64;
    assert!((clip.duration_sec - want).abs() < 0.01, "{clip:?}");
}
