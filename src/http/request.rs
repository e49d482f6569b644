//! Reading what a request says: headers, cookies, where it came from.

use tiny_http::Request;

use super::roles::Via;

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    header(req, "Cookie")?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Blocks cross-site state changes a browser could send on its own, with a
/// session cookie or with cached Basic credentials alike. Non-browser clients
/// (curl) send neither `Sec-Fetch-Site` nor `Origin` and pass; bearer calls pass.
pub fn same_origin(req: &Request, via: Via) -> bool {
    if via == Via::Bearer {
        return true;
    }
    if let Some(site) = header(req, "Sec-Fetch-Site") {
        return matches!(site.trim(), "same-origin" | "none");
    }
    match header(req, "Origin") {
        None => true,
        Some(origin) => {
            let host = header(req, "Host").unwrap_or("");
            let origin = origin.trim();
            !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        }
    }
}

/// Whether a browser script made the request (then no Basic dialog is wanted).
pub fn from_script(req: &Request) -> bool {
    header(req, "Sec-Fetch-Mode").is_some_and(|m| m != "navigate")
}
