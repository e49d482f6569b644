//! HTTP on the wire, against the real binary with raw sockets: DNS
//! rebinding refused in the open mode, request framing that could desync a
//! connection refused, unread bodies skipped only within bounds, and the
//! protocol corners (absolute-form targets, HTTP/2, non-ASCII heads).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::creds::{ADMIN_PW, assert_json_error, basic, locked_server};
use common::{Response, Server, find, parse_response, request};

const SMALL: &[&str] = common::creds::SMALL;

fn with_host(s: &Server, method: &str, path: &str, host: &str) -> Response {
    raw(
        s.addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )
}

/// Sends bytes, reads until the server closes (or 10 s pass).
fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let out = exchange(addr, bytes);
    parse_response(&out)
}

fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

#[test]
fn without_credentials_only_names_that_cannot_be_rebound_are_served() {
    let s = Server::start(&[SMALL, &["--allowed-hosts", "cam.lan, door.local"]].concat());
    let port = s.addr.port();
    // A page on evil.example rebound to 127.0.0.1: same origin for the
    // browser, refused here.
    for (method, path) in [
        ("POST", "/start"),
        ("GET", "/snapshot.jpg"),
        ("GET", "/status"),
        ("GET", "/video"),
        ("GET", "/last"),
    ] {
        for host in ["evil.example", &format!("evil.example:{port}")] {
            let r = with_host(&s, method, path, host);
            assert_json_error(&r, 421, &format!("{method} {path} Host: {host}"));
        }
    }
    assert_eq!(s.get("/status").json()["recording"], false);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        "LOCALHOST".to_string(),
        format!("cam.lan:{port}"),
        "Door.Local".to_string(),
    ] {
        let r = with_host(&s, "GET", "/status", &host);
        assert_eq!(r.status, 200, "Host: {host}: {}", r.text());
    }
    // Not fooled by look-alikes.
    for host in ["localhost.evil.example", "cam.lan.evil.example", "[::1"] {
        assert_eq!(with_host(&s, "GET", "/status", host).status, 421, "{host}");
    }
    // With credentials the name does not matter: a rebound page has none.
    let locked = locked_server(&[]);
    let r = raw(
        locked.addr,
        format!(
            "GET /status HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
            basic("admin", ADMIN_PW)
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let s = Server::start(SMALL);
    let form = "user=a&password=b";
    let cases = [
        (
            "both lengths",
            format!(
                "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                form.len()
            ),
        ),
        (
            "differing lengths",
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\nContent-Length: 18\r\n\r\n"
                .to_string(),
        ),
        (
            "an unknown coding",
            "POST /login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n".to_string(),
        ),
        (
            "two codings",
            "POST /login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_string(),
        ),
        (
            "a length that is no number",
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1_7\r\n\r\n".to_string(),
        ),
    ];
    for (what, head) in cases {
        // A second request follows on the same connection: it must not be
        // answered (the server cannot know where it starts).
        let bytes = format!("{head}{form}GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let out = exchange(s.addr, bytes.as_bytes());
        let r = parse_response(&out);
        assert_json_error(&r, 400, what);
        assert!(
            find(&out, b"ok\n").is_none()
                && out.windows(8).filter(|w| w == b"HTTP/1.1").count() == 1,
            "{what}: more than one answer: {}",
            String::from_utf8_lossy(&out)
        );
    }
    // Equal duplicates are fine.
    let r = raw(
        s.addr,
        format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\nContent-Length: 17\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n{form}"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
}

#[test]
fn an_unread_chunked_body_ends_the_connection() {
    let s = Server::start(SMALL);
    // /stop reads no body. Upstream parsed the chunks as the next request
    // (and answered it 400); now the connection ends after the answer.
    let bytes = b"POST /stop HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let out = exchange(s.addr, bytes);
    let r = parse_response(&out);
    assert_json_error(&r, 409, "stop while idle");
    assert_eq!(
        out.windows(8).filter(|w| w == b"HTTP/1.1").count(),
        1,
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn a_refused_body_is_skipped_only_within_bounds() {
    let s = Server::start(SMALL);
    // A small refused body is skipped: the connection goes on.
    let body = vec![b'x'; 5000];
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        format!(
            "POST /start HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.write_all(&body).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.ends_with("ok\n"),
        "the next request was not answered: {text}"
    );
    // A huge one trickled in: answered, then closed, not drained for ever.
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    c.write_all(
        b"POST /start HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n\r\n",
    )
    .unwrap();
    let t0 = Instant::now();
    let mut out = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 1024];
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => {}
        }
        if c.write_all(b"x").is_err() {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            break false;
        }
    };
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(closed, "still draining a trickled 1 TB body after 15 s");
}

#[test]
fn protocol_corners_get_clear_answers() {
    let s = Server::start(SMALL);
    // Absolute form (RFC 9112 3.2.2), as a proxy client sends it.
    let r = raw(
        s.addr,
        b"GET http://localhost/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["recording"], false);
    // A byte outside ASCII in a header: 400 with a reason, not a silent close.
    let r = raw(
        s.addr,
        b"GET /status HTTP/1.1\r\nHost: localhost\r\nX-Name: caf\xc3\xa9\r\n\r\n",
    );
    assert_json_error(&r, 400, "non-ASCII header");
    // HTTP/2 over cleartext: refused at once, not after the idle timeout.
    let t0 = Instant::now();
    let r = raw(s.addr, b"GET /status HTTP/2.0\r\nHost: localhost\r\n\r\n");
    assert_json_error(&r, 505, "HTTP/2.0");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "505 took {:?}",
        t0.elapsed()
    );
    let r = raw(s.addr, b"GARBAGE\r\n\r\n");
    assert_json_error(&r, 400, "no request line");
    // Against the schema: a null duration and any download= value.
    let r = request(
        s.addr,
        "POST",
        "/start",
        &[("Content-Type", "application/json")],
        br#"{"max_duration_sec": null}"#,
    );
    assert_json_error(&r, 400, "null max_duration_sec");
    let r = s.get("/last?download=yes");
    assert_json_error(&r, 400, "download=yes");
    assert_json_error(&s.get("/last?download=1"), 404, "no clip yet");
}
