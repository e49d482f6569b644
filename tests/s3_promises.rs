//! Upload promises checked end to end against moto, each by what the
//! recorder did: a PUT whose answer is lost is found by the HEAD and never
//! sent twice; the `<id>.upload` record (key, size, SHA-256) is on disk
//! before the first request for the clip reaches the server; a custom
//! `s3_prefix`, `s3_storage_class` and `AWS_SESSION_TOKEN` reach the server
//! (the key, the class header, the token signed); turning uploads on
//! uploads the clips already there, once.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::Server;
use common::s3::recorder::*;
use common::s3::{Checks, CorruptingProxy, Head, Key, S3Server};
use serde_json::Value;

const KEY_ID: &str = "AKIAVRPROMISES000042";
const SECRET: &str = "Zq9-promises-secret";
const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", KEY_ID),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
];

fn clip_upload(s: &Server, id: &str) -> Value {
    let lib = s.get("/clips").json();
    let all = lib["clips"].as_array().unwrap();
    let c = all.iter().find(|c| c["id"] == id);
    c.unwrap_or_else(|| panic!("{id} not in {lib}"))["upload"].clone()
}

#[test]
fn a_put_whose_answer_is_lost_is_found_by_a_head_and_never_sent_twice() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let checks = Checks {
        drop_put_answers: 1,
        ..Checks::default()
    };
    let proxy = CorruptingProxy::with(s3.addr(), checks);
    let tmp = tempfile::tempdir().unwrap();
    let s = recorder(&tmp.path().join("clips"), &proxy.endpoint(), &[], &CREDS);
    let clip = record(&s, 1000);
    let id = clip["id"].as_str().unwrap();
    let key = key_of(id);
    wait_uploaded(&s, 1);
    assert_eq!(proxy.dropped(), 1, "the clip's PUT lost its answer");
    // The server stored that PUT; the recorder's next try asked (HEAD),
    // found its own bytes and sent nothing more.
    assert_eq!(puts_of(&s3, &key), 1, "PUTs of {key}:\n{}", s3.log());
    assert_written_once(&s3, std::slice::from_ref(&clip));
    assert_in_bucket(&s3, std::slice::from_ref(&clip));
    let up = clip_upload(&s, id);
    assert_eq!(up["state"], "uploaded", "{up}");
    assert_eq!(up["key"], key.as_str());
    let job = job_of(&clip);
    assert_eq!(job["state"], "uploaded", "{job}");
    assert!(job["attempts"].as_u64() >= Some(2), "a try failed: {job}");
    assert_eq!(job["reuploads"], 0, "{job}");
}

/// What the outbox record said when the first request for a clip arrived.
#[derive(Debug, Clone, PartialEq)]
enum AtFirst {
    /// Key, size and SHA-256 all the clip's.
    Held,
    Wrong(String),
}

/// `<id>.upload` and `<id>.mp4` under `dir` (any depth).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// Looks at the disk as the request arrives, before it is passed on.
fn outbox_at_first_request(clips: &Path, head: &Head) -> Option<(String, AtFirst)> {
    let path = head.target.split('?').next().unwrap_or("");
    let key = path.strip_prefix(&format!("/{BUCKET}/"))?;
    let id = key.rsplit('/').next()?.strip_suffix(".mp4")?;
    let Some(record) = find(clips, &format!("{id}.upload")) else {
        return Some((key.into(), AtFirst::Wrong("no record on disk".into())));
    };
    let job: Value = match std::fs::read(&record).map(|b| serde_json::from_slice(&b)) {
        Ok(Ok(j)) => j,
        other => return Some((key.into(), AtFirst::Wrong(format!("{other:?}")))),
    };
    let bytes = std::fs::read(record.with_extension("mp4")).unwrap_or_default();
    let held = job["key"] == key
        && job["size"] == bytes.len() as u64
        && !bytes.is_empty()
        && job["sha256"] == sha(&bytes).as_str();
    let what = if held {
        AtFirst::Held
    } else {
        AtFirst::Wrong(format!("{job} for {} bytes", bytes.len()))
    };
    Some((key.into(), what))
}

#[test]
fn the_outbox_record_holds_key_size_and_sha256_before_the_first_request() {
    let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    // For each clip's key: the first request's method, and the record then.
    let seen: Arc<Mutex<HashMap<String, (String, AtFirst)>>> = Arc::default();
    let (dir, log) = (clips.clone(), seen.clone());
    let look = Arc::new(move |head: &Head| {
        let path = head.target.split('?').next().unwrap_or("").to_string();
        if !path.ends_with(".mp4") || log.lock().unwrap().contains_key(&path) {
            return;
        }
        if let Some((_, what)) = outbox_at_first_request(&dir, head) {
            log.lock()
                .unwrap()
                .insert(path, (head.method.clone(), what));
        }
    });
    let proxy = CorruptingProxy::looking(s3.addr(), look);
    // One clip in a single PUT, one in parts of 50 KiB.
    let parts = ["--s3-part-mb", "0.05", "--bitrate-kbps", "3000"];
    let s = recorder(&clips, &proxy.endpoint(), &parts, &CREDS);
    let made = vec![record(&s, 300), record(&s, 2500)];
    wait_uploaded(&s, 2);
    assert_in_bucket(&s3, &made);
    let part = (0.05f64 * 1024.0 * 1024.0) as u64;
    assert!(made[0]["size_bytes"].as_u64() <= Some(part), "{}", made[0]);
    assert!(made[1]["size_bytes"].as_u64() > Some(part), "{}", made[1]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), made.len(), "{seen:#?}");
    for c in &made {
        let path = format!("/{BUCKET}/{}", key_of(c["id"].as_str().unwrap()));
        let (method, what) = seen
            .get(&path)
            .unwrap_or_else(|| panic!("{path}: {seen:#?}"));
        // The first request for a clip is the HEAD before sending.
        assert_eq!(method, "HEAD", "{path}");
        assert_eq!(what, &AtFirst::Held, "{path}");
    }
}

/// A request as the proxy saw it, for the checks after.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    token: Option<String>,
    class: Option<String>,
    signed: Vec<String>,
    verified: bool,
}

#[test]
fn a_custom_prefix_storage_class_and_session_token_reach_the_server() {
    const TOKEN: &str = "VrSessionToken0Promises7";
    let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    let keys = vec![Key::new(KEY_ID, SECRET)];
    let look = Arc::new(move |h: &Head| {
        log.lock().unwrap().push(Seen {
            method: h.method.clone(),
            target: h.target.clone(),
            token: h.get("x-amz-security-token").map(String::from),
            class: h.get("x-amz-storage-class").map(String::from),
            signed: h.signed_headers(),
            verified: h.signed_by(&keys),
        });
    });
    let proxy = CorruptingProxy::looking(s3.addr(), look);
    let tmp = tempfile::tempdir().unwrap();
    // A clip in one PUT and one in parts of 50 KiB.
    let opts = [
        "--s3-prefix",
        "vault/{camera}/{device}/{date}/clip-{id}.mp4",
        "--s3-storage-class",
        "STANDARD_IA",
        "--s3-part-mb",
        "0.05",
        "--bitrate-kbps",
        "3000",
    ];
    let creds = [CREDS[0], CREDS[1], ("AWS_SESSION_TOKEN", TOKEN)];
    let s = recorder(&tmp.path().join("clips"), &proxy.endpoint(), &opts, &creds);
    let clips = [record(&s, 300), record(&s, 3000)];
    let part = (0.05f64 * 1024.0 * 1024.0) as u64;
    assert!(
        clips[0]["size_bytes"].as_u64() <= Some(part),
        "{}",
        clips[0]
    );
    assert!(clips[1]["size_bytes"].as_u64() > Some(part), "{}", clips[1]);
    wait_uploaded(&s, 2);
    let mut want = Vec::new();
    for clip in &clips {
        let id = clip["id"].as_str().unwrap();
        let day = key_of(id).split('/').nth(2).unwrap().to_string();
        let key = format!("vault/cam/testdev/{day}/clip-{id}.mp4");
        let manifest = format!("vault/cam/testdev/{day}/clip-{id}.json");
        let bytes = std::fs::read(local(clip)).unwrap();
        assert_eq!(sha(&s3.get(BUCKET, &key).unwrap()), sha(&bytes));
        let m: Value = serde_json::from_slice(&s3.get(BUCKET, &manifest).unwrap()).unwrap();
        assert_eq!(m["key"], key.as_str(), "{m}");
        assert_manifest_times(&m, clip);
        assert_eq!(clip_upload(&s, id)["key"], key.as_str());
        // The class as the server stored it.
        let class = s3.head_header(BUCKET, &key, "x-amz-storage-class");
        assert_eq!(class.as_deref(), Some("STANDARD_IA"), "HEAD of {key}");
        want.extend([manifest, key]);
    }
    // The objects at the templated keys, and nothing anywhere else.
    want.sort();
    let listed: Vec<String> = s3.list(BUCKET).into_iter().map(|(k, _)| k).collect();
    assert_eq!(listed, want);
    // The class asked for where an object begins: the PUT, the multipart
    // upload's creation; signed.
    let seen = seen.lock().unwrap().clone();
    let begins: Vec<&Seen> = seen
        .iter()
        .filter(|r| {
            r.target.ends_with(".mp4") && r.method == "PUT"
                || r.target.ends_with(".mp4?uploads=") && r.method == "POST"
        })
        .collect();
    assert_eq!(begins.len(), 2, "{seen:#?}");
    for r in begins {
        assert_eq!(r.class.as_deref(), Some("STANDARD_IA"), "{r:?}");
        assert!(r.signed.iter().any(|h| h == "x-amz-storage-class"), "{r:?}");
    }
    // Every request (parts too) carried the token, signed, and the
    // signature holds.
    let parts = seen
        .iter()
        .filter(|r| r.target.contains("partNumber="))
        .count();
    assert!(parts >= 2, "{seen:#?}");
    for r in &seen {
        assert_eq!(r.token.as_deref(), Some(TOKEN), "{r:?}");
        assert!(
            r.signed.iter().any(|h| h == "x-amz-security-token"),
            "{r:?}"
        );
        assert!(r.verified, "a signature that does not hold: {r:?}");
    }
    for text in [s.log(), s.get("/status").text(), s.get("/clips").text()] {
        assert!(!text.contains(TOKEN) && !text.contains(SECRET), "{text}");
    }
}

#[test]
fn turning_uploads_on_uploads_the_clips_already_there_once() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("clips");
    let mut s = Server::start_env(&dir, &CAMERA, &CREDS);
    let mut clips = vec![record(&s, 500), record(&s, 700)];
    let st = s.get("/status").json();
    assert_eq!(st["uploads"]["enabled"], false, "{st}");
    assert_eq!(s.signal(15).code(), Some(0), "{}", s.log());
    assert!(
        s3.list(BUCKET).is_empty(),
        "nothing sent while uploads were off"
    );
    // Restarted with a bucket: both go up, and so does a new one.
    let s = recorder(&dir, &s3.endpoint(), &[], &CREDS);
    wait_uploaded(&s, 2);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
    clips.push(record(&s, 500));
    wait_uploaded(&s, 3);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
    let lib = s.get("/clips").json();
    let listed = lib["clips"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{lib}");
    for c in listed {
        assert_eq!(c["upload"]["state"], "uploaded", "{c}");
    }
}
