//! Capture times for RTP frames: the camera's own 90 kHz timeline, anchored
//! to CLOCK_MONOTONIC at the first frame. Durations in a clip are the
//! camera's (RTP deltas), also when frames reach us late because *we* were
//! slow (a busy CPU): late delivery is not a camera clock jump. A frame may
//! seem up to `MAX_LEAD` early (the first one came late: delays only ever
//! add); while it leads, the anchor slews back by at most `SLEW` a frame
//! (invisible in a frame's duration), and beyond the lead by the excess, so
//! a camera clock a little fast shortens frames by microseconds, never by a
//! jump. The timeline is re-anchored at a frame's arrival (with a warning)
//! only on evidence of a real jump: RTP time going back more than
//! `MAX_LAG`, or every frame for `BEHIND_WINDOW` on end trailing its
//! arrival by more than `MAX_LAG` (a slow or stopped camera clock: a late
//! burst raises the lag only until it is drained, a real jump raises its
//! minimum). Moonfire NVR's `design/time.md` discusses the trade-offs.

use std::time::Duration;

/// How far the camera's timeline may trail the local clock for good
/// before it is re-anchored; also the largest step back in RTP time that is
/// not a jump.
pub const MAX_LAG: Duration = Duration::from_secs(1);
/// How long every frame must trail its arrival by more than `MAX_LAG`
/// before that is taken as the camera's clock, not our delay: longer than a
/// busy machine holds us up (the worst: 1.5 s).
pub const BEHIND_WINDOW: Duration = Duration::from_secs(10);
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
    /// The RTP time of the frame before.
    last_rtp: Option<i64>,
    /// Arrival of the first frame of the current run trailing by more
    /// than `MAX_LAG`.
    behind_since: Option<Duration>,
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
            last_rtp: None,
            behind_since: None,
            reanchored: 0,
        }
    }

    fn ticks(&self, d: Duration) -> i64 {
        i64::try_from(d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000)
            .unwrap_or(i64::MAX)
    }

    /// The capture time of a frame with RTP time `rtp` that arrived at `now`;
    /// strictly increasing, and a warning when it had to re-anchor.
    pub fn place(&mut self, rtp: i64, now: Duration) -> (Duration, Option<String>) {
        let mut warning = None;
        let back = self.last_rtp.map_or(0, |l| l.saturating_sub(rtp));
        self.last_rtp = Some(rtp);
        if back > self.ticks(MAX_LAG) {
            let secs = back as f64 / f64::from(self.clock_rate);
            warning = Some(format!(
                "the camera's clock went back {secs:.2} s (a jump or a reboot); re-anchored"
            ));
            self.reanchor(rtp, now);
        }
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
                self.behind_since = None;
                let step = t.saturating_sub(now).min(SLEW);
                self.anchor = Some((a_rtp, a_mono.saturating_sub(step)));
                t - step
            }
            // Early beyond the lead: move the anchor back by the excess.
            Some(t) if t > now => {
                self.behind_since = None;
                let excess = t - (now + MAX_LEAD);
                self.anchor = Some((a_rtp, a_mono.saturating_sub(excess)));
                now + MAX_LEAD
            }
            // Behind, but not for long yet: late delivery keeps the
            // camera's time.
            Some(t)
                if now.saturating_sub(*self.behind_since.get_or_insert(now)) < BEHIND_WINDOW =>
            {
                t
            }
            _ => {
                let lag = at.map_or(f64::INFINITY, |t| (now - t).as_secs_f64());
                warning = Some(format!(
                    "the camera's clock has trailed ours by more than {} s for {} s \
                     (now {lag:.2} s: a slow or stopped clock, a jump); re-anchored",
                    MAX_LAG.as_secs(),
                    BEHIND_WINDOW.as_secs()
                ));
                self.reanchor(rtp, now);
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

    fn reanchor(&mut self, rtp: i64, now: Duration) {
        self.reanchored += 1;
        self.anchor = Some((rtp, now));
        self.behind_since = None;
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
        // The camera's clock jumped back 10 s: at once.
        let (t1, w) = t.place(100_000, base + 33 * MS);
        assert!(w.unwrap().contains("went back 10.00 s"));
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

    /// 30 fps frames `from..to` (RTP 3000 ticks apart), each arriving at
    /// `arrival(i)`; their capture times.
    fn feed(
        t: &mut Timeline,
        frames: std::ops::Range<u64>,
        arrival: impl Fn(u64) -> Duration,
    ) -> Vec<(Duration, Option<String>)> {
        frames
            .map(|i| t.place(i as i64 * 3000, arrival(i)))
            .collect()
    }

    const FRAME: Duration = Duration::from_nanos(33_333_333);

    #[test]
    fn frames_we_were_too_busy_to_take_keep_the_cameras_times() {
        // The clip: two holds of 1.47 s and 1.05 s while the machine
        // was busy, each backlog then read in one burst.
        let mut t = Timeline::new(90_000, None);
        let base = Duration::from_secs(100);
        let on_time = |i: u64| base + FRAME * i as u32 + 5 * MS;
        let hold = |i: u64| match i {
            60..=104 => base + FRAME * 104 + 1470 * MS,
            150..=181 => base + FRAME * 181 + 1050 * MS,
            _ => on_time(i),
        };
        let placed = feed(&mut t, 0..300, hold);
        assert!(placed.iter().all(|(_, w)| w.is_none()), "{placed:?}");
        assert_eq!(t.reanchored, 0);
        for (i, w) in placed.windows(2).enumerate() {
            let d = w[1].0 - w[0].0;
            assert!(
                d.abs_diff(FRAME) < 2 * MS,
                "frame {i}: {d:?} (a hole or a burst)"
            );
        }
        // Lateness that lasts, but less than the window: still the camera's.
        let mut t = Timeline::new(90_000, None);
        let late = |i: u64| on_time(i) + if i >= 30 { 3 * MAX_LAG } else { Duration::ZERO };
        let placed = feed(&mut t, 0..(30 + 9 * 30), late);
        assert!(placed.iter().all(|(_, w)| w.is_none()));
    }

    #[test]
    fn a_camera_clock_that_trails_for_the_whole_window_is_reanchored_once() {
        // The camera's clock stopped for 3 s (its RTP time resumes where it
        // was; every frame since trails by 3 s, the least of them too).
        let mut t = Timeline::new(90_000, None);
        let base = Duration::from_secs(100);
        let stopped =
            |i: u64| base + FRAME * i as u32 + if i >= 30 { 3 * MAX_LAG } else { Duration::ZERO };
        let placed = feed(&mut t, 0..(30 + 12 * 30), stopped);
        let warned: Vec<usize> = (0..placed.len())
            .filter(|&i| placed[i].1.is_some())
            .collect();
        assert_eq!(warned.len(), 1, "{warned:?}");
        let w = warned[0];
        let since = stopped(30);
        let at = stopped(w as u64);
        assert!(at - since >= BEHIND_WINDOW && at - since < BEHIND_WINDOW + 2 * FRAME);
        assert!(placed[w].1.as_ref().unwrap().contains("trailed"));
        // On the grid again from there, at the arrivals.
        assert_eq!(placed[w].0, at);
        let d = placed[w + 1].0 - placed[w].0;
        assert!(d.abs_diff(FRAME) < MS, "{d:?}");
        assert_eq!(t.reanchored, 1);
    }
}
