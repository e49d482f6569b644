//! A server that needs credentials, and the ways to present them.

use std::path::Path;

use base64::Engine;

use super::{Response, Server, request};

pub const ADMIN_PW: &str = "s3cret-Admin-pw";
pub const VIEWER_PW: &str = "s3cret-Viewer-pw";
pub const TOKEN: &str = "tok-0123456789abcdef-secret";
/// A small, quick test source.
pub const SMALL: &[&str] = &[
    "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
];

pub fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// A server that needs credentials: admin and viewer passwords and a token.
pub fn locked_server(extra: &[&str]) -> Server {
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    let mut s = env_server(&clips, &[SMALL, extra].concat());
    s.keep(tmp);
    s
}

/// The secrets go in through the environment, as on the Pi.
pub fn env_server(clips: &Path, args: &[&str]) -> Server {
    Server::start_env(
        clips,
        args,
        &[
            ("VR_PASSWORD", ADMIN_PW),
            ("VR_VIEWER_PASSWORD", VIEWER_PW),
            ("VR_API_TOKEN", TOKEN),
        ],
    )
}

/// The login form, as a browser posts it.
pub fn login(s: &Server, user: &str, pw: &str, headers: &[(&str, &str)]) -> Response {
    let body = format!("user={user}&password={pw}");
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request(s.addr, "POST", "/login", &h, body.as_bytes())
}

/// The session cookie a login set (`name=value`), checked for its flags.
pub fn session_cookie(r: &Response) -> String {
    let c = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {r:?}"))
        .to_string();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Strict"),
        "{c}"
    );
    c.split(';').next().unwrap().to_string()
}

pub fn assert_json_error(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: {}",
        r.text()
    );
}
