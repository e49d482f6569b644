//! Serving clips with HTTP Range, so browsers can seek and players can resume.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use tiny_http::{Response, StatusCode};

use super::errors::Kind;
use super::{Reply, header};

/// The byte range a `Range` header asks of a `len`-byte file.
#[derive(Debug, PartialEq)]
pub enum RangeAsk {
    /// No usable Range header (absent, or several ranges): the whole file.
    Whole,
    /// Inclusive start and end.
    Part(u64, u64),
    /// Asks for bytes past the end: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range (RFC 9110 §14.1.2). Forms we do not serve
/// (multiple ranges, other units, garbage) fall back to the whole file, as the
/// RFC allows a server to ignore Range.
pub fn parse_range(value: Option<&str>, len: u64) -> RangeAsk {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match parse(b) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(n) if len > 0 => RangeAsk::Part(len.saturating_sub(n), len - 1),
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        (false, _) => {
            let Some(start) = parse(a) else {
                return RangeAsk::Whole;
            };
            let end = if b.is_empty() {
                Some(len.saturating_sub(1))
            } else {
                parse(b)
            };
            match end {
                None => RangeAsk::Whole,
                Some(_) if start >= len => RangeAsk::Unsatisfiable,
                Some(end) if end < start => RangeAsk::Whole,
                Some(end) => RangeAsk::Part(start, end.min(len - 1)),
            }
        }
        (true, true) => RangeAsk::Whole,
    }
}

/// Serves an opened clip (`id` for the log), honouring Range. `download`
/// asks the browser to save it.
pub fn serve_mp4(mut file: File, id: &str, range: Option<&str>, download: Option<&str>) -> Reply {
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            log::error!("cannot stat clip {id}: {e}");
            return Kind::Internal.reply("cannot read clip");
        }
    };
    let mut headers = vec![
        header("Content-Type", "video/mp4"),
        header("Accept-Ranges", "bytes"),
        header("Cache-Control", "no-cache"),
    ];
    if let Some(name) = download {
        headers.push(header(
            "Content-Disposition",
            &format!("attachment; filename=\"{name}\""),
        ));
    }
    let (status, start, count) = match parse_range(range, len) {
        RangeAsk::Whole => (200, 0, len),
        RangeAsk::Part(s, e) => {
            headers.push(header("Content-Range", &format!("bytes {s}-{e}/{len}")));
            (206, s, e - s + 1)
        }
        RangeAsk::Unsatisfiable => {
            let mut r = Kind::RangeNotSatisfiable.reply("range not satisfiable");
            r.add_header(header("Content-Range", &format!("bytes */{len}")));
            return r;
        }
    };
    if start > 0
        && let Err(e) = file.seek(SeekFrom::Start(start))
    {
        log::error!("cannot seek clip {id}: {e}");
        return Kind::Internal.reply("cannot read clip");
    }
    let body: Box<dyn Read + Send> = Box::new(file.take(count));
    // A known length goes out as Content-Length, never chunked: players
    // need it. `respond` adds `nosniff` with the other security headers.
    Response::new(
        StatusCode(status),
        headers,
        body,
        Some(count as usize),
        None,
    )
    .with_chunked_threshold(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::RangeAsk::*;
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Part(0, 9));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Part(90, 99));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), Part(0, 99));
        assert_eq!(parse_range(Some("bytes=50-1000"), 100), Part(50, 99));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=x-y"), 100), Whole);
        assert_eq!(
            parse_range(Some("bytes=18446744073709551615-"), 100),
            Unsatisfiable
        );
    }
}
