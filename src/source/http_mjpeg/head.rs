//! HTTP/1.1 on the wire: the request, the answer's status line and headers
//! (bounded in size and count), header parameters, and chunked transfer
//! coding (Go's and Python's servers stream multipart that way).

use super::multipart::{printable, printable_max};

/// Most characters of a reason phrase shown (`503 Service Unavailable`):
/// what a camera writes there goes into `/status` and the log.
pub const REASON_MAX: usize = 40;
/// Most header lines in an answer.
pub const HEADERS_MAX: usize = 100;

/// The GET for `target`, with an `Authorization` value when one is due.
pub fn request(target: &str, host: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut r = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: video-recorder\r\n\
         Accept: multipart/x-mixed-replace, image/jpeg\r\nConnection: close\r\n"
    );
    if let Some(a) = authorization {
        r.push_str(&format!("Authorization: {a}\r\n"));
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// The answer's status line and headers.
pub struct Head {
    pub status: u16,
    /// The reason phrase, made printable and short.
    pub reason: String,
    /// Names lower-cased, in order, repeated ones kept.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `404 Not Found`.
    pub fn status_text(&self) -> String {
        format!("{} {}", self.status, self.reason)
            .trim()
            .to_string()
    }
}

/// Where the head ends in `data` (after its blank line), if it is there.
pub fn head_end(data: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') {
        let next = pos + nl + 1;
        if data[next..].starts_with(b"\r\n") {
            return Some(next + 2);
        }
        if data[next..].starts_with(b"\n") {
            return Some(next + 1);
        }
        pos = next;
    }
    None
}

/// Parses a head that [`head_end`] delimited.
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let not_http = || {
        format!(
            "the answer is not HTTP (it starts {:?})",
            printable(&status_line.chars().take(40).collect::<String>())
        )
    };
    let (version, rest) = status_line.split_once(' ').ok_or_else(not_http)?;
    if !version.starts_with("HTTP/1.") {
        return Err(not_http());
    }
    let (code, reason) = rest
        .trim_start()
        .split_once(' ')
        .unwrap_or((rest.trim(), ""));
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(not_http)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            // An obsolete folded line continues the previous header.
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if headers.len() == HEADERS_MAX {
            return Err(format!("the answer has more than {HEADERS_MAX} headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "bad header line in the answer: {:?}",
                printable(line)
            ));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Head {
        status,
        reason: printable_max(reason, REASON_MAX),
        headers,
    })
}

/// Splits `value` at `sep` outside quoted strings.
pub fn split_outside_quotes(value: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// A parameter value: a token as is, or a quoted string unquoted.
pub fn unquote(v: &str) -> String {
    let v = v.trim();
    let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// A media type and its parameters: `multipart/x-mixed-replace;
/// boundary="a;b"` gives `("multipart/x-mixed-replace", [("boundary", "a;b")])`.
pub fn media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = split_outside_quotes(value, ';').into_iter();
    let kind = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), unquote(v)))
        .collect();
    (kind, params)
}

/// Longest chunk-size line (size, extensions).
const CHUNK_LINE_MAX: usize = 1024;

#[derive(Debug, PartialEq)]
enum Chunk {
    Size,
    Data(usize),
    DataEnd,
    Done,
}

/// Removes chunked transfer coding, incrementally.
pub struct Dechunk {
    state: Chunk,
    line: Vec<u8>,
}

impl Dechunk {
    pub fn new() -> Dechunk {
        Dechunk {
            state: Chunk::Size,
            line: Vec::new(),
        }
    }

    /// True after the last (zero-size) chunk: the body has ended.
    pub fn done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Decodes all of `input`, appending the payload to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        while !input.is_empty() {
            match self.state {
                Chunk::Size | Chunk::DataEnd => {
                    let nl = input.iter().position(|&b| b == b'\n');
                    let take = nl.map_or(input.len(), |i| i + 1);
                    self.line.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if self.line.len() > CHUNK_LINE_MAX {
                        return Err("bad chunked coding: chunk line too long".into());
                    }
                    if nl.is_none() {
                        continue;
                    }
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    if self.state == Chunk::DataEnd {
                        if !line.is_empty() {
                            return Err("bad chunked coding: no CRLF after a chunk".into());
                        }
                        self.state = Chunk::Size;
                        continue;
                    }
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| {
                        format!("bad chunked coding: chunk size {:?}", printable(hex))
                    })?;
                    self.state = if size == 0 {
                        Chunk::Done
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let n = left.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left - n)
                    };
                }
                Chunk::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_request() {
        let r = String::from_utf8(request("/s?x=1", "cam:81", Some("Basic eA=="))).unwrap();
        assert_eq!(
            r,
            "GET /s?x=1 HTTP/1.1\r\nHost: cam:81\r\nUser-Agent: video-recorder\r\n\
             Accept: multipart/x-mixed-replace, image/jpeg\r\nConnection: close\r\n\
             Authorization: Basic eA==\r\n\r\n"
        );
    }

    #[test]
    fn parses_status_and_headers() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"a\"\r\n\
                    www-authenticate: Basic\r\n  realm=\"b\"\r\nX:\r\n\r\nbody";
        let end = head_end(raw).unwrap();
        assert_eq!(&raw[end..], b"body");
        let h = parse_head(&raw[..end]).unwrap();
        assert_eq!(h.status_text(), "401 Unauthorized");
        let auth: Vec<&str> = h.all("www-authenticate").collect();
        assert_eq!(auth, ["Digest realm=\"a\"", "Basic realm=\"b\""]);
        assert_eq!(h.get("x"), Some(""));
        let long = format!("HTTP/1.1 500 {}\r\n\r\n", "x".repeat(5000));
        let h = parse_head(long.as_bytes()).unwrap();
        assert_eq!(
            h.reason.chars().count(),
            REASON_MAX + 1,
            "cut short, with …"
        );
        let h = parse_head(b"HTTP/1.0 200\n\n").unwrap();
        assert_eq!((h.status, h.status_text().as_str()), (200, "200"));
        assert_eq!(head_end(b"HTTP/1.0 200 OK\n\nx"), Some(17));
        assert_eq!(head_end(b"HTTP/1.0 200 OK\r\nA: b\r\n"), None);
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err());
        }
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "A: b\r\n".repeat(HEADERS_MAX + 1)
        );
        assert!(
            parse_head(many.as_bytes())
                .err()
                .unwrap()
                .contains("more than 100")
        );
    }

    #[test]
    fn parses_media_type_parameters() {
        let (t, p) =
            media_type("Multipart/X-Mixed-Replace ; Boundary=\"odd;bound \\\"ary\\\"\"; x=1");
        assert_eq!(t, "multipart/x-mixed-replace");
        assert_eq!(p[0], ("boundary".into(), "odd;bound \"ary\"".into()));
        assert_eq!(p[1], ("x".into(), "1".into()));
        let (_, p) = media_type("multipart/x-mixed-replace;boundary=--myboundary");
        assert_eq!(p[0].1, "--myboundary");
    }

    #[test]
    fn removes_chunked_coding_in_any_split() {
        let coded = b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n";
        for step in [1, 2, 5, coded.len()] {
            let mut d = Dechunk::new();
            let mut out = Vec::new();
            for c in coded.chunks(step) {
                d.feed(c, &mut out).unwrap();
            }
            assert_eq!(out, b"hello world!", "step {step}");
            assert!(d.done());
        }
        let mut out = Vec::new();
        assert!(Dechunk::new().feed(b"zz\r\n", &mut out).is_err());
        assert!(Dechunk::new().feed(b"1\r\nab\r\n", &mut out).is_err());
        assert!(Dechunk::new().feed(&[b'1'; 2000], &mut out).is_err());
    }
}
