//! The part splitter against streams cut in every way, hostile ones too.
use super::*;
use crate::budget::PART_HEAD_BYTES as PART_HEAD_MAX;

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
            let mut m = Multipart::new("foo", 1000, PART_HEAD_MAX);
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
    let mut m = Multipart::new("--foo", 1000, PART_HEAD_MAX);
    assert_eq!(feed_all(&mut m, &quirky, 5).unwrap(), BODIES);
    // …or by the book, `----foo`.
    let mut strict = Vec::new();
    for b in BODIES {
        strict.extend_from_slice(&part("--foo", b, false));
    }
    strict.extend_from_slice(b"----foo\r\n");
    let mut m = Multipart::new("--foo", 1000, PART_HEAD_MAX);
    assert_eq!(feed_all(&mut m, &strict, 5).unwrap(), BODIES);
}

#[test]
fn tolerates_bare_lf_blanks_missing_headers_and_wrong_lengths() {
    let mut s = b"--b  \n\n\xFF\xD8one\xFF\xD9\n--b\r\n\xFF\xD8two\xFF\xD9\r\n".to_vec();
    // Content-Length too short: the rest is skipped up to the boundary.
    s.extend_from_slice(b"--b\r\nContent-Length: 3\r\n\r\n\xFF\xD8three\r\n");
    s.extend_from_slice(b"--b\r\ncontent-length:  4 \r\n\r\n\xFF\xD8\xFF\xD9");
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
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
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let s = b"--b\r\n\r\nA\r\n--bx\r\nB\r\n--b\r\n";
    assert_eq!(
        feed_all(&mut m, s, 1).unwrap(),
        vec![b"A\r\n--bx\r\nB".to_vec()]
    );
}

#[test]
fn caps_part_size_and_headers() {
    let mut big = vec![0xAB; 200];
    big[..2].copy_from_slice(&[0xFF, 0xD8]);
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, &part("b", &big, true), 50).unwrap_err();
    assert_eq!(e, "part of 200 bytes exceeds the 100-byte cap");
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, &part("b", &big, false), 50).unwrap_err();
    assert!(
        e.starts_with("part of more than") && e.ends_with("100-byte cap"),
        "{e}"
    );
    // All of it at once, boundary included: still too big.
    let mut whole = part("b", &big, false);
    whole.extend_from_slice(b"--b\r\n");
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, &whole, whole.len()).unwrap_err();
    assert_eq!(e, "part of 200 bytes exceeds the 100-byte cap");
    assert!(cap_error("9000000", 8 << 20).ends_with("the 8 MiB cap"));
    let mut m = Multipart::new("b", 1 << 20, PART_HEAD_MAX);
    let mut s = b"--b\r\n".to_vec();
    s.extend(std::iter::repeat_n(b'x', PART_HEAD_MAX + 1));
    assert!(
        feed_all(&mut m, &s, 1000)
            .unwrap_err()
            .contains("part headers longer")
    );
    let mut m = Multipart::new("b", 1 << 20, PART_HEAD_MAX);
    let s = format!("--b\r\n{}", "X: y\r\n".repeat(PART_HEADERS_MAX + 1));
    assert!(
        feed_all(&mut m, s.as_bytes(), 1000)
            .unwrap_err()
            .contains("header lines")
    );
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, b"--b\r\nContent-Length: lots\r\n\r\n", 1000).unwrap_err();
    assert!(e.contains("bad Content-Length"), "{e}");
}

#[test]
fn garbage_without_boundary_is_bounded_and_close_delimiter_ends() {
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, &[b'x'; 1000], 10).unwrap_err();
    assert!(e.contains("no boundary line (--b)"), "{e}");
    assert!(m.buffered() < 50, "skipped bytes are not kept");
    // `x--b` split by a drop is still not a boundary line.
    let mut s = b"xxxxxxxx--b\r\n\r\nfake".to_vec();
    s.extend_from_slice(b"\r\n--b\r\n\r\nreal\r\n--b\r\n");
    for step in [1, 3, 8] {
        let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
        assert_eq!(feed_all(&mut m, &s, step).unwrap(), vec![b"real".to_vec()]);
    }
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, b"--b\r\n\r\nA\r\n--b--\r\n", 1).unwrap_err();
    assert!(e.contains("ended the stream"), "{e}");
}

#[test]
fn printable_strips_control_characters() {
    assert_eq!(printable(" OK\r\n\x1b[31m "), "OK???[31m");
    assert_eq!(printable(&"a".repeat(100)).chars().count(), 81);
}

#[test]
fn bodies_that_are_not_jpegs_are_skipped_not_kept_and_counted_as_junk() {
    // Blank lines forever after the part's head: not a frame, never held.
    let mut m = Multipart::new("b", 1 << 20, PART_HEAD_MAX);
    m.extend(b"--b\r\nContent-Type: image/jpeg\r\n\r\n");
    assert_eq!(m.next_part().unwrap(), None);
    let mut junk = m.take_junk();
    assert_eq!(junk, 33, "the boundary line and the part's head");
    for _ in 0..1000 {
        m.extend(&b"\r\n".repeat(512));
        assert_eq!(m.next_part().unwrap(), None);
        assert!(m.buffered() < 64, "{} bytes held", m.buffered());
        junk += m.take_junk();
    }
    assert!(junk > 1000 * 1024 - 64, "{junk}");
    // When a boundary comes, the part is its first bytes only, to be
    // counted as broken; the next part is whole.
    m.extend(b"\r\n--b\r\n\r\n\xFF\xD8jpeg\xFF\xD9\r\n--b\r\n");
    let not_jpeg = m.next_part().unwrap().unwrap();
    assert_eq!(not_jpeg, b"\r\n".repeat(8));
    assert_eq!(m.next_part().unwrap().unwrap(), b"\xFF\xD8jpeg\xFF\xD9");
    // A body that is not a JPEG is bounded by the cap like any other.
    let mut m = Multipart::new("b", 100, PART_HEAD_MAX);
    let e = feed_all(&mut m, &part("b", &[b'x'; 300], false), 7).unwrap_err();
    assert!(e.contains("100-byte cap"), "{e}");
}

#[test]
fn junk_is_what_is_not_a_part_body() {
    let mut stream = b"preamble\r\n".to_vec();
    for b in BODIES {
        stream.extend_from_slice(&part("foo", b, true));
    }
    // Empty parts (keep-alives) are junk too.
    stream.extend_from_slice(b"--foo\r\n\r\n\r\n--foo\r\n\r\n\r\n");
    stream.extend_from_slice(b"--foo\r\n");
    for step in [1, 5, stream.len()] {
        let mut m = Multipart::new("foo", 1000, PART_HEAD_MAX);
        let (mut junk, mut bodies) = (0, 0);
        for chunk in stream.chunks(step) {
            m.extend(chunk);
            while let Some(p) = m.next_part().unwrap() {
                bodies += p.len();
            }
            junk += m.take_junk();
        }
        let kept = m.buffered();
        assert_eq!(junk + bodies + kept, stream.len(), "step {step}");
        assert_eq!(bodies, BODIES.iter().map(|b| b.len()).sum::<usize>());
    }
}
