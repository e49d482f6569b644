//! A network camera that asks for Digest (MD5, `qop=auth`), as most IP
//! cameras do: the product answers the 401's challenge, the stand-in checks
//! every answer, and a wrong password is said in words and shown nowhere.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Server;
use common::mjpeg_server::MjpegCamera;

const WAIT: Duration = Duration::from_secs(30);

fn jpegs() -> Vec<Vec<u8>> {
    // Four pictures, told apart by their sizes.
    (0..4u16)
        .map(|i| common::hostile_camera::jpeg(64 + 8 * i, 48))
        .collect()
}

#[test]
fn a_digest_camera_is_answered_after_its_challenge() {
    let cam = MjpegCamera::start_digest(jpegs(), 10, "viewer", "d1gest-pass");
    let s = Server::start(&["--source", &cam.url("viewer:d1gest-pass@")]);
    let st = s.wait_status(WAIT, "live", |st| st["source"]["state"] == "live");
    assert_eq!(st["source"]["kind"], "http", "{st}");
    // It asked once, then the product's answer to the nonce let it in.
    assert!(cam.challenged.load(Ordering::Relaxed) >= 1);
    assert!(cam.digest_ok.load(Ordering::Relaxed) >= 1);
    let mut c = common::MjpegClient::connect(s.addr, "/video").unwrap();
    for _ in 0..3 {
        let part = c.next_part().unwrap();
        assert!(jpegs().contains(&part.jpeg), "not the camera's picture");
    }
    assert!(!s.log().contains("d1gest-pass"), "{}", s.log());
}

#[test]
fn a_wrong_password_for_a_digest_camera_is_said_and_shown_nowhere() {
    let cam = MjpegCamera::start_digest(jpegs(), 10, "viewer", "d1gest-pass");
    let s = Server::start(&["--source", &cam.url("viewer:not-the-pass@")]);
    let st = s.wait_status(WAIT, "down", |st| st["source"]["state"] == "down");
    let message = st["source"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("refused the user name and password (Digest authentication"),
        "{st}"
    );
    assert_eq!(cam.digest_ok.load(Ordering::Relaxed), 0);
    let all = format!("{}{}", s.get("/status").text(), s.log());
    assert!(!all.contains("not-the-pass"), "{all}");
}
