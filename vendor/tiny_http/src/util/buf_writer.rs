//! video-recorder patch: the write buffer in front of a connection's socket.
//!
//! Upstream used std's `BufWriter`, which passes a vectored write on to the
//! socket only when the socket's type says it can take one
//! (`Write::is_write_vectored`, unstable, so no type outside std can say
//! so). Around tiny_http's own socket types it therefore wrote the first
//! slice only, or copied the slices into its buffer: an MJPEG part written
//! as one `write_vectored` of head, JPEG and tail went out as three system
//! calls. This buffer keeps small `write`s, as std's does (a response head
//! is many small writes), and hands a `write_vectored` to the socket as it
//! came, in one call, after what is buffered: a caller writing vectored
//! wants the bytes on the wire now, and large slices are never copied.

use std::io::{self, IoSlice, Write};

pub(crate) struct BufWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    capacity: usize,
    // Set while the inner writer runs: if it panics, the buffer is not
    // written again on drop (as std's `BufWriter`).
    panicked: bool,
}

impl<W: Write> BufWriter<W> {
    pub(crate) fn with_capacity(capacity: usize, inner: W) -> BufWriter<W> {
        BufWriter {
            inner,
            buf: Vec::with_capacity(capacity),
            capacity,
            panicked: false,
        }
    }

    /// Writes out everything buffered (what was written is removed even
    /// when a later write fails).
    fn flush_buf(&mut self) -> io::Result<()> {
        let mut written = 0;
        let mut result = Ok(());
        while written < self.buf.len() {
            self.panicked = true;
            let r = self.inner.write(&self.buf[written..]);
            self.panicked = false;
            match r {
                Ok(0) => {
                    result = Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write the buffered data",
                    ));
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buf.drain(..written);
        result
    }
}

impl<W: Write> Write for BufWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.capacity {
            self.flush_buf()?;
        }
        if data.len() >= self.capacity {
            self.panicked = true;
            let r = self.inner.write(data);
            self.panicked = false;
            r
        } else {
            self.buf.extend_from_slice(data);
            Ok(data.len())
        }
    }

    /// What is buffered goes first, then `bufs` in one vectored write of
    /// the inner writer (which may take only part of them, as any write).
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_buf()?;
        self.panicked = true;
        let r = self.inner.write_vectored(bufs);
        self.panicked = false;
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf()?;
        self.inner.flush()
    }
}

impl<W: Write> Drop for BufWriter<W> {
    fn drop(&mut self) {
        if !self.panicked {
            let _ = self.flush_buf();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BufWriter;
    use std::io::{self, IoSlice, Write};
    use std::sync::{Arc, Mutex};

    /// What reached the "socket": each call, with the address of every
    /// slice it was given and the bytes it took.
    #[derive(Default)]
    struct Log {
        calls: Vec<(&'static str, Vec<usize>, Vec<u8>)>,
    }

    struct Socket {
        log: Arc<Mutex<Log>>,
        /// At most this many bytes per call, like a socket with a full buffer.
        max: usize,
    }

    impl Write for Socket {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            let n = b.len().min(self.max);
            let mut log = self.log.lock().unwrap();
            log.calls
                .push(("write", vec![b.as_ptr() as usize], b[..n].to_vec()));
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut took = Vec::new();
            for b in bufs {
                let n = b.len().min(self.max - took.len());
                took.extend_from_slice(&b[..n]);
            }
            let ptrs = bufs.iter().map(|b| b.as_ptr() as usize).collect();
            let n = took.len();
            self.log.lock().unwrap().calls.push(("writev", ptrs, took));
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn socket(max: usize) -> (Socket, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        (
            Socket {
                log: log.clone(),
                max,
            },
            log,
        )
    }

    #[test]
    fn a_vectored_write_reaches_the_socket_in_one_call_uncopied() {
        let (sock, log) = socket(usize::MAX);
        let mut w = BufWriter::with_capacity(1024, sock);
        // Small writes are buffered, as with std's BufWriter.
        w.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        w.write_all(b"X: 1\r\n\r\n").unwrap();
        assert!(log.lock().unwrap().calls.is_empty());
        let jpeg = vec![7u8; 60 * 1024];
        let (head, tail) = (b"part head\r\n\r\n", b"\r\n--tail\r\n");
        let bufs = [IoSlice::new(head), IoSlice::new(&jpeg), IoSlice::new(tail)];
        let n = w.write_vectored(&bufs).unwrap();
        assert_eq!(n, head.len() + jpeg.len() + tail.len());
        let log = log.lock().unwrap();
        assert_eq!(log.calls.len(), 2, "the buffered head, then one writev");
        assert_eq!(log.calls[0].0, "write");
        assert_eq!(log.calls[0].2, b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n");
        let (kind, ptrs, bytes) = &log.calls[1];
        assert_eq!(*kind, "writev");
        // The caller's own slices, not a copy.
        assert_eq!(
            ptrs,
            &vec![
                head.as_ptr() as usize,
                jpeg.as_ptr() as usize,
                tail.as_ptr() as usize
            ]
        );
        assert_eq!(bytes.len(), n);
    }

    #[test]
    fn a_short_vectored_write_is_reported_and_nothing_is_kept() {
        let (sock, log) = socket(100);
        let mut w = BufWriter::with_capacity(1024, sock);
        let big = vec![1u8; 5000];
        let bufs = [IoSlice::new(b"abc"), IoSlice::new(&big)];
        assert_eq!(w.write_vectored(&bufs).unwrap(), 100);
        // Even a small vectored write goes out at once, unbuffered.
        assert_eq!(w.write_vectored(&[IoSlice::new(b"xyz")]).unwrap(), 3);
        let calls = log.lock().unwrap().calls.len();
        assert_eq!(calls, 2);
        drop(w);
        assert_eq!(log.lock().unwrap().calls.len(), 2, "nothing was buffered");
    }

    #[test]
    fn buffered_bytes_are_written_on_drop() {
        let (sock, log) = socket(4);
        let mut w = BufWriter::with_capacity(1024, sock);
        w.write_all(b"0123456789").unwrap();
        drop(w);
        let log = log.lock().unwrap();
        let all: Vec<u8> = log.calls.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(all, b"0123456789");
    }
}
