//! Schemathesis fuzzes the API from our own `/openapi.json` against the real
//! binary: no 5xx, every status, content type, header and body as the
//! document says, malformed input refused, no crash, and the server still
//! answers afterwards.

mod common;

use common::RunWithin;
use common::Server;

#[test]
fn openapi_fuzzing_finds_no_server_error() {
    if !common::have_tool("st") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let token = "fuzz-token-0123456789";
    let s = Server::start_env(
        &tmp.path().join("clips"),
        &[
            "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
        ],
        &[("VR_PASSWORD", "fuzz-admin-pass"), ("VR_API_TOKEN", token)],
    );
    let mut st = std::process::Command::new("st");
    st.arg("run")
        .arg(format!("http://{}/openapi.json", s.addr))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        // Every check but two: a Range past the end of a clip is valid by
        // the schema yet rightly 416 (positive_data_acceptance), and the
        // invalid credentials of ignored_auth trip the lockout (429) by
        // design; both are tested on their own. The bearer token, once
        // verified, is let in whatever the lockout says.
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance,ignored_auth"])
        // The live streams never end; the login form's lockout would turn the
        // rest of the run into 429s (it is tested on its own).
        .args(["--exclude-path", "/video", "--exclude-path", "/login"])
        .args(["--exclude-path-regex", "^/cameras/[^/]+/video$"])
        .args(["--max-examples", "40", "--request-timeout", "30"])
        .args(["--generation-deterministic"]);
    ran_clean(st, tmp.path(), &s);
    assert_eq!(s.get("/healthz").status, 200, "server died during fuzzing");
}

/// Runs a schemathesis command (its cache kept in `dir`, out of the source
/// tree) and asserts it ran, found nothing, and the server did not panic.
fn ran_clean(mut st: std::process::Command, dir: &std::path::Path, s: &Server) {
    let out = st
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .output_within(common::LONG_CHILD_TIMEOUT)
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(
        report.contains("generated"),
        "schemathesis ran nothing:\n{report}"
    );
    assert!(!s.log().contains("panicked"), "a panic:\n{}", s.log());
}

/// The sign-in form fuzzed on a server of its own: every answer as the
/// document says (the lockout's 429 included, which the run is expected to
/// trip), no 5xx, no panic, and the server still answers afterwards.
#[test]
fn the_sign_in_form_fuzzed_finds_no_server_error() {
    if !common::have_tool("st") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let token = "fuzz-token-0123456789";
    let s = Server::start_env(
        &tmp.path().join("clips"),
        &["--source", "test", "--width", "320", "--height", "240"],
        &[("VR_PASSWORD", "fuzz-admin-pass"), ("VR_API_TOKEN", token)],
    );
    // The document is for the signed in; the form is for everyone else,
    // so the run has no credentials.
    let bearer = format!("Bearer {token}");
    let doc = common::request(
        s.addr,
        "GET",
        "/openapi.json",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(doc.status, 200);
    let schema = tmp.path().join("openapi.json");
    std::fs::write(&schema, &doc.body).unwrap();
    let mut st = std::process::Command::new("st");
    st.arg("run")
        .arg(&schema)
        .args(["--url", &format!("http://{}", s.addr)])
        .args(["--include-path", "/login"])
        .args(["--checks", "all"])
        .args(["--exclude-checks", "ignored_auth"])
        .args(["--max-examples", "60", "--request-timeout", "30"])
        .args(["--generation-deterministic"]);
    ran_clean(st, tmp.path(), &s);
    // The guesses were counted and the lockout began, and the server
    // still answers.
    let log = s.log();
    assert!(log.matches("failed login for").count() >= 5, "{log}");
    assert!(
        log.contains("failed sign-ins as") && log.contains("each further try waits longer"),
        "{log}"
    );
    assert_eq!(s.get("/healthz").status, 200, "server died during fuzzing");
}
