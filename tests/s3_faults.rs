//! Uploads against S3 servers that fail the recorder: one that damages
//! every copy (never counted, never deleted here, said in words), one that
//! never answers (SIGTERM still exits promptly and the upload resumes), and
//! what of the credentials shows anywhere (at `--log-level trace`, debug and more; in
//! `/status` when a server quotes the request back, in `/proc/PID/environ`).

mod common;

use std::time::{Duration, Instant};

use common::s3::recorder::*;
use common::s3::{Behaviour, CorruptingProxy, S3Server, StubS3};
use serde_json::Value;

const KEY_ID: &str = "AKIAVRFAULTSKEY00042";
const SECRET: &str = "Zq9-faults-secret/+x";
const TOKEN: &str = "VrSessionToken0Faults9";
const CREDS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
    ("AWS_SESSION_TOKEN", TOKEN),
];

fn clip_upload(s: &common::Server, id: &str) -> Value {
    let lib = s.get("/clips").json();
    let c = lib["clips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id);
    c.map(|c| c["upload"].clone()).unwrap_or(Value::Null)
}

#[test]
fn a_server_that_damages_every_copy_never_gets_the_clip_counted_or_deleted() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let proxy = CorruptingProxy::start(s3.addr(), usize::MAX);
    let tmp = tempfile::tempdir().unwrap();
    let opts = ["--s3-delete-after-upload"];
    let s = recorder(&tmp.path().join("clips"), &proxy.endpoint(), &opts, &CREDS);
    let clip = record(&s, 1000);
    let id = clip["id"].as_str().unwrap();
    // Four tries, each asked for at once: a copy used to be taken on its
    // size alone at the third.
    for n in 1..=4u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let up = clip_upload(&s, id);
            assert!(
                local(&clip).exists(),
                "deleted after try {n}: {up}\n{}",
                s.log()
            );
            assert_ne!(
                up["state"],
                "uploaded",
                "counted after try {n}\n{}",
                s.log()
            );
            if up["state"] == "failed" && up["attempts"].as_u64() >= Some(n) {
                break;
            }
            assert!(Instant::now() < deadline, "try {n} never ended: {up}");
            std::thread::sleep(Duration::from_millis(100));
        }
        if n < 4 {
            let r = s.post(&format!("/clips/{id}/upload"), "");
            assert_eq!(r.status, 202, "{}", r.text());
        }
    }
    assert!(
        proxy.corrupted() >= 4,
        "{} copies damaged",
        proxy.corrupted()
    );
    let up = s.get("/status").json()["uploads"].clone();
    assert_eq!(
        (up["uploaded"].as_u64(), up["pending"].as_u64()),
        (Some(0), Some(1)),
        "{up}"
    );
    let why = up["last_error"].as_str().unwrap_or("");
    assert!(
        why.contains("the stored object is not the clip") && why.contains("the clip stays here"),
        "{why}"
    );
    assert!(local(&clip).exists());
    assert_eq!(job_of(&clip)["state"], "pending");
    // The damaged copy is what the server holds.
    let stored = s3.get(BUCKET, &key_of(id)).unwrap();
    assert_ne!(sha(&stored), sha(&std::fs::read(local(&clip)).unwrap()));
}

#[test]
fn sigterm_with_a_server_that_never_answers_exits_promptly_and_the_upload_resumes() {
    let silent = StubS3::start(Behaviour::Silent);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    let mut s = recorder(&dir, &silent.endpoint(), &[], &CREDS);
    let clip = record(&s, 1000);
    s.wait_status(WAIT, "an upload waiting on the server", |st| {
        !st["uploads"]["uploading"].is_null() && silent.connections() >= 1
    });
    let began = Instant::now();
    let status = s.signal(15);
    let took = began.elapsed();
    eprintln!("SIGTERM to exit with a silent S3 server: {took:.2?}");
    assert_eq!(status.code(), Some(0), "{}", s.log());
    // systemd's TimeoutStopSec is 30 s: well under it, on a busy machine.
    assert!(took < Duration::from_secs(15), "took {took:?}\n{}", s.log());
    assert!(s.log().contains("left for the next start"), "{}", s.log());
    assert!(local(&clip).exists(), "the clip was finished first");
    assert_eq!(job_of(&clip)["state"], "pending");
    drop(s);
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let s = recorder(&dir, &s3.endpoint(), &[], &CREDS);
    wait_uploaded(&s, 1);
    assert_in_bucket(&s3, &[clip]);
}

/// Nothing of the credentials in `text`: key id, secret, token, signatures.
fn assert_clean(what: &str, text: &str) {
    for bad in [
        KEY_ID,
        SECRET,
        TOKEN,
        "Signature=",
        "X-Amz-Signature",
        "X-Amz-Credential",
    ] {
        assert!(!text.contains(bad), "{bad} in {what}:\n{text}");
    }
}

#[test]
fn at_trace_level_no_key_id_secret_token_or_signature_shows_in_log_status_or_environment() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    // Trace: debug's lines and more (ureq's show every byte it sends).
    let debug = ["--log-level", "trace"];
    let s = recorder(&tmp.path().join("clips"), &s3.endpoint(), &debug, &CREDS);
    let clip = record(&s, 1000);
    wait_uploaded(&s, 1);
    assert_in_bucket(&s3, &[clip]);
    assert!(s.log().contains("DEBUG"), "a trace log:\n{}", s.log());
    assert_clean("the debug log", &s.log());
    assert_clean("/status", &s.get("/status").text());
    assert_clean("/clips", &s.get("/clips").text());
    if common::emulated() {
        // /proc shows the emulator's own environment, not the guest's.
        eprintln!("environment check skipped under an emulator (VRTEST_RUNNER)");
    } else {
        let env = std::fs::read(format!("/proc/{}/environ", s.pid())).unwrap();
        assert_clean("/proc/PID/environ", &String::from_utf8_lossy(&env));
    }

    // A server whose 403 quotes the request back, head and all.
    let deny = StubS3::start(Behaviour::DenyEchoing);
    let tmp = tempfile::tempdir().unwrap();
    let s = recorder(&tmp.path().join("clips"), &deny.endpoint(), &debug, &CREDS);
    let clip = record(&s, 1000);
    let st = s.wait_status(WAIT, "a failure", |st| st["uploads"]["failed"] == 1);
    let why = st["uploads"]["last_error"].as_str().unwrap();
    assert!(
        why.starts_with("access denied by the server (403)"),
        "{why}"
    );
    assert_clean("last_error", why);
    assert_clean("/status", &st.to_string());
    assert_clean("/clips", &s.get("/clips").text());
    assert_clean("the debug log", &s.log());
    assert!(local(&clip).exists(), "nothing lost");
}
