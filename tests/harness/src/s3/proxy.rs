//! A TCP proxy that damages the body of the first PUTs on their way to
//! the S3 server (the upload's checksums must catch it) and, asked to,
//! checks requests as AWS's front door does (`gate.rs`), loses the answers
//! to the first PUTs (the server stored them; the client never hears),
//! shows each request head to the test before anything of it is passed on,
//! and goes down (every connection cut, new ones closed) and up again.

use std::sync::Mutex;

use super::gate::{Head, check_md5, check_signature};
use super::*;

/// Called with each request's head before any of it reaches the server.
pub type Look = Arc<dyn Fn(&Head) + Send + Sync>;

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
    refused: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
    /// The clients' connections, to cut when it goes down.
    open: Arc<Mutex<Vec<TcpStream>>>,
}

/// What the proxy does besides passing requests on.
#[derive(Clone, Default)]
pub struct Checks {
    /// PUT bodies to damage (one byte each, `CORRUPT_AT`), the first ones.
    pub corrupt_puts: usize,
    /// Refuse a body whose `Content-MD5` it does not match (after any
    /// damage): `400 BadDigest`, as AWS does.
    pub content_md5: bool,
    /// When not empty: refuse a request not signed by one of these
    /// (`403 InvalidAccessKeyId` / `SignatureDoesNotMatch`) before reading
    /// its body, and answer `Expect: 100-continue` only after the check.
    pub keys: Vec<Key>,
    /// The first PUTs whose answers are lost: each is passed on whole (the
    /// server stores it and answers), then the client's connection is
    /// closed without the answer, as when a link fails at that moment.
    pub drop_put_answers: usize,
    /// Shown every request head first (before it is passed on).
    pub look: Option<Look>,
}

struct Counts {
    corrupted: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl CorruptingProxy {
    pub fn start(upstream: SocketAddr, corrupt_puts: usize) -> CorruptingProxy {
        CorruptingProxy::with(
            upstream,
            Checks {
                corrupt_puts,
                ..Checks::default()
            },
        )
    }

    pub fn with(upstream: SocketAddr, checks: Checks) -> CorruptingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let corrupted = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (c, r, d, stop) = (
            corrupted.clone(),
            refused.clone(),
            dropped.clone(),
            done.clone(),
        );
        let (is_down, conns) = (down.clone(), open.clone());
        let checks = Arc::new(checks);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if is_down.load(Ordering::SeqCst) {
                    let _ = conn.shutdown(Shutdown::Both);
                    continue;
                }
                if let Ok(c) = conn.try_clone() {
                    conns.lock().unwrap().push(c);
                }
                let counts = Counts {
                    corrupted: c.clone(),
                    refused: r.clone(),
                    dropped: d.clone(),
                };
                let checks = checks.clone();
                std::thread::spawn(move || {
                    let _ = proxy_connection(conn, upstream, &checks, &counts);
                });
            }
        });
        CorruptingProxy {
            addr,
            corrupted,
            refused,
            dropped,
            done,
            down,
            open,
        }
    }

    /// A proxy that only passes requests on, showing each head to `look`.
    pub fn looking(upstream: SocketAddr, look: Look) -> CorruptingProxy {
        CorruptingProxy::with(
            upstream,
            Checks {
                look: Some(look),
                ..Checks::default()
            },
        )
    }

    /// Down: every open connection is cut and new ones are closed at once
    /// (the server unreachable); up: passing requests on again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for c in self.open.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// How many answers it lost on purpose (`drop_put_answers`), so far.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    /// How many requests it answered itself (refused), so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
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
    checks: &Checks,
    counts: &Counts,
) -> std::io::Result<()> {
    let up = TcpStream::connect(upstream)?;
    // Answers: byte for byte, and the client's end closes with upstream's.
    let (mut up_r, mut client_w) = (up.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Write);
    });
    let mut answers = client.try_clone()?;
    let mut reader = BufReader::new(client);
    let mut up_w = up;
    let result = forward_requests(&mut reader, &mut up_w, &mut answers, checks, counts);
    let _ = up_w.shutdown(Shutdown::Write);
    result
}

/// Damages one byte of a PUT's body (at `CORRUPT_AT`, or its last byte)
/// while fewer than `limit` have been: `chunk` holds bytes `at..` of it.
fn damage(method: &str, length: u64, chunk: &mut [u8], at: u64, limit: usize, count: &AtomicUsize) {
    let Some(t) = (method == "PUT" && length > 0).then(|| (CORRUPT_AT as u64).min(length - 1))
    else {
        return;
    };
    if (at..at + chunk.len() as u64).contains(&t)
        && count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < limit).then_some(c + 1)
            })
            .is_ok()
    {
        chunk[(t - at) as usize] ^= 0xff;
    }
}

fn forward_requests(
    reader: &mut BufReader<TcpStream>,
    up: &mut TcpStream,
    client: &mut TcpStream,
    checks: &Checks,
    counts: &Counts,
) -> std::io::Result<()> {
    let (limit, count) = (checks.corrupt_puts, &*counts.corrupted);
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
        if let Some(look) = &checks.look {
            look(&Head::parse(&head));
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
        if !checks.keys.is_empty() || checks.content_md5 || checks.drop_put_answers > 0 {
            if chunked {
                return Err(std::io::Error::other(
                    "a chunked body at the checking proxy",
                ));
            }
            if !checked(reader, up, client, &head, length, checks, counts)? {
                // Refused: the connection closes, as AWS's does.
                return Ok(());
            }
            continue;
        }
        up.write_all(&head)?;
        if chunked {
            // Unchanged, and no more heads to look at: the rest as it comes.
            std::io::copy(reader, up)?;
            return Ok(());
        }
        let mut sent: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while sent < length {
            let want = buf.len().min((length - sent) as usize);
            let n = reader.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            damage(&method, length, &mut buf[..n], sent, limit, count);
            up.write_all(&buf[..n])?;
            sent += n as u64;
        }
    }
}

/// One request through the checks: `Ok(false)` when refused (answered here).
fn checked(
    reader: &mut BufReader<TcpStream>,
    up: &mut TcpStream,
    client: &mut TcpStream,
    head: &[u8],
    length: u64,
    checks: &Checks,
    counts: &Counts,
) -> std::io::Result<bool> {
    let parsed = Head::parse(head);
    let refuse = |client: &mut TcpStream, answer: Vec<u8>| -> std::io::Result<bool> {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        client.write_all(&answer)?;
        // Unread body bytes make the close a reset, as a server's does.
        let _ = client.shutdown(Shutdown::Both);
        Ok(false)
    };
    if !checks.keys.is_empty()
        && let Err(answer) = check_signature(&parsed, &checks.keys)
    {
        return refuse(client, answer);
    }
    // Continue now; upstream never sees the Expect.
    let expect = parsed
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expect && length > 0 {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let kept: Vec<u8> = String::from_utf8_lossy(head)
        .split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("expect:"))
        .collect::<String>()
        .into_bytes();
    if length > 64 << 20 {
        return Err(std::io::Error::other("a body over 64 MiB"));
    }
    let mut body = vec![0u8; length as usize];
    reader.read_exact(&mut body)?;
    damage(
        &parsed.method,
        length,
        &mut body,
        0,
        checks.corrupt_puts,
        &counts.corrupted,
    );
    if checks.content_md5
        && let Err(answer) = check_md5(&parsed, &body)
    {
        return refuse(client, answer);
    }
    if parsed.method == "PUT"
        && counts
            .dropped
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                (c < checks.drop_put_answers).then_some(c + 1)
            })
            .is_ok()
    {
        lose_the_answer(up.peer_addr()?, &kept, &body)?;
        // The client hears nothing: its connection just ends.
        let _ = client.shutdown(Shutdown::Both);
        return Ok(false);
    }
    up.write_all(&kept)?;
    up.write_all(&body)?;
    Ok(true)
}

/// Sends the request on a connection of its own and reads the server's
/// whole answer, so the server has acted on it before the client's
/// connection is cut.
fn lose_the_answer(upstream: SocketAddr, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head: String = String::from_utf8_lossy(head)
        .split_inclusive('\n')
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && l.trim() != "")
        .collect();
    up.write_all(head.as_bytes())?;
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    if !answer.starts_with(b"HTTP/1.1 200") && !answer.starts_with(b"HTTP/1.0 200") {
        return Err(std::io::Error::other(format!(
            "the server refused the PUT whose answer was to be lost: {}",
            String::from_utf8_lossy(&answer)
        )));
    }
    Ok(())
}
