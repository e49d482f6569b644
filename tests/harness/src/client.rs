//! A small HTTP/1.1 client of our own, and a real MJPEG client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Like `request`, but a refused or broken connection is an error, not a panic.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let s = TcpStream::connect(addr)?;
    exchange(s, addr, method, path, headers, body)
}

/// Like `try_request`, from a given local address (any of 127.0.0.0/8 on
/// loopback): several clients on one machine.
pub fn request_from(
    src: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let s = connect_from(src, addr)?;
    exchange(s, addr, method, path, headers, b"")
}

/// A TCP connection to `addr` whose local end is bound to `src`.
pub fn connect_from(src: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    use std::os::fd::FromRawFd;
    let (std::net::IpAddr::V4(src), SocketAddr::V4(dst)) = (src, addr) else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a new socket we own, bound and connected with sized addresses;
    // closed on error, else handed to TcpStream, which owns it from then on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let local = sin(src, 0);
        let remote = sin(*dst.ip(), dst.port());
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0
            || libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0
        {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}

fn exchange(
    mut s: TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    if find(&raw, b"\r\n\r\n").is_none() {
        return Err(std::io::Error::other("no complete answer"));
    }
    Ok(parse_response(&raw))
}

pub fn parse_response(raw: &[u8]) -> Response {
    let end = find(raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size_str = String::from_utf8_lossy(&data[..eol]);
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A part of the MJPEG stream as a real client sees it.
pub struct Part {
    pub jpeg: Vec<u8>,
    pub timestamp: f64,
}

/// A real MJPEG client: parses `multipart/x-mixed-replace` by boundary and
/// `Content-Length`, as browsers and ffmpeg do.
pub struct MjpegClient {
    reader: BufReader<TcpStream>,
    boundary: String,
    pub content_type: String,
}

impl MjpegClient {
    pub fn connect(addr: SocketAddr, path: &str) -> Result<MjpegClient, Response> {
        MjpegClient::connect_with(addr, path, &[])
    }

    pub fn connect_with(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<MjpegClient, Response> {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes()).unwrap();
        let mut reader = BufReader::new(s);
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read head");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let status: u16 = head[0].split_whitespace().nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = head[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if status != 200 {
            let mut body = Vec::new();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            body.resize(len, 0);
            let _ = reader.read_exact(&mut body);
            return Err(Response {
                status,
                headers,
                body,
            });
        }
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .expect("content-type");
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .expect("boundary")
            .trim_matches('"')
            .to_string();
        Ok(MjpegClient {
            reader,
            boundary,
            content_type,
        })
    }

    /// Reads the next part: skips to the boundary line, then headers, then body.
    pub fn next_part(&mut self) -> std::io::Result<Part> {
        let marker = format!("--{}", self.boundary);
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.trim_end() == marker {
                break;
            }
        }
        let mut len = None;
        let mut ts = f64::NAN;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("x-timestamp") {
                    ts = v.trim().parse().unwrap_or(f64::NAN);
                }
            }
        }
        let len = len.expect("part without Content-Length");
        let mut jpeg = vec![0; len];
        self.reader.read_exact(&mut jpeg)?;
        Ok(Part {
            jpeg,
            timestamp: ts,
        })
    }
}

/// A `live.mp4` response read as a player would: its top-level boxes, one
/// by one, as they arrive.
pub struct LiveMp4(BufReader<TcpStream>);

impl LiveMp4 {
    /// Opens `path` and reads the status line (200 asserted) and headers.
    pub fn open(addr: SocketAddr, path: &str) -> LiveMp4 {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(c, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut r = BufReader::new(c);
        let mut line = String::new();
        r.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "{path}: {line}");
        while line != "\r\n" && !line.is_empty() {
            line.clear();
            r.read_line(&mut line).expect("headers");
        }
        LiveMp4(r)
    }

    /// The next box's type; its body is read and dropped.
    pub fn next_box(&mut self) -> std::io::Result<String> {
        self.next_box_of(None).map(|(t, _)| t)
    }

    /// The next box's type and, when it is of type `keep`, its body.
    pub fn next_box_of(&mut self, keep: Option<&str>) -> std::io::Result<(String, Vec<u8>)> {
        let mut head = [0u8; 8];
        self.0.read_exact(&mut head)?;
        let size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if size < 8 {
            return Err(std::io::Error::other(format!("a box of {size} bytes")));
        }
        let kind = String::from_utf8_lossy(&head[4..]).into_owned();
        let mut body = Vec::new();
        if keep == Some(kind.as_str()) {
            (&mut self.0).take(size - 8).read_to_end(&mut body)?;
        } else {
            std::io::copy(&mut (&mut self.0).take(size - 8), &mut std::io::sink())?;
        }
        Ok((kind, body))
    }
}
