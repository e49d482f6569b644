//! A TCP proxy that damages the body of the first PUTs on their way to
//! the S3 server (the upload's checksums must catch it).

use super::*;

/// Where in a PUT's body the proxy damages a byte (the last byte of a
/// shorter body).
pub const CORRUPT_AT: usize = 100;

/// A TCP proxy to `upstream` on a free loopback port that flips one byte
/// (`CORRUPT_AT` into the body) of the first `n` PUT requests with a
/// `Content-Length` body, passing everything else through unchanged.
/// Requests are read head by head, so a connection may carry several; a
/// chunked body is passed on as it is, with the rest of its connection,
/// and not counted. Answers come back as they are.
pub struct CorruptingProxy {
    addr: SocketAddr,
    corrupted: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

impl CorruptingProxy {
    pub fn start(upstream: SocketAddr, corrupt_puts: usize) -> CorruptingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let corrupted = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (count, stop) = (corrupted.clone(), done.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = proxy_connection(conn, upstream, corrupt_puts, &count);
                });
            }
        });
        CorruptingProxy {
            addr,
            corrupted,
            done,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many PUT bodies it has damaged so far.
    pub fn corrupted(&self) -> usize {
        self.corrupted.load(Ordering::SeqCst)
    }
}

impl Drop for CorruptingProxy {
    /// No new connections (those open go on until they close).
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn proxy_connection(
    client: TcpStream,
    upstream: SocketAddr,
    limit: usize,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream)?;
    // Answers: byte for byte, and the client's end closes with upstream's.
    let (mut up_r, mut client_w) = (up.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut reader = BufReader::new(client);
    let mut up_w = up;
    let result = forward_requests(&mut reader, &mut up_w, limit, count);
    let _ = up_w.shutdown(Shutdown::Write);
    result
}

fn forward_requests(
    reader: &mut BufReader<TcpStream>,
    up: &mut TcpStream,
    limit: usize,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    loop {
        // The head, as sent.
        let mut head = Vec::new();
        loop {
            let start = head.len();
            if reader.read_until(b'\n', &mut head)? == 0 {
                // The client closed (between requests, or cut one short).
                up.write_all(&head)?;
                return Ok(());
            }
            let line = &head[start..];
            if line == b"\r\n" || line == b"\n" {
                // Blank lines before a request line are allowed: skip them.
                if start == 0 {
                    head.clear();
                    continue;
                }
                break;
            }
            if head.len() > 1 << 20 {
                return Err(std::io::Error::other("request head over 1 MiB"));
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.lines();
        let method = lines
            .next()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        let mut length: u64 = 0;
        let mut chunked = false;
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
        up.write_all(&head)?;
        if chunked {
            // Unchanged, and no more heads to look at: the rest as it comes.
            std::io::copy(reader, up)?;
            return Ok(());
        }
        let target = (method == "PUT" && length > 0).then(|| (CORRUPT_AT as u64).min(length - 1));
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while sent < length {
            let want = buf.len().min((length - sent) as usize);
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if let Some(t) = target
                && (sent..sent + n as u64).contains(&t)
                && count
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                        (c < limit).then_some(c + 1)
                    })
                    .is_ok()
            {
                buf[(t - sent) as usize] ^= 0xff;
            }
            up.write_all(&buf[..n])?;
            sent += n as u64;
        }
    }
}
