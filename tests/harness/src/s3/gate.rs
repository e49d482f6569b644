//! What the proxy checks as AWS's front door does, for servers that do
//! not (moto): a request's SigV4 `Authorization` against the keys it knows,
//! before reading any body (AWS refuses then, and an uploader that did not
//! wait for `100 Continue` is cut off mid-send), and a body's `Content-MD5`
//! (`400 BadDigest`).

use super::*;
use base64::Engine as _;
use md5::Md5;

/// A request head as it came: method, target, headers.
pub struct Head {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn parse(head: &[u8]) -> Head {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.lines();
        let mut first = lines.next().unwrap_or("").split_whitespace();
        let method = first.next().unwrap_or("").to_string();
        let target = first.next().unwrap_or("").to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Head {
            method,
            target,
            headers,
        }
    }

    /// Whether it is signed, correctly, by one of `keys` (as `Checks::keys`
    /// would pass it).
    pub fn signed_by(&self, keys: &[Key]) -> bool {
        check_signature(self, keys).is_ok()
    }

    /// The headers its SigV4 `Authorization` says are signed (lowercase).
    pub fn signed_headers(&self) -> Vec<String> {
        let auth = self.get("authorization").unwrap_or("");
        let names = auth
            .split([' ', ','])
            .find_map(|p| p.strip_prefix("SignedHeaders="))
            .unwrap_or("");
        names
            .split(';')
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        let h = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name));
        h.map(|(_, v)| v.as_str())
    }
}

/// An S3 error answer that closes the connection.
pub(super) fn error_answer(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = || u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok();
        match (b[i], hex()) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Err(answer)` unless the head is signed, by a key in `keys`, correctly
/// (recomputed here from the head alone, as the server would).
pub(super) fn check_signature(head: &Head, keys: &[Key]) -> Result<(), Vec<u8>> {
    let denied = |code, msg| Err(error_answer("403 Forbidden", code, msg));
    let Some(auth) = head.get("authorization") else {
        return denied("AccessDenied", "Anonymous requests are refused here.");
    };
    let part = |name: &str| {
        auth.split([' ', ','])
            .find_map(|p| p.strip_prefix(name))
            .unwrap_or("")
            .to_string()
    };
    let credential = part("Credential=");
    let id = credential.split('/').next().unwrap_or("");
    let Some(key) = keys.iter().find(|k| k.id == id) else {
        return denied(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        );
    };
    let (path, query) = head.target.split_once('?').unwrap_or((&head.target, ""));
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let signed_names = part("SignedHeaders=");
    let signed: Vec<(&str, &str)> = signed_names
        .split(';')
        .map(|n| (n, head.get(n).unwrap_or("")))
        .collect();
    let payload = head.get("x-amz-content-sha256").unwrap_or("");
    let date = head.get("x-amz-date").unwrap_or("");
    let want = sigv4(
        "s3",
        &head.method,
        path,
        &canonical_query(&pairs),
        &signed,
        payload,
        date,
        &key.id,
        &key.secret,
    );
    if want != auth {
        return denied(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your key and signing method.",
        );
    }
    Ok(())
}

/// `Err(answer)` when the body is not what its `Content-MD5` says.
pub(super) fn check_md5(head: &Head, body: &[u8]) -> Result<(), Vec<u8>> {
    let Some(want) = head.get("content-md5") else {
        return Ok(());
    };
    let got = base64::engine::general_purpose::STANDARD.encode(Md5::digest(body));
    if got == want {
        return Ok(());
    }
    Err(error_answer(
        "400 Bad Request",
        "BadDigest",
        "The Content-MD5 you specified did not match what we received.",
    ))
}
