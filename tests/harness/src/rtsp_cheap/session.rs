//! One client connection of the cheap camera: its RTSP requests, and once
//! it plays, a sender thread pacing the stream to it over UDP (or
//! interleaved on the connection) until the session ends, expires or the
//! camera stops.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;

use super::stream::{self, AccessUnit};
use super::{CheapOptions, Sdp, Shared};

/// Where a session's packets go.
enum Dest {
    /// From the camera's RTP socket to the client's RTP port.
    Udp(UdpSocket, SocketAddr),
    /// Interleaved on the RTSP connection, on this channel.
    Tcp(u8),
}

struct Session {
    id: u64,
    ssrc: u32,
    dest: Option<Dest>,
    refreshed: Mutex<Instant>,
    ended: AtomicBool,
}

/// A request: method, URI and headers (names lower-cased).
struct Request {
    method: String,
    uri: String,
    headers: HashMap<String, String>,
}

fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    // Interleaved data from the client (RTCP) comes between requests.
    loop {
        let buf = r.fill_buf()?;
        match buf.first() {
            None => return Ok(None),
            Some(b'$') => {
                let mut head = [0u8; 4];
                r.read_exact(&mut head)?;
                let len = u64::from(u16::from_be_bytes([head[2], head[3]]));
                std::io::copy(&mut r.take(len), &mut std::io::sink())?;
            }
            Some(b'\r' | b'\n') => r.consume(1),
            Some(_) => break,
        }
    }
    if r.take(8192).read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let uri = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if r.take(8192).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Ok(Some(Request {
        method,
        uri,
        headers,
    }))
}

/// The SDP for these options, with the stream's own SPS and PPS.
fn sdp(opts: &CheapOptions, aus: &[AccessUnit]) -> String {
    let b64 = |n: &[u8]| base64::engine::general_purpose::STANDARD.encode(n);
    let find = |t: u8| {
        aus[0]
            .nals
            .iter()
            .find(|n| stream::nal_type(n) == t)
            .cloned()
            .unwrap_or_default()
    };
    let (sps, pps) = (find(7), find(8));
    let profile: String = sps
        .iter()
        .skip(1)
        .take(3)
        .map(|b| format!("{b:02X}"))
        .collect();
    let fmtp = match opts.sdp {
        Sdp::TrailingSemicolon => format!(
            "a=fmtp:96 packetization-mode=1;profile-level-id={profile};\
             sprop-parameter-sets={},{};\r\n",
            b64(&sps),
            b64(&pps)
        ),
        Sdp::NoSprop => format!("a=fmtp:96 packetization-mode=1;profile-level-id={profile};\r\n"),
        Sdp::NoFmtp => String::new(),
    };
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cheap camera\r\nt=0 0\r\n\
         m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\n{fmtp}\
         a=control:track1\r\n"
    )
}

/// A pair of UDP sockets on consecutive ports (RTP even, RTCP above it):
/// the client connects its sockets to both and sends to them first.
fn udp_pair() -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..100 {
        let rtp = UdpSocket::bind("127.0.0.1:0")?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
            return Ok((rtp, rtcp));
        }
    }
    Err(std::io::Error::other("no free UDP port pair"))
}

pub(super) fn serve(
    conn: TcpStream,
    opts: &CheapOptions,
    shared: &Arc<Shared>,
    stop: &Arc<AtomicBool>,
) {
    let _ = conn.set_nodelay(true);
    let Ok(aus) = stream::stream() else { return };
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let peer = conn.peer_addr().map(|a| a.ip());
    let mut r = BufReader::new(read_half);
    let w = Arc::new(Mutex::new(conn));
    let mut session: Option<Arc<Session>> = None;
    // The RTCP socket is kept open for the session (the client sends to it).
    let mut _rtcp = None;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(req)) = read_request(&mut r) else {
            break;
        };
        let cseq = req
            .headers
            .get("cseq")
            .cloned()
            .unwrap_or_else(|| "0".into());
        let sid = session.as_ref().map_or(0, |s| s.id);
        let ours = session.as_ref().is_some_and(|s| {
            req.headers
                .get("session")
                .is_some_and(|h| h.split(';').next() == Some(&s.id.to_string()))
        });
        let mut status = "200 OK";
        let mut extra = String::new();
        let mut body = String::new();
        let mut refreshed = false;
        match req.method.as_str() {
            "OPTIONS" => {
                extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n".into()
            }
            "DESCRIBE" => {
                body = sdp(opts, aus);
                extra = format!(
                    "Content-Base: {}/\r\nContent-Type: application/sdp\r\n",
                    req.uri.trim_end_matches('/')
                );
            }
            "SETUP" => {
                let t = req.headers.get("transport").cloned().unwrap_or_default();
                let id = shared.sessions.load(Ordering::Relaxed) + 1000 + u64::from(rand16());
                let ssrc = 0x5EED_0000u32 | u32::from(rand16());
                let params = t.split(';');
                if t.contains("TCP") || t.contains("interleaved") {
                    if opts.udp_only {
                        status = "461 Unsupported Transport";
                    } else {
                        let ch = params
                            .filter_map(|p| p.strip_prefix("interleaved="))
                            .next()
                            .and_then(|c| c.split('-').next()?.parse().ok())
                            .unwrap_or(0u8);
                        extra = format!(
                            "Transport: RTP/AVP/TCP;unicast;interleaved={ch}-{};ssrc={ssrc:08X}\r\n",
                            ch + 1
                        );
                        session = Some(new_session(id, ssrc, Dest::Tcp(ch)));
                    }
                } else {
                    let client: Option<u16> = params
                        .filter_map(|p| p.strip_prefix("client_port="))
                        .next()
                        .and_then(|c| c.split('-').next()?.parse().ok());
                    match (client, peer.as_ref().ok(), udp_pair()) {
                        (Some(cp), Some(&ip), Ok((rtp, rtcp))) => {
                            let sp = rtp.local_addr().map_or(0, |a| a.port());
                            extra = format!(
                                "Transport: RTP/AVP;unicast;client_port={cp}-{};server_port={sp}-{};\
                                 ssrc={ssrc:08X}\r\n",
                                cp + 1,
                                sp + 1
                            );
                            _rtcp = Some(rtcp);
                            session = Some(new_session(
                                id,
                                ssrc,
                                Dest::Udp(rtp, SocketAddr::new(ip, cp)),
                            ));
                        }
                        _ => status = "400 Bad Request",
                    }
                }
                if let Some(s) = session.as_ref().filter(|_| status.starts_with("200")) {
                    extra.push_str(&format!(
                        "Session: {};timeout={}\r\n",
                        s.id, opts.timeout_sec
                    ));
                }
            }
            "PLAY" if ours => {
                let s = session.clone().expect("ours");
                *s.refreshed.lock().unwrap() = Instant::now();

                extra = format!(
                    "Session: {}\r\nRange: npt=0.000-\r\nRTP-Info: url={};seq=1;rtptime=0\r\n",
                    s.id, req.uri
                );
                respond(&w, status, &cseq, &extra, "");
                shared.note(s.id, "PLAY", true);
                shared.sessions.fetch_add(1, Ordering::Relaxed);
                let (shared, stop, w, opts) =
                    (shared.clone(), stop.clone(), w.clone(), opts.clone());
                std::thread::spawn(move || send(&s, aus, &opts, &w, &shared, &stop));
                continue;
            }
            "GET_PARAMETER" if ours => {
                if let Some(s) = &session {
                    *s.refreshed.lock().unwrap() = Instant::now();
                }
                refreshed = true;
                extra = format!("Session: {sid}\r\n");
            }
            "TEARDOWN" if ours => {
                if let Some(s) = session.take() {
                    s.ended.store(true, Ordering::Relaxed);
                }
            }
            "PLAY" | "GET_PARAMETER" | "TEARDOWN" => status = "454 Session Not Found",
            _ => status = "405 Method Not Allowed",
        }
        shared.note(sid, &format!("{} {}", req.method, &status[..3]), refreshed);
        if !respond(&w, status, &cseq, &extra, &body) {
            break;
        }
    }
    if let Some(s) = session {
        s.ended.store(true, Ordering::Relaxed);
    }
}

fn new_session(id: u64, ssrc: u32, dest: Dest) -> Arc<Session> {
    Arc::new(Session {
        id,
        ssrc,
        dest: Some(dest),
        refreshed: Mutex::new(Instant::now()),
        ended: AtomicBool::new(false),
    })
}

fn respond(w: &Mutex<TcpStream>, status: &str, cseq: &str, extra: &str, body: &str) -> bool {
    let msg = format!(
        "RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: cheap-camera/1.0\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    w.lock().unwrap().write_all(msg.as_bytes()).is_ok()
}

/// Some bits that differ between sessions (ids, SSRCs).
fn rand16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.subsec_nanos() ^ (t.subsec_nanos() >> 16)) as u16
}

/// Sends the stream from `opts.start_frame` (the middle of that picture's
/// fragments) in real time, less a packet a GOP at `opts.lose_at`, until
/// the session ends, expires or the camera stops.
fn send(
    s: &Session,
    aus: &[AccessUnit],
    opts: &CheapOptions,
    w: &Mutex<TcpStream>,
    shared: &Shared,
    stop: &AtomicBool,
) {
    let (start, lose_at) = (opts.start_frame, opts.lose_at);
    let timeout = std::time::Duration::from_secs(u64::from(opts.timeout_sec));
    let t0 = Instant::now();
    let ticks = 90_000 / stream::FPS;
    let (mut seq, ts0) = (1u16, 0u32);
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) || s.ended.load(Ordering::Relaxed) {
            return;
        }
        if s.refreshed.lock().unwrap().elapsed() > timeout {
            shared.note(s.id, "EXPIRED", false);
            s.ended.store(true, Ordering::Relaxed);
            let _ = w.lock().unwrap().shutdown(std::net::Shutdown::Both);
            return;
        }
        let due = t0 + stream::interval() * u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let au = &aus[(start + n as usize) % aus.len()];
        let mut packets = if opts.in_band {
            stream::packetize(au)
        } else {
            let nals = au
                .nals
                .iter()
                .filter(|n| !matches!(stream::nal_type(n), 7 | 8));
            stream::packetize(&AccessUnit {
                nals: nals.cloned().collect(),
                idr: au.idr,
            })
        };
        if n == 0 {
            // Joined mid-picture: the first packet is a middle fragment.
            packets.drain(..packets.len() / 2);
            if let Some((p, _)) = packets.first() {
                shared.first_packets.lock().unwrap().push([p[0], p[1]]);
            }
        }
        let ts = ts0.wrapping_add((n as u32).wrapping_mul(ticks));
        let frame = (start + n as usize) % aus.len();
        let lose = lose_at
            .filter(|&l| n > 0 && frame % stream::KEY_INT == l)
            .map(|_| packets.len() / 2);
        for (i, (payload, marker)) in packets.into_iter().enumerate() {
            let pkt = stream::rtp(&payload, marker, seq, ts, s.ssrc);
            seq = seq.wrapping_add(1);
            if lose == Some(i) {
                shared.lost.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let sent = match &s.dest {
                Some(Dest::Udp(sock, to)) => sock.send_to(&pkt, to).is_ok(),
                Some(Dest::Tcp(ch)) => {
                    let len = (pkt.len() as u16).to_be_bytes();
                    let framed = [&[b'$', *ch, len[0], len[1]][..], &pkt].concat();
                    w.lock().unwrap().write_all(&framed).is_ok()
                }
                None => false,
            };
            if !sent {
                return;
            }
        }
        shared.frames.fetch_add(1, Ordering::Relaxed);
    }
}
