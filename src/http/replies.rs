//! Replies: JSON, bytes, and the headers every answer carries (error
//! replies are made in `errors`, by kind).

use std::io::Read;

use super::errors::Kind;
use tiny_http::{Header, Request, Response, StatusCode};

pub type Reply = Response<Box<dyn Read + Send>>;

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..]).unwrap())
}

pub fn json(status: u16, value: &serde_json::Value) -> Reply {
    let body = value.to_string().into_bytes();
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![
            header("Content-Type", "application/json"),
            header("Cache-Control", "no-store"),
        ],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
}

pub(super) fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![header("Content-Type", content_type)],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
}

/// No inline script or style, no framing, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Sends a reply with the headers every response carries.
pub(super) fn respond(req: Request, mut reply: Reply) {
    for (k, v) in security_headers() {
        reply.add_header(header(k, v));
    }
    if let Err(e) = req.respond(reply) {
        log::debug!("client went away before the answer: {e}");
    }
}

pub fn security_headers() -> [(&'static str, &'static str); 5] {
    [
        ("Server", "video-recorder"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CSP),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
}

/// Too many sign-ins are being checked: retry in a second (503).
pub fn sign_ins_busy() -> Reply {
    let mut r = Kind::Unavailable.reply("too many sign-ins being checked; try again");
    r.add_header(header("Retry-After", "1"));
    r
}
