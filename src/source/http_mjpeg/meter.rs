//! What a network camera may send, enforced: token buckets for frames,
//! bytes and bytes that are not frames, from its [`Budget`]. Over budget,
//! a frame is dropped and counted, and nothing more is read or parsed until
//! the budget refills: the capture thread sleeps (within the deadline it
//! was given) and TCP makes the camera wait, so an abusive camera costs a
//! bounded share of a core instead of all we can parse.

use std::time::{Duration, Instant};

use crate::budget::Budget;
use crate::source::Excess;

/// A token bucket: `rate` a second, holding at most `burst`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    fn new(rate: u64, burst: u64, now: Instant) -> Bucket {
        let (rate, burst) = (rate.max(1) as f64, burst.max(1) as f64);
        Bucket {
            rate,
            burst,
            level: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.burst);
        self.at = self.at.max(now);
    }

    /// Takes one token if there is one.
    fn take_one(&mut self, now: Instant) -> bool {
        self.refill(now);
        let ok = self.level >= 1.0;
        if ok {
            self.level -= 1.0;
        }
        ok
    }

    /// Spends `n`, into debt if need be (bytes are counted once read).
    fn charge(&mut self, n: usize, now: Instant) {
        self.refill(now);
        self.level -= n as f64;
    }

    /// When the level is back to `need`.
    fn ready_at(&self, need: f64) -> Instant {
        let short = need - self.level;
        if short <= 0.0 {
            return self.at;
        }
        self.at + Duration::from_secs_f64(short / self.rate)
    }
}

/// The three buckets, what they refused, and when each was last logged.
pub struct Meter {
    frames: Bucket,
    bytes: Bucket,
    junk: Bucket,
    /// A frame was dropped: no more until the frame bucket has a token.
    frame_due: bool,
    excess: Excess,
    logged: [Option<Instant>; 3],
}

/// What went over budget, for a log line now and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Frames,
    Bytes,
    Junk,
}

/// A log line per kind at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Meter {
    pub fn new(b: &Budget, now: Instant) -> Meter {
        let fps = u64::from(b.frames_per_sec);
        Meter {
            // Half a second of the cap at once: a camera's frames bunched by
            // the network pass; a flood does not.
            frames: Bucket::new(fps, fps / 2 + 1, now),
            bytes: Bucket::new(b.bytes_per_sec, b.bytes_per_sec, now),
            junk: Bucket::new(b.junk_per_sec, b.junk_per_sec, now),
            frame_due: false,
            excess: Excess::default(),
            logged: [None; 3],
        }
    }

    /// Whether a whole frame may go on; if not it is counted, and reading
    /// pauses until the next one may.
    pub fn frame(&mut self, now: Instant) -> bool {
        if self.frames.take_one(now) {
            return true;
        }
        self.excess.frames_over_rate += 1;
        self.frame_due = true;
        false
    }

    pub fn read(&mut self, n: usize, now: Instant) {
        self.bytes.charge(n, now);
    }

    pub fn junk(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.junk.charge(n, now);
            self.excess.junk_bytes += n as u64;
        }
    }

    /// What is over budget now, and until when; `None` while within it.
    pub fn over(&self) -> Option<(Over, Instant)> {
        let mut worst: Option<(Over, Instant)> = None;
        let mut consider = |what, at: Instant, over: bool| {
            if over && worst.is_none_or(|(_, w)| at > w) {
                worst = Some((what, at));
            }
        };
        consider(Over::Frames, self.frames.ready_at(1.0), self.frame_due);
        consider(
            Over::Bytes,
            self.bytes.ready_at(0.0),
            self.bytes.level < 0.0,
        );
        consider(Over::Junk, self.junk.ready_at(0.0), self.junk.level < 0.0);
        worst
    }

    /// Sleeps while over budget, until `deadline` at most: true when the
    /// budget allows going on, false when the deadline came first. The
    /// second value is what was over budget, when it is time to log it.
    pub fn wait(&mut self, deadline: Instant) -> (bool, Option<Over>) {
        let mut note = None;
        loop {
            let now = Instant::now();
            let Some((what, until)) = self.over() else {
                self.frame_due = false;
                return (true, note);
            };
            if until <= now {
                // Refill up to now, then look again.
                self.frames.refill(now);
                self.bytes.refill(now);
                self.junk.refill(now);
                if what == Over::Frames {
                    self.frame_due = false;
                }
                continue;
            }
            let slot = &mut self.logged[what as usize];
            if slot.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
                *slot = Some(now);
                note = Some(what);
            }
            if now >= deadline {
                return (false, note);
            }
            let wake = until.min(deadline);
            std::thread::sleep(wake - now);
            self.excess.throttled += Instant::now().saturating_duration_since(now);
        }
    }

    /// What was refused since last asked.
    pub fn take_excess(&mut self) -> Excess {
        std::mem::take(&mut self.excess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn buckets_refill_at_their_rate_and_hold_their_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10, 3, t0);
        assert!((0..3).all(|_| b.take_one(t0)));
        assert!(!b.take_one(t0), "burst spent");
        assert_eq!(b.ready_at(1.0), t0 + 100 * MS);
        assert!(b.take_one(t0 + 100 * MS));
        assert!(!b.take_one(t0 + 150 * MS));
        // A long quiet time refills to the burst only.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.take_one(later)).count(), 3);
        let mut bytes = Bucket::new(1000, 1000, t0);
        bytes.charge(3000, t0);
        assert_eq!(bytes.ready_at(0.0), t0 + 2000 * MS, "debt paid back");
    }

    fn budget(frames: u32, bytes: u64, junk: u64) -> Budget {
        Budget {
            frames_per_sec: frames,
            bytes_per_sec: bytes,
            junk_per_sec: junk,
            ..Budget::for_fps(1)
        }
    }

    #[test]
    fn a_flood_of_frames_is_dropped_counted_and_paced() {
        let start = Instant::now();
        let mut m = Meter::new(&budget(40, 1 << 30, 1 << 30), start);
        let (mut passed, mut offered) = (0, 0);
        let end = start + Duration::from_millis(500);
        while Instant::now() < end {
            let (ok, _) = m.wait(end);
            if !ok {
                break;
            }
            offered += 1;
            passed += u32::from(m.frame(Instant::now()));
        }
        let excess = m.take_excess();
        assert_eq!(u64::from(offered - passed), excess.frames_over_rate);
        // 21 at once, then 40 a second: about 41 in half a second, and
        // about as many dropped (one each time the bucket was empty).
        assert!((35..=45).contains(&passed), "{passed} passed");
        assert!(
            offered < 2 * passed + 5,
            "parsing paused: {offered} offered"
        );
        assert!(excess.throttled > Duration::from_millis(300), "{excess:?}");
        assert!(m.take_excess().is_empty(), "taken");
    }

    #[test]
    fn bytes_and_junk_over_budget_pause_reading_until_the_deadline() {
        let t0 = Instant::now();
        let mut m = Meter::new(&budget(100, 10_000, 1_000), t0);
        m.read(9_000, t0);
        assert_eq!(m.over(), None);
        m.junk(3_000, t0);
        let (what, until) = m.over().unwrap();
        assert_eq!(what, Over::Junk);
        assert!(until >= t0 + 1900 * MS, "{:?}", until - t0);
        let (ok, note) = m.wait(Instant::now() + 50 * MS);
        assert!(!ok, "still over budget at the deadline");
        assert_eq!(note, Some(Over::Junk), "said once");
        let (_, note) = m.wait(Instant::now() + 10 * MS);
        assert_eq!(note, None, "not said again so soon");
        let e = m.take_excess();
        assert_eq!(e.junk_bytes, 3_000);
        assert!(e.throttled >= 55 * MS, "{e:?}");
        m.read(30_000, Instant::now());
        assert_eq!(m.over().unwrap().0, Over::Bytes, "the longer wait");
    }
}
