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
    assert_eq!(tap.dropped.load(Ordering::Relaxed), 3);
    assert_eq!(tap.rx.try_recv().unwrap().seq, 1);
    assert_eq!(tap.rx.try_recv().unwrap().seq, 2);
    assert!(tap.rx.try_recv().is_err());
}

#[test]
fn frames_after_the_clip_end_are_not_counted_as_dropped() {
    let h = hub(Duration::ZERO);
    let tap = h.tap(1);
    TapReceiver::end_at(&tap.until, Duration::from_millis(100));
    for i in 1..=5 {
        h.publish(frame(i, i * 33)); // 33, 66, 99 before the end; 132, 165 after
    }
    assert_eq!(tap.dropped.load(Ordering::Relaxed), 2);
    assert_eq!(tap.rx.try_recv().unwrap().seq, 1);
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
    let (pre, _tap) = h.tap_with_preroll(4, Duration::from_millis(100));
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
