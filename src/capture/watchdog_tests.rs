//! The watchdog driven by fake sources that fail, stall and return.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::*;
use crate::hub::SourceStatus;
use crate::source::jpeg::tests::{sample_jpeg, strip_dht, with_sof_size};
use crate::source::{Excess, Format, RawFrame};

#[derive(Clone)]
enum Step {
    Frame(Vec<u8>),
    Nothing,
    Fail(&'static str),
}

/// Plays a script, then repeats its last step forever.
struct Fake {
    steps: VecDeque<Step>,
    format: Format,
    /// Reported once, at the first ask.
    excess: Excess,
}

impl Source for Fake {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        let step = if self.steps.len() > 1 {
            self.steps.pop_front()
        } else {
            self.steps.front().cloned()
        };
        match step.unwrap_or(Step::Nothing) {
            Step::Frame(jpeg) => {
                std::thread::sleep(Duration::from_millis(2));
                let capture = monotonic_now();
                Ok(Some(RawFrame {
                    jpeg,
                    capture,
                    wall: SystemTime::now(),
                }))
            }
            Step::Nothing => {
                std::thread::sleep(timeout);
                Ok(None)
            }
            Step::Fail(msg) => Err(SourceError(msg.into())),
        }
    }

    fn format(&self) -> Format {
        self.format
    }

    fn take_excess(&mut self) -> Excess {
        std::mem::take(&mut self.excess)
    }
}

fn fake(steps: Vec<Step>) -> Box<dyn Source> {
    fake_as(steps, (640, 480), Excess::default())
}

/// A fake that says it gives `size` and reports `excess`.
fn fake_as(steps: Vec<Step>, (width, height): (u32, u32), excess: Excess) -> Box<dyn Source> {
    Box::new(Fake {
        steps: steps.into(),
        format: Format {
            width,
            height,
            fps: 30,
        },
        excess,
    })
}

fn frames(n: usize, jpeg: &[u8]) -> Vec<Step> {
    vec![Step::Frame(jpeg.to_vec()); n]
}

fn fast() -> Timing {
    Timing {
        stall: Duration::from_millis(300),
        no_signal_every: Duration::from_millis(20),
        backoff_min: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        slice: Duration::from_millis(20),
    }
}

fn new_hub() -> Arc<Hub> {
    Arc::new(Hub::new(
        Duration::ZERO,
        SourceStatus {
            kind: "v4l2".into(),
            name: "/dev/fake".into(),
            state: SourceState::Starting,
            width: 0,
            height: 0,
            nominal_fps: 30.0,
            message: None,
            ..Default::default()
        },
    ))
}

/// Each call to the opener takes the next outcome; then "gone" forever.
type Outcomes = Arc<Mutex<VecDeque<Result<Box<dyn Source>, SourceError>>>>;

fn start(
    hub: &Arc<Hub>,
    outcomes: Outcomes,
    calls: Arc<Mutex<Vec<SourceStatus>>>,
) -> JoinHandle<()> {
    let hub = hub.clone();
    std::thread::spawn(move || {
        let h = hub.clone();
        let mut opener = move || {
            calls.lock().unwrap().push(h.status());
            outcomes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Err(SourceError("/dev/fake: gone".into())))
        };
        let up = Up {
            state: SourceState::Live,
            message: None,
        };
        Watchdog::new(&hub, up, fast(), "/dev/fake".into(), (640, 480)).run(None, &mut opener);
    })
}

fn wait_for(what: &str, pred: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn no_signal_while_down_then_live_again() {
    let hub = new_hub();
    let tap = hub.tap(100_000);
    let good = sample_jpeg(32, 16);
    let mut first = frames(5, &good);
    first.push(Step::Frame(good[..good.len() - 10].to_vec())); // truncated
    first.push(Step::Frame(strip_dht(&good))); // needs the standard tables
    first.push(Step::Fail("/dev/fake: disconnected"));
    let outcomes: Outcomes = Arc::new(Mutex::new(VecDeque::from([
        Ok(fake(first)),
        Err(SourceError("/dev/fake: not found".into())),
        Err(SourceError("/dev/fake: not found".into())),
        Ok(fake(frames(1, &good))),
    ])));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let t = start(&hub, outcomes, calls.clone());

    wait_for("reopened and live", || {
        hub.counters.reopens.load(Ordering::Relaxed) == 1
            && hub.counters.frames.load(Ordering::Relaxed) > 20
    });
    assert_eq!(hub.status().state, SourceState::Live);
    assert_eq!(hub.status().message, None);
    hub.close();
    t.join().unwrap();

    let got: Vec<Arc<Frame>> = tap.try_iter().collect();
    let seqs: Vec<u64> = got.iter().map(|f| f.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "seq gapless: {seqs:?}"
    );
    assert!(
        got.windows(2).all(|w| w[1].capture > w[0].capture),
        "capture times go forward"
    );
    // 5 good + the DHT-less one, then NO SIGNAL, then live again.
    let kinds: Vec<bool> = got.iter().map(|f| f.no_signal).collect();
    assert!(kinds[..6].iter().all(|n| !n), "{kinds:?}");
    let first_ns = kinds.iter().position(|&n| n).expect("NO SIGNAL frames");
    assert_eq!(first_ns, 6);
    let back = first_ns
        + kinds[first_ns..]
            .iter()
            .position(|&n| !n)
            .expect("live again");
    assert!(kinds[back..].iter().all(|n| !n));
    assert!(back - first_ns >= 1);
    // The DHT-less frame went out with the tables inserted.
    assert!(
        jpeg::parse_header(got[5].payload.jpeg().unwrap())
            .unwrap()
            .has_dht
    );
    // NO SIGNAL is drawn at the last known frame size, not the format's.
    assert_eq!((got[first_ns].width, got[first_ns].height), (32, 16));
    assert_ne!(got[first_ns].payload.jpeg().unwrap(), good);
    assert_eq!(
        jpeg::sanitize(got[first_ns].payload.jpeg().unwrap().to_vec())
            .unwrap()
            .1,
        (32, 16)
    );

    let live = kinds.iter().filter(|n| !**n).count() as u64;
    assert_eq!(hub.counters.frames.load(Ordering::Relaxed), live);
    assert_eq!(hub.counters.broken.load(Ordering::Relaxed), 1);
    assert_eq!(hub.counters.reopens.load(Ordering::Relaxed), 1);

    // The opener saw the source down with the error, then the newer error.
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 4);
    assert_eq!(calls[1].state, SourceState::Down);
    assert_eq!(calls[1].message.as_deref(), Some("/dev/fake: disconnected"));
    assert_eq!(calls[3].message.as_deref(), Some("/dev/fake: not found"));
}

#[test]
fn stall_counts_as_down_and_reopens() {
    let hub = new_hub();
    let good = sample_jpeg(32, 16);
    let mut stalls = frames(3, &good);
    stalls.push(Step::Nothing);
    let outcomes: Outcomes = Arc::new(Mutex::new(VecDeque::from([
        Ok(fake(stalls)),
        Ok(fake(frames(1, &good))),
    ])));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let t = start(&hub, outcomes, calls.clone());
    wait_for("reopened", || {
        hub.counters.reopens.load(Ordering::Relaxed) == 1
    });
    wait_for("frames again", || {
        hub.counters.frames.load(Ordering::Relaxed) > 10
    });
    hub.close();
    t.join().unwrap();
    let calls = calls.lock().unwrap();
    let msg = calls[1].message.clone().unwrap();
    assert!(
        msg.contains("/dev/fake") && msg.contains("no frame for"),
        "{msg}"
    );
}

#[test]
fn failing_first_open_goes_down_and_stops_promptly_on_close() {
    let hub = new_hub();
    let tap = hub.tap(1000);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let t = start(&hub, Arc::new(Mutex::new(VecDeque::new())), calls.clone());
    wait_for("down", || hub.status().state == SourceState::Down);
    wait_for("NO SIGNAL frames", || {
        hub.latest().is_some_and(|f| f.seq >= 3)
    });
    let closed_at = Instant::now();
    hub.close();
    t.join().unwrap();
    assert!(closed_at.elapsed() < Duration::from_secs(2));
    let got: Vec<Arc<Frame>> = tap.try_iter().collect();
    assert!(
        got.iter()
            .all(|f| f.no_signal && (f.width, f.height) == (640, 480))
    );
    assert_eq!(hub.counters.frames.load(Ordering::Relaxed), 0);
    assert_eq!(hub.counters.reopens.load(Ordering::Relaxed), 0);
    assert!(hub.status().message.unwrap().contains("gone"));
    // The two NO SIGNAL pictures alternate (the blinking dot).
    assert!(got.len() >= 2 && got[0].payload.jpeg().unwrap() != got[1].payload.jpeg().unwrap());
}

#[test]
fn stops_promptly_while_streaming() {
    let hub = new_hub();
    let outcomes: Outcomes = Arc::new(Mutex::new(VecDeque::from([Ok(fake(vec![Step::Nothing]))])));
    let t = start(&hub, outcomes, Arc::new(Mutex::new(Vec::new())));
    wait_for("live", || hub.status().state == SourceState::Live);
    let closed_at = Instant::now();
    hub.close();
    t.join().unwrap();
    assert!(closed_at.elapsed() < Duration::from_secs(2));
}

#[test]
fn frames_over_the_size_limit_are_broken_and_no_signal_is_drawn_at_our_size() {
    let hub = new_hub();
    let tap = hub.tap(100_000);
    let good = sample_jpeg(32, 16);
    let huge = with_sof_size(good.clone(), 65535, 65535);
    // A camera that claims 65535x65535, sends 5 such frames, then stalls.
    let mut steps = frames(5, &huge);
    steps.push(Step::Nothing);
    let excess = Excess {
        frames_over_rate: 7,
        junk_bytes: 1000,
        throttled: Duration::from_millis(1500),
    };
    let outcomes: Outcomes = Arc::new(Mutex::new(VecDeque::from([Ok(fake_as(
        steps,
        (65535, 65535),
        excess,
    ))])));
    let t = start(&hub, outcomes, Arc::new(Mutex::new(Vec::new())));
    wait_for("down, showing NO SIGNAL", || {
        hub.status().state == SourceState::Down && hub.latest().is_some_and(|f| f.no_signal)
    });
    hub.close();
    t.join().unwrap();
    let got: Vec<Arc<Frame>> = tap.try_iter().collect();
    assert!(
        got.iter().all(|f| f.no_signal),
        "no refused frame reached the hub"
    );
    // The size the watchdog started with (the configured one), never the claim.
    let ns = &got[0];
    assert_eq!((ns.width, ns.height), (640, 480));
    let jpeg = ns.payload.jpeg().unwrap().to_vec();
    assert_eq!(jpeg::sanitize(jpeg).unwrap().1, (640, 480));
    assert_eq!(hub.counters.broken.load(Ordering::Relaxed), 5);
    assert_eq!(hub.counters.frames.load(Ordering::Relaxed), 0);
    // What the source refused reached the camera's counters.
    assert_eq!(hub.counters.over_rate.load(Ordering::Relaxed), 7);
    assert_eq!(hub.counters.junk_bytes.load(Ordering::Relaxed), 1000);
    assert_eq!(hub.counters.throttled_ms.load(Ordering::Relaxed), 1500);
}
