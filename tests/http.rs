//! The HTTP contract against the real binary: routes, JSON errors, the live
//! stream as a real MJPEG client sees it, viewer caps, and an accept loop that
//! survives running out of file descriptors.

mod common;

use common::RunWithin;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::s3::amz_date;
use common::{MjpegClient, Server};

fn is_jpeg(b: &[u8]) -> bool {
    b.len() > 4 && b[..2] == [0xFF, 0xD8] && b[b.len() - 2..] == [0xFF, 0xD9]
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const SMALL: &[&str] = &[
    "--source", "test", "--width", "320", "--height", "240", "--fps", "30",
];

#[test]
fn live_stream_parts_are_jpegs_with_increasing_timestamps() {
    let s = Server::start(SMALL);
    s.wait_status(Duration::from_secs(30), "a first frame", |st| {
        st["source"]["frames"].as_u64() > Some(0)
    });
    let connected = now();
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    assert_eq!(c.content_type, "multipart/x-mixed-replace;boundary=vrframe");
    let mut last = 0.0;
    let mut distinct = std::collections::HashSet::new();
    for i in 0..45 {
        let p = c.next_part().expect("part");
        assert!(is_jpeg(&p.jpeg), "part {i} is not a whole JPEG");
        assert!(
            p.timestamp > last,
            "X-Timestamp must increase: {} after {last}",
            p.timestamp
        );
        // Captured before it arrived, and no earlier than the newest frame
        // at the time we connected (one interval, plus scheduling slack).
        let arrived = now();
        assert!(
            p.timestamp <= arrived + 0.001 && p.timestamp >= connected - 0.5,
            "X-Timestamp {} outside [{}, {arrived}]",
            p.timestamp,
            connected - 0.5
        );
        last = p.timestamp;
        distinct.insert(p.jpeg);
    }
    assert!(distinct.len() > 1, "the test picture never changes");
    let status = s.get("/status").json();
    assert_eq!(status["viewers"], 1);
    assert_eq!(status["source"]["state"], "test");
    assert!(status["warning"].as_str().is_some_and(|w| !w.is_empty()));
    // Measured, at a nominal 30: slower only on a busy machine or emulated.
    let fps = status["fps"].as_f64().unwrap();
    let least = if common::emulated() { 5.0 } else { 20.0 };
    assert!((least..=31.0).contains(&fps), "{status}");
}

#[test]
fn snapshot_and_health_and_page() {
    let s = Server::start(SMALL);
    s.wait_status(Duration::from_secs(30), "a first frame", |st| {
        st["source"]["frames"].as_u64() > Some(0)
    });
    let asked = now();
    let r = s.get("/snapshot.jpg");
    let answered = now();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("image/jpeg"));
    assert!(is_jpeg(&r.body));
    let stamp: f64 = r.header("X-Timestamp").unwrap().parse().unwrap();
    assert!(
        stamp <= answered + 0.001 && stamp >= asked - 1.0,
        "snapshot X-Timestamp {stamp} outside [{}, {answered}]",
        asked - 1.0
    );
    assert_eq!(s.get("/healthz").text(), "ok\n");
    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("Content-Type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("/app.js"));
    assert_eq!(s.get("/app.js").status, 200);
    assert_eq!(s.get("/app.css").status, 200);
}

#[test]
fn errors_are_json_with_fitting_status() {
    let s = Server::start(SMALL);
    let cases: Vec<(common::Response, u16)> = vec![
        (s.get("/nope"), 404),
        (s.get("/start"), 405),
        (s.get("/stop"), 405),
        (s.post("/status", ""), 405),
        (s.post("/stop", ""), 409),
        (s.get("/last"), 404),
        (s.get("/clips/../../etc/passwd"), 404),
        (s.get("/clips/20260101-000000.mp4"), 404),
        (s.post("/start", "{not json"), 400),
        (s.post("/start", r#"{"max_duration_sec": -3}"#), 400),
        (s.post("/start", r#"{"path": "/etc/passwd"}"#), 400),
        (
            s.post("/start", &format!(r#"{{"pad": "{}"}}"#, "x".repeat(10_000))),
            413,
        ),
        (s.get(&format!("/{}", "a".repeat(5000))), 414),
    ];
    for (i, (r, want)) in cases.iter().enumerate() {
        assert_eq!(r.status, *want, "case {i}: {}", r.text());
        let j = r.json();
        assert!(
            j["error"].as_str().is_some_and(|e| !e.is_empty()),
            "case {i}: no error message in {j}"
        );
        assert_eq!(r.header("Server"), Some("video-recorder"), "case {i}");
    }
    // Still serving after all that.
    assert_eq!(s.get("/status").status, 200);
}

#[test]
fn viewer_cap_answers_503_and_frees_seats() {
    let s = Server::start(&[SMALL, &["--max-viewers", "2"]].concat());
    let mut a = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    let mut b = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    a.next_part().unwrap();
    b.next_part().unwrap();
    let refused = match MjpegClient::connect(s.addr, "/video") {
        Err(r) => r,
        Ok(_) => panic!("third viewer accepted with --max-viewers 2"),
    };
    assert_eq!(refused.status, 503);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("viewers")
    );
    drop(a);
    // The departed viewer's seat comes back once its next write fails.
    s.wait_status(Duration::from_secs(20), "a seat to free up", |st| {
        st["viewers"] == 1
    });
    let mut c = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    c.next_part().unwrap();
    // HEAD gets the stream's status and headers and keeps no seat: with
    // both taken, it still answers 503, and once one is free, 200 while
    // leaving that seat for the next viewer.
    assert_eq!(s.call("HEAD", "/video").status, 503);
    drop(b);
    s.wait_status(Duration::from_secs(20), "a seat to free up", |st| {
        st["viewers"] == 1
    });
    for _ in 0..3 {
        assert_eq!(s.call("HEAD", "/video").status, 200);
    }
    assert_eq!(s.get("/status").json()["viewers"], 1);
    let mut d = MjpegClient::connect(s.addr, "/video").unwrap_or_else(|r| panic!("{r:?}"));
    d.next_part().unwrap();
    c.next_part().unwrap();
}

/// Under HTTPS each part still arrives whole: rustls takes a part's head,
/// JPEG and boundary in one vectored write (tiny_http patch 9), and a short
/// take must resume where it stopped.
#[test]
fn live_stream_over_https_is_whole_parts() {
    if !common::have_tool("curl") {
        return;
    }
    let s = Server::start(&[SMALL, &["--tls-self-signed"]].concat());
    let cert = s
        .clips
        .parent()
        .unwrap()
        .join(".video-recorder-tls/cert.pem");
    let secs = if common::emulated() { "8" } else { "3" };
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", secs, "--cacert"])
        .arg(&cert)
        .arg(format!("https://localhost:{}/video", s.addr.port()))
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    // curl stops the endless stream at --max-time (exit 28).
    assert_eq!(
        out.status.code(),
        Some(28),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = &out.stdout[..];
    let mut whole = 0;
    while let Some(at) = rest.strip_prefix(b"--vrframe\r\n") {
        let Some(end) = common::find(at, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&at[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap_or_else(|| panic!("no length in {head:?}"))
            .parse()
            .unwrap();
        let body = &at[end + 4..];
        if body.len() < len + 2 {
            break; // the part curl was reading when it stopped
        }
        assert!(is_jpeg(&body[..len]), "part {whole} is not a whole JPEG");
        assert_eq!(&body[len..len + 2], b"\r\n", "part {whole} ends badly");
        rest = &body[len + 2..];
        whole += 1;
    }
    assert!(
        whole >= 5,
        "{whole} whole parts in {} bytes",
        out.stdout.len()
    );
}

#[test]
fn a_crowd_connecting_at_once_is_served() {
    let s = Server::start(&[SMALL, &["--max-viewers-per-client", "1000"]].concat());
    let n = 100;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let addr = s.addr;
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let mut c = MjpegClient::connect(addr, "/video").map_err(|r| r.status)?;
                    for _ in 0..10 {
                        let p = c.next_part().map_err(|_| 0u16)?;
                        if !is_jpeg(&p.jpeg) {
                            return Err(1);
                        }
                    }
                    Ok(())
                })
                .unwrap()
        })
        .collect();
    let results: Vec<Result<(), u16>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {n} viewers failed: {failed:?}",
        failed.len()
    );
    assert_eq!(s.get("/status").status, 200);
}

#[test]
fn running_out_of_descriptors_does_not_stop_the_server() {
    if !common::have_tool("prlimit") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start_wrapped(
        &tmp.path().join("clips"),
        SMALL,
        &["prlimit", "--nofile=64:64", "--"],
    );
    // Idle connections hold descriptors until the connection cap closes new
    // ones (or, were the cap wrong, accept() fails with EMFILE, which ends
    // tiny_http's own accept loop). Connect until the server says so, so
    // the test does not depend on how many descriptors it inherited or how
    // fast it accepts.
    let exhausted = |log: &str| {
        log.contains("restarting the accept loop")
            || log.contains("cannot start the HTTP server")
            || log.contains("dropping a connection")
            || log.contains("closing new connections")
    };
    let mut hogs: Vec<TcpStream> = Vec::new();
    let mut connect_errors = Vec::new();
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while !exhausted(&s.log()) && hogs.len() < 2000 && std::time::Instant::now() < give_up {
        for _ in 0..16 {
            match TcpStream::connect_timeout(&s.addr, Duration::from_secs(2)) {
                Ok(c) => hogs.push(c),
                Err(e) => connect_errors.push(e.to_string()),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = hogs.len();
    std::thread::sleep(Duration::from_millis(500));
    drop(hogs);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ok = common::try_request(s.addr, "GET", "/status", &[], b"").map(|r| r.status);
        if ok.ok() == Some(200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server stopped answering after descriptor exhaustion; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        exhausted(&s.log()),
        "descriptors never ran out after {held} idle connections \
         ({} connect errors, first: {:?}), so the test proved nothing; log:\n{}",
        connect_errors.len(),
        connect_errors.first(),
        s.log()
    );
}

#[test]
fn sigterm_when_idle_exits_zero() {
    let mut s = Server::start(SMALL);
    let st = s.signal(15);
    assert!(st.success(), "exit status {st:?}; log:\n{}", s.log());
}

/// Sends raw bytes and parses whatever comes back.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> common::Response {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head and a JSON body; the server may keep the connection open.
    while common::find(&out, b"}").is_none() {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    common::parse_response(&out)
}

#[test]
fn malformed_requests_get_clear_errors_and_change_nothing() {
    let s = Server::start(SMALL);
    let big = format!(
        "GET /status HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let r = raw(s.addr, big.as_bytes());
    assert_eq!(r.status, 431, "{}", r.text());
    let r = raw(
        s.addr,
        b"POST /start HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Content-Length")
    );
    let r = raw(
        s.addr,
        b"POST /stop HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // None of that started a recording.
    assert_eq!(s.get("/status").json()["recording"], false);
}

#[test]
fn probe_refuses_a_file_that_is_not_an_mp4() {
    let tmp = tempfile::tempdir().unwrap();
    let not_mp4 = tmp.path().join("notes.mp4");
    std::fs::write(&not_mp4, b"just some text, not a clip\n").unwrap();
    let out = common::command()
        .arg("probe")
        .arg(&not_mp4)
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(!out.status.success(), "probe accepted a text file");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.mp4"),
        "the error does not name the file: {err}"
    );
    assert!(out.stdout.is_empty());
}

/// Routes under `/cameras/<id>/` for a camera that is not configured are
/// 404 in words naming it, whatever the method; `/clips?limit=` outside
/// 1..=1000 is refused and says the range.
#[test]
fn an_unknown_camera_is_404_in_words_and_a_page_limit_out_of_range_refused() {
    let s = Server::start(SMALL);
    for (method, path) in [
        ("GET", "/cameras/nope/status"),
        ("GET", "/cameras/nope/video"),
        ("GET", "/cameras/nope/live.mp4"),
        ("GET", "/cameras/nope/snapshot.jpg"),
        ("POST", "/cameras/nope/start"),
        ("POST", "/cameras/nope/stop"),
    ] {
        let r = if method == "GET" {
            s.get(path)
        } else {
            s.post(path, "")
        };
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(e.contains("nope"), "{method} {path}: {e}");
    }
    // Not a number: 400; a number out of range: 422.
    for (limit, status) in [("0", 422), ("1001", 422), ("-1", 400), ("many", 400)] {
        let r = s.get(&format!("/clips?limit={limit}"));
        assert_eq!(r.status, status, "limit={limit}: {}", r.text());
        let e = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(e.contains("limit must be"), "limit={limit}: {e}");
    }
    for limit in ["1", "1000"] {
        assert_eq!(s.get(&format!("/clips?limit={limit}")).status, 200);
    }
}

/// `/status` → `system`: the clock is this machine's now, and
/// `clock_synchronized` is the kernel's own answer (what `timedatectl`
/// asks), taken here the same way.
#[test]
fn status_system_shows_the_clock_and_whether_it_is_synchronised() {
    let s = Server::start(SMALL);
    let secs = now() as u64;
    let sys = s.get("/status").json()["system"].clone();
    let clock = sys["clock"].as_str().unwrap_or_else(|| panic!("{sys}"));
    // `YYYY-MM-DDTHH:MM:SS[.f]Z` in the basic format, to compare as text
    // with the times 30 s either side of the request.
    let whole = clock
        .split('.')
        .next()
        .unwrap_or(clock)
        .trim_end_matches('Z');
    let basic = format!("{}Z", whole.replace(['-', ':'], ""));
    let (early, late) = (amz_date(secs - 30), amz_date(secs + 30));
    assert!(
        clock.ends_with('Z') && basic.len() == 16 && early <= basic && basic <= late,
        "{clock} is not now ({early}..{late})"
    );
    // SAFETY: modes = 0 only reads the kernel's state into a struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    if unsafe { libc::adjtimex(&mut tx) } >= 0 {
        let synced = tx.status & libc::STA_UNSYNC == 0;
        assert_eq!(sys["clock_synchronized"], synced, "{sys}");
    } else {
        assert!(sys["clock_synchronized"].is_boolean() || sys["clock_synchronized"].is_null());
    }
    for key in ["power", "temperature_c"] {
        assert!(sys.get(key).is_some(), "{key} missing: {sys}");
    }
}
