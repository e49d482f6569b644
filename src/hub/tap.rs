//! A recorder's queue from the hub: bounded in frames and in bytes, never
//! blocking the capture thread. A stream copy gets a deep one (a minute of
//! frames, bounded by bytes), so a recorder held up for a few seconds (a
//! busy CPU, a slow fsync) loses nothing; what a full queue refuses is
//! counted, never hidden.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use crate::frame::Frame;

pub(super) struct Tap {
    tx: SyncSender<Arc<Frame>>,
    dropped: Arc<AtomicU64>,
    until: Arc<AtomicU64>,
    /// Payload bytes queued and not yet taken.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// What happened to a frame offered to a tap.
pub(super) enum Offer {
    Taken,
    /// Full (frames or bytes): the frame is counted as dropped if the clip
    /// would have held it.
    Refused,
    /// The recorder is gone: forget the tap.
    Gone,
}

impl Tap {
    pub(super) fn new(frames: usize, max_bytes: usize) -> (Tap, TapReceiver) {
        let (tx, rx) = sync_channel(frames.max(1));
        let (dropped, until) = (Arc::default(), Arc::new(AtomicU64::new(u64::MAX)));
        let queued = Arc::new(AtomicUsize::new(0));
        let tap = Tap {
            tx,
            dropped: Arc::clone(&dropped),
            until: Arc::clone(&until),
            queued: Arc::clone(&queued),
            max_bytes,
        };
        let rx = TapReceiver {
            rx,
            handle: TapHandle { dropped, until },
            queued,
        };
        (tap, rx)
    }

    pub(super) fn offer(&self, frame: &Arc<Frame>) -> Offer {
        let len = frame.payload.len();
        let held = self.queued.load(Ordering::Relaxed);
        // One frame always fits an empty queue, whatever its size.
        let outcome = if held > 0 && held + len > self.max_bytes {
            Offer::Refused
        } else {
            // Counted before the recorder can take it (and subtract it).
            self.queued.fetch_add(len, Ordering::Relaxed);
            match self.tx.try_send(frame.clone()) {
                Ok(()) => Offer::Taken,
                Err(e) => {
                    self.queued.fetch_sub(len, Ordering::Relaxed);
                    match e {
                        TrySendError::Full(_) => Offer::Refused,
                        TrySendError::Disconnected(_) => Offer::Gone,
                    }
                }
            }
        };
        if matches!(outcome, Offer::Refused)
            && frame.capture.as_nanos() < u128::from(self.until.load(Ordering::Relaxed))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }
}

/// A recorder's view of the frame flow. Frames it cannot take in time are
/// counted in `dropped`, never queued without bound.
pub struct TapReceiver {
    rx: Receiver<Arc<Frame>>,
    handle: TapHandle,
    queued: Arc<AtomicUsize>,
}

/// What the recording's owner keeps of its tap once the receiver went to
/// the recorder thread: where the clip ends, and what was dropped.
#[derive(Clone)]
pub struct TapHandle {
    dropped: Arc<AtomicU64>,
    /// Capture time (ns) the clip ends at: a frame from then on that finds
    /// the queue full is not counted, as the clip would not have held it.
    until: Arc<AtomicU64>,
}

impl TapHandle {
    /// The clip ends at capture time `end` (a stop, or the max duration).
    pub fn end_at(&self, end: Duration) {
        self.until.store(
            u64::try_from(end.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Frames the recorder could not take in time.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl TapReceiver {
    pub fn handle(&self) -> TapHandle {
        self.handle.clone()
    }

    /// Frames the recorder could not take in time.
    pub fn dropped(&self) -> u64 {
        self.handle.dropped()
    }

    fn taken(&self, f: Arc<Frame>) -> Arc<Frame> {
        self.queued.fetch_sub(f.payload.len(), Ordering::Relaxed);
        f
    }

    /// The next frame if one is queued.
    pub fn try_recv(&self) -> Option<Arc<Frame>> {
        self.rx.try_recv().ok().map(|f| self.taken(f))
    }

    /// The next frame, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Arc<Frame>> {
        self.rx.recv_timeout(timeout).ok().map(|f| self.taken(f))
    }

    /// Every frame queued now.
    #[cfg(test)]
    pub fn try_iter(&self) -> impl Iterator<Item = Arc<Frame>> + '_ {
        std::iter::from_fn(|| self.try_recv())
    }

    /// Payload bytes queued.
    #[cfg(test)]
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}
