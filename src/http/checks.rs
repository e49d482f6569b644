//! What a request must be before it is routed: its target in origin form,
//! a Host that cannot be a rebound name (without credentials), sizes and
//! lengths we serve, and the query flags routes take.

use tiny_http::Request;

use super::errors::Kind;
use super::{Reply, auth};

/// `GET http://host/status` (absolute form, RFC 9112 3.2.2) means `/status`.
pub(super) fn origin_form(url: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = url
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
        {
            let rest = &url[rest.len()..];
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    url
}

/// Without credentials a page on another site could rebind its name to our
/// address and use us: answer only to names that cannot be rebound
/// (localhost, IP literals) and to names the owner listed.
pub(super) fn host_allowed(req: &Request, allowed: &[String]) -> bool {
    let Some(host) = auth::header(req, "Host") else {
        // Browsers always send Host; a client without one is not a page.
        return true;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if rest.is_empty() || rest.starts_with(':') => {
                return addr.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n)
    };
    name == "localhost"
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || allowed.iter().any(|a| *a == name || *a == host)
}

/// `download=1` asks for an attachment; `download=0` or none for inline.
pub(super) fn download_flag(query: &str) -> Result<bool, &'static str> {
    let mut flag = false;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("download", "1")) => flag = true,
            Some(("download", "0")) => flag = false,
            Some(("download", _)) => return Err("download must be 1 or 0"),
            _ => {}
        }
    }
    Ok(flag)
}

/// Longest total of header names and values we serve.
const MAX_HEADERS: usize = 16 * 1024;
/// Largest body any route reads (forms, `/start` JSON).
pub const MAX_BODY: usize = 4096;

/// What tiny_http lets through but we refuse: oversized headers, an
/// unparseable Content-Length, a body larger than any route reads.
pub(super) fn malformed(req: &Request) -> Option<Reply> {
    let total: usize = req
        .headers()
        .iter()
        .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len() + 4)
        .sum();
    if total > MAX_HEADERS {
        return Some(Kind::HeadersTooLarge.reply("request headers too large"));
    }
    // Parsed here as u64: tiny_http parses it as usize, which on 32-bit ARM
    // turns a huge value into "no body" rather than a refusal.
    if let Some(cl) = auth::header(req, "Content-Length") {
        match cl.trim().parse::<u64>() {
            Err(_) => return Some(Kind::BadInput.reply("Content-Length is not a number")),
            Ok(n) if n > MAX_BODY as u64 => return Some(Kind::TooLarge.reply("body too large")),
            Ok(_) => {}
        }
    }
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Some(Kind::TooLarge.reply("body too large"));
    }
    None
}

pub(super) fn range_of(req: &Request) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Range"))
        .map(|h| h.value.as_str().to_string())
}
