//! Stand-ins for S3 servers that misbehave: one that accepts connections
//! and never answers (a server hung, or minutes late), and one that denies
//! every request with a `<Message>` that quotes it back (head and all, as
//! some servers' error pages do), to show what of ours reaches the words.

use super::gate::{Head, error_answer};
use super::*;

pub enum Behaviour {
    /// Reads what comes and never answers.
    Silent,
    /// `403 AccessDenied`, its message the request's line and headers.
    DenyEchoing,
}

pub struct StubS3 {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

impl StubS3 {
    pub fn start(behaviour: Behaviour) -> StubS3 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub S3 server");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (count, stop) = (connections.clone(), done.clone());
        let silent = matches!(behaviour, Behaviour::Silent);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let _ = if silent {
                        swallow(conn, &stop)
                    } else {
                        deny(conn)
                    };
                });
            }
        });
        StubS3 {
            addr,
            connections,
            done,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for StubS3 {
    /// No new connections; silent ones end within a second.
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads and drops everything until the peer closes or the stub is dropped.
fn swallow(mut conn: TcpStream, stop: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Answers each request 403, quoting it; a request with a body is answered
/// before its body is read, and the connection closed.
fn deny(conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut head = Vec::new();
        loop {
            let start = head.len();
            if reader.read_until(b'\n', &mut head)? == 0 {
                return Ok(());
            }
            if head[start..] == *b"\r\n" && start > 0 {
                break;
            }
        }
        let parsed = Head::parse(&head);
        let quoted = String::from_utf8_lossy(&head)
            .replace('&', "&amp;")
            .replace('<', "&lt;");
        let mut answer = error_answer(
            "403 Forbidden",
            "AccessDenied",
            &format!("Access Denied for {quoted}"),
        );
        if parsed.method == "HEAD" {
            let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            answer.truncate(end);
        }
        out.write_all(&answer)?;
        let has_body = parsed.get("content-length").is_some_and(|l| l != "0");
        if has_body {
            let _ = out.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}
