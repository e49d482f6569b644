//! Live views over WebSocket (RFC 6455), server to client only: the page's
//! camera tiles. A browser opens at most six HTTP/1.1 connections to one
//! server, and every MJPEG or fMP4 response holds one for as long as it
//! streams, so with five cameras the page's status polls waited behind
//! them. WebSockets are not counted in those six (browsers keep a larger
//! pool of their own), so every tile gets a socket of its own and the
//! page's requests stay free. Each message is one JPEG
//! (`/video`) or a run of fMP4 bytes (`live.mp4`): the same streams, framed.
//! What the client sends is never read: closing is noticed when a write
//! fails, at the latest at the next frame or keepalive.

use std::io::{self, IoSlice, Write};

use base64::Engine;
use sha1::{Digest, Sha1};
use tiny_http::Request;

use super::errors::{ApiError, Kind};
use super::request::header;

/// RFC 6455 section 1.3: appended to the client's key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Whether the request asks for a WebSocket (`Upgrade: websocket`).
pub fn wanted(req: &Request) -> bool {
    header(req, "Upgrade").is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
}

/// The `Sec-WebSocket-Accept` for a handshake, or why it is refused.
pub fn accept(req: &Request) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::new(Kind::BadInput, format!("WebSocket handshake: {why}"));
    if !header(req, "Connection").is_some_and(|c| {
        c.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    }) {
        return Err(bad("Connection must include upgrade"));
    }
    if header(req, "Sec-WebSocket-Version").map(str::trim) != Some("13") {
        return Err(bad("only Sec-WebSocket-Version 13 is spoken"));
    }
    let key = header(req, "Sec-WebSocket-Key")
        .map(str::trim)
        .unwrap_or("");
    // A key is 16 random bytes in base64 (section 4.1).
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => Ok(accept_for(key)),
        _ => Err(bad("Sec-WebSocket-Key must be 16 bytes in base64")),
    }
}

fn accept_for(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The handshake's answer, written on the raw socket like a stream's head.
pub fn switching_head(accept: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// Frames every write as one binary message (unmasked, server to client).
/// A write, vectored or not, is sent whole before it returns: a message is
/// never split or mixed with the next.
pub struct Messages<W> {
    inner: W,
}

impl<W: Write> Messages<W> {
    pub fn new(inner: W) -> Messages<W> {
        Messages { inner }
    }

    /// The socket itself, for the handshake's answer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

/// The head of a final binary frame of `len` bytes (section 5.2).
fn frame_head(len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x82;
    let n = if len < 126 {
        h[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, n)
}

impl<W: Write> Write for Messages<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if len == 0 {
            return Ok(0);
        }
        let (head, n) = frame_head(len);
        let mut all = Vec::with_capacity(bufs.len() + 1);
        all.push(IoSlice::new(&head[..n]));
        all.extend(bufs.iter().map(|b| IoSlice::new(b)));
        crate::live::write_all_vectored(&mut self.inner, &mut all)?;
        Ok(len)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key_is_accepted_as_the_rfc_says() {
        // RFC 6455 section 1.3.
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn framed(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Messages::new(Vec::new());
        let slices: Vec<_> = parts.iter().map(|p| IoSlice::new(p)).collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        assert_eq!(out.write_vectored(&slices).unwrap(), total);
        out.inner
    }

    #[test]
    fn each_write_is_one_binary_message_with_the_shortest_length() {
        assert_eq!(framed(&[b"ab", b"c"]), b"\x82\x03abc");
        let m = framed(&[&[7u8; 125]]);
        assert_eq!(&m[..2], &[0x82, 125]);
        assert_eq!(m.len(), 127);
        let m = framed(&[&[7u8; 100], &[8u8; 26]]);
        assert_eq!(&m[..4], &[0x82, 126, 0, 126]);
        assert_eq!(m.len(), 130);
        let m = framed(&[&[7u8; 65536]]);
        assert_eq!(&m[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(m.len(), 65546);
        // Nothing at all for an empty write (a zero-length message would be
        // a frame for nothing).
        assert!(framed(&[b""]).is_empty());
    }
}
