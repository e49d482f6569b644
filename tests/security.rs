//! Security against the real binary: credentials on every route, the
//! refuse-to-start rule, CSRF, traversal, lockout, secrets kept out of logs
//! and answers, headers, HTTPS.

mod common;

use common::RunWithin;
use std::process::Stdio;
use std::time::Duration;

use common::creds::{
    ADMIN_PW, SMALL, TOKEN, VIEWER_PW, assert_json_error, basic, locked_server, login,
    session_cookie,
};
use common::{Response, Server, request};

fn req(s: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    request(s.addr, method, path, headers, b"")
}

/// Every route and whether it is open without credentials, as the README
/// says ("every route but /healthz and the login page", whose style sheets
/// and icon the page needs). Written here, not read from the server, so a
/// route the server opens by mistake is caught.
const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/", false),
    ("GET", "/app.js", false),
    ("GET", "/tiles.js", false),
    ("GET", "/live.js", false),
    ("GET", "/library.js", false),
    ("GET", "/app.css", true),
    ("GET", "/login.css", true),
    ("GET", "/favicon.svg", true),
    ("GET", "/login", true),
    ("POST", "/login", true),
    ("POST", "/logout", false),
    ("GET", "/video", false),
    ("GET", "/snapshot.jpg", false),
    ("GET", "/status", false),
    ("POST", "/start", false),
    ("POST", "/stop", false),
    ("GET", "/last", false),
    ("GET", "/clips/20260101-000000.mp4", false),
    ("GET", "/clips", false),
    ("GET", "/cameras", false),
    ("GET", "/cameras/cam/video", false),
    ("GET", "/cameras/cam/live.mp4", false),
    ("GET", "/cameras/cam/snapshot.jpg", false),
    ("GET", "/cameras/cam/status", false),
    ("POST", "/cameras/cam/start", false),
    ("POST", "/cameras/cam/stop", false),
    ("GET", "/cameras/cam/last", false),
    ("GET", "/openapi.json", false),
    ("GET", "/healthz", true),
    ("POST", "/clips/20260101-000000.mp4/upload", false),
    // Last: the right credentials delete the clip the routes above served.
    ("DELETE", "/clips/20260101-000000.mp4", false),
];

/// The server documents exactly these routes (the list above is complete).
#[test]
fn the_route_list_is_complete() {
    let s = locked_server(&[]);
    let doc = req(
        &s,
        "GET",
        "/openapi.json",
        &[("Authorization", &basic("admin", ADMIN_PW))],
    )
    .json();
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push(format!(
                "{} {}",
                method.to_uppercase(),
                path.replace("{name}", "20260101-000000.mp4")
                    .replace("{camera}", "cam")
            ));
        }
    }
    documented.sort();
    let mut ours: Vec<String> = ROUTES.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    ours.sort();
    assert_eq!(documented, ours);
}

#[test]
fn every_route_needs_credentials() {
    let s = locked_server(&[]);
    let wrong = basic("admin", "wrong-password");
    let malformed: &[&str] = &[
        "Basic !!!notbase64",
        "Basic",
        "Digest username=\"admin\"",
        "Basic bm9jb2xvbg==", // "nocolon"
    ];
    let long = format!("Basic {}", "A".repeat(2000));
    let mut wrong_tries = 0;
    let mut limited = 0;
    for &(method, path, public) in ROUTES {
        let r = req(&s, method, path, &[]);
        if public {
            assert_ne!(r.status, 401, "{method} {path} is public");
            continue;
        }
        if method == "GET" && path == "/" {
            assert_eq!(r.status, 303, "page without credentials");
            assert_eq!(r.header("Location"), Some("/login"));
        } else {
            assert_json_error(&r, 401, &format!("{method} {path} without credentials"));
            assert!(
                r.header("WWW-Authenticate")
                    .is_some_and(|h| h.starts_with("Basic"))
            );
        }
        // Wrong passwords are 401 until the client must wait (429; after
        // the wait one more try is checked, so 401 again is fine later).
        let r = req(&s, method, path, &[("Authorization", &wrong)]);
        let what = format!("{method} {path} with a wrong password");
        if wrong_tries < 5 {
            assert_json_error(&r, 401, &what);
        } else {
            assert!(matches!(r.status, 401 | 429), "{what}: {}", r.status);
            limited += usize::from(r.status == 429);
        }
        wrong_tries += 1;
        for m in malformed {
            let r = req(&s, method, path, &[("Authorization", m)]);
            assert_json_error(&r, 400, &format!("{method} {path} with {m:?}"));
        }
        // Over our 1 KiB limit for Authorization, under tiny_http's 8 KiB.
        let r = req(&s, method, path, &[("Authorization", &long)]);
        assert_json_error(&r, 400, &format!("{method} {path} with a long header"));
    }
    assert!(limited > 0, "no wrong password was ever made to wait");
    // The open route still answers.
    assert_eq!(req(&s, "GET", "/healthz", &[]).text(), "ok\n");
}

/// What each route answers the admin (on a server with a frame and a clip).
fn admin_status(method: &str, path: &str) -> u16 {
    match (method, path) {
        // No form in the body.
        ("POST", "/login") => 400,
        ("POST", "/logout") => 303,
        // Past authentication: the test camera sends JPEGs, no fMP4 view.
        ("GET", "/cameras/cam/live.mp4") => 404,
        // Past authentication: uploads are off (no bucket) here.
        ("POST", p) if p.ends_with("/upload") => 409,
        _ => 200,
    }
}

#[test]
fn right_credentials_open_every_route_and_head_matches_get() {
    let s = locked_server(&[]);
    let admin = basic("admin", ADMIN_PW);
    let auth = [("Authorization", admin.as_str())];
    let bearer = format!("Bearer {TOKEN}");
    let st = req(&s, "GET", "/status", &[("Authorization", &bearer)]);
    assert_eq!(st.status, 200, "bearer: {}", st.text());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while req(&s, "GET", "/status", &auth).json()["source"]["frames"] == 0 {
        assert!(std::time::Instant::now() < deadline, "no frame");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A clip to serve from /last and /clips.
    let id = req(&s, "POST", "/start", &auth).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let clip = req(&s, "POST", "/stop", &auth);
    assert_eq!(clip.status, 200, "{}", clip.text());
    let clip_path = format!("/clips/{id}.mp4");
    let upload_path = format!("/clips/{id}/upload");
    for &(method, path, _) in ROUTES {
        let path = if path.ends_with("/upload") {
            upload_path.as_str()
        } else if path.starts_with("/clips/") {
            clip_path.as_str()
        } else {
            path
        };
        let want = admin_status(method, path);
        if path.ends_with("/video") {
            let mut c = common::MjpegClient::connect_with(s.addr, path, &auth)
                .unwrap_or_else(|r| panic!("/video: {r:?}"));
            c.next_part().expect("a frame from /video");
        } else {
            let r = req(&s, method, path, &auth);
            assert_eq!(r.status, want, "{method} {path}: {}", r.text());
        }
        if method != "GET" {
            continue;
        }
        // HEAD: the same status and headers, no body.
        let head = req(&s, "HEAD", path, &auth);
        assert_eq!(head.status, want, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        if path.ends_with("/video") {
            assert!(
                head.header("Content-Type")
                    .is_some_and(|t| t.starts_with("multipart/x-mixed-replace")),
                "HEAD /video: {head:?}"
            );
            continue;
        }
        let get = req(&s, "GET", path, &auth);
        for h in ["Content-Type", "Content-Length", "Accept-Ranges"] {
            if (path.ends_with("/status") || path == "/cameras") && h == "Content-Length" {
                continue; // uptime and counters change between the two
            }
            if path.ends_with("snapshot.jpg") && h == "Content-Length" {
                // A newer frame (of another size) may come between the two.
                let n = head.header(h).and_then(|v| v.parse::<u64>().ok());
                assert!(n > Some(0), "HEAD {path}: {h} {n:?}");
                continue;
            }
            assert_eq!(head.header(h), get.header(h), "HEAD {path}: {h}");
        }
    }
}

#[test]
fn viewer_may_watch_but_not_record() {
    let s = locked_server(&[]);
    let viewer = basic("viewer", VIEWER_PW);
    let st = req(&s, "GET", "/status", &[("Authorization", &viewer)]).json();
    assert_eq!(st["session"]["role"], "viewer");
    assert_eq!(st["session"]["via"], "basic");
    let mut c = common::MjpegClient::connect_with(s.addr, "/video", &[("Authorization", &viewer)])
        .unwrap_or_else(|r| panic!("{r:?}"));
    c.next_part().unwrap();
    assert_json_error(
        &req(&s, "POST", "/start", &[("Authorization", &viewer)]),
        403,
        "viewer start",
    );
    assert_json_error(
        &req(&s, "POST", "/stop", &[("Authorization", &viewer)]),
        403,
        "viewer stop",
    );
    // But downloads what the admin recorded.
    assert_json_error(
        &req(&s, "GET", "/last", &[("Authorization", &viewer)]),
        404,
        "no clip yet",
    );
    let admin = basic("admin", ADMIN_PW);
    assert_eq!(
        req(&s, "POST", "/start", &[("Authorization", &admin)]).status,
        200
    );
    let clip = req(&s, "POST", "/stop", &[("Authorization", &admin)]).json();
    let id = clip["id"].as_str().unwrap();
    let size = clip["size_bytes"].as_u64().unwrap() as usize;
    for url in ["/last".to_string(), format!("/clips/{id}.mp4")] {
        let r = req(&s, "GET", &url, &[("Authorization", &viewer)]);
        assert_eq!((r.status, r.body.len()), (200, size), "viewer {url}");
        assert_eq!(r.header("Content-Type"), Some("video/mp4"));
    }
    // Nor deletes, uploads, or records a camera by its own route; the
    // clip is still there and nothing started.
    let cams = req(&s, "GET", "/cameras", &[("Authorization", &viewer)]).json();
    let cam = cams["cameras"][0]["id"].as_str().unwrap().to_string();
    for (method, url) in [
        ("DELETE", format!("/clips/{id}")),
        ("POST", format!("/clips/{id}/upload")),
        ("POST", format!("/cameras/{cam}/start")),
        ("POST", format!("/cameras/{cam}/stop")),
    ] {
        let r = req(&s, method, &url, &[("Authorization", &viewer)]);
        assert_json_error(&r, 403, &format!("viewer {method} {url}"));
    }
    let r = req(
        &s,
        "GET",
        &format!("/clips/{id}.mp4"),
        &[("Authorization", &admin)],
    );
    assert_eq!((r.status, r.body.len()), (200, size), "the clip is kept");
    let st = req(&s, "GET", "/status", &[("Authorization", &admin)]).json();
    assert_eq!(st["recording"], false, "{st}");
}

#[test]
fn refuses_to_listen_on_the_lan_without_credentials() {
    let tmp = tempfile::tempdir().unwrap();
    let out = common::command()
        .args([
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--source",
            "test",
            "--clips-dir",
        ])
        .arg(tmp.path())
        .stdout(Stdio::null())
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VR_PASSWORD")
            && err.contains("hash-password")
            && err.contains("--insecure-no-auth"),
        "{err}"
    );
    // The explicit escape hatch starts, and says so loudly.
    let s = Server::start(&[
        "--source",
        "test",
        "--width",
        "320",
        "--height",
        "240",
        "--host",
        "0.0.0.0",
        "--insecure-no-auth",
    ]);
    assert!(s.log().contains("INSECURE"), "{}", s.log());
}

#[test]
fn cross_site_posts_are_refused() {
    let s = locked_server(&[]);
    let r = login(
        &s,
        "admin",
        ADMIN_PW,
        &[("Origin", &format!("http://{}", s.addr))],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/"));
    let cookie = session_cookie(&r);
    let st = req(&s, "GET", "/status", &[("Cookie", &cookie)]).json();
    assert_eq!(st["session"]["via"], "session");
    assert_eq!(st["session"]["role"], "admin");
    assert_eq!(st["session"]["auth_required"], true);
    assert_eq!(req(&s, "GET", "/", &[("Cookie", &cookie)]).status, 200);

    let evil = [("Origin", "http://evil.example")];
    let cross = [("Sec-Fetch-Site", "cross-site")];
    let admin = basic("admin", ADMIN_PW);
    for (how, auth) in [
        ("session", ("Cookie", cookie.as_str())),
        ("basic", ("Authorization", admin.as_str())),
    ] {
        for bad in [&evil[..], &cross[..], &[("Origin", "null")][..]] {
            let mut h = vec![auth];
            h.extend_from_slice(bad);
            assert_json_error(
                &req(&s, "POST", "/start", &h),
                403,
                &format!("{how} {bad:?}"),
            );
        }
        assert_eq!(
            req(&s, "GET", "/status", &[("Cookie", cookie.as_str())]).json()["recording"],
            false,
            "a refused start must not record"
        );
    }
    // Same origin passes (the page's own fetch), then stop.
    let same = format!("http://{}", s.addr);
    let r = req(
        &s,
        "POST",
        "/start",
        &[
            ("Cookie", &cookie),
            ("Origin", &same),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    );
    assert_eq!(r.status, 200, "same-origin start: {}", r.text());
    // Bearer calls are not replayed by browsers: exempt (the stop is done).
    let r = req(
        &s,
        "POST",
        "/stop",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            ("Origin", "http://evil.example"),
        ],
    );
    assert_eq!(
        r.status,
        200,
        "bearer stop from another origin: {}",
        r.text()
    );
    assert!(r.json()["path"].is_string(), "a clip: {}", r.text());
    // Login CSRF.
    let r = login(&s, "admin", ADMIN_PW, &evil);
    assert_json_error(&r, 403, "cross-site login");
    // Logout ends the session.
    let r = req(
        &s,
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("Origin", &same)],
    );
    assert_eq!(r.status, 303);
    assert_json_error(
        &req(&s, "GET", "/status", &[("Cookie", &cookie)]),
        401,
        "after logout",
    );
}

#[test]
fn failed_logins_are_rate_limited() {
    let s = locked_server(&[]);
    let wrong = basic("admin", "nope-nope-nope");
    for i in 0..5 {
        let r = req(&s, "GET", "/status", &[("Authorization", &wrong)]);
        assert_eq!(r.status, 401, "attempt {i}");
    }
    let r = req(
        &s,
        "GET",
        "/status",
        &[("Authorization", &basic("admin", ADMIN_PW))],
    );
    assert_json_error(&r, 429, "a fresh sign-in waits like a guess");
    let wait: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "Retry-After: {wait}");
    let r = login(&s, "admin", ADMIN_PW, &[]);
    assert_eq!(r.status, 303);
    assert_eq!(r.header("Location"), Some("/login?locked=1"));
    let page = req(&s, "GET", "/login?locked=1", &[]).text();
    assert!(page.contains("Too many failed attempts"));
}

#[test]
fn secrets_never_leak() {
    let s = locked_server(&["--log-level", "debug"]);
    let admin = basic("admin", ADMIN_PW);
    let mut seen = String::new();
    for r in [
        req(&s, "GET", "/status", &[("Authorization", &admin)]),
        req(
            &s,
            "GET",
            "/status",
            &[("Authorization", &basic("admin", "Wrong-Secret-x1"))],
        ),
        req(
            &s,
            "GET",
            "/status",
            &[("Authorization", &format!("Bearer {TOKEN}x"))],
        ),
        login(&s, "admin", "Wrong-Secret-x2", &[]),
        req(&s, "GET", "/openapi.json", &[("Authorization", &admin)]),
        req(&s, "POST", "/start", &[("Authorization", &admin)]),
        req(&s, "POST", "/stop", &[("Authorization", &admin)]),
    ] {
        seen.push_str(&format!("{:?}\n{}\n", r.headers, r.text()));
    }
    std::thread::sleep(Duration::from_millis(300));
    seen.push_str(&s.log());
    for secret in [
        ADMIN_PW,
        VIEWER_PW,
        TOKEN,
        "Wrong-Secret-x1",
        "Wrong-Secret-x2",
        "$argon2",
    ] {
        assert!(!seen.contains(secret), "{secret:?} leaked:\n{seen}");
    }
    let b64 = admin.trim_start_matches("Basic ");
    assert!(!seen.contains(b64), "the Basic header leaked");
}

#[test]
fn traversal_attempts_find_nothing() {
    let s = Server::start(SMALL);
    std::fs::create_dir_all(&s.clips).unwrap();
    // A symlink that looks like a clip but points out of the clips directory.
    std::os::unix::fs::symlink("/etc/passwd", s.clips.join("20260101-000000.mp4")).unwrap();
    std::fs::write(s.clips.parent().unwrap().join("outside.mp4"), b"secret").unwrap();
    for path in [
        "/clips/20260101-000000.mp4",
        "/clips/../outside.mp4",
        "/clips/..%2Foutside.mp4",
        "/clips/%2e%2e/outside.mp4",
        "/clips/%2Fetc%2Fpasswd",
        "/clips//etc/passwd",
        "/clips/....//outside.mp4",
        "/clips/outside",
        "/clips/..",
        "/../../etc/passwd",
        "/last/../../etc/passwd",
    ] {
        let r = req(&s, "GET", path, &[]);
        assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
        assert!(!r.text().contains("root:"), "{path} served /etc/passwd");
        assert!(
            !r.text().contains("secret"),
            "{path} served a file outside clips"
        );
    }
}

#[test]
fn security_headers_and_no_version_banner() {
    let s = Server::start(SMALL);
    // A clip, so that /last and a clip file are served too.
    assert_eq!(req(&s, "POST", "/start", &[]).status, 200);
    s.wait_status(Duration::from_secs(30), "a frame recorded", |st| {
        st["recorder"]["frames"].as_u64().unwrap_or(0) >= 1
    });
    let clip = req(&s, "POST", "/stop", &[]).json();
    let file = format!("/clips/{}.mp4", clip["id"].as_str().unwrap());
    for path in ["/", "/status", "/nope", "/login", "/last", file.as_str()] {
        let r = req(&s, "GET", path, &[]);
        // Each once (a second, differing copy is ambiguous to a client).
        for name in [
            "X-Content-Type-Options",
            "X-Frame-Options",
            "Content-Security-Policy",
        ] {
            let n = r
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .count();
            assert_eq!(n, 1, "{path}: {name} {n} times");
        }
        let csp = r
            .header("Content-Security-Policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(
            r.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(r.header("X-Frame-Options"), Some("DENY"), "{path}");
        assert_eq!(r.header("Server"), Some("video-recorder"), "{path}");
    }
    // The page has no inline script for the CSP to allow.
    let page = req(&s, "GET", "/", &[]).text();
    let lower = page.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("<script") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        assert!(
            rest[i..tag_end].contains("src="),
            "inline script in the page"
        );
        rest = &rest[tag_end..];
    }
    assert!(!lower.contains(" style=\""), "inline style in the page");
    assert!(!lower.contains(" onclick="), "inline handler in the page");
}

#[test]
fn https_with_a_self_signed_certificate() {
    if !common::have_tool("curl") {
        return;
    }
    let s = Server::start(&[SMALL, &["--tls-self-signed"]].concat());
    // The self-signed pair is made before the server listens, so the log has it.
    let log = s.log();
    let fp = log
        .split("fingerprint ")
        .nth(1)
        .map(|r| r.split_whitespace().next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no fingerprint logged:\n{log}"));
    assert!(
        !s.clips.join(".tls").exists(),
        "the key must not live with the clips"
    );
    let cert = s
        .clips
        .parent()
        .unwrap()
        .join(".video-recorder-tls/cert.pem");
    let url = format!("https://localhost:{}/status", s.addr.port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "curl --cacert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["source"]["kind"], "test", "{status}");
    // Without the certificate, curl refuses: this really is TLS with our key.
    let out = std::process::Command::new("curl")
        .args(["-sS", &url])
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(!out.status.success());
    // The logged fingerprint is the certificate's.
    if common::have_tool("openssl") {
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(&cert)
            .output_within(common::CHILD_TIMEOUT)
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&fp), "openssl says {text}, log says {fp}");
    }
    // Plain HTTP on the TLS port gets nowhere.
    let plain = common::try_request(s.addr, "GET", "/status", &[], b"");
    assert!(plain.map(|r| r.status != 200).unwrap_or(true));
}

#[test]
fn hash_password_makes_a_working_hash() {
    let out = common::command()
        .arg("hash-password")
        .fed_output_within(b"another-Secret-9\n", common::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("vr.toml");
    std::fs::write(&cfg, format!("password_hash = \"{hash}\"\n")).unwrap();
    let s = Server::start(&[SMALL, &["--config", cfg.to_str().unwrap()]].concat());
    assert_eq!(req(&s, "GET", "/status", &[]).status, 401);
    assert_eq!(
        req(
            &s,
            "GET",
            "/status",
            &[("Authorization", &basic("admin", "another-Secret-9"))]
        )
        .status,
        200
    );
    // A broken hash in the config names the key.
    std::fs::write(&cfg, "password_hash = \"hunter2\"\n").unwrap();
    let out = common::command()
        .args(["--config", cfg.to_str().unwrap()])
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("password_hash"));
}

/// A certificate and key of the user's own are served, and the session
/// cookie is `Secure` under HTTPS.
#[test]
fn https_with_the_users_own_certificate_and_a_secure_cookie() {
    if !common::have_tool("curl") || !common::have_tool("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("mine.crt"), tmp.path().join("mine.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let s = common::creds::env_server(
        &tmp.path().join("clips"),
        &[
            SMALL,
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    let fp = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout);
    let fp = fp.trim().rsplit('=').next().unwrap();
    assert!(s.log().contains(fp), "log lacks {fp}:\n{}", s.log());
    let base = format!("https://localhost:{}", s.addr.port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "--cacert"])
        .arg(&cert)
        .args(["-H", &format!("Origin: {base}")])
        .args(["--data", &format!("user=admin&password={ADMIN_PW}")])
        .arg(format!("{base}/login"))
        .output_within(common::CHILD_TIMEOUT)
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = String::from_utf8_lossy(&out.stdout);
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie:\n{head}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}
