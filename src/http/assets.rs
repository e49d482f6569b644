//! The web page, embedded in the binary so the appliance is one file.

/// `(path, content type, bytes)` for every static asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "/tiles.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/tiles.js"),
    ),
    (
        "/live.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/live.js"),
    ),
    (
        "/library.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/library.js"),
    ),
    (
        "/app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_bytes!("assets/favicon.svg"),
    ),
    (
        "/login.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/login.css"),
    ),
];

pub const LOGIN_HTML: &[u8] = include_bytes!("assets/login.html");

/// The HTTP API described for clients and fuzzers.
pub const OPENAPI: &[u8] = include_bytes!("openapi.json");

/// The asset served at `path`, with its content type.
pub fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, body)| (*ct, *body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_and_assets_are_embedded() {
        let (ct, body) = super::find("/").unwrap();
        assert!(ct.starts_with("text/html"));
        assert!(String::from_utf8_lossy(body).contains("/app.js"));
        assert!(super::find("/app.css").is_some());
        assert!(super::find("/nope").is_none());
    }
}
