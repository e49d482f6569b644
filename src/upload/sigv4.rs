//! AWS Signature Version 4 in the `Authorization` header, as the SDKs sign
//! (rusty-s3 only presigns URLs: servers that authenticate the header alone,
//! such as moto with IAM on, refuse those, and a presigned URL carries the
//! access key id and signature wherever a URL is logged). The payload's
//! SHA-256 is signed too, so AWS refuses a body damaged on the way
//! (`XAmzContentSHA256Mismatch`). HMAC and SHA-256 are the RustCrypto
//! crates rusty-s3 links already, so the binary gains no new code.

use std::time::SystemTime;

use hmac::{KeyInit as _, Mac as _};
use rusty_s3::Credentials;
use sha2_11::{Digest as _, Sha256};

/// SHA-256 of an empty payload, in hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// SigV4's URI encoding: everything but the unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A query string encoded and sorted: what is sent is what is signed.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut enc: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    enc.sort();
    let parts: Vec<String> = enc.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// One request to sign: `path` already percent-encoded (as sent), `query`
/// from [`query`], `headers` to sign besides those the signer adds.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, String)],
    /// Hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// The headers to send with `req`, signed: `host`, `x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` (with a session token),
/// the caller's, and `authorization`.
pub fn sign(
    creds: &Credentials,
    region: &str,
    req: &Request,
    now: SystemTime,
) -> Vec<(String, String)> {
    // `YYYYMMDD-HHMMSS` → `YYYYMMDDTHHMMSSZ`
    let amz_date = format!("{}Z", crate::clock::file_stamp(now).replace('-', "T"));
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), req.host.to_string()),
        (
            "x-amz-content-sha256".into(),
            req.payload_sha256.to_string(),
        ),
        ("x-amz-date".into(), amz_date.clone()),
    ];
    if let Some(t) = creds.token().filter(|t| !t.is_empty()) {
        headers.push(("x-amz-security-token".into(), t.to_string()));
    }
    for (k, v) in req.headers {
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        req.method, req.path, req.query, req.payload_sha256
    );
    let day = &amz_date[..8];
    let scope = format!("{day}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{}", creds.secret()).as_bytes(), day.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            creds.key()
        ),
    ));
    headers
}

#[cfg(test)]
mod tests;
