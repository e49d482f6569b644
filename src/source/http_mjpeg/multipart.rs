//! The body of a `multipart/x-mixed-replace` answer, split into parts as
//! bytes arrive. Pure (no I/O), so every quirk is unit-tested: parts with
//! and without `Content-Length`, a boundary named with or without its
//! leading `--`, preambles and stray CRLFs, bounded part headers and sizes.

/// Longest part header block (the lines between a boundary and the body).
const PART_HEAD_MAX: usize = 8 * 1024;
/// Most header lines in one part.
const PART_HEADERS_MAX: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Looking for the next boundary line (skipping CRLFs, preambles and
    /// whatever a wrong `Content-Length` left over).
    Delimiter,
    /// Reading the part's header lines.
    Head,
    /// Reading the body: exactly this many bytes, or up to the next boundary.
    Body(Option<usize>),
}

pub struct Multipart {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    at: usize,
    /// The boundary lines accepted: `--` + boundary, and the boundary itself
    /// when it was named with a leading `--` (cameras disagree on that).
    delims: Vec<Vec<u8>>,
    cap: usize,
    state: State,
    /// In a body without length: how far it was already searched.
    scanned: usize,
    /// Bytes skipped while looking for a boundary.
    skipped: usize,
    /// Whether the unconsumed bytes start a line (a boundary line must).
    line_start: bool,
}

/// What went wrong; the caller adds which camera.
pub type Error = String;

impl Multipart {
    pub fn new(boundary: &str, cap: usize) -> Multipart {
        let mut delims = vec![format!("--{boundary}").into_bytes()];
        if boundary.starts_with("--") && boundary.len() > 2 {
            delims.push(boundary.as_bytes().to_vec());
        }
        Multipart {
            buf: Vec::new(),
            at: 0,
            delims,
            cap,
            state: State::Delimiter,
            scanned: 0,
            skipped: 0,
            line_start: true,
        }
    }

    /// Appends bytes received from the camera.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.at > 0 && (self.at == self.buf.len() || self.at >= self.buf.len() / 2) {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Buffered bytes not yet handed out (tests check nothing piles up).
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.at
    }

    /// The next whole part's body, `None` until more bytes are needed.
    pub fn next_part(&mut self) -> Result<Option<Vec<u8>>, Error> {
        loop {
            let data = &self.buf[self.at..];
            match self.state {
                State::Delimiter => match self.find_delimiter(data, 0)? {
                    Found::At(i, line) => {
                        self.at += i + line;
                        self.skipped = 0;
                        self.state = State::Head;
                    }
                    Found::NeedMore(drop) => {
                        if drop > 0 {
                            self.line_start = data[drop - 1] == b'\n';
                        }
                        self.at += drop;
                        self.skipped += drop;
                        if self.skipped > self.cap {
                            return Err(format!(
                                "no boundary line ({}) in {} bytes: not an MJPEG stream?",
                                String::from_utf8_lossy(&self.delims[0]),
                                self.skipped
                            ));
                        }
                        return Ok(None);
                    }
                },
                State::Head => match parse_part_head(data, self.cap)? {
                    Some((len, consumed)) => {
                        self.at += consumed;
                        self.scanned = 0;
                        self.line_start = true;
                        self.state = State::Body(len);
                    }
                    None => return Ok(None),
                },
                State::Body(Some(len)) => {
                    if data.len() < len {
                        return Ok(None);
                    }
                    let part = data[..len].to_vec();
                    self.at += len;
                    self.line_start = true;
                    self.state = State::Delimiter;
                    return Ok(Some(part));
                }
                State::Body(None) => {
                    let from = self.scanned;
                    match self.find_delimiter(data, from)? {
                        Found::At(i, _) => {
                            // The CRLF before the boundary belongs to it.
                            let mut end = i;
                            if end > 0 && data[end - 1] == b'\n' {
                                end -= 1;
                                if end > 0 && data[end - 1] == b'\r' {
                                    end -= 1;
                                }
                            }
                            if end > self.cap {
                                return Err(cap_error(&end.to_string(), self.cap));
                            }
                            let part = data[..end].to_vec();
                            self.at += i;
                            self.line_start = true;
                            self.state = State::Delimiter;
                            return Ok(Some(part));
                        }
                        Found::NeedMore(upto) => {
                            if upto > self.cap {
                                return Err(cap_error(&format!("more than {upto}"), self.cap));
                            }
                            self.scanned = upto;
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    /// The first boundary line at or after `from` in `data`: its offset and
    /// the length of the whole line. A close delimiter (`--boundary--`) is
    /// the end of the stream, an error for a source that should go on.
    fn find_delimiter(&self, data: &[u8], from: usize) -> Result<Found, Error> {
        let longest = self.delims.iter().map(Vec::len).max().unwrap_or(0);
        let mut i = from;
        while let Some(off) = data[i..].iter().position(|&b| b == b'-') {
            let at = i + off;
            i = at + 1;
            let starts_line = if at == 0 {
                self.line_start
            } else {
                data[at - 1] == b'\n'
            };
            if !starts_line {
                continue;
            }
            for d in &self.delims {
                let rest = &data[at..];
                if rest.len() < d.len() {
                    if d.starts_with(rest) {
                        return Ok(Found::NeedMore(at));
                    }
                    continue;
                }
                if !rest.starts_with(d) {
                    continue;
                }
                match line_end(&rest[d.len()..]) {
                    LineEnd::Close => {
                        return Err("the camera ended the stream (closing boundary)".into());
                    }
                    LineEnd::At(n) => return Ok(Found::At(at, d.len() + n)),
                    LineEnd::NeedMore => return Ok(Found::NeedMore(at)),
                    LineEnd::NotADelimiter => {}
                }
            }
        }
        // Keep a tail that may be the start of a boundary line.
        Ok(Found::NeedMore(
            data.len().saturating_sub(longest + 1).max(from),
        ))
    }
}

enum Found {
    /// A boundary line starts here and is this long (with its line end).
    At(usize, usize),
    /// None yet; bytes before this offset can go.
    NeedMore(usize),
}

enum LineEnd {
    At(usize),
    Close,
    NeedMore,
    NotADelimiter,
}

/// What follows the boundary string: optional blanks, then the line end.
fn line_end(rest: &[u8]) -> LineEnd {
    if rest.starts_with(b"--") {
        return LineEnd::Close;
    }
    let blanks = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    match &rest[blanks..] {
        [] | [b'\r'] | [b'-'] => LineEnd::NeedMore,
        [b'\n', ..] => LineEnd::At(blanks + 1),
        [b'\r', b'\n', ..] => LineEnd::At(blanks + 2),
        _ => LineEnd::NotADelimiter,
    }
}

/// Parses the part's header lines: `Some((content_length, bytes))` once the
/// blank line ending them is in `data`. A JPEG right after the boundary line
/// (some cameras send no headers and no blank line) starts the body.
fn parse_part_head(data: &[u8], cap: usize) -> Result<Option<(Option<usize>, usize)>, Error> {
    if data.starts_with(&[0xFF, 0xD8]) {
        return Ok(Some((None, 0)));
    }
    let mut len = None;
    let mut pos = 0;
    for _ in 0..=PART_HEADERS_MAX {
        let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
            if data.len() > PART_HEAD_MAX {
                return Err(format!("part headers longer than {PART_HEAD_MAX} bytes"));
            }
            return Ok(None);
        };
        let line = &data[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if pos > PART_HEAD_MAX {
            return Err(format!("part headers longer than {PART_HEAD_MAX} bytes"));
        }
        if line.is_empty() {
            return Ok(Some((len, pos)));
        }
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("part has a bad Content-Length {:?}", printable(value)))?;
            if n > cap {
                return Err(cap_error(&n.to_string(), cap));
            }
            len = Some(n);
        }
    }
    Err(format!(
        "part has more than {PART_HEADERS_MAX} header lines"
    ))
}

fn cap_error(size: &str, cap: usize) -> Error {
    let cap = if cap.is_multiple_of(1 << 20) {
        format!("{} MiB", cap >> 20)
    } else {
        format!("{cap}-byte")
    };
    format!("part of {size} bytes exceeds the {cap} cap")
}

/// Text from the camera made safe for a log line: printable ASCII, short.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(80)
        .collect();
    if s.trim().chars().count() > 80 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(m: &mut Multipart, data: &[u8], step: usize) -> Result<Vec<Vec<u8>>, Error> {
        let mut out = Vec::new();
        for chunk in data.chunks(step) {
            m.extend(chunk);
            while let Some(p) = m.next_part()? {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn part(boundary: &str, body: &[u8], with_len: bool) -> Vec<u8> {
        let mut p = format!("--{boundary}\r\nContent-Type: image/jpeg\r\n").into_bytes();
        if with_len {
            p.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        p.extend_from_slice(b"\r\n");
        p.extend_from_slice(body);
        p.extend_from_slice(b"\r\n");
        p
    }

    const BODIES: [&[u8]; 3] = [
        b"\xFF\xD8first\r\n-- not a boundary\xFF\xD9",
        b"\xFF\xD8second\xFF\xD9",
        b"\xFF\xD8\r\n--fo\r\nthird\xFF\xD9",
    ];

    #[test]
    fn splits_parts_with_and_without_length_in_any_chunking() {
        for with_len in [true, false] {
            let mut stream = b"\r\n\r\npreamble text\r\n".to_vec();
            for b in BODIES {
                stream.extend_from_slice(&part("foo", b, with_len));
            }
            // The last part without length ends when the next boundary comes.
            stream.extend_from_slice(b"--foo\r\n");
            for step in [1, 2, 3, 7, 64, stream.len()] {
                let mut m = Multipart::new("foo", 1000);
                let got = feed_all(&mut m, &stream, step).unwrap();
                assert_eq!(got, BODIES, "with_len {with_len}, step {step}");
            }
        }
    }

    #[test]
    fn accepts_the_boundary_with_or_without_leading_dashes() {
        // Header says `--foo`; the camera writes `--foo` lines (the quirk)…
        let mut quirky = Vec::new();
        for b in BODIES {
            quirky.extend_from_slice(&part("foo", b, true));
        }
        let mut m = Multipart::new("--foo", 1000);
        assert_eq!(feed_all(&mut m, &quirky, 5).unwrap(), BODIES);
        // …or by the book, `----foo`.
        let mut strict = Vec::new();
        for b in BODIES {
            strict.extend_from_slice(&part("--foo", b, false));
        }
        strict.extend_from_slice(b"----foo\r\n");
        let mut m = Multipart::new("--foo", 1000);
        assert_eq!(feed_all(&mut m, &strict, 5).unwrap(), BODIES);
    }

    #[test]
    fn tolerates_bare_lf_blanks_missing_headers_and_wrong_lengths() {
        let mut s = b"--b  \n\n\xFF\xD8one\xFF\xD9\n--b\r\n\xFF\xD8two\xFF\xD9\r\n".to_vec();
        // Content-Length too short: the rest is skipped up to the boundary.
        s.extend_from_slice(b"--b\r\nContent-Length: 3\r\n\r\n\xFF\xD8three\r\n");
        s.extend_from_slice(b"--b\r\ncontent-length:  4 \r\n\r\n\xFF\xD8\xFF\xD9");
        let mut m = Multipart::new("b", 100);
        let got = feed_all(&mut m, &s, 1).unwrap();
        assert_eq!(
            got,
            vec![
                b"\xFF\xD8one\xFF\xD9".to_vec(),
                b"\xFF\xD8two\xFF\xD9".to_vec(),
                b"\xFF\xD8t".to_vec(),
                b"\xFF\xD8\xFF\xD9".to_vec(),
            ]
        );
        // `--bx` is not the boundary `b`.
        let mut m = Multipart::new("b", 100);
        let s = b"--b\r\n\r\nA\r\n--bx\r\nB\r\n--b\r\n";
        assert_eq!(
            feed_all(&mut m, s, 1).unwrap(),
            vec![b"A\r\n--bx\r\nB".to_vec()]
        );
    }

    #[test]
    fn caps_part_size_and_headers() {
        let big = vec![0xAB; 200];
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, &part("b", &big, true), 50).unwrap_err();
        assert_eq!(e, "part of 200 bytes exceeds the 100-byte cap");
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, &part("b", &big, false), 50).unwrap_err();
        assert!(
            e.starts_with("part of more than") && e.ends_with("100-byte cap"),
            "{e}"
        );
        // All of it at once, boundary included: still too big.
        let mut whole = part("b", &big, false);
        whole.extend_from_slice(b"--b\r\n");
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, &whole, whole.len()).unwrap_err();
        assert_eq!(e, "part of 200 bytes exceeds the 100-byte cap");
        assert!(cap_error("9000000", 8 << 20).ends_with("the 8 MiB cap"));
        let mut m = Multipart::new("b", 1 << 20);
        let mut s = b"--b\r\n".to_vec();
        s.extend(std::iter::repeat_n(b'x', PART_HEAD_MAX + 1));
        assert!(
            feed_all(&mut m, &s, 1000)
                .unwrap_err()
                .contains("part headers longer")
        );
        let mut m = Multipart::new("b", 1 << 20);
        let s = format!("--b\r\n{}", "X: y\r\n".repeat(PART_HEADERS_MAX + 1));
        assert!(
            feed_all(&mut m, s.as_bytes(), 1000)
                .unwrap_err()
                .contains("header lines")
        );
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, b"--b\r\nContent-Length: lots\r\n\r\n", 1000).unwrap_err();
        assert!(e.contains("bad Content-Length"), "{e}");
    }

    #[test]
    fn garbage_without_boundary_is_bounded_and_close_delimiter_ends() {
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, &[b'x'; 1000], 10).unwrap_err();
        assert!(e.contains("no boundary line (--b)"), "{e}");
        assert!(m.buffered() < 50, "skipped bytes are not kept");
        // `x--b` split by a drop is still not a boundary line.
        let mut s = b"xxxxxxxx--b\r\n\r\nfake".to_vec();
        s.extend_from_slice(b"\r\n--b\r\n\r\nreal\r\n--b\r\n");
        for step in [1, 3, 8] {
            let mut m = Multipart::new("b", 100);
            assert_eq!(feed_all(&mut m, &s, step).unwrap(), vec![b"real".to_vec()]);
        }
        let mut m = Multipart::new("b", 100);
        let e = feed_all(&mut m, b"--b\r\n\r\nA\r\n--b--\r\n", 1).unwrap_err();
        assert!(e.contains("ended the stream"), "{e}");
    }

    #[test]
    fn printable_strips_control_characters() {
        assert_eq!(printable(" OK\r\n\x1b[31m "), "OK???[31m");
        assert_eq!(printable(&"a".repeat(100)).chars().count(), 81);
    }
}
