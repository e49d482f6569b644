//! Incremental `multipart/x-mixed-replace` parser: finds each part's headers,
//! then counts `Content-Length` body bytes without copying them anywhere.

/// What one complete part told us.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartInfo {
    pub len: usize,
    /// `X-Timestamp` (Unix seconds), NaN when absent. Ours: the frame's
    /// capture wall time. µStreamer's: the wall time it queued this part
    /// for this viewer (send time, rounded to the millisecond).
    pub timestamp: f64,
    /// µStreamer's `X-UStreamer-Grab-Time` (sent with `?extra_headers=1`):
    /// CLOCK_MONOTONIC_RAW seconds when it dequeued the frame from the
    /// camera, rounded to the millisecond; NaN when absent.
    pub grab_raw: f64,
}

#[derive(Debug)]
enum State {
    /// Collecting the bytes of a part's header block (boundary line + headers).
    Head,
    /// Skipping this many body bytes.
    Body { left: usize, info: PartInfo },
}

/// Feed it bytes as they arrive; it calls back once per finished part.
#[derive(Debug)]
pub struct Parser {
    state: State,
    head: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Head,
            head: Vec::with_capacity(256),
        }
    }
}

impl Parser {
    /// Body bytes still expected of the current part (0 while reading headers):
    /// the caller may discard them unread and report them with `skip_body`.
    pub fn body_left(&self) -> usize {
        match self.state {
            State::Body { left, .. } => left,
            State::Head => 0,
        }
    }

    /// Accounts for `n <= body_left()` body bytes received without copying.
    pub fn skip_body(&mut self, n: usize, on_part: impl FnOnce(PartInfo)) {
        if let State::Body { left, info } = &mut self.state {
            *left -= n.min(*left);
            if *left == 0 {
                on_part(*info);
                self.state = State::Head;
            }
        }
    }

    /// Consumes `data`; `on_part` runs when a body's last byte has arrived.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_part: impl FnMut(PartInfo),
    ) -> Result<(), String> {
        while !data.is_empty() {
            match &mut self.state {
                State::Body { left, info } => {
                    let n = (*left).min(data.len());
                    *left -= n;
                    data = &data[n..];
                    if *left == 0 {
                        on_part(*info);
                        self.state = State::Head;
                    }
                }
                State::Head => {
                    // Headers are short: copy small runs until the blank line.
                    let before = self.head.len();
                    let take = data.len().min(1024);
                    self.head.extend_from_slice(&data[..take]);
                    let from = before.saturating_sub(3);
                    match find(&self.head[from..], b"\r\n\r\n").map(|i| i + from) {
                        Some(end) => {
                            let used = end + 4 - before;
                            let info = parse_head(&self.head[..end])?;
                            self.head.clear();
                            data = &data[used..];
                            self.state = State::Body {
                                left: info.len,
                                info,
                            };
                            if info.len == 0 {
                                on_part(info);
                                self.state = State::Head;
                            }
                        }
                        None => {
                            if self.head.len() > 8192 {
                                return Err("part headers longer than 8 KiB".into());
                            }
                            data = &data[take..];
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_head(head: &[u8]) -> Result<PartInfo, String> {
    let text = String::from_utf8_lossy(head);
    let mut len = None;
    let mut timestamp = f64::NAN;
    let mut grab_raw = f64::NAN;
    for line in text.split("\r\n") {
        if let Some((k, v)) = line.split_once(':') {
            let k = k.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("x-timestamp") {
                timestamp = v.trim().parse().unwrap_or(f64::NAN);
            } else if k.eq_ignore_ascii_case("x-ustreamer-grab-time") {
                grab_raw = v.trim().parse().unwrap_or(f64::NAN);
            }
        }
    }
    let len = len.ok_or_else(|| format!("part without Content-Length: {text:?}"))?;
    Ok(PartInfo {
        len,
        timestamp,
        grab_raw,
    })
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(parts: &[(&[u8], &str)]) -> Vec<u8> {
        let mut out = b"--vrframe\r\n".to_vec();
        for (body, ts) in parts {
            out.extend_from_slice(
                format!(
                    "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {ts}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n--vrframe\r\n");
        }
        out
    }

    #[test]
    fn parts_split_at_every_byte_boundary() {
        // Bodies contain header-like bytes: only Content-Length may delimit them.
        let a: &[u8] = b"\xff\xd8\r\n\r\nContent-Length: 3\r\n\r\n\xff\xd9";
        let b: &[u8] = b"\xff\xd8x\xff\xd9";
        let data = stream(&[
            (a, "1700000000.123456"),
            (b, "1700000000.156789"),
            (b"", "1.5"),
        ]);
        for chunk in 1..data.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for piece in data.chunks(chunk) {
                p.feed(piece, |i| got.push(i)).unwrap();
            }
            assert_eq!(got.len(), 3, "chunk size {chunk}");
            assert_eq!(got[0].len, a.len());
            assert_eq!(got[1].len, b.len());
            assert_eq!(got[0].timestamp, 1700000000.123456);
            assert_eq!((got[2].len, got[2].timestamp), (0, 1.5));
            assert!(got[2].grab_raw.is_nan());
        }
    }

    #[test]
    fn skipped_bodies_count_like_read_ones() {
        let data = stream(&[(b"0123456789", "2.5")]);
        let head_end = find(&data, b"\r\n\r\n").unwrap() + 4;
        let mut p = Parser::default();
        let mut got = Vec::new();
        p.feed(&data[..head_end + 3], |i| got.push(i)).unwrap();
        assert_eq!(p.body_left(), 7);
        p.skip_body(4, |i| got.push(i));
        assert!(got.is_empty());
        p.skip_body(3, |i| got.push(i));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].len, got[0].timestamp), (10, 2.5));
        assert_eq!(p.body_left(), 0);
        p.feed(&data[head_end + 10..], |i| got.push(i)).unwrap();
        assert_eq!(got.len(), 1, "the trailing boundary is no part");
    }

    #[test]
    fn missing_length_is_an_error() {
        let mut p = Parser::default();
        let r = p.feed(b"--vrframe\r\nContent-Type: image/jpeg\r\n\r\nxx", |_| {});
        assert!(r.unwrap_err().contains("Content-Length"));
    }

    #[test]
    fn ustreamer_parts_with_extra_headers() {
        // As µStreamer 4.9 sends /stream?extra_headers=1 (HTTP/1.0, its boundary).
        let data = b"--boundarydonotcross\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\n\
            X-Timestamp: 1796168408.628000\r\nX-UStreamer-Online: true\r\n\
            X-UStreamer-Grab-Time: 1687.404000\r\nX-UStreamer-Send-Time: 1687.406000\r\n\
            X-UStreamer-Latency: 0.002000\r\n\r\n\xff\xd8\xff\xd9\r\n--boundarydonotcross\r\n";
        let mut p = Parser::default();
        let mut got = Vec::new();
        p.feed(data, |i| got.push(i)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len, 4);
        assert_eq!(got[0].timestamp, 1796168408.628);
        assert_eq!(got[0].grab_raw, 1687.404);
    }

    #[test]
    fn missing_timestamp_is_nan() {
        let mut p = Parser::default();
        let mut got = None;
        p.feed(b"--b\r\nContent-Length: 1\r\n\r\nx", |i| got = Some(i))
            .unwrap();
        assert!(got.unwrap().timestamp.is_nan());
    }
}
