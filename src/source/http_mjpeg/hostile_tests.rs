//! The source against cameras that attack: a password echoed in a reason
//! phrase or a header, a flood of frames, blank lines forever. Each is held
//! to its budget, in memory and in the CPU time of the reading thread.

use super::tests::{Handler, Stream, WAIT, WANT, canned, mjpeg, ok_head, part, serve};
use super::*;
use crate::source::jpeg::tests::sample_jpeg;

const SECRET: &str = "Pa55w0rd!x";
const CT: &str = "multipart/x-mixed-replace; boundary=b";

fn open_as(url: &str, fps: u32) -> Result<HttpMjpegSource, SourceError> {
    let opts = Options {
        budget: Budget::for_fps(fps),
        open_timeout: Duration::from_secs(3),
        tls: None,
    };
    HttpMjpegSource::open_with(url, Format { fps, ..WANT }, opts)
}

fn url(port: u16) -> String {
    format!("http://camuser:Pa55w0rd%21x@127.0.0.1:{port}/s?pwd=Pa55w0rd%21x")
}

#[test]
fn what_the_camera_says_never_shows_the_password() {
    let long = format!(
        "{} camuser:{SECRET} rejected",
        "x".repeat(head::REASON_MAX - 12)
    );
    let answers = [
        format!("HTTP/1.1 500 camuser:{SECRET} rejected\r\n\r\n"),
        format!("HTTP/1.1 403 {SECRET}\r\n\r\n"),
        // Cut short inside the password: its start must not show either.
        format!("HTTP/1.1 500 {long}\r\n\r\n"),
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/x-{SECRET}\r\n\r\n"),
        format!("HTTP/1.1 200 OK\r\nContent-Type: {CT}\r\nTransfer-Encoding: {SECRET}\r\n\r\n"),
        format!("HTTP/1.1 200 OK\r\nX-Echo {SECRET}\r\n\r\n"),
        format!("HTTP/1.1 401 No\r\nWWW-Authenticate: {SECRET}\r\n\r\n"),
        // The Basic token the camera was sent, sent back.
        "HTTP/1.1 500 Y2FtdXNlcjpQYTU1dzByZCF4\r\n\r\n".into(),
    ];
    let n = answers.len();
    let srv = serve(
        answers
            .into_iter()
            .map(|a| canned(a.into_bytes()))
            .collect(),
    );
    for i in 0..n {
        let e = open_as(&url(srv.port), 5).err().unwrap().0;
        for leak in ["Pa55", "w0rd", "Y2FtdXNlcjpQYTU1"] {
            assert!(!e.contains(leak), "answer {i}: {leak:?} in {e}");
        }
        assert!(e.starts_with("http://127.0.0.1:"), "names the camera: {e}");
        assert!(e.len() < 300, "answer {i} is bounded: {e}");
    }
    assert_eq!(srv.heads().len(), n, "every answer was asked for");
}

#[test]
fn a_reason_phrase_is_shown_short() {
    let reason = "y".repeat(10_000);
    let srv = serve(vec![canned(format!("HTTP/1.1 503 {reason}\r\n\r\n"))]);
    let e = open_as(&srv.url("/"), 5).err().unwrap().0;
    assert!(
        e.contains(&format!("503 {}…", "y".repeat(head::REASON_MAX))),
        "{e}"
    );
    assert!(!e.contains(&"y".repeat(head::REASON_MAX + 1)), "{e}");
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a timespec we own, for this thread's clock.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A camera that sends `head`, then `chunk` again and again, as fast as we
/// take it, until we hang up.
fn endless(head: Vec<u8>, chunk: Vec<u8>) -> Handler {
    Box::new(move |_, s: &mut dyn Stream| {
        let _ = s.write_all(&head);
        while s.write_all(&chunk).is_ok() {}
    })
}

/// Reads from `src` for `secs`: the frames it gave and the CPU time used.
fn read_for(src: &mut HttpMjpegSource, secs: f64) -> (Vec<RawFrame>, Duration) {
    let (cpu, end) = (thread_cpu(), Instant::now() + Duration::from_secs_f64(secs));
    let mut got = Vec::new();
    while Instant::now() < end {
        if let Some(f) = src.next_frame(Duration::from_millis(100)).unwrap() {
            got.push(f);
        }
    }
    (got, thread_cpu() - cpu)
}

#[test]
fn a_flood_of_frames_is_capped_counted_and_costs_little() {
    let jpeg = sample_jpeg(16, 16);
    let mut head = ok_head(CT).into_bytes();
    head.extend(part("--b", &jpeg, true));
    let flood = part("--b", &jpeg, true).repeat(64);
    let srv = serve(vec![endless(head, flood)]);
    // 5 fps configured: at most 15 frames a second taken, 8 at once.
    let mut src = open_as(&srv.url("/"), 5).unwrap();
    let (got, cpu) = read_for(&mut src, 2.0);
    let excess = src.take_excess();
    assert!(
        (25..=45).contains(&got.len()),
        "{} frames in 2 s, {excess:?}",
        got.len()
    );
    assert!(excess.frames_over_rate >= 20, "{excess:?}");
    assert!(excess.throttled > Duration::from_millis(1500), "{excess:?}");
    assert!(got.windows(2).all(|w| w[1].capture > w[0].capture));
    // Paused, not parsing what TCP holds: a few ms of CPU a second.
    assert!(cpu < Duration::from_millis(200), "{cpu:?} of CPU in 2 s");
}

#[test]
fn blank_lines_forever_are_paced_not_buffered() {
    let jpeg = sample_jpeg(16, 16);
    for with_len in [true, false] {
        let mut head = ok_head(CT).into_bytes();
        head.extend(part("--b", &jpeg, true));
        // After the boundary of the next part: its head, then blank lines.
        head.extend(b"--b\r\nContent-Type: image/jpeg\r\n");
        if with_len {
            head.extend(b"Content-Length: 10\r\n\r\n0123456789");
        } else {
            head.extend(b"\r\n");
        }
        let srv = serve(vec![endless(head, b"\r\n".repeat(4096))]);
        let mut src = open_as(&srv.url("/"), 5).unwrap();
        let (got, cpu) = read_for(&mut src, 1.5);
        let excess = src.take_excess();
        assert!(got.len() <= 2, "only what was sent: {}", got.len());
        let budget = Budget::for_fps(5);
        // The burst, then the rate: never what the camera could send.
        let most = budget.junk_per_sec * 3 + 64 * 1024;
        assert!(
            excess.junk_bytes <= most && excess.junk_bytes > budget.junk_per_sec,
            "{excess:?}, at most {most}"
        );
        assert!(excess.throttled > Duration::from_millis(500), "{excess:?}");
        assert!(
            src.parts.buffered() < 128 * 1024,
            "{} held",
            src.parts.buffered()
        );
        assert!(cpu < Duration::from_millis(200), "{cpu:?} of CPU in 1.5 s");
    }
}

#[test]
fn a_first_frame_over_the_size_limit_opens_with_no_size() {
    let huge = crate::source::jpeg::tests::with_sof_size(sample_jpeg(16, 16), 65535, 65535);
    let srv = serve(vec![canned(mjpeg(CT, "--b", &[huge.clone(), huge], true))]);
    let mut src = open_as(&srv.url("/"), 5).unwrap();
    assert_eq!((src.format().width, src.format().height), (0, 0));
    let f = src.next_frame(WAIT).unwrap().unwrap();
    assert_eq!(
        crate::source::jpeg::sanitize(f.jpeg),
        Err(crate::source::jpeg::TOO_LARGE),
        "the watchdog refuses it, counted as broken"
    );
}
