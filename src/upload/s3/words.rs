//! S3's answers in words: an error body's `<Code>` and `<Message>` (the
//! message scrubbed of anything of ours it may echo: a server may quote
//! the request, its query, the access key id, a signature), and the
//! `<Part>`s of a ListParts answer.

use super::S3Error;
use crate::error::Kind;

/// The text of the first `<tag>` in `body`.
fn tag(body: &str, t: &str) -> Option<String> {
    let open = format!("<{t}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{t}>"))? + start;
    Some(body[start..end].trim().to_string())
}

/// A server's `<Message>` without anything that may be ours: words holding
/// a secret (the access key id, the session token), query strings, header
/// names and values (`X-Amz-…`, `Credential=…`), and long tokens
/// (signatures, hashes) become "…". Capped at 200 characters.
pub fn scrub(message: &str, secrets: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for w in message.split_whitespace() {
        let lower = w.to_ascii_lowercase();
        let ours = secrets.iter().any(|s| !s.is_empty() && w.contains(s))
            || w.contains(['?', '=', '&'])
            || lower.contains("amz-")
            || lower.contains("aws4")
            || w.chars().count() > 32;
        if !ours {
            out.push(w);
        } else if out.last() != Some(&"…") {
            out.push("…");
        }
    }
    out.join(" ").chars().take(200).collect()
}

/// What an error answer means, in words, and whether trying again can help.
pub fn error_words(status: u16, body: &str, secrets: &[&str]) -> S3Error {
    let code = tag(body, "Code").unwrap_or_default();
    let words = match (status, code.as_str()) {
        (403, "InvalidAccessKeyId") => "the access key is not known to the server".into(),
        (403, "SignatureDoesNotMatch") => "the secret key is wrong (signature refused)".into(),
        (403, "InvalidToken" | "ExpiredToken") => "the session token is expired or invalid".into(),
        (403, "RequestTimeTooSkewed") => {
            "this machine's clock is off (the server refused it)".into()
        }
        (403, _) => "access denied by the server (403)".to_string(),
        (400, "BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest") => {
            format!("the server received other bytes than were sent ({code}: damaged on the way)")
        }
        (301, _) => "the bucket is in another region (301): check s3_region".into(),
        (404, "NoSuchBucket") => "no such bucket".into(),
        (404, "NoSuchUpload") => "the multipart upload is gone from the server".into(),
        (412, _) => "the object exists already".into(),
        (s, c) if !c.is_empty() => format!("the server answered {s} {c}"),
        (s, _) => format!("the server answered {s}"),
    };
    // The server's own message says more (an expired or skewed request: a
    // Pi whose clock is not set yet).
    let message = tag(body, "Message")
        .map(|m| scrub(&m, secrets))
        .filter(|m| !m.is_empty() && m != "…" && status == 403);
    let words = match message {
        Some(m) => format!("{words}: {m}"),
        None => words,
    };
    S3Error {
        message: words,
        not_found: status == 404,
        exists: status == 412,
        forbidden: status == 403,
        kind: match status {
            403 => Kind::Unauthorized,
            404 => Kind::NotFound,
            412 => Kind::Busy,
            _ => Kind::Refused,
        },
    }
}

pub struct Part {
    pub number: u16,
    pub etag: String,
    pub size: u64,
}

/// The `<Part>`s of a ListParts answer. Read by hand: servers differ in
/// the root element (AWS `ListPartsResult`, moto `ListPartsResponse`),
/// which rusty-s3's parser insists on. (Truncated lists, past 1000 parts,
/// are not followed: parts not listed are sent again.)
pub fn parse_parts(body: &str) -> Vec<Part> {
    body.split("<Part>")
        .skip(1)
        .filter_map(|block| {
            let block = block.split("</Part>").next()?;
            Some(Part {
                number: tag(block, "PartNumber")?.parse().ok()?,
                etag: tag(block, "ETag")?
                    .replace("&quot;", "")
                    .replace("&#34;", "")
                    .trim_matches('"')
                    .to_string(),
                size: tag(block, "Size")?.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_read_whatever_the_root_element() {
        let body = r#"<?xml version="1.0"?><ListPartsResponse xmlns="x"><Bucket>b</Bucket>
            <Part><PartNumber>1</PartNumber><ETag>&quot;aa11&quot;</ETag><Size>65536</Size></Part>
            <Part><PartNumber>2</PartNumber><ETag>"bb22"</ETag><Size>100</Size></Part>
            </ListPartsResponse>"#;
        let p = parse_parts(body);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].number, p[0].etag.as_str(), p[0].size),
            (1, "aa11", 65536)
        );
        assert_eq!(
            (p[1].number, p[1].etag.as_str(), p[1].size),
            (2, "bb22", 100)
        );
        assert!(parse_parts("<Error><Code>NoSuchUpload</Code></Error>").is_empty());
    }

    #[test]
    fn a_message_that_echoes_the_request_keeps_only_words() {
        let body = "<Error><Code>AccessDenied</Code><Message>Denied: PUT \
            /b/k?partNumber=1&amp;uploadId=u HTTP/1.1 Authorization: AWS4-HMAC-SHA256 \
            Credential=AKIAVRKEY/20260101/us-east-1/s3/aws4_request, \
            Signature=0123456789abcdef0123456789abcdef0123456789abcdef x-amz-security-token: \
            TOKENVRSESSION AKIAVRKEY was not allowed</Message></Error>";
        let e = error_words(403, body, &["AKIAVRKEY", "TOKENVRSESSION"]);
        assert!(e.forbidden);
        for bad in [
            "AKIAVRKEY",
            "TOKENVRSESSION",
            "Signature=",
            "0123456789abcdef",
            "uploadId",
        ] {
            assert!(!e.message.contains(bad), "{bad} in {}", e.message);
        }
        assert!(
            e.message
                .starts_with("access denied by the server (403): Denied: PUT"),
            "{}",
            e.message
        );
        assert!(e.message.ends_with("was not allowed"), "{}", e.message);
        // Plain words stay as they came.
        let skew = "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between \
            the request time and the current time is too large.</Message></Error>";
        assert_eq!(
            error_words(403, skew, &[]).message,
            "this machine's clock is off (the server refused it): The difference between the \
             request time and the current time is too large."
        );
        let digest = "<Error><Code>BadDigest</Code><Message>x</Message></Error>";
        assert!(
            error_words(400, digest, &[])
                .message
                .contains("damaged on the way")
        );
    }
}
