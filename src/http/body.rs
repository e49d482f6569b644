//! Request bodies: bounded in size and in time. Each read already waits at
//! most `idle_timeout`; the deadline also stops a client that trickles a
//! byte just often enough to keep a read from timing out.

use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use tiny_http::Request;

use super::errors::{ApiError, Kind};

/// Reads at most `max` bytes of body, within twice `idle_timeout` (the
/// same allowance tiny_http gives a request's head); else the error to answer.
pub fn read(req: &mut Request, max: usize, idle_timeout: Duration) -> Result<Vec<u8>, ApiError> {
    let within = idle_timeout * 2;
    if req.body_length().is_some_and(|n| n > max) {
        return Err(ApiError::new(Kind::TooLarge, "body too large"));
    }
    let mut body = Vec::new();
    let mut reader = Deadline {
        inner: req.as_reader().take(max as u64 + 1),
        until: Instant::now() + within,
    };
    if let Err(e) = reader.read_to_end(&mut body) {
        return Err(match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                ApiError::new(Kind::TooSlow, "request body too slow")
            }
            _ => ApiError::new(Kind::BadInput, "cannot read body"),
        });
    }
    if body.len() > max {
        return Err(ApiError::new(Kind::TooLarge, "body too large"));
    }
    Ok(body)
}

struct Deadline<R> {
    inner: R,
    until: Instant,
}

impl<R: Read> Read for Deadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if Instant::now() > self.until {
            return Err(std::io::Error::new(ErrorKind::TimedOut, "body too slow"));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per call, after a pause.
    struct Trickle(Duration);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            std::thread::sleep(self.0);
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn a_trickle_is_stopped_at_the_deadline() {
        let t0 = Instant::now();
        let mut r = Deadline {
            inner: Trickle(Duration::from_millis(20)),
            until: t0 + Duration::from_millis(200),
        };
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert!((5..=12).contains(&out.len()), "{} bytes", out.len());
    }
}
