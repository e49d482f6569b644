//! The recorder thread: frames from the hub's tap → decode → encode → `.part`
//! (a network camera's stream is copied instead: `copy`), durable every
//! second, finished when asked (or at its maximum duration).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::ClipInfo;
use super::ahead::{DecodeAhead, Decoded};
use super::decode::Yuv420;
use super::encode::H264;
use super::journal::ClipWriter;
use super::mux::{TIMESCALE, TrackInfo};
use crate::clips::Clips;
use crate::clock::ticks;
use crate::error::{Error, Kind, Result};
use crate::frame::{Frame, VideoParams};
use crate::hub::TapReceiver;
use crate::sync::lock;

mod copy;

/// How often samples are made durable (fsync + journal): the most a crash loses.
const DURABLE_EVERY: Duration = Duration::from_secs(1);
/// How often the clips directory budget is checked while recording.
const ENFORCE_EVERY: Duration = Duration::from_secs(5);
/// Idle wake-up to notice a stop request when no frames come.
const POLL: Duration = Duration::from_millis(50);
/// Largest JPEG kept as a clip's thumbnail (a network camera may send 8 MiB).
const MAX_THUMBNAIL: usize = 1 << 20;
/// Widest thumbnail decoded from a copied stream.
const THUMBNAIL_WIDTH: u32 = 640;
/// A stop before any frame arrived waits this long for one.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(2);

/// Shared between the recorder thread and `Recorder` (status, stop, abort).
#[derive(Default)]
pub struct Control {
    /// Monotonic time the clip ends at: set by `/stop` or shutdown.
    pub end: Mutex<Option<Duration>>,
    /// Test hook: vanish like a killed process.
    pub abort: AtomicBool,
    pub frames: AtomicU64,
    /// Frames not in the clip for our own reasons (undecodable, time going back).
    pub skipped: AtomicU64,
    /// Capture time (ns) of the first frame in the clip; 0 until then.
    pub first_capture_ns: AtomicU64,
    /// Clip time (in `TIMESCALE` ticks) up to the last durable sample.
    pub durable_ticks: AtomicU64,
    /// The id of the clip being written (a split recording moves on).
    pub clip: Mutex<String>,
}

impl Control {
    /// One more frame in the clip, whose first was captured at `first`.
    fn counted(&self, first: Duration) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.first_capture_ns
            .compare_exchange(
                0,
                first.as_nanos().max(1) as u64,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .ok();
    }
}

pub struct Job {
    pub id: String,
    pub camera: crate::ids::CameraId,
    /// The clip this one continues (after a split), for its `ClipInfo`.
    pub continued_from: Option<String>,
    pub writer: ClipWriter,
    pub pre: Vec<Arc<Frame>>,
    pub tap: TapReceiver,
    pub control: Arc<Control>,
    pub clips: Arc<Clips>,
    pub last: Arc<Mutex<Option<ClipInfo>>>,
    pub bitrate_kbps: u32,
    pub fps_hint: f64,
    /// Monotonic time the clip ends by itself (`max_duration`).
    pub max_end: Option<Duration>,
    /// JPEGs captured before this (the request minus the pre-roll) are not
    /// part of the clip, even if published just after the tap was set up.
    pub begin: Duration,
}

struct Pipeline {
    ahead: DecodeAhead,
    /// Capture time of the last frame handed to the decoder.
    last_accepted: Option<Duration>,
    scaled: Option<Yuv420>,
    enc: Option<H264>,
    base: Option<(Duration, SystemTime)>,
    last_pts: Option<u64>,
    last_sync_pts: Option<u64>,
    resized: u64,
    /// Stream copy: the parameters the clip was started with.
    copying: Option<Arc<VideoParams>>,
    /// A keyframe with new parameters: the clip ends before it and the
    /// recording goes on in a new clip that starts with it.
    split: Option<Arc<Frame>>,
    /// Stream copy: the clip's first keyframe, decoded once for its thumbnail.
    first_key: Option<Arc<Frame>>,
    /// Stream copy: the last frame taken, and whether one went missing
    /// since (dropped at a full tap, or out of order): the frames after it
    /// refer to it, so the clip skips to the next keyframe.
    last_seq: Option<u64>,
    broken_chain: bool,
    /// Stream copy: parameters changed again too soon after a split (said
    /// once a clip).
    flapping: bool,
}

impl Pipeline {
    /// A copied clip's thumbnail: its first keyframe, decoded now (H.264).
    fn thumbnail(&self) -> Option<Vec<u8>> {
        let v = self.first_key.as_ref()?.payload.video()?;
        crate::picture::keyframe_jpeg(v, THUMBNAIL_WIDTH)
    }

    fn new(id: &str) -> Pipeline {
        Pipeline {
            ahead: DecodeAhead::new(id),
            last_accepted: None,
            scaled: None,
            enc: None,
            base: None,
            last_pts: None,
            last_sync_pts: None,
            resized: 0,
            copying: None,
            split: None,
            first_key: None,
            last_seq: None,
            broken_chain: false,
            flapping: false,
        }
    }
}

/// Why a stop found nothing to keep: the source's fault, not ours, so
/// `/stop` says it in words (503) rather than as an internal error.
pub const NO_FRAMES: &str = "no frames arrived from the source; nothing recorded";
const NONE_ENCODED: &str = "no frame could be encoded; nothing recorded";

/// The clip, or why there is none: `Kind::Empty` when the camera sent
/// nothing to keep, else the kind of what failed.
pub fn run(mut job: Job) -> Result<ClipInfo> {
    let mut p = Pipeline::new(&job.id);
    let mut pre = std::mem::take(&mut job.pre).into_iter();
    let now = crate::clock::monotonic_now();
    let (mut next_durable, mut next_enforce) = (now + DURABLE_EVERY, now + ENFORCE_EVERY);
    // Why the recording ended by itself, when it did for want of room.
    let mut early = None;
    let end = loop {
        if job.control.abort.load(Ordering::Relaxed) {
            #[cfg(test)]
            job.writer.abandon();
            return Err(Error::new(Kind::Internal, "aborted (test)"));
        }
        // Pre-roll frames were chosen by the hub (video from a keyframe).
        let frame = match pre.next() {
            Some(f) => Some(f),
            None if lock(&job.control.end).is_some() => job.tap.try_recv(),
            None => job.tap.recv_timeout(POLL),
        };
        // Read after the frame: a stop that came while we waited must apply to it.
        let stop = *lock(&job.control.end);
        let now = crate::clock::monotonic_now();
        let max_end = job.max_end.filter(|&m| now >= m);
        match (frame, stop.or(max_end)) {
            // Frames captured at or after the end are not part of the clip.
            (Some(f), Some(e)) if f.capture >= e => break e,
            (Some(f), _) if job.max_end.is_some_and(|m| f.capture >= m) => {
                break job.max_end.unwrap_or(f.capture);
            }
            // JPEGs captured before `begin` are not the clip's. Video is held
            // to its chain instead: it starts on the keyframe the hub chose,
            // and every frame after it is the clip's whatever its capture
            // time (frames that reach us late keep the camera's earlier
            // times; leaving one out would break the chain to the next
            // keyframe).
            (Some(f), _) if f.payload.video().is_none() && f.capture < job.begin => {}
            (Some(f), _) => {
                if let Err(e) = p.process(&f, &mut job) {
                    return fail(job, p, e);
                }
                if let Some(k) = p.split.take()
                    && let Err(e) = copy::split(&mut job, &mut p, &k)
                {
                    return fail(job, p, e);
                }
            }
            (None, Some(e)) => break e,
            // No frame for a while: encode what is still being decoded.
            (None, None) => {
                if let Err(e) = p.flush(&mut job) {
                    return fail(job, p, e);
                }
            }
        }
        if now >= next_durable {
            next_durable = now + DURABLE_EVERY;
            if let Err(e) = job.writer.make_durable() {
                return fail(job, p, e);
            }
            let durable = job.writer.durable_ticks();
            job.control.durable_ticks.store(durable, Ordering::Relaxed);
            // Stop while the index still fits, rather than at ENOSPC.
            if let Some(why) = job.clips.out_of_room(Some(&job.id)) {
                log::error!("recording {} stopped: {why}", job.id);
                early = Some(why);
                break now;
            }
        }
        if now >= next_enforce {
            next_enforce = now + ENFORCE_EVERY;
            job.clips.enforce(Some(&job.id));
        }
    };
    if let Err(e) = p.flush(&mut job) {
        return fail(job, p, e);
    }
    if job.writer.samples.is_empty() {
        // Stopped before the first frame: take the next one so a clip exists.
        if let Some(f) = job.tap.recv_timeout(FIRST_FRAME_WAIT)
            && let Err(e) = p.process(&f, &mut job).and_then(|()| p.flush(&mut job))
        {
            return fail(job, p, e);
        }
    }
    let Some(&(first_capture, first_wall)) = p.base.as_ref() else {
        job.writer.discard();
        return Err(Error::said(Kind::Empty, NO_FRAMES));
    };
    if job.writer.samples.is_empty() {
        job.writer.discard();
        return Err(Error::said(Kind::Empty, NONE_ENCODED));
    }
    let last_pts = p.last_pts.unwrap_or(0);
    // The last sample lasts until the end; a frame taken after a stop lasts one interval.
    let interval = (f64::from(TIMESCALE) / job.fps_hint.clamp(1.0, 120.0)) as u64;
    let end_ticks = match end.checked_sub(first_capture).map(ticks) {
        Some(t) if t > last_pts => t,
        _ => last_pts + interval,
    };
    let mut info = finish(job, p, end_ticks, first_wall)?;
    info.stopped_early = early;
    Ok(info)
}

impl Pipeline {
    /// Hands a frame to the decoder and encodes the one decoded before it;
    /// a network camera's access unit goes into the clip as it came.
    fn process(&mut self, f: &Arc<Frame>, job: &mut Job) -> Result<()> {
        if let Some(v) = f.payload.video() {
            return self.copy(f, v, job);
        }
        // Presentation times must increase: a capture time that went back or
        // stood still is not one we can use (checked before paying for a decode).
        if self.last_accepted.is_some_and(|l| f.capture <= l) {
            job.control.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.last_accepted = Some(f.capture);
        match self.ahead.push(f.clone()) {
            Some(d) => self.encode(d, job),
            None => Ok(()),
        }
    }

    /// Encodes every frame still with the decoder.
    fn flush(&mut self, job: &mut Job) -> Result<()> {
        while let Some(d) = self.ahead.next() {
            self.encode(d, job)?;
        }
        Ok(())
    }

    fn encode(&mut self, d: Decoded, job: &mut Job) -> Result<()> {
        let Decoded { frame, pic, result } = d;
        let r = self.encode_pic(&frame, &pic, result, job);
        self.ahead.recycle(pic);
        r
    }

    fn encode_pic(
        &mut self,
        f: &Frame,
        pic: &Yuv420,
        decoded: Result<(), String>,
        job: &mut Job,
    ) -> Result<()> {
        // Checked again at the clip's tick resolution, against what made it in.
        if self.base.is_some_and(|(b, _)| f.capture < b)
            || self
                .last_pts
                .zip(self.base)
                .is_some_and(|(l, (b, _))| ticks(f.capture - b) <= l)
        {
            job.control.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if let Err(e) = decoded {
            let n = job.control.skipped.fetch_add(1, Ordering::Relaxed);
            if n < 5 {
                log::warn!("recording {}: frame {} skipped: {e}", job.id, f.seq);
            }
            return Ok(());
        }
        // The clip's thumbnail: its first camera picture (not NO SIGNAL),
        // the JPEG as the camera sent it, unless too big for a library page.
        if job.writer.thumbnail.is_none() && !f.no_signal {
            job.writer.thumbnail = f
                .payload
                .jpeg()
                .filter(|j| j.len() <= MAX_THUMBNAIL)
                .map(<[u8]>::to_vec);
        }
        let (base, _) = *self.base.get_or_insert((f.capture, f.wall));
        let pts = ticks(f.capture - base);
        let enc = match &mut self.enc {
            Some(enc) => enc,
            None => self.enc.insert(
                H264::new(pic.width, pic.height, job.fps_hint, job.bitrate_kbps)
                    .map_err(encoder)?,
            ),
        };
        let pic = if (pic.width, pic.height) == (enc.width, enc.height) {
            pic
        } else {
            // The camera changed size mid-clip (renegotiated, or a NO SIGNAL
            // picture of another size): scale to the clip's size rather than
            // lose the frame or split the clip.
            if self.resized == 0 {
                log::warn!(
                    "recording {}: frames now {}x{}, scaling them to the clip's {}x{}",
                    job.id,
                    pic.width,
                    pic.height,
                    enc.width,
                    enc.height
                );
            }
            self.resized += 1;
            let dst = self
                .scaled
                .get_or_insert_with(|| Yuv420::new(enc.width, enc.height));
            pic.scale_into(dst);
            dst
        };
        // A keyframe at least every second of media time, even when the
        // camera delivers fewer frames than the intra period assumes.
        if self
            .last_sync_pts
            .is_some_and(|k| pts - k >= u64::from(TIMESCALE))
        {
            enc.force_keyframe();
        }
        let Some(sample) = enc
            .encode(pic, pts / u64::from(TIMESCALE / 1000))
            .map_err(encoder)?
        else {
            return Ok(());
        };
        if job.writer.info.is_none() {
            let (Some(sps), Some(pps)) = (enc.sps.clone(), enc.pps.clone()) else {
                return Err(encoder(
                    "H.264 encoder gave no SPS/PPS with its first picture",
                ));
            };
            if !sample.sync {
                return Err(encoder("H.264 encoder did not start with a keyframe"));
            }
            job.writer.info = Some(TrackInfo {
                width: enc.width as u16,
                height: enc.height as u16,
                sps,
                pps,
                entry: None,
                timescale: TIMESCALE,
                created_unix: f
                    .wall
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            });
        }
        job.writer.write_sample(&sample.data, pts, sample.sync)?;
        self.last_pts = Some(pts);
        if sample.sync {
            self.last_sync_pts = Some(pts);
        }
        job.control.counted(base);
        Ok(())
    }
}

/// A write error (disk full, card gone): finish what is on disk as a clip
/// now, cutting its end if the index does not fit, and say why it stopped;
/// if even that fails, `.part` + journal stay for recovery at the next start.
/// The encoder's own words (no names in them): a client may read them.
fn encoder(words: impl Into<String>) -> Error {
    Error::said(Kind::Internal, words)
}

fn fail(job: Job, p: Pipeline, e: Error) -> Result<ClipInfo> {
    log::error!("recording {} stopped: {e}", job.id);
    job.clips.enforce(Some(&job.id));
    let (Some(&(_, wall)), Some(last)) = (p.base.as_ref(), p.last_pts) else {
        job.writer.discard();
        return Err(e);
    };
    let end = last + (f64::from(TIMESCALE) / job.fps_hint.clamp(1.0, 120.0)) as u64;
    let mut info = finish(job, p, end, wall).map_err(|e2| e2.context(format!("{e}; and then")))?;
    info.stopped_early = Some(super::client_reason(&e));
    Ok(info)
}

fn finish(mut job: Job, p: Pipeline, end_ticks: u64, first_wall: SystemTime) -> Result<ClipInfo> {
    if job.writer.thumbnail.is_none() {
        job.writer.thumbnail = p.thumbnail();
    }
    let written = job.writer.samples.len() as u64;
    let path = job.writer.paths.fin.display().to_string();
    let (size_bytes, table) = job.writer.finish(end_ticks)?;
    let frames = table.samples.len() as u64;
    let first_pts = table.samples.first().map_or(0, |s| s.pts);
    let duration = (table.end - first_pts) as f64 / f64::from(TIMESCALE);
    let dropped =
        job.tap.dropped() + job.control.skipped.load(Ordering::Relaxed) + (written - frames);
    if p.resized > 0 {
        log::info!(
            "recording {}: {} frames were scaled to the clip's size",
            job.id,
            p.resized
        );
    }
    let info = ClipInfo {
        id: job.id.clone(),
        path,
        duration_sec: duration,
        size_bytes,
        frames,
        fps: if duration > 0.0 {
            frames as f64 / duration
        } else {
            0.0
        },
        started_at: crate::clock::rfc3339(first_wall),
        ended_at: crate::clock::rfc3339(first_wall + Duration::from_secs_f64(duration)),
        dropped_frames: dropped,
        continued_from: job.continued_from.clone(),
        stopped_early: None,
    };
    log::info!(
        "saved {}: {frames} frames, {duration:.3} s, {size_bytes} bytes, {dropped} dropped",
        info.path
    );
    *lock(&job.last) = Some(info.clone());
    job.clips.finished(&job.camera, &job.id);
    job.clips.enforce(Some(&job.id));
    Ok(info)
}
