//! JPEG decoding one frame ahead, on its own thread: the decode of frame N
//! overlaps the H.264 encode of frame N-1. In one thread a frame costs the
//! sum of the two, which a Pi's slow cores cannot pay 30 times a second at
//! 720p; overlapped, the slower of the two sets the pace.
//!
//! Frames come back in the order they went in. If the thread cannot be
//! started, decoding happens inline, as before.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::decode::{Decoder, Yuv420};
use crate::frame::{Frame, Payload};

/// Frames handed over and not yet taken back: one decoding while the
/// previous one is encoded.
const DEPTH: usize = 2;

/// A frame for the decoder and the buffer to decode it into.
type Work = (Arc<Frame>, Yuv420);

/// A decoded frame (or why it could not be decoded).
pub struct Decoded {
    pub frame: Arc<Frame>,
    pub pic: Yuv420,
    pub result: Result<(), String>,
}

pub struct DecodeAhead {
    worker: Option<(SyncSender<Work>, JoinHandle<()>)>,
    done: Receiver<Decoded>,
    /// Decoding in the caller's thread when no worker could be started.
    inline: Option<Decoder>,
    spare: Vec<Yuv420>,
    in_flight: usize,
}

impl DecodeAhead {
    pub fn new(id: &str) -> DecodeAhead {
        let (work_tx, work_rx) = sync_channel::<Work>(DEPTH);
        let (done_tx, done) = sync_channel(DEPTH);
        let spawned = std::thread::Builder::new()
            .name("decoder".into())
            .spawn(move || {
                let mut dec = Decoder::new();
                for (frame, mut pic) in work_rx {
                    let result = decode_frame(&mut dec, &frame, &mut pic);
                    if done_tx.send(Decoded { frame, pic, result }).is_err() {
                        break;
                    }
                }
            });
        let (worker, inline) = match spawned {
            Ok(handle) => (Some((work_tx, handle)), None),
            Err(e) => {
                log::warn!("recording {id}: no decoder thread ({e}); decoding inline");
                (None, Some(Decoder::new()))
            }
        };
        DecodeAhead {
            worker,
            done,
            inline,
            spare: Vec::new(),
            in_flight: 0,
        }
    }

    /// Hands `frame` over; returns the oldest decoded frame once enough are
    /// in flight to keep the decoder busy while the caller encodes it.
    pub fn push(&mut self, frame: Arc<Frame>) -> Option<Decoded> {
        let mut pic = self.spare.pop().unwrap_or_else(|| Yuv420::new(2, 2));
        if let Some(dec) = self.inline.as_mut() {
            let result = decode_frame(dec, &frame, &mut pic);
            return Some(Decoded { frame, pic, result });
        }
        let sent = match &self.worker {
            Some((tx, _)) => tx.send((frame, pic)).map_err(|e| e.0),
            None => Err((frame, pic)),
        };
        if let Err((frame, pic)) = sent {
            // Only if the thread died: the frame is counted as skipped.
            return Some(Decoded {
                frame,
                pic,
                result: Err("the decoder thread stopped".into()),
            });
        }
        self.in_flight += 1;
        if self.in_flight >= DEPTH {
            self.next()
        } else {
            None
        }
    }

    /// The oldest frame still in flight, waiting for its decode; `None` when
    /// nothing is in flight.
    pub fn next(&mut self) -> Option<Decoded> {
        if self.in_flight == 0 {
            return None;
        }
        self.in_flight -= 1;
        self.done.recv().ok()
    }

    /// Gives a picture buffer back for the next frames.
    pub fn recycle(&mut self, pic: Yuv420) {
        if self.spare.len() < DEPTH {
            self.spare.push(pic);
        }
    }
}

impl Drop for DecodeAhead {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.worker.take() {
            // Both channels hold DEPTH, as many as can be in flight: the
            // worker never blocks on a send, so it ends once `tx` is gone.
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// Transcoding starts from pixels: only a JPEG frame is decoded here.
fn decode_frame(dec: &mut Decoder, frame: &Frame, pic: &mut Yuv420) -> Result<(), String> {
    match &frame.payload {
        Payload::Jpeg(jpeg) => decode(dec, jpeg, pic),
        // Copied by the worker, never handed to this decoder.
        Payload::Video(_) => Err("a video frame is copied, not transcoded".into()),
    }
}

/// A decoder panic (a JPEG that trips a bug) costs that frame, not the clip.
fn decode(dec: &mut Decoder, jpeg: &[u8], pic: &mut Yuv420) -> Result<(), String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| dec.decode(jpeg, pic))) {
        Ok(r) => r,
        Err(_) => {
            *dec = Decoder::new();
            Err("the JPEG decoder panicked on this frame".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn frame(seq: u64, jpeg: Vec<u8>) -> Arc<Frame> {
        let t = Duration::from_millis(seq * 33);
        Arc::new(Frame::jpeg(
            seq,
            jpeg,
            t,
            SystemTime::UNIX_EPOCH + t,
            (64, 48),
            false,
        ))
    }

    #[test]
    fn frames_come_back_in_order_decoded_or_with_the_reason() {
        let mut a = DecodeAhead::new("t");
        let mut out = Vec::new();
        for seq in 0..7u64 {
            // Every third frame is a truncated JPEG.
            let mut jpeg = crate::recorder::tests::render(64, 48, seq as usize);
            if seq % 3 == 2 {
                jpeg.truncate(jpeg.len() / 3);
            }
            if let Some(d) = a.push(frame(seq, jpeg)) {
                out.push(d);
            }
        }
        // One frame stays with the decoder until asked for.
        assert_eq!(out.len(), 6);
        while let Some(d) = a.next() {
            out.push(d);
        }
        assert!(a.next().is_none());
        let seqs: Vec<u64> = out.iter().map(|d| d.frame.seq).collect();
        assert_eq!(seqs, (0..7).collect::<Vec<_>>());
        for d in &out {
            if d.frame.seq % 3 == 2 {
                assert!(d.result.is_err(), "frame {} decoded", d.frame.seq);
            } else {
                assert_eq!(d.result, Ok(()), "frame {}", d.frame.seq);
                assert_eq!((d.pic.width, d.pic.height), (64, 48));
                // Not a blank buffer: the picture has content.
                assert!(d.pic.data.iter().any(|&b| b != d.pic.data[0]));
            }
        }
        for d in out {
            a.recycle(d.pic);
        }
        assert!(a.spare.len() <= DEPTH);
    }

    #[test]
    fn dropping_it_with_frames_in_flight_ends_the_thread() {
        let mut a = DecodeAhead::new("t");
        assert!(
            a.push(frame(0, crate::recorder::tests::render(64, 48, 0)))
                .is_none()
        );
        // Drop joins the decoder thread, so it must not wait forever.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(a);
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "drop hung"
        );
    }
}
