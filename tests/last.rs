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
    std::thread::sleep(Duration::from_millis(1500));
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
}
