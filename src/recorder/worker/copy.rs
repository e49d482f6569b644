//! Stream copy: a network camera's access units go into the clip as they
//! came (no decode, no encode), from a keyframe on; new parameters (the
//! camera came back at another size) finish the clip and go on in the next.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::{Job, Pipeline};

/// The shortest clip a split may end, when the clip itself began at one.
pub(super) const MIN_SPLIT_SPAN: std::time::Duration = std::time::Duration::from_secs(10);
use crate::clock::ticks;
use crate::error::Result;
use crate::frame::{Codec, Frame, Video, VideoParams};
use crate::recorder::journal::ClipWriter;
use crate::recorder::mux::{TIMESCALE, TrackInfo};
use crate::sync::lock;

impl Pipeline {
    /// Stream copy: no decode, no encode. A clip starts on a keyframe; new
    /// parameters (the camera rebooted at another size) split the recording.
    pub(super) fn copy(&mut self, f: &Arc<Frame>, v: &Video, job: &mut Job) -> Result<()> {
        if self.last_seq.is_some_and(|s| f.seq != s + 1) {
            self.broken_chain = true;
        }
        self.last_seq = Some(f.seq);
        if self.last_accepted.is_some_and(|l| f.capture <= l) {
            job.control.skipped.fetch_add(1, Ordering::Relaxed);
            self.broken_chain = true;
            return Ok(());
        }
        if self.broken_chain && self.copying.is_some() {
            if !v.key {
                job.control.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            self.broken_chain = false;
        }
        match &self.copying {
            // Before the first keyframe: not part of the clip yet.
            None if !v.key => return Ok(()),
            None => {
                job.writer.info = Some(track_info(&v.params, f.wall));
                self.copying = Some(v.params.clone());
                self.first_key = Some(f.clone());
            }
            Some(p) if !Arc::ptr_eq(p, &v.params) && **p != *v.params => {
                // New parameters take effect at a keyframe; until it comes,
                // nothing decodable with the clip's parameters is left.
                // A clip that began at a split ends at the next only once
                // it is `MIN_SPLIT_SPAN` long: a camera whose parameters
                // change with every frame is broken, and gets one clip a
                // span with the frames of other parameters left out, not
                // one clip per frame.
                let age = self.base.map(|(b, _)| f.capture.saturating_sub(b));
                let settled =
                    job.continued_from.is_none() || age.is_none_or(|a| a >= MIN_SPLIT_SPAN);
                if v.key && settled {
                    self.split = Some(f.clone());
                } else {
                    if !settled && !self.flapping {
                        self.flapping = true;
                        log::warn!(
                            "recording {}: camera {} changed its stream parameters again \
                             within {} s (a broken camera?): frames with other parameters \
                             are left out of this clip until it is {} s long",
                            job.id,
                            job.camera,
                            MIN_SPLIT_SPAN.as_secs(),
                            MIN_SPLIT_SPAN.as_secs()
                        );
                    }
                    job.control.skipped.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
            Some(_) => {}
        }
        self.last_accepted = Some(f.capture);
        let (base, _) = *self.base.get_or_insert((f.capture, f.wall));
        let pts = ticks(f.capture - base);
        if self.last_pts.is_some_and(|l| pts <= l) {
            job.control.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        job.writer.write_sample(&v.data, pts, v.key)?;
        self.last_pts = Some(pts);
        job.control.counted(base);
        Ok(())
    }
}

/// How a copied stream is described: the camera's own sample entry
/// (`avc1`/`avcC` or `hvc1`/`hvcC`), its SPS and PPS kept for the journal.
fn track_info(params: &VideoParams, wall: SystemTime) -> TrackInfo {
    let set = |i: usize| params.sets.get(i).cloned().unwrap_or_default();
    let (sps, pps) = match params.codec {
        Codec::H264 => (set(0), set(1)),
        Codec::H265 => (set(1), set(2)),
    };
    TrackInfo {
        width: params.width.min(u32::from(u16::MAX)) as u16,
        height: params.height.min(u32::from(u16::MAX)) as u16,
        sps,
        pps,
        entry: Some(params.sample_entry.clone()),
        timescale: TIMESCALE,
        created_unix: wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Finishes the clip before keyframe `k` (new parameters) and starts the
/// next clip of the same recording with it.
pub(super) fn split(job: &mut Job, p: &mut Pipeline, k: &Arc<Frame>) -> Result<()> {
    let Some((first_capture, _)) = p.base else {
        return Ok(());
    };
    let next = ClipWriter::create(job.clips.allocate(&job.camera, k.wall)?)?;
    let next_id = next.paths.id.to_string();
    let writer = std::mem::replace(&mut job.writer, next);
    let id = std::mem::replace(&mut job.id, next_id.clone());
    job.continued_from = Some(id.clone());
    *lock(&job.control.clip) = next_id.clone();
    job.control.durable_ticks.store(0, Ordering::Relaxed);
    let old = std::mem::replace(p, Pipeline::new(&next_id));
    let end = ticks(k.capture.saturating_sub(first_capture));
    let mut writer = writer;
    writer.thumbnail = old.thumbnail();
    let (size, table) = writer.finish(end)?;
    log::info!(
        "recording {id}: the camera changed its stream; clip saved ({} frames, {size} bytes), \
         recording goes on in {next_id}",
        table.samples.len()
    );
    job.clips.finished(&job.camera, &id);
    job.clips.enforce(Some(&next_id));
    p.process(k, job)
}

#[cfg(test)]
mod tests;
