//! The body of a `multipart/x-mixed-replace` answer, split into parts as
//! bytes arrive. Pure (no I/O), so every quirk is unit-tested: parts with
//! and without `Content-Length`, a boundary named with or without its
//! leading `--`, preambles and stray CRLFs, bounded part headers and sizes.

/// Most header lines in one part.
const PART_HEADERS_MAX: usize = 100;
/// What is kept of a body that is not a JPEG: enough for the watchdog to
/// count it as broken, never the body (blank lines forever cost nothing).
const NOT_JPEG_KEPT: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Looking for the next boundary line (skipping CRLFs, preambles and
    /// whatever a wrong `Content-Length` left over).
    Delimiter,
    /// Reading the part's header lines.
    Head,
    /// Reading the body: exactly this many bytes, or up to the next boundary.
    Body(Option<usize>),
    /// A body without length that is not a JPEG: skipped up to the next
    /// boundary, only its first bytes kept.
    NotJpeg,
}

pub struct Multipart {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    at: usize,
    /// The boundary lines accepted: `--` + boundary, and the boundary itself
    /// when it was named with a leading `--` (cameras disagree on that).
    delims: Vec<Vec<u8>>,
    cap: usize,
    /// Longest part header block.
    head_max: usize,
    state: State,
    /// In a body without length: how far it was already searched.
    scanned: usize,
    /// Bytes skipped while looking for a boundary.
    skipped: usize,
    /// Whether the unconsumed bytes start a line (a boundary line must).
    line_start: bool,
    /// The first bytes of a body that is not a JPEG.
    kept: Vec<u8>,
    /// Bytes consumed that were not part bodies, since last taken.
    junk: usize,
}

/// What went wrong; the caller adds which camera.
pub type Error = String;

impl Multipart {
    /// Parts of at most `cap` bytes, part headers of at most `head_max`.
    pub fn new(boundary: &str, cap: usize, head_max: usize) -> Multipart {
        let mut delims = vec![format!("--{boundary}").into_bytes()];
        if boundary.starts_with("--") && boundary.len() > 2 {
            delims.push(boundary.as_bytes().to_vec());
        }
        Multipart {
            buf: Vec::new(),
            at: 0,
            delims,
            cap,
            head_max,
            state: State::Delimiter,
            scanned: 0,
            skipped: 0,
            line_start: true,
            kept: Vec::new(),
            junk: 0,
        }
    }

    /// Bytes consumed that were not part bodies (boundary lines, part
    /// headers, CRLFs, preambles, bodies that are not JPEGs) since the last
    /// call: what the camera's junk budget is charged.
    pub fn take_junk(&mut self) -> usize {
        std::mem::take(&mut self.junk)
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
                        self.junk += i + line;
                        self.skipped = 0;
                        self.state = State::Head;
                    }
                    Found::NeedMore(drop) => {
                        if drop > 0 {
                            self.line_start = data[drop - 1] == b'\n';
                        }
                        self.at += drop;
                        self.junk += drop;
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
                State::Head => match parse_part_head(data, self.cap, self.head_max)? {
                    Some((len, consumed)) => {
                        self.at += consumed;
                        self.junk += consumed;
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
                State::Body(None) if self.scanned == 0 && !starts_jpeg(data) => {
                    if data.len() < 2 {
                        return Ok(None);
                    }
                    self.kept.clear();
                    self.state = State::NotJpeg;
                }
                State::NotJpeg => match self.find_delimiter(data, 0)? {
                    Found::At(i, _) => {
                        keep_some(&mut self.kept, &data[..i]);
                        // All of it kept: the line end before the boundary
                        // belongs to the boundary (an empty body stays empty).
                        if self.kept.len() == self.skipped + i {
                            let end = before_line_end(&self.kept, self.kept.len());
                            self.kept.truncate(end);
                        }
                        self.at += i;
                        self.junk += i;
                        self.skipped = 0;
                        self.line_start = true;
                        self.state = State::Delimiter;
                        return Ok(Some(std::mem::take(&mut self.kept)));
                    }
                    Found::NeedMore(drop) => {
                        if drop > 0 {
                            self.line_start = data[drop - 1] == b'\n';
                        }
                        keep_some(&mut self.kept, &data[..drop]);
                        self.at += drop;
                        self.junk += drop;
                        self.skipped += drop;
                        if self.skipped > self.cap {
                            return Err(cap_error(
                                &format!("more than {}", self.skipped),
                                self.cap,
                            ));
                        }
                        return Ok(None);
                    }
                },
                State::Body(None) => {
                    let from = self.scanned;
                    match self.find_delimiter(data, from)? {
                        Found::At(i, _) => {
                            let end = before_line_end(data, i);
                            if end > self.cap {
                                return Err(cap_error(&end.to_string(), self.cap));
                            }
                            let part = data[..end].to_vec();
                            self.at += i;
                            self.junk += i - end;
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
fn parse_part_head(
    data: &[u8],
    cap: usize,
    head_max: usize,
) -> Result<Option<(Option<usize>, usize)>, Error> {
    if data.starts_with(&[0xFF, 0xD8]) {
        return Ok(Some((None, 0)));
    }
    let mut len = None;
    let mut pos = 0;
    for _ in 0..=PART_HEADERS_MAX {
        let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
            if data.len() > head_max {
                return Err(format!("part headers longer than {head_max} bytes"));
            }
            return Ok(None);
        };
        let line = &data[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if pos > head_max {
            return Err(format!("part headers longer than {head_max} bytes"));
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

/// Where a body ends that a boundary line at `i` ends: the CRLF (or LF)
/// before the boundary belongs to it.
fn before_line_end(data: &[u8], i: usize) -> usize {
    let mut end = i;
    if end > 0 && data[end - 1] == b'\n' {
        end -= 1;
        if end > 0 && data[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

/// Adds to `kept` what it has room for of `more` (up to [`NOT_JPEG_KEPT`]).
fn keep_some(kept: &mut Vec<u8>, more: &[u8]) {
    let room = NOT_JPEG_KEPT.saturating_sub(kept.len());
    kept.extend_from_slice(&more[..more.len().min(room)]);
}

/// Whether a body starts like a JPEG (SOI), so far as it has come.
fn starts_jpeg(data: &[u8]) -> bool {
    match data {
        [] => true,
        [b] => *b == 0xFF,
        [a, b, ..] => [*a, *b] == [0xFF, 0xD8],
    }
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
    printable_max(s, 80)
}

/// As [`printable`], at most `max` characters (then `…`, which tells
/// `Secrets::scrub` where a secret may have been cut).
pub fn printable_max(s: &str, max: usize) -> String {
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
        .take(max)
        .collect();
    if s.trim().chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[path = "multipart_tests.rs"]
mod tests;
