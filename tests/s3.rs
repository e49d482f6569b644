//! Uploads to a real S3 API server (moto in server mode, `vr_harness::s3`):
//! clips arrive once with equal bytes under the templated key, with their
//! manifests (each written once, as moto's request log shows); through an
//! outage and restarts; a `kill -9` mid multipart upload resumes from the
//! parts already there; a byte damaged on the way is caught and sent again; a missing bucket is said in words and the
//! upload goes on once it exists; the rate cap holds.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::Server;
use common::s3::recorder::*;
use common::s3::{CorruptingProxy, S3Server};
use serde_json::Value;

const SECRET: &str = "Zq9-s3-secret";

fn server(clips: &Path, endpoint: &str, extra: &[&str]) -> Server {
    recorder(
        clips,
        endpoint,
        extra,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIATEST"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
}

fn uploads(s: &Server) -> Value {
    s.get("/status").json()["uploads"].clone()
}

#[test]
fn clips_arrive_once_byte_for_byte_with_their_manifests() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp.path().join("clips"), &s3.endpoint(), &[]);
    let clips = vec![record(&s, 1000), record(&s, 1500)];
    wait_uploaded(&s, 2);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
    let lib = s.get("/clips").json();
    let listed = lib["clips"].as_array().unwrap();
    assert_eq!(listed.len(), clips.len(), "{lib}");
    for c in listed {
        assert_eq!(c["upload"]["state"], "uploaded", "{c}");
        assert_eq!(
            c["upload"]["key"],
            key_of(c["id"].as_str().unwrap()).as_str()
        );
    }
    // The secret key is nowhere.
    for text in [s.get("/status").text(), lib.to_string(), s.log()] {
        assert!(!text.contains(SECRET));
    }
}

#[test]
fn through_an_outage_and_a_restart_every_clip_arrives_once() {
    let Some(mut s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    s3.stop();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    let mut s = server(&dir, &s3.endpoint(), &[]);
    let mut clips = vec![record(&s, 1000), record(&s, 1000)];
    let st = s.wait_status(WAIT, "failures", |st| {
        st["uploads"]["failed"].as_u64() >= Some(2)
    });
    assert!(
        st["uploads"]["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{st}"
    );
    let lib = s.get("/clips").json();
    let listed = lib["clips"].as_array().unwrap();
    assert_eq!(listed.len(), clips.len(), "{lib}");
    for c in listed {
        assert_eq!(c["upload"]["state"], "failed", "{lib}");
    }
    assert_eq!(s.signal(15).code(), Some(0));
    // Back (empty: moto keeps nothing), and the recorder restarted.
    s3.restart();
    s3.create_bucket(BUCKET);
    let mut s = server(&dir, &s3.endpoint(), &[]);
    clips.push(record(&s, 1000));
    wait_uploaded(&s, 3);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
    // Restarted with the server up: the clips already there are not sent
    // again (the uploader goes oldest first, so once a new clip is up it
    // has been through the old ones).
    assert_eq!(s.signal(15).code(), Some(0));
    let s = server(&dir, &s3.endpoint(), &[]);
    clips.push(record(&s, 1000));
    wait_uploaded(&s, 4);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
}

#[test]
fn kill_9_mid_multipart_upload_resumes_from_the_parts_already_there() {
    // Parts of 20 KiB (moto's 5 MiB minimum lowered for the test).
    let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    let slow = SLOW_MULTIPART;
    let mut s = server(&dir, &s3.endpoint(), &slow);
    let clip = record(&s, 2000);
    let size = clip["size_bytes"].as_u64().unwrap();
    let part = (0.02f64 * 1024.0 * 1024.0) as u64;
    assert!(size > 3 * part, "a clip of {size} bytes has too few parts");
    s.wait_status(WAIT, "two parts sent", |st| {
        st["uploads"]["uploading"]["sent_bytes"].as_u64() >= Some(2 * part + 1)
    });
    s.signal(9);
    let record_path = local(&clip).with_extension("upload");
    let job: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    let upload_id = job["multipart"]["upload_id"].as_str().unwrap().to_string();
    let done = job["multipart"]["parts"].as_array().unwrap().len();
    assert!(done >= 1, "{job}");
    let key = key_of(clip["id"].as_str().unwrap());
    let held = s3.parts(BUCKET, &key, &upload_id);
    assert!(held.len() >= done, "server {held:?}, record {job}");
    let s = server(&dir, &s3.endpoint(), &["--s3-part-mb", "0.02"]);
    wait_uploaded(&s, 1);
    let log = s.log();
    assert!(log.contains("parts were on the server already"), "{log}");
    // The same upload was completed: no second one, none left open.
    let job: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    assert_eq!(job["multipart"]["upload_id"], upload_id.as_str());
    assert!(s3.multipart_uploads(BUCKET).is_empty());
    assert_in_bucket(&s3, &[clip]);
    let (_, etag) = s3.head(BUCKET, &key).unwrap();
    assert!(
        etag.ends_with(&format!("-{}", size.div_ceil(part))),
        "{etag}"
    );
}

#[test]
fn a_byte_damaged_on_the_way_is_caught_and_the_clip_sent_again() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let addr = s3.endpoint().trim_start_matches("http://").parse().unwrap();
    let proxy = CorruptingProxy::start(addr, 1);
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp.path().join("clips"), &proxy.endpoint(), &[]);
    let clip = record(&s, 1000);
    wait_uploaded(&s, 1);
    assert_eq!(proxy.corrupted(), 1, "the proxy damaged a PUT");
    assert_in_bucket(&s3, &[clip]);
    assert!(
        s.log().contains("the stored object is not the clip"),
        "{}",
        s.log()
    );
}

#[test]
fn a_missing_bucket_is_said_and_the_clip_goes_up_once_it_exists() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let s = server(&tmp.path().join("clips"), &s3.endpoint(), &[]);
    let clip = record(&s, 1000);
    let id = clip["id"].as_str().unwrap().to_string();
    let st = s.wait_status(WAIT, "a failure", |st| st["uploads"]["failed"] == 1);
    assert!(
        st["uploads"]["last_error"]
            .as_str()
            .unwrap()
            .contains("no such bucket"),
        "{st}"
    );
    assert!(local(&clip).exists(), "nothing lost");
    s3.create_bucket(BUCKET);
    // Tried now, not after the backoff.
    let r = s.post(&format!("/clips/{id}/upload"), "");
    assert_eq!(r.status, 202, "{}", r.text());
    wait_uploaded(&s, 1);
    assert_in_bucket(&s3, &[clip]);
    let again = s.post(&format!("/clips/{id}/upload"), "");
    assert_eq!(again.status, 409);
    assert_eq!(s.post("/clips/nope-20990101-000000/upload", "").status, 404);
}

#[test]
fn the_rate_cap_holds_and_delete_after_upload_keeps_nothing_here() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let opts = [
        "--s3-max-kbps",
        "800",
        "--bitrate-kbps",
        "1500",
        "--s3-delete-after-upload",
    ];
    let s = server(&tmp.path().join("clips"), &s3.endpoint(), &opts);
    let clip = record(&s, 2000);
    let bytes = std::fs::read(local(&clip)).unwrap();
    let began = Instant::now();
    // Uploaded, checked, then deleted here: the file going is the sign.
    while local(&clip).exists() {
        assert!(began.elapsed() < WAIT, "not uploaded: {}", uploads(&s));
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = began.elapsed().as_secs_f64();
    // 800 kbit/s is 100 kB/s: never faster (slower is the machine's).
    let least = bytes.len() as f64 / 100_000.0;
    assert!(
        took >= least * 0.9,
        "{} bytes in {took:.2} s (cap: {least:.2} s)",
        bytes.len()
    );
    let key = key_of(clip["id"].as_str().unwrap());
    assert_eq!(sha(&s3.get(BUCKET, &key).unwrap()), sha(&bytes));
    assert!(!local(&clip).exists(), "deleted here once in the bucket");
    assert!(!local(&clip).with_extension("upload").exists());
}

/// moto checking every request's signature (IAM on), as AWS, MinIO and
/// Garage do: whole clips and multipart ones go up signed, and a wrong
/// secret is said in words with the secret nowhere.
#[test]
fn a_server_that_checks_every_signature_takes_the_clips_and_a_wrong_secret_is_said() {
    let Some(s3) = S3Server::start_iam(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let creds = [
        ("AWS_ACCESS_KEY_ID", s3.key.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", s3.key.secret.as_str()),
    ];
    // Parts of 20 KiB: the second clip goes up in several.
    let parts = ["--s3-part-mb", "0.02", "--bitrate-kbps", "3000"];
    let s = recorder(&tmp.path().join("clips"), &s3.endpoint(), &parts, &creds);
    let clips = vec![record(&s, 300), record(&s, 1500)];
    let part = (0.02f64 * 1024.0 * 1024.0) as u64;
    assert!(
        clips[1]["size_bytes"].as_u64() > Some(2 * part),
        "{}",
        clips[1]
    );
    wait_uploaded(&s, 2);
    assert_in_bucket(&s3, &clips);
    drop(s);

    let wrong = "Wrong-secret-Zq9";
    let creds = [
        ("AWS_ACCESS_KEY_ID", s3.key.id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", wrong),
    ];
    let s = recorder(&tmp.path().join("other"), &s3.endpoint(), &[], &creds);
    record(&s, 300);
    let st = s.wait_status(WAIT, "a refused upload", |st| {
        st["uploads"]["failed"].as_u64() >= Some(1)
    });
    let said = st["uploads"]["last_error"].as_str().unwrap_or_default();
    assert!(said.contains("secret key is wrong"), "{st}");
    for text in [st.to_string(), s.get("/clips").text(), s.log()] {
        assert!(!text.contains(wrong), "the secret shows: {text}");
        assert!(!text.contains(&s3.key.secret), "a secret shows: {text}");
    }
}
