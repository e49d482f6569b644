//! The recorder as the upload tests run it: the test camera at 320x240,
//! uploads to `BUCKET` on a given endpoint (path style, device `testdev`),
//! and the few steps they share.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;
use crate::Server;

pub const BUCKET: &str = "vr-test-clips";
/// Long enough for a loaded 2-core machine (or qemu) to record and upload.
pub const WAIT: Duration = Duration::from_secs(60);

/// The camera every S3 test records: the test source, small.
pub const CAMERA: [&str; 10] = [
    "--source",
    "test",
    "--width",
    "320",
    "--height",
    "240",
    "--fps",
    "30",
    "--clips-min-free-mb",
    "0",
];

/// Uploads slow enough (parts of 20 KiB at 160 kbit/s: a part a second)
/// for a test to break them off mid-way, of a clip with many parts.
pub const SLOW_MULTIPART: [&str; 6] = [
    "--s3-part-mb",
    "0.02",
    "--s3-max-kbps",
    "160",
    "--bitrate-kbps",
    "3000",
];

/// The recorder uploading to `endpoint`, with `extra` flags and `env`
/// (credentials: `AWS_ACCESS_KEY_ID`, …).
pub fn recorder(clips: &Path, endpoint: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = CAMERA.to_vec();
    args.extend_from_slice(&[
        "--s3-bucket",
        BUCKET,
        "--s3-endpoint-url",
        endpoint,
        "--s3-path-style",
        "--s3-device",
        "testdev",
    ]);
    args.extend_from_slice(extra);
    Server::start_env(clips, &args, env)
}

/// Records about `ms` of video (counted in frames) and stops: `/stop`'s JSON.
pub fn record(s: &Server, ms: u64) -> Value {
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(WAIT, "frames", |st| {
        st["recorder"]["frames"].as_u64() >= Some(ms * 30 / 1000)
    });
    let stop = s.post("/stop", "");
    assert_eq!(stop.status, 200, "{}", stop.text());
    stop.json()
}

/// Waits until `n` clips are uploaded and none waits: `/status` → `uploads`.
pub fn wait_uploaded(s: &Server, n: u64) -> Value {
    s.wait_status(WAIT, &format!("{n} uploaded"), |st| {
        st["uploads"]["uploaded"].as_u64() == Some(n) && st["uploads"]["pending"] == 0
    })["uploads"]
        .clone()
}

/// The object key of a clip id (`cam-YYYYMMDD-HHMMSS`, and `-N` for a
/// second clip in the same second) under the default `s3_prefix`.
pub fn key_of(id: &str) -> String {
    let d = id
        .split('-')
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no date in clip id {id}"));
    format!(
        "testdev/cam/{}-{}-{}/{id}.mp4",
        &d[0..4],
        &d[4..6],
        &d[6..8]
    )
}

/// The clip's file here.
pub fn local(clip: &Value) -> PathBuf {
    PathBuf::from(clip["path"].as_str().unwrap())
}

/// The clip's upload job record beside it, as JSON.
pub fn job_of(clip: &Value) -> Value {
    let path = local(clip).with_extension("upload");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

/// SHA-256 in hex.
pub fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Every clip in the bucket once, byte for byte, with its manifest.
pub fn assert_in_bucket(s3: &S3Server, clips: &[Value]) {
    let listed = s3.list(BUCKET);
    let mp4s: Vec<&(String, u64)> = listed.iter().filter(|(k, _)| k.ends_with(".mp4")).collect();
    assert_eq!(mp4s.len(), clips.len(), "{listed:?}");
    for c in clips {
        let id = c["id"].as_str().unwrap();
        let key = key_of(id);
        let bytes = std::fs::read(local(c)).unwrap();
        let stored = s3
            .get(BUCKET, &key)
            .unwrap_or_else(|| panic!("{key} missing: {listed:?}"));
        assert_eq!(sha(&stored), sha(&bytes), "{key}");
        let manifest: Value =
            serde_json::from_slice(&s3.get(BUCKET, &key.replace(".mp4", ".json")).unwrap())
                .unwrap();
        assert_eq!(manifest["id"], id);
        assert_eq!(manifest["camera"], "cam");
        assert_eq!(manifest["device"], "testdev");
        assert_eq!(manifest["size_bytes"], bytes.len() as u64);
        assert_eq!(manifest["sha256"], sha(&bytes).as_str());
        assert_eq!(manifest["frames"], c["frames"]);
        assert_manifest_times(&manifest, c);
    }
}

/// Milliseconds since 1970 of an RFC 3339 UTC time as the recorder writes
/// it (`2026-12-07T14:24:24.123Z`; the fraction optional).
pub fn rfc3339_ms(t: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| -> i64 {
        t.get(r.clone())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("not an RFC 3339 time: {t:?} ({r:?})"))
    };
    assert!(
        t.ends_with('Z') && t.as_bytes().get(10) == Some(&b'T'),
        "{t:?}"
    );
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let secs = num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    let ms = match t.get(19..20) {
        Some(".") => num(20..23),
        _ => 0,
    };
    // Days from a civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86400 + secs) * 1000 + ms
}

/// The manifest's `start` and `end` are the clip's own (`/stop`'s
/// `started_at` and `ended_at`): MP4 keeps the start in whole seconds, so
/// the manifest's may be up to a second earlier, never later; `end` is
/// `start` plus the clip's duration (MP4's, in whole milliseconds: within
/// 2 ms of the recorder's own).
pub fn assert_manifest_times(manifest: &Value, clip: &Value) {
    let time =
        |v: &Value, k: &str| rfc3339_ms(v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")));
    let (start, end) = (time(manifest, "start"), time(manifest, "end"));
    let (started, ended) = (time(clip, "started_at"), time(clip, "ended_at"));
    let early = started - start;
    assert!(
        (0..1000).contains(&early),
        "manifest start {start} vs the clip's {started} ms: {manifest}\n{clip}"
    );
    let duration = (clip["duration_sec"].as_f64().unwrap() * 1000.0).round() as i64;
    assert!(
        (end - start - duration).abs() <= 2,
        "manifest {start}..{end} is not the clip's {duration} ms: {manifest}"
    );
    assert!(
        (-2..1000).contains(&(ended - end)),
        "manifest end {end} vs the clip's {ended} ms: {manifest}\n{clip}"
    );
    assert!(
        (manifest["duration_sec"].as_f64().unwrap() * 1000.0 - duration as f64).abs() <= 2.5,
        "the clip's {duration} ms: {manifest}"
    );
}

/// How many PUT requests for exactly `key` (no query: not parts) reached
/// moto, whatever it answered, as its request log shows.
pub fn puts_of(s3: &S3Server, key: &str) -> usize {
    let put = format!("\"PUT /{BUCKET}/{key} HTTP/1.1\"");
    s3.log().lines().filter(|l| l.contains(&put)).count()
}

/// Each clip's object was written once, as the server saw it: one PUT of
/// the key (or one completed multipart upload) answered 200 in moto's
/// request log, so a second PUT to the same key cannot pass unseen.
pub fn assert_written_once(s3: &S3Server, clips: &[Value]) {
    let log = s3.log();
    for c in clips {
        let key = key_of(c["id"].as_str().unwrap());
        let put = format!("\"PUT /{BUCKET}/{key} HTTP/1.1\" 200");
        let complete = format!("\"POST /{BUCKET}/{key}?uploadId=");
        let writes = log
            .lines()
            .filter(|l| l.contains(&put) || (l.contains(&complete) && l.contains("\" 200")))
            .count();
        let seen: Vec<&str> = log.lines().filter(|l| l.contains(key.as_str())).collect();
        assert_eq!(writes, 1, "{key} written {writes} times: {seen:#?}");
    }
}
