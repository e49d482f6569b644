//! The cheap camera checked with a raw client of our own: what it announces,
//! refuses and sends, and that it really drops a session only an OPTIONS
//! kept (so the product's tests against it can fail).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::*;

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
    cseq: u32,
    url: String,
}

impl Client {
    fn new(cam: &CheapCamera) -> Client {
        let w = TcpStream::connect(cam.addr).unwrap();
        w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client {
            w,
            r,
            cseq: 0,
            url: cam.url(),
        }
    }

    /// Status, headers and body of the answer (`None`: closed).
    fn ask(&mut self, method: &str, extra: &str) -> Option<(u16, String, String)> {
        self.cseq += 1;
        let uri = if method == "SETUP" {
            format!("{}/track1", self.url)
        } else {
            self.url.clone()
        };
        let req = format!(
            "{method} {uri} RTSP/1.0\r\nCSeq: {}\r\n{extra}\r\n",
            self.cseq
        );
        self.w.write_all(req.as_bytes()).ok()?;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let status = head.get(9..12)?.parse().ok()?;
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).ok()?;
        Some((status, head, String::from_utf8_lossy(&body).into()))
    }
}

fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or("")
}

#[test]
fn refuses_tcp_sends_fragments_from_mid_picture_and_drops_an_unrefreshed_session() {
    let Some(cam) = CheapCamera::start(CheapOptions {
        timeout_sec: 2,
        ..Default::default()
    }) else {
        return;
    };
    let mut c = Client::new(&cam);
    let (st, _, sdp) = c.ask("DESCRIBE", "Accept: application/sdp\r\n").unwrap();
    assert_eq!(st, 200);
    let fmtp = sdp.lines().find(|l| l.starts_with("a=fmtp:")).unwrap();
    assert!(fmtp.ends_with(';') && !fmtp.contains("sprop"), "{sdp}");
    let tcp = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
    assert_eq!(c.ask("SETUP", tcp).unwrap().0, 461);
    let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
    rtp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = rtp.local_addr().unwrap().port();
    let udp = format!(
        "Transport: RTP/AVP;unicast;client_port={port}-{}\r\n",
        port + 1
    );
    let (st, head, _) = c.ask("SETUP", &udp).unwrap();
    assert_eq!(st, 200, "{head}");
    assert!(
        header(&head, "Transport").contains("server_port="),
        "{head}"
    );
    let session = header(&head, "Session").to_string();
    assert!(session.ends_with(";timeout=2"), "{head}");
    let id = session.split(';').next().unwrap().to_string();
    let played = Instant::now();
    assert_eq!(c.ask("PLAY", &format!("Session: {id}\r\n")).unwrap().0, 200);
    // The first packet: an FU-A middle fragment (neither start nor end) of
    // a picture that is not an IDR; then whole pictures, marked at their end.
    let mut buf = [0u8; 2048];
    let n = rtp.recv(&mut buf).unwrap();
    assert_eq!((buf[12] & 0x1f, buf[13] & 0xc0, buf[13] & 0x1f), (28, 0, 1));
    assert!(n <= 12 + stream::MTU_PAYLOAD);
    assert_eq!(cam.first_packets(), [[buf[12], buf[13]]]);
    let (mut marks, mut last_ts) = (0, u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]));
    while marks < 40 {
        let n = rtp.recv(&mut buf).unwrap();
        assert!(n <= 12 + stream::MTU_PAYLOAD);
        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        assert!(ts >= last_ts, "timestamps go forward");
        last_ts = ts;
        marks += usize::from(buf[1] & 0x80 != 0);
    }
    // Only OPTIONS from now on: the session is dropped at its timeout.
    while c.ask("OPTIONS", &format!("Session: {id}\r\n")).is_some() {
        assert!(played.elapsed() < Duration::from_secs(6), "{}", cam.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    let gone = played.elapsed();
    assert!(
        gone >= Duration::from_secs(2) && gone < Duration::from_secs(3),
        "closed after {gone:?}:\n{}",
        cam.log()
    );
    let ev = cam.events();
    assert!(ev.iter().any(|e| e.what == "EXPIRED"), "{}", cam.log());
    assert!(
        ev.iter()
            .filter(|e| e.what.starts_with("OPTIONS"))
            .all(|e| !e.refreshed)
    );
    // Whatever was in flight, nothing more comes.
    rtp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while rtp.recv(&mut buf).is_ok() {}
    assert!(rtp.recv(&mut buf).is_err(), "still sending after the drop");
}

#[test]
fn get_parameter_keeps_a_session_and_a_restart_takes_the_same_port() {
    let Some(mut cam) = CheapCamera::start(CheapOptions {
        timeout_sec: 2,
        udp_only: false,
        sdp: Sdp::TrailingSemicolon,
        ..Default::default()
    }) else {
        return;
    };
    let mut c = Client::new(&cam);
    let (_, _, sdp) = c.ask("DESCRIBE", "").unwrap();
    assert!(
        sdp.contains(";sprop-parameter-sets=Z") && sdp.contains("=;\r\n"),
        "{sdp}"
    );
    let tcp = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n";
    let (st, head, _) = c.ask("SETUP", tcp).unwrap();
    assert_eq!(st, 200, "{head}");
    let id = header(&head, "Session")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // PLAY's answer, then interleaved packets and answers mixed: only the
    // answers' status lines are looked for here.
    c.ask("PLAY", &format!("Session: {id}\r\n")).unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(900));
        c.cseq += 1;
        let req = format!(
            "GET_PARAMETER {} RTSP/1.0\r\nCSeq: {}\r\nSession: {id}\r\n\r\n",
            c.url, c.cseq
        );
        c.w.write_all(req.as_bytes()).unwrap();
    }
    assert!(
        !cam.events().iter().any(|e| e.what == "EXPIRED"),
        "{}",
        cam.log()
    );
    assert!(
        cam.frames_sent() >= 120,
        "{} frames in 5 s",
        cam.frames_sent()
    );
    let port = cam.port();
    cam.restart();
    assert_eq!(cam.port(), port);
    let mut c = Client::new(&cam);
    assert_eq!(c.ask("OPTIONS", "").unwrap().0, 200);
}
