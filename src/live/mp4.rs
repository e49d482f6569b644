//! Live fMP4 (`/cameras/<id>/live.mp4`): a network camera's own H.264/H.265
//! to browsers through Media Source Extensions, never transcoded. One init
//! segment, then one `moof`+`mdat` per frame. A frame goes out when the
//! next one arrives (its duration is then the camera's, not a guess), and
//! its fragment head is built once and kept in the frame for every viewer.
//! Each response's timeline starts at 0 (the shared head goes out around
//! the viewer's own decode time): players such as VLC stop on a first
//! `tfdt` that is the hub's running time, hours in.
//! A viewer that falls behind skips to the latest keyframe; new stream
//! parameters (the camera came back at another size) get a new init
//! segment in the same response, which MSE accepts before a keyframe.
//! (Ending the response would not close the connection: tiny_http keeps it
//! open for a next request until the idle timeout.) While the camera is
//! away an empty `free` box goes out every second: players skip it, and
//! writing it is how a viewer that left is noticed.

use std::io::{self, IoSlice, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{WAIT, Wire, write_all_vectored};
use crate::clock::{TIMESCALE, ticks};
use crate::fmp4;
use crate::frame::{Frame, VideoParams};
use crate::hub::Hub;

/// The longest a frame is said to last (a gap while the camera was away).
const MAX_DURATION: u32 = TIMESCALE;

/// The longest the stream goes without a byte while the camera is away:
/// then a keepalive, so that a viewer who hung up is noticed (and its seat
/// given back) during the outage, not when the camera returns. (MJPEG
/// viewers get NO SIGNAL pictures twice a second instead.)
const KEEPALIVE: Duration = Duration::from_secs(1);

/// An empty top-level `free` box (ISO/IEC 14496-12 8.1.2): the keepalive.
const FREE: [u8; 8] = [0, 0, 0, 8, b'f', b'r', b'e', b'e'];

/// The status line and headers of the stream (all a HEAD request gets).
pub fn response_head(extra: &[(&str, &str)]) -> String {
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: video/mp4\r\n\
         Cache-Control: no-store, no-cache, must-revalidate, max-age=0\r\n\
         Connection: close\r\n",
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// The fragment head of `frame` lasting `duration` ticks. Decode times are
/// the capture clock's, shared by every viewer; `send` rebases them to the
/// viewer's first frame.
fn head(frame: &Frame, duration: u32, size: usize) -> Vec<u8> {
    let key = frame.payload.is_key();
    fmp4::fragment_head(
        frame.seq as u32,
        ticks(frame.capture),
        duration.clamp(1, MAX_DURATION),
        u32::try_from(size).unwrap_or(u32::MAX - 8),
        key,
    )
}

/// Sends `frame` with its decode time counted from `origin` (ticks of the
/// viewer's first frame).
fn send<W: Write + ?Sized>(
    out: &mut W,
    frame: &Frame,
    next: Option<&Frame>,
    fallback: u32,
    origin: u64,
) -> io::Result<()> {
    let Some(v) = frame.payload.video() else {
        return Ok(());
    };
    let built;
    let h: &[u8] = match next {
        // The usual case: the duration is known, so every viewer's bytes agree.
        Some(n) => frame.live_head.get_or_init(|| {
            let d = ticks(n.capture.saturating_sub(frame.capture));
            head(
                frame,
                u32::try_from(d).unwrap_or(MAX_DURATION),
                v.data.len(),
            )
        }),
        None => {
            built = head(frame, fallback, v.data.len());
            &built
        }
    };
    // The shared head around this viewer's decode time: nothing copied.
    let at = fmp4::DECODE_TIME_AT;
    let time = ticks(frame.capture).saturating_sub(origin).to_be_bytes();
    write_all_vectored(
        out,
        &mut [
            IoSlice::new(&h[..at]),
            IoSlice::new(&time),
            IoSlice::new(&h[at + 8..]),
            IoSlice::new(&v.data),
        ],
    )
}

/// Streams a video camera to one viewer until it goes away or the hub
/// closes. Returns the frames delivered.
pub fn stream<W: Write + ?Sized>(hub: &Hub, out: &mut W, wire: Wire) -> io::Result<u64> {
    if let Wire::Http(extra) = wire {
        out.write_all(response_head(extra).as_bytes())?;
        out.flush()?;
    }
    let fallback = (f64::from(TIMESCALE) / hub.status().nominal_fps.clamp(1.0, 120.0)) as u32;
    let mut params: Option<Arc<VideoParams>> = None;
    let mut pending: Option<Arc<Frame>> = None;
    // This response's time 0: its first frame's capture time.
    let mut origin = None;
    let mut after = None;
    let mut sent = 0;
    let mut wrote = Instant::now();
    loop {
        let Some((frame, skipped)) = hub.next_video(after, WAIT) else {
            if hub.is_closed() {
                return Ok(sent);
            }
            if wrote.elapsed() >= KEEPALIVE {
                out.write_all(&FREE)?;
                out.flush()?;
                wrote = Instant::now();
            }
            continue;
        };
        wrote = Instant::now();
        after = Some(frame.seq);
        let Some(v) = frame.payload.video() else {
            continue;
        };
        let origin = *origin.get_or_insert(ticks(frame.capture));
        let changed = match &params {
            None => true,
            Some(p) => !Arc::ptr_eq(p, &v.params) && **p != *v.params,
        };
        if changed {
            // What was before goes out first, with the duration it had.
            if let Some(prev) = pending.take() {
                send(out, &prev, None, fallback, origin)?;
                sent += 1;
            }
            let p = &v.params;
            let init = fmp4::init_segment(
                &p.sample_entry,
                p.width.min(65535) as u16,
                p.height.min(65535) as u16,
                TIMESCALE,
            );
            out.write_all(&init)?;
            params = Some(p.clone());
        }
        if let Some(prev) = pending.take() {
            send(out, &prev, (!skipped).then_some(&*frame), fallback, origin)?;
            sent += 1;
        }
        pending = Some(frame);
    }
}
