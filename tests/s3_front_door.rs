//! Uploads through a front door that checks requests as AWS's does (the
//! harness proxy's `Checks`, in front of moto): a body whose `Content-MD5`
//! it does not match is `400 BadDigest` and sent again; a request not
//! signed by a known key is refused before its body is read, and the
//! recorder says which (an unknown key, a wrong secret) in words, not as a
//! broken connection; nothing recorded is lost meanwhile.

mod common;

use common::s3::recorder::*;
use common::s3::{Checks, CorruptingProxy, Key, S3Server};

const KEY_ID: &str = "AKIAVRFRONTDOOR00007";
const SECRET: &str = "Zq9-front-door-secret";

fn creds<'a>(id: &'a str, secret: &'a str) -> [(&'static str, &'a str); 2] {
    [("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)]
}

#[test]
fn a_damaged_body_is_bad_digest_and_wrong_keys_are_said_in_words() {
    let Some(s3) = S3Server::start() else {
        return;
    };
    s3.create_bucket(BUCKET);
    let proxy = CorruptingProxy::with(
        s3.addr(),
        Checks {
            corrupt_puts: 1,
            content_md5: true,
            keys: vec![Key::new(KEY_ID, SECRET)],
            ..Checks::default()
        },
    );
    let tmp = tempfile::tempdir().unwrap();
    // A clip of some hundreds of KiB: a refusal before the body is read
    // comes while there is still much of it to send.
    let big = ["--bitrate-kbps", "3000"];
    let s = recorder(
        &tmp.path().join("clips"),
        &proxy.endpoint(),
        &big,
        &creds(KEY_ID, SECRET),
    );
    let clip = record(&s, 1500);
    let st = wait_uploaded(&s, 1);
    assert_eq!(proxy.corrupted(), 1, "the proxy damaged the first PUT");
    assert!(proxy.refused() >= 1, "the damaged PUT was refused: {st}");
    assert_in_bucket(&s3, std::slice::from_ref(&clip));
    drop(s);

    for (dir, id, secret, words) in [
        (
            "unknown",
            "AKIAVRNOBODYKNOWS001",
            SECRET,
            "access key is not known",
        ),
        ("wrong", KEY_ID, "Not-the-secret-Zq9", "secret key is wrong"),
    ] {
        let s = recorder(
            &tmp.path().join(dir),
            &proxy.endpoint(),
            &big,
            &creds(id, secret),
        );
        let clip = record(&s, 1500);
        let st = s.wait_status(WAIT, "a refused upload", |st| {
            st["uploads"]["failed"].as_u64() >= Some(1)
        });
        let said = st["uploads"]["last_error"].as_str().unwrap_or_default();
        assert!(said.contains(words), "{dir}: {st}");
        assert!(local(&clip).exists(), "{dir}: the clip is kept");
        for text in [st.to_string(), s.log()] {
            assert!(!text.contains(secret), "{dir}: the secret shows: {text}");
        }
    }
}
