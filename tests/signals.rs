//! A signal while several cameras record: every camera's clip is finished,
//! playable and in its own directory, and the process exits 0 (SIGINT from
//! a terminal, SIGTERM from systemd; README "every clip being recorded").

mod common;

use std::time::Duration;

use common::{Server, ffprobe, own_probe};

const WAIT: Duration = Duration::from_secs(30);

fn three_recording() -> (Server, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("vr.toml");
    std::fs::write(
        &config,
        "width = 320\nheight = 240\nfps = 15\n\
         [[camera]]\nid = \"a\"\nsource = \"test\"\n\n\
         [[camera]]\nid = \"b\"\nsource = \"test\"\n\n\
         [[camera]]\nid = \"c\"\nsource = \"test\"\n",
    )
    .unwrap();
    let mut s = Server::start_in(
        &tmp.path().join("clips"),
        &[
            "--config",
            config.to_str().unwrap(),
            "--clips-min-free-mb",
            "0",
        ],
    );
    s.keep(tmp);
    let mut ids = Vec::new();
    for cam in ["a", "b", "c"] {
        let r = s.post(&format!("/cameras/{cam}/start"), "");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.json()["id"].as_str().unwrap().to_string());
    }
    s.wait_status(WAIT, "every camera 15 frames in", |st| {
        st["cameras"].as_array().is_some_and(|c| {
            c.len() == 3 && c.iter().all(|c| c["elapsed_sec"].as_f64() >= Some(1.0))
        })
    });
    (s, ids)
}

fn every_clip_finished_at(sig: i32, name: &str) {
    let (mut s, ids) = three_recording();
    let status = s.signal(sig);
    assert!(status.success(), "SIG{name}: exit {status:?}\n{}", s.log());
    for (cam, id) in ["a", "b", "c"].iter().zip(&ids) {
        let dir = s.clips.join(cam);
        let left = common::files(&dir);
        assert_eq!(left, vec![format!("{id}.mp4")], "SIG{name}, camera {cam}");
        let path = dir.join(format!("{id}.mp4"));
        let own = own_probe(&path);
        assert!(own["duration_sec"].as_f64() >= Some(0.9), "{own}");
        let p = ffprobe(&path);
        assert_eq!(
            p["streams"][0]["nb_read_frames"],
            own["frames"].as_u64().unwrap().to_string().as_str(),
            "SIG{name}, camera {cam}: {p}"
        );
    }
}

#[test]
fn sigint_finishes_every_cameras_clip() {
    every_clip_finished_at(2, "INT");
}

#[test]
fn sigusr2_finishes_every_cameras_clip() {
    every_clip_finished_at(12, "USR2");
}
