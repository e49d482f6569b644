//! The source against a tiny HTTP server in a thread (std only, plus rustls
//! for https): each accepted connection runs the next scripted handler.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread::JoinHandle;

use base64::Engine;
use md5::Digest as _;

use super::*;
use crate::budget::Budget;
use crate::source::jpeg::{sanitize, tests::sample_jpeg};

pub(super) const WANT: Format = Format {
    width: 1280,
    height: 720,
    fps: 25,
};
pub(super) const WAIT: Duration = Duration::from_secs(5);

pub(super) trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Gets the request head and the connection; the connection closes when
/// it returns.
pub(super) type Handler = Box<dyn FnOnce(&str, &mut dyn Stream) + Send>;

pub(super) struct Server {
    pub(super) port: u16,
    thread: JoinHandle<Vec<String>>,
}

impl Server {
    pub(super) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request heads, once all handlers ran.
    pub(super) fn heads(self) -> Vec<String> {
        self.thread.join().unwrap()
    }
}

pub(super) fn serve(handlers: Vec<Handler>) -> Server {
    serve_tls(handlers, None)
}

fn serve_tls(handlers: Vec<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for handler in handlers {
            let Ok((sock, _)) = listener.accept() else {
                break;
            };
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut stream: Box<dyn Stream> = match &tls {
                None => Box::new(sock),
                Some(cfg) => {
                    let conn = rustls::ServerConnection::new(cfg.clone()).unwrap();
                    Box::new(rustls::StreamOwned::new(conn, sock))
                }
            };
            let head = read_request(&mut *stream);
            handler(&head, &mut *stream);
            heads.push(head);
        }
        heads
    });
    Server { port, thread }
}

fn read_request(s: &mut dyn Stream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

pub(super) fn send(s: &mut dyn Stream, bytes: &[u8]) {
    let _ = s.write_all(bytes).and_then(|_| s.flush());
}

/// Writes `bytes` and closes.
pub(super) fn canned(bytes: impl Into<Vec<u8>>) -> Handler {
    let bytes = bytes.into();
    Box::new(move |_, s| send(s, &bytes))
}

/// Writes `bytes`, then holds the connection until the client gives up.
fn hold(bytes: impl Into<Vec<u8>>) -> Handler {
    let bytes = bytes.into();
    Box::new(move |_, s| {
        send(s, &bytes);
        let _ = s.read(&mut [0; 16]);
    })
}

pub(super) fn ok_head(content_type: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\r\n")
}

pub(super) fn part(line: &str, body: &[u8], with_len: bool) -> Vec<u8> {
    let mut p = format!("{line}\r\nContent-Type: image/jpeg\r\n").into_bytes();
    if with_len {
        p.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    p.extend_from_slice(b"\r\n");
    p.extend_from_slice(body);
    p.extend_from_slice(b"\r\n");
    p
}

/// A whole answer: head, parts, and (without lengths) the boundary line
/// that ends the last part.
pub(super) fn mjpeg(content_type: &str, line: &str, frames: &[Vec<u8>], with_len: bool) -> Vec<u8> {
    let mut out = ok_head(content_type).into_bytes();
    for f in frames {
        out.extend_from_slice(&part(line, f, with_len));
    }
    if !with_len {
        out.extend_from_slice(format!("{line}\r\n").as_bytes());
    }
    out
}

fn opts() -> Options {
    Options {
        budget: Budget::for_fps(WANT.fps),
        open_timeout: Duration::from_secs(3),
        tls: None,
    }
}

fn open(url: &str) -> Result<HttpMjpegSource, SourceError> {
    HttpMjpegSource::open_with(url, WANT, opts())
}

fn next(src: &mut HttpMjpegSource) -> RawFrame {
    src.next_frame(WAIT).unwrap().expect("a frame in time")
}

fn frames() -> Vec<Vec<u8>> {
    vec![
        sample_jpeg(32, 16),
        sample_jpeg(48, 32),
        sample_jpeg(32, 16),
    ]
}

/// Reads `want.len()` frames, checks them and their stamps, then the end.
fn expect_stream(mut src: HttpMjpegSource, want: &[Vec<u8>]) {
    let (w, h) = sanitize(want[0].clone()).unwrap().1;
    assert_eq!(
        src.format(),
        Format {
            width: w,
            height: h,
            fps: 25
        }
    );
    let mut last = Duration::ZERO;
    for (i, f) in want.iter().enumerate() {
        let got = next(&mut src);
        assert_eq!(&got.jpeg, f, "frame {i}");
        assert!(got.capture >= last && got.capture <= crate::clock::monotonic_now());
        last = got.capture;
        let age = SystemTime::now().duration_since(got.wall).unwrap();
        assert!(age < Duration::from_secs(5), "{age:?}");
    }
    let e = src.next_frame(WAIT).unwrap_err();
    assert!(e.0.contains("the camera closed the stream"), "{e}");
    assert!(e.0.starts_with("http://127.0.0.1:"), "{e}");
}

#[test]
fn parts_with_content_length() {
    let f = frames();
    let srv = serve(vec![canned(mjpeg(
        "multipart/x-mixed-replace; boundary=frame",
        "--frame",
        &f,
        true,
    ))]);
    expect_stream(open(&srv.url("/stream?res=vga")).unwrap(), &f);
    let port = srv.port;
    let head = &srv.heads()[0];
    for line in [
        "GET /stream?res=vga HTTP/1.1\r\n".to_string(),
        format!("Host: 127.0.0.1:{port}\r\n"),
        "User-Agent: video-recorder\r\n".into(),
        "Accept: multipart/x-mixed-replace, image/jpeg\r\n".into(),
        "Connection: close\r\n".into(),
    ] {
        assert!(head.contains(&line), "{line:?} not in {head:?}");
    }
    assert!(!head.contains("Authorization"), "never preemptive");
}

#[test]
fn parts_without_content_length_after_a_preamble() {
    let f = frames();
    let mut answer = ok_head("multipart/x-mixed-replace;boundary=myboundary").into_bytes();
    answer.extend_from_slice(b"\r\n\r\nThis is a multi-part message.\r\n");
    answer.extend_from_slice(&mjpeg("", "--myboundary", &f, false)[ok_head("").len()..]);
    let srv = serve(vec![canned(answer)]);
    expect_stream(open(&srv.url("/")).unwrap(), &f);
}

#[test]
fn odd_quoted_boundary() {
    let f = frames();
    let ct = r#"multipart/x-mixed-replace; boundary="odd; bound=ary \"42\"""#;
    let srv = serve(vec![canned(mjpeg(
        ct,
        "--odd; bound=ary \"42\"",
        &f,
        false,
    ))]);
    expect_stream(open(&srv.url("/")).unwrap(), &f);
}

#[test]
fn boundary_named_with_leading_dashes() {
    let f = frames();
    // The common quirk: the header's `--foo` is the whole boundary line…
    let quirk = mjpeg(
        "multipart/x-mixed-replace; boundary=--foo",
        "--foo",
        &f,
        true,
    );
    // …and by the book, `--` goes in front of it.
    let strict = mjpeg(
        "multipart/x-mixed-replace; boundary=--foo",
        "----foo",
        &f,
        false,
    );
    let srv = serve(vec![canned(quirk), canned(strict)]);
    expect_stream(open(&srv.url("/")).unwrap(), &f);
    expect_stream(open(&srv.url("/")).unwrap(), &f);
}

#[test]
fn chunked_transfer_coding() {
    let f = frames();
    let body = mjpeg("", "--b", &f, true)[ok_head("").len()..].to_vec();
    let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
                       Content-Type: multipart/x-mixed-replace; boundary=b\r\n\r\n"
        .to_vec();
    for c in body.chunks(333) {
        answer.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        answer.extend_from_slice(c);
        answer.extend_from_slice(b"\r\n");
    }
    let srv = serve(vec![canned(answer)]);
    expect_stream(open(&srv.url("/")).unwrap(), &f);
}

#[test]
fn hang_mid_part_returns_in_time_and_keeps_sync() {
    let (a, b) = (sample_jpeg(32, 16), sample_jpeg(64, 48));
    let second = part("--b", &b, true);
    let half = second.len() / 2;
    let mut start = ok_head("multipart/x-mixed-replace; boundary=b").into_bytes();
    start.extend_from_slice(&part("--b", &a, true));
    start.extend_from_slice(&second[..half]);
    let (go, wait) = mpsc::channel();
    let rest = second[half..].to_vec();
    let srv = serve(vec![Box::new(move |_, s| {
        send(s, &start);
        let _ = wait.recv_timeout(Duration::from_secs(10));
        send(s, &rest);
    })]);
    let mut src = open(&srv.url("/")).unwrap();
    assert_eq!(next(&mut src).jpeg, a);
    for timeout in [Duration::from_millis(300), Duration::ZERO] {
        let t0 = Instant::now();
        assert!(src.next_frame(timeout).unwrap().is_none(), "a stall");
        let took = t0.elapsed();
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "{took:?}"
        );
    }
    go.send(()).unwrap();
    assert_eq!(next(&mut src).jpeg, b, "the half part was kept");
    assert!(src.next_frame(WAIT).is_err());
}

#[test]
fn part_over_the_cap_is_an_error() {
    let (small, big) = (sample_jpeg(16, 16), sample_jpeg(128, 128));
    let cap = 4096;
    assert!(small.len() < cap && big.len() > cap);
    for with_len in [true, false] {
        let f = [small.clone(), big.clone()];
        let ct = "multipart/x-mixed-replace; boundary=b";
        let srv = serve(vec![canned(mjpeg(ct, "--b", &f, with_len))]);
        let o = Options {
            budget: Budget {
                frame_bytes: cap,
                ..Budget::for_fps(WANT.fps)
            },
            ..opts()
        };
        let mut src = HttpMjpegSource::open_with(&srv.url("/"), WANT, o).unwrap();
        assert_eq!(next(&mut src).jpeg, small);
        let e = src.next_frame(WAIT).unwrap_err().0;
        // Without a length the size is known once the boundary came, or
        // is "more than" what arrived so far.
        let size = if with_len {
            format!("part of {} bytes", big.len())
        } else {
            "part of ".into()
        };
        assert!(
            e.contains(&size) && e.contains("exceeds the 4096-byte cap"),
            "{e}"
        );
    }
}

#[test]
fn server_closing_is_an_error() {
    let ct = "multipart/x-mixed-replace; boundary=b";
    let srv = serve(vec![
        canned(ok_head(ct)),
        canned(""),
        canned(b"HTTP/1.1 200 OK\r\nContent-".to_vec()),
    ]);
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("the camera closed the stream"), "{e}");
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("closed the connection without answering"), "{e}");
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("closed the connection in mid-answer"), "{e}");
}

#[test]
fn http_errors_name_the_status() {
    let srv = serve(vec![
        canned("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        canned("HTTP/1.0 503 Service Unavailable\r\n\r\n"),
        canned("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\n\r\n"),
    ]);
    let e = open(&srv.url("/nope")).err().unwrap().0;
    assert!(e.contains("the camera answered 404 Not Found"), "{e}");
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("503 Service Unavailable (busy?"), "{e}");
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("wants a user name and password"), "{e}");
}

#[test]
fn snapshots_web_pages_and_other_answers_are_refused() {
    let srv = serve(vec![
        canned(ok_head("image/jpeg")),
        canned(ok_head("text/html; charset=utf-8")),
        canned(ok_head("multipart/x-mixed-replace")),
        canned("HTTP/1.1 200 OK\r\n\r\n"),
        canned("SSH-2.0-OpenSSH_9.2\r\n\r\n"),
    ]);
    for want in [
        "a single JPEG (a snapshot)",
        "a web page",
        "no usable boundary",
        "no Content-Type",
        "not HTTP",
    ] {
        let e = open(&srv.url("/")).err().unwrap().0;
        assert!(e.contains(want), "{want:?} not in {e}");
    }
}

#[test]
fn non_jpeg_parts_are_passed_on_for_the_watchdog_to_count() {
    let jpeg = sample_jpeg(32, 16);
    let f = [b"status: ok".to_vec(), jpeg.clone()];
    let ct = "multipart/x-mixed-replace; boundary=b";
    let texts = vec![b"not a picture".to_vec(); OPEN_PARTS_MAX];
    let srv = serve(vec![
        canned(mjpeg(ct, "--b", &f, true)),
        canned(mjpeg(ct, "--b", &texts, true)),
    ]);
    let mut src = open(&srv.url("/")).unwrap();
    assert_eq!((src.format().width, src.format().height), (32, 16));
    assert!(
        sanitize(next(&mut src).jpeg).is_err(),
        "passed on, to be counted"
    );
    assert_eq!(next(&mut src).jpeg, jpeg);
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(
        e.contains("parts of the stream are not JPEGs") && e.contains("not a picture"),
        "{e}"
    );
}

#[test]
fn open_is_bounded_in_time() {
    let ct = "multipart/x-mixed-replace; boundary=b";
    let srv = serve(vec![hold(ok_head(ct)), hold("")]);
    let o = || Options {
        open_timeout: Duration::from_millis(500),
        ..opts()
    };
    for want in [
        "sent no whole frame within 0.5 s",
        "connected, but no answer within 0.5 s",
    ] {
        let t0 = Instant::now();
        let e = HttpMjpegSource::open_with(&srv.url("/"), WANT, o())
            .err()
            .unwrap()
            .0;
        assert!(e.contains(want), "{e}");
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn redirects_only_to_the_same_host() {
    let f = frames();
    let ct = "multipart/x-mixed-replace; boundary=b";
    let to = |loc: &str| canned(format!("HTTP/1.1 302 Found\r\nLocation: {loc}\r\n\r\n"));
    let srv = serve(vec![
        to("/real"),
        to("live?x=1"),
        canned(mjpeg(ct, "--b", &f, true)),
        to("http://elsewhere.example/stream"),
        to("/1"),
        to("/2"),
        to("/3"),
        to("/4"),
    ]);
    expect_stream(open(&srv.url("/a/b")).unwrap(), &f);
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(
        e.contains("redirects to http://elsewhere.example/stream, another"),
        "{e}"
    );
    let e = open(&srv.url("/")).err().unwrap().0;
    assert!(e.contains("more than 3 redirects"), "{e}");
    let heads = srv.heads();
    assert!(heads[1].starts_with("GET /real HTTP/1.1"), "{}", heads[1]);
    assert!(
        heads[2].starts_with("GET /live?x=1 HTTP/1.1"),
        "{}",
        heads[2]
    );
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

const UNAUTHORIZED: &str = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n";

#[test]
fn basic_auth_after_the_camera_asks() {
    let f = frames();
    let ct = "multipart/x-mixed-replace; boundary=b";
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:p@ss:wörd")
    );
    let answer = mjpeg(ct, "--b", &f, true);
    let challenge = format!("{UNAUTHORIZED}WWW-Authenticate: Basic realm=\"camera\"\r\n\r\n");
    let check: Handler = {
        let challenge = challenge.clone();
        Box::new(move |head, s| {
            if header(head, "Authorization") == Some(expected.as_str()) {
                send(s, &answer)
            } else {
                send(s, challenge.as_bytes())
            }
        })
    };
    let srv = serve(vec![
        canned(challenge.clone()),
        check,
        canned(challenge.clone()),
        canned(challenge),
    ]);
    let url = format!("http://admin:p%40ss%3Aw%C3%B6rd@127.0.0.1:{}/", srv.port);
    expect_stream(open(&url).unwrap(), &f);
    let wrong = format!("http://admin:nope@127.0.0.1:{}/", srv.port);
    let e = open(&wrong).err().unwrap().0;
    assert!(
        e.contains("refused the user name and password (Basic"),
        "{e}"
    );
    let heads = srv.heads();
    assert_eq!(header(&heads[0], "Authorization"), None);
    assert!(header(&heads[1], "Authorization").is_some());
}

/// A Digest parameter from an `Authorization` value (test values hold no commas).
fn dparam(auth: &str, key: &str) -> Option<String> {
    let params = auth.strip_prefix("Digest ")?;
    params.split(',').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k == key).then(|| v.trim_matches('"').to_string())
    })
}

/// A camera demanding Digest (`algorithm`, with or without qop=auth) that
/// checks the response itself.
fn digest_camera(algorithm: &str, qop: bool, answer: Vec<u8>) -> (Vec<Handler>, String) {
    let realm = "IP Camera(12345)";
    let nonce = "4e6f6e63652d31323334";
    let challenge = format!(
        "{UNAUTHORIZED}WWW-Authenticate: Digest realm=\"{realm}\", nonce=\"{nonce}\", \
         algorithm={algorithm}, opaque=\"0paque\"{}\r\n\r\n",
        if qop { ", qop=\"auth\"" } else { "" }
    );
    let h = {
        let algorithm = algorithm.to_string();
        move |s: &str| -> String {
            let bytes = if algorithm == "MD5" {
                md5::Md5::digest(s).to_vec()
            } else {
                sha2::Sha256::digest(s).to_vec()
            };
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }
    };
    let refused = challenge.clone();
    let check: Handler = Box::new(move |head, s| {
        let auth = header(head, "Authorization").unwrap_or_default();
        let p = |k: &str| dparam(auth, k).unwrap_or_default();
        let ha1 = h(&format!("{}:{realm}:s3cret", p("username")));
        let ha2 = h(&format!("GET:{}", p("uri")));
        let want = if qop {
            assert_eq!((p("qop").as_str(), p("nc").as_str()), ("auth", "00000001"));
            h(&format!(
                "{ha1}:{nonce}:{}:{}:auth:{ha2}",
                p("nc"),
                p("cnonce")
            ))
        } else {
            assert_eq!(dparam(auth, "qop"), None);
            h(&format!("{ha1}:{nonce}:{ha2}"))
        };
        let good = p("username") == "viewer"
            && p("uri") == "/video.mjpg?fps=5"
            && p("opaque") == "0paque"
            && p("realm") == realm
            && p("response") == want;
        if good {
            send(s, &answer)
        } else {
            send(s, refused.as_bytes())
        }
    });
    (
        vec![canned(challenge), check],
        format!("{algorithm}, qop {qop}"),
    )
}

#[test]
fn digest_auth_md5_with_qop_and_sha256_without() {
    let f = frames();
    let ct = "multipart/x-mixed-replace; boundary=b";
    for (algorithm, qop) in [("MD5", true), ("SHA-256", false), ("MD5", false)] {
        let (handlers, what) = digest_camera(algorithm, qop, mjpeg(ct, "--b", &f, true));
        let srv = serve(handlers);
        let url = format!(
            "http://viewer:s3cret@127.0.0.1:{}/video.mjpg?fps=5",
            srv.port
        );
        match open(&url) {
            Ok(src) => expect_stream(src, &f),
            Err(e) => panic!("{what}: {e}"),
        }
        let heads = srv.heads();
        assert_eq!(header(&heads[0], "Authorization"), None);
    }
}

/// A certificate for `localhost`, and client settings trusting it.
fn tls_pair() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = rustls::pki_types::CertificateDer::from(made.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    (Arc::new(server), Arc::new(conn::client_config(roots)))
}

#[test]
fn https_with_a_trusted_certificate_and_not_without() {
    let f = frames();
    let ct = "multipart/x-mixed-replace; boundary=b";
    let (server, client) = tls_pair();
    let srv = serve_tls(
        vec![canned(mjpeg(ct, "--b", &f, true)), canned("")],
        Some(server),
    );
    let url = format!("https://localhost:{}/stream", srv.port);
    let o = Options {
        tls: Some(client),
        ..opts()
    };
    let mut src = HttpMjpegSource::open_with(&url, WANT, o).unwrap();
    for want in &f {
        assert_eq!(&next(&mut src).jpeg, want);
    }
    assert!(
        src.next_frame(WAIT)
            .unwrap_err()
            .0
            .contains("closed the stream")
    );
    let untrusted = Options {
        tls: Some(Arc::new(
            conn::client_config(rustls::RootCertStore::empty()),
        )),
        ..opts()
    };
    let e = HttpMjpegSource::open_with(&url, WANT, untrusted)
        .err()
        .unwrap()
        .0;
    assert!(e.contains("TLS failed") && e.contains("self-signed"), "{e}");
}

#[test]
fn no_message_holds_the_password() {
    const SECRET: &str = "Pa55-w0rd!";
    let ct = "multipart/x-mixed-replace; boundary=b";
    let jpeg = sample_jpeg(16, 16);
    let big = sample_jpeg(128, 128);
    let basic = "WWW-Authenticate: Basic realm=\"x\"\r\n\r\n";
    let handlers: Vec<(&str, Handler)> = vec![
        ("answered 404", canned("HTTP/1.1 404 Not Found\r\n\r\n")),
        // Two connections: the challenge, then the refusal.
        ("", canned(format!("{UNAUTHORIZED}{basic}"))),
        ("refused the user", canned(format!("{UNAUTHORIZED}{basic}"))),
        (
            "not supported",
            canned(format!("{UNAUTHORIZED}WWW-Authenticate: Bearer\r\n\r\n")),
        ),
        (
            "another scheme, host",
            canned(format!(
                "HTTP/1.1 302 Found\r\nLocation: http://admin:{SECRET}@evil.example/\r\n\r\n"
            )),
        ),
        ("a web page", canned(ok_head("text/html"))),
        (
            "no usable boundary",
            canned(ok_head("multipart/x-mixed-replace")),
        ),
        ("closed the stream", canned(ok_head(ct))),
        ("no whole frame", hold(ok_head(ct))),
        ("no answer", hold("")),
        (
            "exceeds the",
            canned(mjpeg(ct, "--b", std::slice::from_ref(&big), true)),
        ),
        (
            "not JPEGs",
            canned(mjpeg(ct, "--b", &vec![b"x".to_vec(); OPEN_PARTS_MAX], true)),
        ),
        ("not supported", {
            let mut h = ok_head(ct);
            h.insert_str(17, "Transfer-Encoding: gzip\r\n");
            canned(h)
        }),
        ("not HTTP", canned("RTSP/1.0 200 OK\r\n\r\n")),
    ];
    let (wants, handlers): (Vec<&str>, Vec<Handler>) = handlers.into_iter().unzip();
    // After a good open, the stream ends or overflows.
    let mut later = vec![
        canned(mjpeg(ct, "--b", std::slice::from_ref(&jpeg), true)),
        canned(mjpeg(ct, "--b", &[jpeg, big], true)),
    ];
    let mut all = handlers;
    all.append(&mut later);
    let srv = serve(all);
    let url = format!(
        "http://admin:Pa55-w0rd%21@127.0.0.1:{}/s?user=admin&pwd=Pa55-w0rd%21",
        srv.port
    );
    let o = || Options {
        budget: Budget {
            frame_bytes: 4096,
            ..Budget::for_fps(WANT.fps)
        },
        open_timeout: Duration::from_millis(500),
        tls: None,
    };
    let mut messages = Vec::new();
    for want in wants.into_iter().filter(|w| !w.is_empty()) {
        let e = HttpMjpegSource::open_with(&url, WANT, o()).err().unwrap().0;
        assert!(e.contains(want), "{want:?} not in {e}");
        messages.push(e);
    }
    for _ in 0..2 {
        let mut src = HttpMjpegSource::open_with(&url, WANT, o()).unwrap();
        next(&mut src);
        messages.push(src.next_frame(WAIT).unwrap_err().0);
    }
    // Errors before any connection.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for bad in [
        format!("http://admin:Pa55-w0rd%21@127.0.0.1:{free}/"),
        "ftp://admin:Pa55-w0rd%21@cam/".into(),
        "http://admin:Pa55-w0rd%21@cam:99999/".into(),
        "https://admin:Pa55-w0rd%21@127.0.0.1:1/".into(),
    ] {
        messages.push(HttpMjpegSource::open_with(&bad, WANT, o()).err().unwrap().0);
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{SECRET}"));
    for m in &messages {
        for secret in ["Pa55-w0rd", "w0rd%21", basic.as_str()] {
            assert!(!m.contains(secret), "{secret:?} in {m}");
        }
        assert!(
            m.contains("127.0.0.1") || m.contains("cam"),
            "says which camera: {m}"
        );
    }
    assert_eq!(messages.len(), 13 + 2 + 4);
}
