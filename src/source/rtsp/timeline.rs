//! Capture times for RTP frames: the camera's own 90 kHz timeline, anchored
//! to CLOCK_MONOTONIC at the first frame. Durations in a clip are the
//! camera's (RTP deltas). A frame may seem up to `MAX_LEAD` early (the
//! first one came late: network delay only ever adds); while it leads, the
//! anchor slews back by at most `SLEW` a frame (invisible in a frame's
//! duration), and beyond the lead by the excess, so a camera clock a little
//! fast shortens frames by microseconds, never by a jump. A camera clock that
//! falls more than `MAX_LAG` behind ours (a jump, a reboot, a slow clock) is
//! re-anchored with a warning. Moonfire NVR's `design/time.md` discusses
//! the trade-offs.

use std::time::Duration;

/// How far the camera's timeline may trail the local clock before it is
/// re-anchored at the frame's arrival.
pub const MAX_LAG: Duration = Duration::from_secs(1);
/// How far ahead of its arrival a frame's camera time may be: the first
/// frames of a session often come late, in a burst (a slow start, a
/// network buffer flushed at PLAY).
pub const MAX_LEAD: Duration = Duration::from_millis(500);
/// How much earlier each frame may be moved while it leads its arrival
/// (1 % of a 30 fps frame, never visible): a 100 ms lead is gone in ~11 s.
pub const SLEW: Duration = Duration::from_micros(300);

pub struct Timeline {
    clock_rate: u32,
    /// RTP time (elapsed ticks) and the monotonic time it maps to.
    anchor: Option<(i64, Duration)>,
    last: Option<Duration>,
    pub reanchored: u64,
}

impl Timeline {
    /// A session's timeline; `floor` is the last capture time the camera's
    /// previous session gave, which this one never goes back past.
    pub fn new(clock_rate: u32, floor: Option<Duration>) -> Timeline {
        Timeline {
            clock_rate: clock_rate.max(1),
            anchor: None,
            last: floor,
            reanchored: 0,
        }
    }

    /// The capture time of a frame with RTP time `rtp` that arrived at `now`;
    /// strictly increasing. `Err` carries a warning when it had to re-anchor.
    pub fn place(&mut self, rtp: i64, now: Duration) -> (Duration, Option<String>) {
        let mut warning = None;
        let (a_rtp, a_mono) = *self.anchor.get_or_insert((rtp, now));
        let ticks = rtp - a_rtp;
        let offset = Duration::from_nanos(
            (u128::from(ticks.unsigned_abs()) * 1_000_000_000 / u128::from(self.clock_rate))
                .try_into()
                .unwrap_or(u64::MAX),
        );
        let at = if ticks >= 0 {
            a_mono.checked_add(offset)
        } else {
            a_mono.checked_sub(offset)
        };
        let at = match at {
            Some(t) if t <= now + MAX_LEAD && t + MAX_LAG >= now => {
                let step = t.saturating_sub(now).min(SLEW);
                self.anchor = Some((a_rtp, a_mono.saturating_sub(step)));
                t - step
            }
            // Early beyond the lead: move the anchor back by the excess.
            Some(t) if t > now => {
                let excess = t - (now + MAX_LEAD);
                self.anchor = Some((a_rtp, a_mono.saturating_sub(excess)));
                now + MAX_LEAD
            }
            _ => {
                let lag = at.map_or(f64::INFINITY, |t| (now - t).as_secs_f64());
                warning = Some(format!(
                    "the camera's clock is {lag:.2} s behind (a jump or a reboot); re-anchored"
                ));
                self.reanchored += 1;
                self.anchor = Some((rtp, now));
                now
            }
        };
        // Never the same or an earlier time than the frame before.
        let at = match self.last {
            Some(l) if at <= l => l + Duration::from_micros(100),
            _ => at,
        };
        self.last = Some(at);
        (at, warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn durations_are_the_cameras_and_late_arrivals_do_not_shift_them() {
        let mut t = Timeline::new(90_000, None);
        let base = Duration::from_secs(100);
        // 30 fps: 3000 ticks apart; arrivals jitter up to 40 ms late.
        let (t0, _) = t.place(0, base + 10 * MS);
        let (t1, _) = t.place(3000, base + 10 * MS + 33 * MS + 40 * MS);
        let (t2, w) = t.place(6000, base + 10 * MS + 67 * MS + 5 * MS);
        assert!(w.is_none());
        assert_eq!(t1 - t0, Duration::from_nanos(33_333_333));
        assert_eq!(t2 - t0, Duration::from_nanos(66_666_666));
    }

    #[test]
    fn an_early_arrival_keeps_the_grid_within_the_lead_and_slews_beyond() {
        let mut t = Timeline::new(90_000, None);
        let base = Duration::from_secs(100);
        // The first frame came 30 ms late; the next on time: still the grid.
        let (t0, _) = t.place(0, base + 30 * MS);
        let (t1, _) = t.place(9000, base + 100 * MS);
        assert_eq!(t1 - t0, 100 * MS - SLEW, "leading: slewed by SLEW only");
        // 530 ms early: 30 ms beyond the lead, taken off this frame only.
        let (t2, w) = t.place(18000 + 45000, base + 200 * MS);
        assert!(w.is_none());
        assert_eq!(t2, base + 200 * MS + MAX_LEAD);
        let (t3, _) = t.place(27000 + 45000, base + 750 * MS);
        assert_eq!(
            t3 - t2,
            100 * MS - SLEW,
            "the grid again, from the new anchor"
        );
        // Leading by 20 ms for a while: slewed away SLEW a frame.
        let mut t = Timeline::new(90_000, None);
        let (mut last, _) = t.place(0, base + 20 * MS);
        for i in 1..=300u64 {
            let (c, _) = t.place(i as i64 * 3000, base + Duration::from_nanos(i * 33_333_333));
            let d = c - last;
            assert!(
                d >= Duration::from_nanos(33_333_333) - SLEW && d <= 34 * MS,
                "{d:?}"
            );
            last = c;
        }
        let now = base + Duration::from_nanos(300 * 33_333_333);
        assert!(
            last <= now + MS,
            "the lead is gone: {:?}",
            last.saturating_sub(now)
        );
    }

    #[test]
    fn a_jump_is_reanchored_with_a_warning_and_time_never_goes_back() {
        let mut t = Timeline::new(90_000, None);
        let base = Duration::from_secs(100);
        let (t0, _) = t.place(1_000_000, base);
        // The camera's clock jumped back 10 s.
        let (t1, w) = t.place(100_000, base + 33 * MS);
        assert!(w.unwrap().contains("behind"));
        assert_eq!(t1, base + 33 * MS);
        assert!(t1 > t0);
        // A repeated timestamp still gets a later time.
        let (t2, _) = t.place(100_000, base + 33 * MS);
        assert!(t2 > t1);
        assert_eq!(t.reanchored, 1);
        // A new session (a reconnect) never goes back past the last one.
        let mut t2 = Timeline::new(90_000, t.last);
        let (t3, _) = t2.place(5, base);
        assert!(t3 > t.last.unwrap(), "{t3:?}");
    }
}
