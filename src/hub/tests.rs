use super::*;
use std::time::SystemTime;

fn hub(preroll: Duration) -> Hub {
    Hub::new(
        preroll,
        SourceStatus {
            kind: "test".into(),
            name: "test".into(),
            state: SourceState::Test,
            width: 0,
            height: 0,
            nominal_fps: 30.0,
            message: None,
            ..Default::default()
        },
    )
}

fn frame(seq: u64, ms: u64) -> Frame {
    Frame::jpeg(
        seq,
        vec![0xFF, 0xD8, 0xFF, 0xD9],
        Duration::from_millis(ms),
        SystemTime::now(),
        (2, 2),
        false,
    )
}

#[test]
fn full_tap_counts_drops_and_never_blocks() {
    let h = hub(Duration::ZERO);
    let tap = h.tap(2);
    for i in 1..=5 {
        h.publish(frame(i, i * 33));
    }
    assert_eq!(tap.dropped(), 3);
    assert_eq!(tap.try_recv().unwrap().seq, 1);
    assert_eq!(tap.try_recv().unwrap().seq, 2);
    assert!(tap.try_recv().is_none());
}

#[test]
fn frames_after_the_clip_end_are_not_counted_as_dropped() {
    let h = hub(Duration::ZERO);
    let tap = h.tap(1);
    tap.handle().end_at(Duration::from_millis(100));
    for i in 1..=5 {
        h.publish(frame(i, i * 33)); // 33, 66, 99 before the end; 132, 165 after
    }
    assert_eq!(tap.dropped(), 2);
    assert_eq!(tap.try_recv().unwrap().seq, 1);
}

#[test]
fn dropped_tap_is_forgotten() {
    let h = hub(Duration::ZERO);
    drop(h.tap(1));
    h.publish(frame(1, 0));
    assert!(lock(&h.taps).is_empty());
}

#[test]
fn preroll_keeps_only_the_window() {
    let h = hub(Duration::from_millis(100));
    for i in 0..10 {
        h.publish(frame(i + 1, i * 33));
    }
    let (pre, _tap) = h.tap_with_preroll(4, usize::MAX, Duration::from_millis(100));
    let seqs: Vec<u64> = pre.iter().map(|f| f.seq).collect();
    // Newest capture is at 297 ms: frames at 198, 231, 264, 297 are within 100 ms.
    assert_eq!(seqs, vec![7, 8, 9, 10]);
}

#[test]
fn viewers_skip_to_newest_and_wake_on_close() {
    let h = Arc::new(hub(Duration::ZERO));
    h.publish(frame(1, 0));
    h.publish(frame(2, 33));
    assert_eq!(h.wait_newer(0, Duration::from_millis(1)).unwrap().seq, 2);
    assert!(h.wait_newer(2, Duration::from_millis(5)).is_none());
    let h2 = h.clone();
    let waiter = std::thread::spawn(move || h2.wait_newer(2, Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(20));
    h.close();
    assert!(waiter.join().unwrap().is_none());
}

/// A camera that sends one keyframe and then huge frames does not grow the
/// live ring past its bytes: it is let go, and viewers wait for a keyframe.
/// A video frame of `len` bytes (a keyframe when `key`), 33 ms apart.
fn video_frame(seq: u64, key: bool, len: usize) -> Frame {
    use crate::frame::{Codec, Payload, Video, VideoParams};
    let params = Arc::new(VideoParams {
        codec: Codec::H264,
        rfc6381: "avc1.42C01E".into(),
        width: 2,
        height: 2,
        frame_rate: None,
        sets: vec![],
        sample_entry: vec![],
    });
    Frame::new(
        seq,
        Payload::Video(Video {
            data: vec![0; len],
            key,
            params,
        }),
        Duration::from_millis(seq * 33),
        SystemTime::now(),
        (2, 2),
        false,
    )
}

#[test]
fn a_viewer_gets_every_frame_and_a_slow_one_skips_to_the_latest_keyframe() {
    let h = hub(Duration::ZERO);
    let wait = Duration::from_millis(10);
    for seq in 1..=5 {
        h.publish(video_frame(seq, seq == 1, 100));
    }
    // A new viewer starts at the keyframe, then takes each frame in turn.
    let mut at = h.next_video(None, wait).unwrap();
    assert_eq!((at.0.seq, at.1), (1, false));
    for want in 2..=5 {
        at = h.next_video(Some(at.0.seq), wait).unwrap();
        assert_eq!((at.0.seq, at.1), (want, false));
    }
    assert!(h.next_video(Some(5), wait).is_none(), "nothing newer yet");
    // A viewer still at frame 3 when the next keyframe (6) has begun a new
    // group: frames 4 and 5 are gone, so it is sent 6 and told it skipped.
    for seq in 6..=9 {
        h.publish(video_frame(seq, seq == 6, 100));
    }
    let (f, skipped) = h.next_video(Some(3), wait).unwrap();
    assert_eq!((f.seq, skipped), (6, true));
    // One right before the keyframe skipped nothing.
    let (f, skipped) = h.next_video(Some(5), wait).unwrap();
    assert_eq!((f.seq, skipped), (6, false));
}

#[test]
fn the_live_ring_is_bounded_in_bytes() {
    let h = hub(Duration::ZERO);
    let video = video_frame;
    h.publish(video(1, true, 1000));
    for seq in 2..=5 {
        h.publish(video(seq, false, 4 << 20));
    }
    // Still within the bound: a viewer after frame 2 gets frame 3.
    let (f, skipped) = h.next_video(Some(2), Duration::from_millis(10)).unwrap();
    assert_eq!((f.seq, skipped), (3, false));
    for seq in 6..=12 {
        h.publish(video(seq, false, 4 << 20));
    }
    // Past 32 MiB the ring was let go: nothing to start from until a keyframe.
    assert!(h.next_video(None, Duration::from_millis(10)).is_none());
    h.publish(video(13, true, 1000));
    assert_eq!(
        h.next_video(None, Duration::from_millis(10)).unwrap().0.seq,
        13
    );
}

#[test]
fn a_tap_is_bounded_by_bytes_too_and_one_frame_always_fits() {
    let h = hub(Duration::ZERO);
    // Frames of 4 bytes; room for 10.
    let (_, tap) = h.tap_with_preroll(100, 10, Duration::ZERO);
    for i in 1..=3 {
        h.publish(frame(i, i * 33));
    }
    assert_eq!(tap.dropped(), 1);
    assert_eq!(tap.queued_bytes(), 8);
    assert_eq!(tap.try_recv().unwrap().seq, 1);
    h.publish(frame(4, 4 * 33));
    assert_eq!(tap.try_iter().map(|f| f.seq).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(tap.queued_bytes(), 0);
    // Larger than the whole bound, into an empty queue: taken.
    let (_, tap) = h.tap_with_preroll(100, 2, Duration::ZERO);
    h.publish(frame(5, 5 * 33));
    assert_eq!(tap.try_recv().unwrap().seq, 5);
    assert_eq!(tap.dropped(), 0);
}
