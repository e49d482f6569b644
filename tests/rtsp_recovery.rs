//! `kill -9` in the middle of an RTSP camera's stream copy, H.264 and
//! H.265: the next start rebuilds the clip from the `.part` and its
//! journal, whose `entry` line holds the camera's own sample entry (avcC or
//! hvcC): the recovered clip plays, with every frame that was durable and
//! the camera's own parameter sets.

mod common;

use std::path::Path;
use std::time::Duration;

use common::rtsp::{RtspCamera, RtspOptions};
use common::{Server, avcc_sets, ffprobe, hvcc_sets, own_probe};

const WAIT: Duration = Duration::from_secs(30);

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn recovered_after_kill_9(codec: &'static str) {
    let Some(cam) = RtspCamera::start(RtspOptions {
        codec,
        ..Default::default()
    }) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let clips = tmp.path().join("clips");
    let args = ["--source", &cam.url(), "--clips-min-free-mb", "0"];
    let mut s = Server::start_in(&clips, &args);
    s.wait_status(WAIT, "live", |st| st["source"]["state"] == "live");
    let start = s.post("/start", "");
    assert_eq!(start.status, 200, "{}", start.text());
    let id = start.json()["id"].as_str().unwrap().to_string();
    let st = s.wait_status(WAIT, "2 s durable", |st| {
        st["recorder"]["durable_sec"].as_f64() >= Some(2.0)
    });
    let durable = st["recorder"]["durable_sec"].as_f64().unwrap();
    s.signal(9);
    drop(s);
    let cam_dir = clips.join("cam");
    let dir = if cam_dir.is_dir() {
        cam_dir
    } else {
        clips.clone()
    };
    let left = files(&dir);
    assert!(left.contains(&format!("{id}.mp4.part")), "{left:?}");
    let journal = std::fs::read_to_string(dir.join(format!("{id}.journal"))).unwrap();
    // A stream copy's journal names the camera's sample entry, in hex.
    let entry = journal
        .lines()
        .find_map(|l| l.strip_prefix("entry "))
        .unwrap_or_else(|| panic!("no entry line in the journal:\n{journal}"));
    let fourcc = if codec == "h265" { "hvc1" } else { "avc1" };
    let hex: String = fourcc.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(entry.contains(&hex), "the entry is not {fourcc}: {entry}");

    let s = Server::start_in(&clips, &args);
    s.wait_log("recovered", WAIT);
    let path = dir.join(format!("{id}.mp4"));
    assert!(path.exists(), "{:?}", files(&dir));
    let own = own_probe(&path);
    let d = own["duration_sec"].as_f64().unwrap();
    assert!(d >= durable, "recovered {d} s; {durable} s were durable");
    let p = ffprobe(&path);
    let v = &p["streams"][0];
    let (name, tag) = if codec == "h265" {
        ("hevc", "hvc1")
    } else {
        ("h264", "avc1")
    };
    assert_eq!(
        (v["codec_name"].as_str(), v["codec_tag_string"].as_str()),
        (Some(name), Some(tag)),
        "{p}"
    );
    assert_eq!(
        v["nb_read_frames"],
        own["frames"].as_u64().unwrap().to_string().as_str(),
        "{p}"
    );
    let bytes = std::fs::read(&path).unwrap();
    let sets = if codec == "h265" {
        hvcc_sets(&bytes)
    } else {
        avcc_sets(&bytes)
    };
    assert_eq!(sets, cam.parameter_sets());
    assert_eq!(s.get("/status").json()["last_clip"]["id"], id.as_str());
}

#[test]
fn an_h264_stream_copy_killed_mid_recording_is_recovered() {
    recovered_after_kill_9("h264");
}

#[test]
fn an_h265_stream_copy_killed_mid_recording_is_recovered() {
    recovered_after_kill_9("h265");
}
