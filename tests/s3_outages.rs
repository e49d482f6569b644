//! Uploads through an outage in the middle of a multipart upload (the
//! parts the server holds are not sent again, the object is the clip, one
//! upload completed) and through the server itself killed then (back
//! empty: a new upload, completed once), over `https://` to an endpoint signed by a CA of our
//! own (trusted through `SSL_CERT_FILE`, refused without it), a clip
//! that retention had to delete before it could be uploaded, counted in
//! `/status`, and a restart on a disk under its free-space floor that
//! keeps the clips still waiting (it used to delete them, silently).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::RunWithin;
use common::s3::recorder::*;
use common::s3::{CorruptingProxy, S3Server, TlsFront};
use serde_json::Value;

const CREDS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "AKIAVROUTAGES0000042"),
    ("AWS_SECRET_ACCESS_KEY", "Zq9-outages-secret"),
];

/// moto's answers 200 to each part number of `key`'s upload `upload_id`.
fn part_puts(s3: &S3Server, key: &str, upload_id: &str) -> BTreeMap<u32, usize> {
    let mut n = BTreeMap::new();
    let prefix = format!("\"PUT /{BUCKET}/{key}?partNumber=");
    for line in s3.log().lines().filter(|l| l.contains("\" 200")) {
        let Some(rest) = line.split(&prefix).nth(1) else {
            continue;
        };
        let Some((number, rest)) = rest.split_once('&') else {
            continue;
        };
        if rest.starts_with(&format!("uploadId={upload_id} ")) {
            *n.entry(number.parse().unwrap()).or_insert(0) += 1;
        }
    }
    n
}

#[test]
fn an_outage_mid_multipart_upload_resumes_without_sending_held_parts_again() {
    // Parts of 20 KiB (moto's 5 MiB minimum lowered for the test).
    let Some(s3) = S3Server::start_with_env(&[("S3_UPLOAD_PART_MIN_SIZE", "1024")]) else {
        return;
    };
    s3.create_bucket(BUCKET);
    // The way to the server, which can go down and come back (the server
    // keeps what it has, as S3 does through a network outage).
    let proxy = CorruptingProxy::start(s3.addr(), 0);
    let tmp = tempfile::tempdir().unwrap();
    // 160 kbit/s: a part a second, so the outage comes mid-way.
    let slow = SLOW_MULTIPART;
    let s = recorder(&tmp.path().join("clips"), &proxy.endpoint(), &slow, &CREDS);
    let clip = record(&s, 3000);
    let id = clip["id"].as_str().unwrap();
    let key = key_of(id);
    let size = clip["size_bytes"].as_u64().unwrap();
    let part = (0.02f64 * 1024.0 * 1024.0) as u64;
    let count = size.div_ceil(part);
    assert!(count >= 6, "a clip of {size} bytes has too few parts");
    s.wait_status(WAIT, "two parts sent", |st| {
        st["uploads"]["uploading"]["sent_bytes"].as_u64() >= Some(2 * part + 1)
    });
    proxy.set_down(true);
    let st = s.wait_status(WAIT, "the outage seen", |st| {
        st["uploads"]["failed"].as_u64() >= Some(1)
    });
    let said = st["uploads"]["last_error"].as_str().unwrap_or_default();
    assert!(said.contains("cannot reach"), "{st}");
    let job = job_of(&clip);
    let upload_id = job["multipart"]["upload_id"].as_str().unwrap().to_string();
    let done = job["multipart"]["parts"].as_array().unwrap().len();
    let held = s3.parts(BUCKET, &key, &upload_id);
    assert!(
        done >= 2 && held.len() >= done,
        "server {held:?}, record {job}"
    );
    assert!(
        (held.len() as u64) < count,
        "the outage came after every part"
    );
    assert!(s3.head(BUCKET, &key).is_none(), "not complete yet");
    proxy.set_down(false);
    wait_uploaded(&s, 1);
    // "resumed; K of N parts were on the server already"
    let log = s.log();
    let kept = log
        .split("resumed; ")
        .nth(1)
        .and_then(|r| r.split_once(&format!(" of {count} parts were on the server already")))
        .and_then(|(k, _)| k.parse::<usize>().ok());
    assert!(kept >= Some(held.len()), "held {}:\n{log}", held.len());
    // The same upload, completed once; none left open.
    let job = job_of(&clip);
    assert_eq!(job["multipart"]["upload_id"], upload_id.as_str(), "{job}");
    assert!(s3.multipart_uploads(BUCKET).is_empty());
    assert_in_bucket(&s3, std::slice::from_ref(&clip));
    assert_written_once(&s3, std::slice::from_ref(&clip));
    let (_, etag) = s3.head(BUCKET, &key).unwrap();
    assert!(etag.ends_with(&format!("-{count}")), "{etag}");
    // Every part stored; those the server held at the outage just once.
    let puts = part_puts(&s3, &key, &upload_id);
    assert_eq!(puts.len() as u64, count, "{puts:?}");
    for (n, _) in &held {
        assert_eq!(puts.get(n), Some(&1), "part {n} sent again: {puts:?}");
    }
}

#[test]
fn the_server_killed_mid_multipart_upload_and_back_empty_gets_the_clip_once() {
    let env = [("S3_UPLOAD_PART_MIN_SIZE", "1024")];
    let Some(mut s3) = S3Server::start_with_env(&env) else {
        return;
    };
    s3.create_bucket(BUCKET);
    let tmp = tempfile::tempdir().unwrap();
    let slow = SLOW_MULTIPART;
    let s = recorder(&tmp.path().join("clips"), &s3.endpoint(), &slow, &CREDS);
    let clip = record(&s, 3000);
    let key = key_of(clip["id"].as_str().unwrap());
    let size = clip["size_bytes"].as_u64().unwrap();
    let part = (0.02f64 * 1024.0 * 1024.0) as u64;
    let count = size.div_ceil(part);
    assert!(count >= 6, "a clip of {size} bytes has too few parts");
    s.wait_status(WAIT, "two parts sent", |st| {
        st["uploads"]["uploading"]["sent_bytes"].as_u64() >= Some(2 * part + 1)
    });
    let first = job_of(&clip)["multipart"]["upload_id"]
        .as_str()
        .unwrap()
        .to_string();
    // moto gone with every part it held, then back empty.
    s3.stop();
    s.wait_status(WAIT, "the outage seen", |st| {
        st["uploads"]["failed"].as_u64() >= Some(1)
    });
    s3.restart();
    s3.create_bucket(BUCKET);
    wait_uploaded(&s, 1);
    assert!(
        s.log()
            .contains("the multipart upload was gone from the server"),
        "{}",
        s.log()
    );
    // A new upload, completed once, none left open; the object whole.
    let job = job_of(&clip);
    assert_ne!(job["multipart"]["upload_id"], first.as_str(), "{job}");
    assert!(s3.multipart_uploads(BUCKET).is_empty());
    assert_in_bucket(&s3, std::slice::from_ref(&clip));
    assert_written_once(&s3, std::slice::from_ref(&clip));
    let (_, etag) = s3.head(BUCKET, &key).unwrap();
    assert!(etag.ends_with(&format!("-{count}")), "{etag}");
}

#[test]
fn an_https_endpoint_signed_by_a_ca_in_ssl_cert_file_takes_the_clips() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let front = TlsFront::start(s3.addr());
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.pem");
    std::fs::write(&ca, front.ca_pem()).unwrap();

    // Not trusted (not in the system's CAs): refused, said, kept.
    let s = recorder(
        &tmp.path().join("untrusted"),
        &front.endpoint(),
        &[],
        &CREDS,
    );
    let clip = record(&s, 500);
    let st = s.wait_status(WAIT, "a refused upload", |st| {
        st["uploads"]["failed"].as_u64() >= Some(1)
    });
    let said = st["uploads"]["last_error"].as_str().unwrap_or_default();
    assert!(
        said.contains("certificate") && said.contains("SSL_CERT_FILE"),
        "{st}"
    );
    assert!(
        front.failed_handshakes() >= 1,
        "the recorder refused the certificate"
    );
    assert!(local(&clip).exists());
    assert!(s3.list(BUCKET).is_empty(), "nothing got through");
    drop(s);

    // Trusted through SSL_CERT_FILE: up, once, byte for byte.
    let env = [CREDS[0], CREDS[1], ("SSL_CERT_FILE", ca.to_str().unwrap())];
    let s = recorder(&tmp.path().join("trusted"), &front.endpoint(), &[], &env);
    let clips = vec![record(&s, 500), record(&s, 800)];
    wait_uploaded(&s, 2);
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
    assert!(front.handshakes() >= 1, "over TLS");
}

/// A tmpfs of `mib` MiB (root only), unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output_within(common::CHILD_TIMEOUT);
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir)),
            Ok(o) => {
                common::skip(&format!(
                    "cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
                None
            }
            Err(e) => {
                common::skip(&format!("cannot mount a tmpfs: {e}"));
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn a_clip_retention_deletes_before_its_upload_is_counted_in_status() {
    let Some(fs) = Tmpfs::mount(100) else {
        return;
    };
    // No bucket yet: every upload fails and the clips wait.
    let Some(s3) = S3Server::start() else {
        return;
    };
    let dir = fs.path().join("clips");
    // A budget far away: retention runs, and only the free space counts.
    let opts = ["--clips-max-mb", "100000"];
    let s = recorder(&dir, &s3.endpoint(), &opts, &CREDS);
    let old = record(&s, 500);
    let newer = record(&s, 500);
    s.wait_status(WAIT, "both waiting", |st| {
        st["uploads"]["failed"].as_u64() >= Some(2)
    });
    assert_eq!(
        s.get("/status").json()["uploads"]["deleted_before_upload"],
        0
    );
    // The disk nearly full (40 MiB of 100 free: under the 64 MiB at which
    // waiting clips may go).
    let mut filler = std::fs::File::create(fs.path().join("filler")).unwrap();
    let block = vec![0x5a; 1 << 20];
    for _ in 0..60 {
        filler.write_all(&block).unwrap();
    }
    filler.sync_all().unwrap();
    // The next recording's start makes room: the oldest waiting clip goes
    // (the newest of the camera is kept).
    assert_eq!(s.post("/start", "").status, 200);
    let st = s.wait_status(WAIT, "the loss counted", |st| {
        st["uploads"]["deleted_before_upload"] == 1
    });
    // Room again before this recording ends (else the next clip would go).
    drop(filler);
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    s.wait_status(WAIT, "frames", |st| {
        st["recorder"]["frames"].as_u64() >= Some(10)
    });
    let stop = s.post("/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.text());
    let third = stop.json();
    assert!(!local(&old).exists(), "{st}");
    assert!(local(&newer).exists() && local(&third).exists());
    let log = s.log();
    let said = format!(
        "deleting clip {} before it was uploaded",
        old["id"].as_str().unwrap()
    );
    assert!(log.contains(&said), "{log}");
    // The bucket comes: the two left go up; the lost one is not waited for.
    s3.create_bucket(BUCKET);
    for c in [&newer, &third] {
        let id = c["id"].as_str().unwrap();
        let _ = s.post(&format!("/clips/{id}/upload"), "");
    }
    let up: Value = wait_uploaded(&s, 2);
    assert_eq!(up["deleted_before_upload"], 1, "{up}");
    assert_in_bucket(&s3, &[newer, third]);
}

#[test]
fn a_restart_on_a_disk_under_its_floor_keeps_the_clips_still_waiting() {
    let Some(fs) = Tmpfs::mount(100) else {
        return;
    };
    let Some(s3) = S3Server::start() else {
        return;
    };
    let dir = fs.path().join("clips");
    // A floor of 90 MiB free of 100; no bucket yet, so both clips wait.
    let opts = ["--clips-min-free-mb", "90"];
    let mut s = recorder(&dir, &s3.endpoint(), &opts, &CREDS);
    let clips = vec![record(&s, 500), record(&s, 500)];
    s.wait_status(WAIT, "both waiting", |st| {
        st["uploads"]["failed"].as_u64() >= Some(2)
    });
    assert_eq!(s.signal(15).code(), Some(0), "{}", s.log());
    // Meanwhile other files took 20 MiB: under the floor, not nearly full.
    let mut filler = std::fs::File::create(fs.path().join("filler")).unwrap();
    let block = vec![0x5a; 1 << 20];
    for _ in 0..20 {
        filler.write_all(&block).unwrap();
    }
    filler.sync_all().unwrap();
    s3.create_bucket(BUCKET);
    // The start's retention must keep what still waits for upload.
    let s = recorder(&dir, &s3.endpoint(), &opts, &CREDS);
    let up = wait_uploaded(&s, 2);
    assert_eq!(up["deleted_before_upload"], 0, "{up}");
    assert_in_bucket(&s3, &clips);
    assert_written_once(&s3, &clips);
}
