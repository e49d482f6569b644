//! `/last` and `/clips/<id>.mp4`: the finished clip, whole and by HTTP Range.

mod common;

use std::time::Duration;

use common::{Server, request};

#[test]
fn last_clip_whole_and_by_range() {
    let s = Server::start(&[
        "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
    ]);
    assert_eq!(s.get("/last").status, 404);
    s.wait_status(Duration::from_secs(30), "frames", |st| {
        st["source"]["frames"].as_u64() > Some(2)
    });
    assert_eq!(s.post("/start", "").status, 200);
    s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
        st["recorder"]["frames"].as_u64() >= Some(10)
    });
    let clip = s.post("/stop", "").json();
    let path = std::path::PathBuf::from(clip["path"].as_str().unwrap());
    let file = std::fs::read(&path).unwrap();
    let len = file.len();
    assert_eq!(clip["size_bytes"].as_u64(), Some(len as u64));

    let whole = s.get("/last");
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("Content-Type"), Some("video/mp4"));
    assert_eq!(whole.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(
        whole.header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert!(whole.body == file, "/last is not the clip's bytes");
    assert!(whole.header("Content-Disposition").is_none());

    let get_range = |url: &str, range: &str| request(s.addr, "GET", url, &[("Range", range)], b"");
    let r = get_range("/last", "bytes=0-99");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert_eq!(r.body, file[..100]);
    let r = get_range("/last", "bytes=-100");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, file[len - 100..]);
    let r = get_range("/last", &format!("bytes={}-", len - 10));
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes {}-{}/{len}", len - 10, len - 1).as_str())
    );
    assert_eq!(r.body, file[len - 10..]);
    let r = get_range("/last", &format!("bytes={len}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );
    assert!(r.json()["error"].is_string());

    let dl = s.get("/last?download=1");
    assert_eq!(dl.status, 200);
    let disp = dl.header("Content-Disposition").unwrap();
    assert!(
        disp.starts_with("attachment") && disp.contains(".mp4"),
        "{disp}"
    );

    let id = clip["id"].as_str().unwrap();
    let by_id = get_range(&format!("/clips/{id}.mp4"), "bytes=4-11");
    assert_eq!(by_id.status, 206);
    assert_eq!(by_id.body, file[4..12]);
    assert_eq!(&by_id.body[..4], b"ftyp");
    assert_eq!(s.get("/status").json()["last_clip"]["id"], id);

    let head = request(s.addr, "HEAD", "/last", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("Content-Length"),
        Some(len.to_string().as_str())
    );
    assert!(head.body.is_empty());

    // The corners of Range: several ranges and bad syntax get the whole
    // file (a server may ignore Range); an end past the file is cut to it.
    for ask in ["bytes=0-1,5-6", "bytes=x-y", "items=0-1", "bytes=9-2"] {
        let r = get_range("/last", ask);
        assert_eq!((r.status, r.body.len()), (200, len), "{ask}");
    }
    let r = get_range("/last", &format!("bytes=10-{}", len * 2));
    assert_eq!(r.status, 206);
    assert_eq!(r.body, file[10..]);
    let r = get_range("/last", "bytes=-0");
    assert_eq!(r.status, 416, "an empty suffix");
    let r = request(s.addr, "HEAD", "/last", &[("Range", "bytes=0-99")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes 0-99/{len}").as_str())
    );
    assert!(r.body.is_empty());
    let r = get_range(&format!("/clips/{id}.mp4"), &format!("bytes={len}-"));
    assert_eq!(r.status, 416);
    assert_eq!(
        r.header("Content-Range"),
        Some(format!("bytes */{len}").as_str())
    );
    let r = request(s.addr, "POST", "/last", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD"));
}

#[test]
fn a_clip_swapped_for_a_link_is_not_served() {
    let s = Server::start(&[
        "--source", "test", "--width", "320", "--height", "240", "--fps", "15",
    ]);
    s.wait_status(Duration::from_secs(30), "frames", |st| {
        st["source"]["frames"].as_u64() > Some(2)
    });
    let mut ids = Vec::new();
    for _ in 0..2 {
        assert_eq!(s.post("/start", "").status, 200);
        s.wait_status(Duration::from_secs(30), "frames recorded", |st| {
            st["recorder"]["frames"].as_u64() >= Some(3)
        });
        ids.push(
            s.post("/stop", "").json()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, b"not a clip: a secret").unwrap();
    // The first clip, listed by the server, swapped for a symlink.
    let a = s.clips.join(format!("{}.mp4", ids[0]));
    std::fs::remove_file(&a).unwrap();
    std::os::unix::fs::symlink(&secret, &a).unwrap();
    let r = s.get(&format!("/clips/{}.mp4", ids[0]));
    assert_eq!(r.status, 404, "a symlink was served: {}", r.text());
    // The second (also /last), given a second name outside.
    let b = s.clips.join(format!("{}.mp4", ids[1]));
    std::fs::hard_link(&b, outside.path().join("link.mp4")).unwrap();
    for url in [format!("/clips/{}.mp4", ids[1]), "/last".to_string()] {
        let r = s.get(&url);
        assert_eq!(r.status, 404, "{url}: a file with other links was served");
    }
    assert!(s.log().contains("not served"), "{}", s.log());
}
