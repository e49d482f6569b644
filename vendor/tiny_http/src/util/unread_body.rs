//! video-recorder patch: what happens to a body the handler did not read.
//!
//! The next request on a keep-alive connection starts where this body ends,
//! so an unread body must be skipped, but skipping it for as long as the
//! client keeps sending let one request declaring `Content-Length: 10^12`
//! and trickling it hold its thread for good. So a body is skipped up to
//! `DRAIN_MAX` bytes within `DRAIN_TIME`; beyond that, and after any unread
//! chunked body, the connection is marked `unusable` and closed instead
//! (the client gets its answer first).

use std::io::{Read, Result as IoResult};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most bytes of an unread body skipped to keep the connection.
pub const DRAIN_MAX: usize = 64 * 1024;
/// Longest time spent skipping them.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Shared by a connection and its requests' bodies.
pub type Unusable = Arc<AtomicBool>;

/// Skips at most `left` bytes of `reader` within the limits; true when all
/// of them were skipped (the connection can go on).
pub fn drain<R: Read>(reader: &mut R, mut left: usize) -> bool {
    if left > DRAIN_MAX {
        return false;
    }
    let until = Instant::now() + DRAIN_TIME;
    let mut buf = [0u8; 4096];
    while left > 0 {
        if Instant::now() > until {
            return false;
        }
        match reader.read(&mut buf[..left.min(4096)]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => left -= n,
        }
    }
    true
}

/// A chunked body: if it was not read to its end, the connection is closed
/// (where its next request would start is not known without decoding the
/// rest, which the client could make as long as it likes).
pub struct Guarded<R: Read> {
    inner: R,
    finished: bool,
    unusable: Unusable,
}

impl<R: Read> Guarded<R> {
    pub fn new(inner: R, unusable: Unusable) -> Guarded<R> {
        Guarded {
            inner,
            finished: false,
            unusable,
        }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finished = true;
        }
        Ok(n)
    }
}

impl<R: Read> Drop for Guarded<R> {
    fn drop(&mut self) {
        if !self.finished {
            // Before `inner` (and the connection's reader) is released.
            self.unusable.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_remainders_are_skipped_large_ones_are_not() {
        let data = vec![b'x'; DRAIN_MAX + 10];
        assert!(drain(&mut &data[..], 100));
        assert!(drain(&mut &data[..], DRAIN_MAX));
        assert!(!drain(&mut &data[..], DRAIN_MAX + 1));
        // The client hung up before the end.
        assert!(!drain(&mut &data[..10], 20));
    }

    #[test]
    fn an_unfinished_chunked_body_makes_the_connection_unusable() {
        let flag = Unusable::default();
        drop(Guarded::new(&b"abc"[..], flag.clone()));
        assert!(flag.load(Ordering::Acquire));
        let flag = Unusable::default();
        let mut g = Guarded::new(&b"abc"[..], flag.clone());
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        drop(g);
        assert!(!flag.load(Ordering::Acquire));
    }
}
