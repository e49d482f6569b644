//! Connection limits against the real binary: a header or URL that never
//! ends, idle and trickling clients, a live stream that must outlast the
//! idle timeout, and a crowd of connections that must not starve the owner
//! or a recording.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{MjpegClient, Server};

const SMALL: &[&str] = &[
    "--source", "test", "--width", "320", "--height", "240", "--fps", "30",
];

/// Sends `head` and then bytes that never end the line, up to `cap`, while
/// another thread reads: the bytes the server took before it hung up, and
/// its answer (read as it arrives, before the hang-up can discard it).
fn endless_line(addr: std::net::SocketAddr, head: &[u8], cap: usize) -> (usize, Option<u16>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = s.try_clone().unwrap();
    r.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            if common::find(&out, b"}").is_some() {
                break;
            }
        }
        out
    });
    s.write_all(head).unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    while sent < cap {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let out = reader.join().unwrap();
    let status = (!out.is_empty()).then(|| common::parse_response(&out).status);
    (sent, status)
}

#[test]
fn a_header_or_url_that_never_ends_is_cut_off_without_eating_memory() {
    let s = Server::start(SMALL);
    assert_eq!(s.get("/status").status, 200);
    let before = s.rss_kib();
    const CAP: usize = 256 * 1024 * 1024;
    for (head, status) in [
        (&b"GET /status HTTP/1.1\r\nX-Endless: "[..], 431),
        (&b"GET /"[..], 414),
    ] {
        let (sent, answer) = endless_line(s.addr, head, CAP);
        eprintln!("server hung up after {sent} bytes, answer {answer:?}");
        // Socket buffers take a few MiB before the hang-up is felt.
        assert!(
            sent < CAP,
            "the server read all {sent} bytes of one line; log:\n{}",
            s.log()
        );
        assert_eq!(answer, Some(status), "{}", String::from_utf8_lossy(head));
        assert_eq!(s.get("/status").status, 200, "{}", s.log());
    }
    let after = s.rss_kib();
    assert!(
        after < before + 32 * 1024,
        "server memory grew from {before} KiB to {after} KiB"
    );
}

/// Reads until the server closes; what it sent, and how long that took.
fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (out, t0.elapsed())
}

/// Writes one byte every 300 ms until the server answers or hangs up (or
/// 15 s pass): what it answered (empty if it hung up without a word), and
/// whether it cut the connection off at all.
fn trickle(c: &mut TcpStream) -> (Vec<u8>, bool) {
    let t0 = Instant::now();
    c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    while t0.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(300));
        if c.write_all(b" ").is_err() {
            return (Vec::new(), true);
        }
        let mut buf = [0u8; 1024];
        if let Ok(n) = c.read(&mut buf) {
            return (buf[..n].to_vec(), true);
        }
    }
    (Vec::new(), false)
}

#[test]
fn idle_connections_are_closed_and_slow_heads_get_408_but_streams_go_on() {
    let mut args = SMALL.to_vec();
    args.extend(["--idle-timeout-sec", "1"]);
    let s = Server::start(&args);

    // A connection that never says anything: closed, silently.
    let mut idle = TcpStream::connect(s.addr).unwrap();
    let (got, took) = until_closed(&mut idle, Duration::from_secs(20));
    assert!(got.is_empty(), "answered an idle connection: {got:?}");
    // The timeout is 1 s: closed after it, within a few times it (slack
    // for a loaded machine, more under emulation).
    let most = if common::emulated() { 8 } else { 3 };
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(most),
        "idle connection closed after {took:?}"
    );

    // Keep-alive: served, then closed once idle.
    let mut ka = TcpStream::connect(s.addr).unwrap();
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (got, took) = until_closed(&mut ka, Duration::from_secs(20));
    assert_eq!(common::parse_response(&got).status, 200);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(most),
        "keep-alive connection closed after {took:?}"
    );

    // A head trickled in a byte at a time, each within the idle timeout:
    // cut off at twice the timeout from its first byte.
    let mut slow = TcpStream::connect(s.addr).unwrap();
    slow.write_all(b"GET /status HTTP/1.1\r\nX-Slow: ").unwrap();
    let t0 = Instant::now();
    let (answer, cut_off) = trickle(&mut slow);
    assert!(cut_off, "a trickled head held its connection for 15 s");
    let r = common::parse_response(&answer);
    assert_eq!(r.status, 408, "{}", r.text());
    // Twice the timeout from the first byte, within a byte's interval.
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(most + 1),
        "cut off after {took:?}"
    );

    // A live stream writes and never reads: it outlasts the idle timeout.
    let mut viewer =
        MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{}", r.text()));
    let t0 = Instant::now();
    let mut parts = 0;
    while t0.elapsed() < Duration::from_secs(4) {
        viewer
            .next_part()
            .expect("the stream goes on past the idle timeout");
        parts += 1;
    }
    assert!(parts > 30, "only {parts} parts in 4 s");
    assert_eq!(s.get("/status").status, 200);
}

/// Sends a POST /start whose body of `len` bytes comes a byte every 300 ms;
/// the answer and how long it took to come.
fn trickled_start(addr: std::net::SocketAddr, len: usize) -> (common::Response, Duration) {
    let mut c = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /start HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n{{"
    );
    c.write_all(head.as_bytes()).unwrap();
    let t0 = Instant::now();
    let (answer, _) = trickle(&mut c);
    (common::parse_response(&answer), t0.elapsed())
}

#[test]
fn a_trickled_body_gets_408_and_starts_nothing() {
    let mut args = SMALL.to_vec();
    args.extend(["--idle-timeout-sec", "1"]);
    let s = Server::start(&args);
    // A small body is read by tiny_http before dispatch, a larger one by us.
    for len in [60, 2000] {
        let (r, took) = trickled_start(s.addr, len);
        assert_eq!(r.status, 408, "{len} bytes, after {took:?}: {}", r.text());
        assert!(r.text().contains("too slow"), "{}", r.text());
        // Twice the 1 s timeout, plus a byte's 300 ms interval and slack.
        let most = if common::emulated() { 8 } else { 4 };
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(most),
            "{len} bytes: read for {took:?}"
        );
        assert_eq!(s.get("/status").json()["recording"], false);
    }
}

/// Lets this test process open as many sockets as it may.
fn raise_own_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
}

#[test]
fn a_crowd_of_connections_neither_silences_the_owner_nor_stops_a_recording() {
    if !common::have_tool("prlimit") {
        return;
    }
    raise_own_fd_limit();
    let tmp = tempfile::tempdir().unwrap();
    // 1,024 descriptors: caps of 384 connections in all, 64 per client.
    // (Idle connections are not closed for silence during the test.)
    let s = Server::start_wrapped(
        &tmp.path().join("clips"),
        &[
            SMALL,
            &["--clips-min-free-mb", "0", "--idle-timeout-sec", "600"],
        ]
        .concat(),
        &["prlimit", "--nofile=1024:1024", "--"],
    );
    s.wait_log(
        "connections capped at 384 in all and 64 per client",
        Duration::from_secs(10),
    );
    // The attacker: 3,000 idle connections from 127.0.0.2, then 64 more
    // from each of four other addresses. Those beyond the caps are closed.
    let mut hogs = Vec::new();
    let mut refused = 0;
    for i in 0..3000 + 4 * 64 {
        let src = if i < 3000 { 2 } else { 3 + (i - 3000) / 64 };
        let src = std::net::IpAddr::from([127, 0, 0, src as u8]);
        match common::connect_from(src, s.addr) {
            Ok(c) => hogs.push(c),
            Err(_) => refused += 1,
        }
    }
    // The server closes what it does not keep: count what is still open.
    s.wait_log("closing new connections", Duration::from_secs(30));
    // The owner, from 127.0.0.1, is answered and records a clip.
    let r = s.get("/healthz");
    assert_eq!(r.status, 200);
    let started = std::time::Instant::now();
    let r = s.post("/start", "");
    assert_eq!(r.status, 200, "{}", r.text());
    s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) >= 30
    });
    let clip = s.post("/stop", "").json();
    let wall = started.elapsed().as_secs_f64();
    // All of it (the 30 frames were seen, at 30 fps), and no longer than
    // the recording was.
    let (d, n) = (
        clip["duration_sec"].as_f64().unwrap(),
        clip["frames"].as_f64().unwrap(),
    );
    assert!(
        n >= 30.0 && d * 30.0 >= n - 1.5 && d <= wall + 0.1,
        "{clip} in {wall} s"
    );
    let path = s
        .clips
        .join(format!("{}.mp4", clip["id"].as_str().unwrap()));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        clip["size_bytes"].as_u64().unwrap()
    );
    let probe = common::own_probe(&path);
    assert!(probe["frames"].as_u64().unwrap() >= 30, "{probe}");
    // The attacker's connections the server kept: 64 from 127.0.0.2 and
    // all 4 x 64 of the others.
    wait_kept(&mut hogs, 64 + 4 * 64, refused);
    // Two more addresses' 64 each pass the total cap of 384: the last 64
    // are closed at once.
    for i in 0..2 * 64 {
        let src = std::net::IpAddr::from([127, 0, 0, 7 + i / 64]);
        match common::connect_from(src, s.addr) {
            Ok(c) => hogs.push(c),
            Err(_) => refused += 1,
        }
    }
    wait_kept(&mut hogs, 384, refused);
}

/// Waits until exactly `want` of `hogs` are still open on the server's side
/// (those it closed read EOF at once; it may take a moment to get to all).
fn wait_kept(hogs: &mut [std::net::TcpStream], want: usize, refused: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut kept = 0;
        for c in hogs.iter_mut() {
            c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let mut b = [0u8; 1];
            if let Err(e) = c.read(&mut b)
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            {
                kept += 1;
            }
        }
        if kept == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline && kept > want,
            "{kept} attacker connections kept, not {want} ({} connected, {refused} refused)",
            hogs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Attacker connections still open: those the server closed are readable
/// (their end), the others not (one `poll` for them all).
fn open_count(hogs: &[std::net::TcpStream]) -> usize {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = hogs
        .iter()
        .map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: poll over descriptors we own, with the vector's own length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    assert!(n >= 0, "poll: {}", std::io::Error::last_os_error());
    fds.iter().filter(|p| p.revents == 0).count()
}

#[test]
fn at_the_connection_cap_idle_connections_make_room_for_the_owner() {
    if !common::have_tool("prlimit") {
        return;
    }
    raise_own_fd_limit();
    let tmp = tempfile::tempdir().unwrap();
    // The Pi's unit: 8,192 descriptors (under qemu, 1,024: fewer threads).
    let nofile = if common::emulated() { 1024 } else { 8192 };
    let s = Server::start_wrapped(
        &tmp.path().join("clips"),
        &[
            SMALL,
            &["--clips-min-free-mb", "0", "--idle-timeout-sec", "600"],
        ]
        .concat(),
        &["prlimit", &format!("--nofile={nofile}:{nofile}"), "--"],
    );
    let line = s.wait_log("connections capped at", Duration::from_secs(10));
    let total: usize = line
        .split("capped at ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cap in {line:?}"));
    if nofile == 8192 {
        assert_eq!(total, 62 * 64, "{line}");
    }
    // Idle connections from as many addresses as it takes to fill the cap,
    // 64 from each (the cap per client): 62 x 64 at 8,192 descriptors.
    let mut hogs = Vec::new();
    let mut refused = 0;
    let t0 = Instant::now();
    for i in 0..total {
        let src =
            std::net::IpAddr::from([127, 0, 1 + (i / 64 / 250) as u8, 2 + (i / 64 % 250) as u8]);
        match common::connect_from(src, s.addr) {
            Ok(c) => hogs.push(c),
            Err(_) => refused += 1,
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while open_count(&hogs) < total {
        assert!(
            Instant::now() < deadline && refused == 0,
            "{} of {total} kept ({refused} refused)",
            open_count(&hogs)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{total} connected and kept in {:?}", t0.elapsed());
    // The owner is answered, every time, while they are held: each new
    // connection ends the oldest one that never sent a request.
    for _ in 0..10 {
        assert_eq!(s.get("/healthz").status, 200);
    }
    s.wait_log("closed the oldest connection", Duration::from_secs(10));
    let kept = open_count(&hogs);
    assert!(
        (total - 10..total).contains(&kept),
        "{kept} of {total} idle connections kept after 10 answers to the owner"
    );
    // The first ones connected are the ones that went.
    assert!(open_count(&hogs[..1]) == 0, "the oldest was kept");
    assert!(open_count(&hogs[total - 64..]) == 64, "a newest one went");
}
