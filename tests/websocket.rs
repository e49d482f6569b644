//! The live views over WebSocket (the page's tiles): the handshake as RFC
//! 6455 says, each message a whole JPEG of the camera, a seat taken and
//! given back, and a handshake from another site's page refused.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;

/// RFC 6455 section 1.3's example: the key and the answer it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Sends a handshake for `path` with `headers`; the status line, the
/// headers (lower-cased names) and the reader positioned after them.
fn handshake(
    s: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> (String, Vec<(String, String)>, BufReader<TcpStream>) {
    let mut sock = TcpStream::connect(s.addr).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", s.addr);
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    sock.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(sock);
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("a header");
        head.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (status.trim_end().to_string(), head, r)
}

fn browser_headers(s: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("Upgrade", "websocket".into()),
        ("Connection", "keep-alive, Upgrade".into()),
        ("Sec-WebSocket-Version", "13".into()),
        ("Sec-WebSocket-Key", KEY.into()),
        ("Origin", format!("http://{}", s.addr)),
    ]
}

fn as_refs<'a>(h: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn get<'a>(head: &'a [(String, String)], name: &str) -> Option<&'a str> {
    head.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One server frame: (first byte, payload). Server frames are never masked.
fn frame(r: &mut impl Read) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).expect("frame head");
    assert_eq!(h[1] & 0x80, 0, "a server frame must not be masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).unwrap();
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    assert!(len < 16 << 20, "a {len}-byte message");
    let mut data = vec![0; len as usize];
    r.read_exact(&mut data).expect("frame payload");
    (h[0], data)
}

fn viewers(s: &Server) -> u64 {
    s.get("/cameras").json()["cameras"][0]["viewers"]
        .as_u64()
        .unwrap()
}

#[test]
fn each_message_is_one_jpeg_of_the_camera_and_the_seat_is_given_back() {
    let s = Server::start(&["--width", "320", "--height", "240", "--fps", "15"]);
    let h = browser_headers(&s);
    let (status, head, mut r) = handshake(&s, "/cameras/cam/video", &as_refs(&h));
    assert!(status.starts_with("HTTP/1.1 101"), "{status} {head:?}");
    assert_eq!(get(&head, "sec-websocket-accept"), Some(ACCEPT), "{head:?}");
    assert!(
        get(&head, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")),
        "{head:?}"
    );
    let mut last = Vec::new();
    for i in 0..5 {
        let (b0, jpeg) = frame(&mut r);
        assert_eq!(b0, 0x82, "message {i}: not a final binary frame");
        assert!(
            jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9]),
            "message {i} is not a JPEG alone ({} bytes)",
            jpeg.len()
        );
        assert_ne!(jpeg, last, "message {i} repeats the one before");
        last = jpeg;
    }
    let (w, h) = common::jpeg_size(&last).expect("a JPEG's size");
    assert_eq!((w, h), (320, 240));
    assert_eq!(viewers(&s), 1);
    // Gone: the seat comes back once a write fails (the next frame).
    drop(r);
    let deadline = Instant::now() + Duration::from_secs(20);
    while viewers(&s) != 0 {
        assert!(Instant::now() < deadline, "the seat was not given back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_handshake_from_another_site_or_a_wrong_one_is_refused_in_words() {
    let s = Server::start(&[]);
    let mut h = browser_headers(&s);
    h[4].1 = "http://evil.example".into();
    let (status, _, mut r) = handshake(&s, "/cameras/cam/video", &as_refs(&h));
    assert!(status.starts_with("HTTP/1.1 403"), "{status}");
    let mut body = String::new();
    let _ = r.read_to_string(&mut body);
    assert!(body.contains("cross-site WebSocket refused"), "{body}");
    assert_eq!(viewers(&s), 0);

    let mut h = browser_headers(&s);
    h[2].1 = "8".into();
    let (status, head, _) = handshake(&s, "/cameras/cam/video", &as_refs(&h));
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert_eq!(get(&head, "sec-websocket-version"), Some("13"), "{head:?}");

    let mut h = browser_headers(&s);
    h[3].1 = "c2hvcnQ=".into();
    let (status, _, mut r) = handshake(&s, "/cameras/cam/video", &as_refs(&h));
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    let mut body = String::new();
    let _ = r.read_to_string(&mut body);
    assert!(body.contains("Sec-WebSocket-Key"), "{body}");

    // No such camera: 404 naming it, as over HTTP.
    let h = browser_headers(&s);
    let (status, _, _) = handshake(&s, "/cameras/nope/video", &as_refs(&h));
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");
}
