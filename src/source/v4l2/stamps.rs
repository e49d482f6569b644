//! Capture times from V4L2 buffer timestamps. uvcvideo stamps buffers on
//! CLOCK_MONOTONIC at the start of exposure, which is better than the time
//! a frame reaches us (USB and scheduling add jitter). But cameras and
//! drivers lie: stamps of another clock, stamps that jump after a hiccup.
//! So the camera's timeline is followed only while it stays plausible next
//! to our own clock; when it stops being so, it is re-anchored to the
//! arrival time and followed again from there (as Moonfire NVR follows a
//! camera's RTP clock while checking it against the local one).

use std::time::Duration;

/// A stamp may be this far ahead of its arrival (clock granularity).
const AHEAD: Duration = Duration::from_millis(50);
/// ...and this far behind: a frame older than this did not wait in a queue
/// of a few buffers, the camera's clock jumped.
const BEHIND: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Stamps {
    /// Added to the camera's stamps (ns); zero while they are trusted as is.
    offset: i128,
    /// The last capture time handed out.
    last: Option<Duration>,
    /// How late the last trusted frame arrived: kept across a re-anchor.
    latency: Duration,
}

/// What happened to the camera's timeline at a frame.
#[derive(Debug, PartialEq)]
pub enum Jump {
    /// Its stamps are not on our clock (or there are none): arrival times
    /// until they can be followed.
    Untrusted,
    /// It jumped by this much (ns, negative: backwards) and was re-anchored.
    By(i128),
}

impl Stamps {
    /// The capture time of a frame stamped `ts_us` that arrived `now`, and
    /// whether the camera's timeline had to be re-anchored for it. Capture
    /// times only go forward.
    pub fn capture(&mut self, ts_us: u64, now: Duration) -> (Duration, Option<Jump>) {
        if ts_us == 0 {
            return (self.after_last(now), Some(Jump::Untrusted));
        }
        let stamp = i128::from(ts_us) * 1000;
        let t = stamp + self.offset;
        let now_ns = now.as_nanos() as i128;
        let plausible = t <= now_ns + AHEAD.as_nanos() as i128
            && now_ns - t < BEHIND.as_nanos() as i128
            && self.last.is_none_or(|l| t > l.as_nanos() as i128);
        if plausible {
            let t = Duration::from_nanos(t.max(0) as u64);
            self.latency = now.saturating_sub(t);
            self.last = Some(t);
            return (t, None);
        }
        // Re-anchor: this frame is taken to be as late as the last good one.
        let at = self.after_last(now.saturating_sub(self.latency));
        let first = self.last.is_none() && self.offset == 0;
        let jump = at.as_nanos() as i128 - t;
        self.offset += jump;
        self.last = Some(at);
        let what = if first || self.offset.abs() > 86_400 * 1_000_000_000 {
            // Not our clock at all (a realtime stamp, say): followed from here.
            Jump::Untrusted
        } else {
            Jump::By(-jump)
        };
        (at, Some(what))
    }

    fn after_last(&mut self, t: Duration) -> Duration {
        let t = match self.last {
            Some(l) if t <= l => l + Duration::from_micros(1),
            _ => t,
        };
        self.last = Some(t);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn us(d: Duration) -> u64 {
        d.as_micros() as u64
    }

    #[test]
    fn follows_a_monotonic_camera_with_jitter() {
        let mut s = Stamps::default();
        let t0 = Duration::from_secs(1000);
        for i in 0..30u32 {
            let due = t0 + i * 33 * MS;
            let jitter = if i % 2 == 0 { 4 * MS } else { Duration::ZERO };
            let (t, jump) = s.capture(us(due + jitter), due + 20 * MS);
            assert_eq!((t, jump), (due + jitter, None), "frame {i}");
        }
    }

    #[test]
    fn re_anchors_when_the_camera_jumps_either_way() {
        let mut s = Stamps::default();
        let t0 = Duration::from_secs(1000);
        let lat = 10 * MS;
        for i in 0..10u32 {
            s.capture(us(t0 + i * 33 * MS), t0 + i * 33 * MS + lat);
        }
        // Three seconds back: the capture time still moves on by one frame.
        let arrive = t0 + 10 * 33 * MS + lat;
        let back = t0 + 10 * 33 * MS - Duration::from_secs(3);
        let (t, jump) = s.capture(us(back), arrive);
        assert_eq!(t, arrive - lat);
        assert_eq!(jump, Some(Jump::By(-3_000_000_000)));
        // And the camera's new timeline is followed from there.
        let (t2, jump) = s.capture(us(back + 33 * MS), arrive + 33 * MS);
        assert_eq!((t2, jump), (t + 33 * MS, None));
        // Forward by five seconds: the same.
        let (t3, jump) = s.capture(us(back + 66 * MS + 5000 * MS), arrive + 66 * MS);
        assert_eq!(t3, t2 + 33 * MS);
        assert_eq!(jump, Some(Jump::By(5_000_000_000)));
    }

    #[test]
    fn another_clock_is_followed_from_the_first_frame() {
        let mut s = Stamps::default();
        let now = Duration::from_secs(1000);
        let realtime = Duration::from_secs(1_700_000_000);
        let (t, jump) = s.capture(us(realtime), now);
        assert_eq!((t, jump), (now, Some(Jump::Untrusted)));
        let (t, jump) = s.capture(us(realtime + 33 * MS), now + 40 * MS);
        assert_eq!((t, jump), (now + 33 * MS, None));
    }

    #[test]
    fn no_stamp_means_arrival_times_that_only_go_forward() {
        let mut s = Stamps::default();
        let now = Duration::from_secs(5);
        assert_eq!(s.capture(0, now), (now, Some(Jump::Untrusted)));
        assert_eq!(s.capture(0, now).0, now + Duration::from_micros(1));
    }
}
