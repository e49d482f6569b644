//! The few S3 calls the uploader makes, signed by `rusty-s3` (SigV4 in the
//! query string, sans-IO) and sent by `ureq` (blocking, rustls), so the
//! uploader stays a plain thread. Errors are words, never a URL: a signed
//! URL carries the access key id.

use std::io::Read;
use std::time::Duration;

use rusty_s3::actions::{
    AbortMultipartUpload, CompleteMultipartUpload, CreateMultipartUpload, ListParts, S3Action,
    UploadPart,
};
use rusty_s3::{Bucket, Credentials, UrlStyle};

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// How long sending `size` bytes may take: as over a 256 kbit/s link, plus
/// a minute (ureq counts the time our rate cap spends in the reader).
fn send_deadline(size: u64) -> Option<Duration> {
    Some(Duration::from_secs(60 + size * 8 / 256_000))
}

pub struct S3 {
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
    storage_class: Option<String>,
}

/// What went wrong, in words, and whether trying again can help.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Error {
    pub message: String,
    /// The object or upload does not exist (HEAD 404, NoSuchUpload).
    pub not_found: bool,
    /// `If-None-Match: *` refused the PUT: the object is there already.
    pub exists: bool,
    /// 403: also what AWS answers for a missing key without s3:ListBucket.
    pub forbidden: bool,
}

impl S3Error {
    fn new(message: impl Into<String>) -> S3Error {
        S3Error {
            message: message.into(),
            not_found: false,
            exists: false,
            forbidden: false,
        }
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub struct Part {
    pub number: u16,
    pub etag: String,
    pub size: u64,
}

/// An S3 error body's `<Code>` and `<Message>`, for the words.
fn error_words(status: u16, body: &str) -> S3Error {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{t}>"))? + start;
        Some(body[start..end].to_string())
    };
    let code = tag("Code").unwrap_or_default();
    let words = match (status, code.as_str()) {
        (403, "InvalidAccessKeyId") => "the access key is not known to the server".into(),
        (403, "SignatureDoesNotMatch") => "the secret key is wrong (signature refused)".into(),
        (403, _) => "access denied by the server (403)".to_string(),
        (404, "NoSuchBucket") => "no such bucket".into(),
        (404, "NoSuchUpload") => "the multipart upload is gone from the server".into(),
        (412, _) => "the object exists already".into(),
        (s, c) if !c.is_empty() => format!("the server answered {s} {c}"),
        (s, _) => format!("the server answered {s}"),
    };
    // The server's own message says more (an expired or skewed request: a
    // Pi whose clock is not set yet); it never holds a secret.
    let words = match tag("Message").filter(|m| !m.is_empty() && status == 403) {
        Some(m) => format!("{words}: {}", m.chars().take(200).collect::<String>()),
        None => words,
    };
    S3Error {
        message: words,
        not_found: status == 404,
        exists: status == 412,
        forbidden: status == 403,
    }
}

/// The `<Part>`s of a ListParts answer. Read by hand: servers differ in
/// the root element (AWS `ListPartsResult`, moto `ListPartsResponse`),
/// which rusty-s3's parser insists on. (Truncated lists, past 1000 parts,
/// are not followed: parts not listed are sent again.)
fn parse_parts(body: &str) -> Vec<Part> {
    let tag = |block: &str, t: &str| -> Option<String> {
        let open = format!("<{t}>");
        let start = block.find(&open)? + open.len();
        let end = block[start..].find(&format!("</{t}>"))? + start;
        Some(block[start..end].trim().to_string())
    };
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

impl S3 {
    pub fn new(
        endpoint: &str,
        path_style: bool,
        bucket: &str,
        region: &str,
        creds: Credentials,
        storage_class: Option<String>,
    ) -> Result<S3, String> {
        let endpoint = if endpoint.is_empty() {
            format!("https://s3.{region}.amazonaws.com")
        } else {
            endpoint.to_string()
        };
        let url = endpoint
            .parse()
            .map_err(|e| format!("s3_endpoint_url is not a URL: {e}"))?;
        let style = if path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(url, style, bucket.to_string(), region.to_string())
            .map_err(|e| format!("s3_bucket: {e}"))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(S3 {
            bucket,
            creds,
            agent,
            storage_class,
        })
    }

    fn transport(e: ureq::Error) -> S3Error {
        // ureq's own words, minus anything that may quote the signed URL.
        let text = e.to_string();
        let text = text
            .split("http")
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches(':');
        S3Error::new(format!("cannot reach the server: {text}"))
    }

    fn answer(
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<(u16, ureq::http::HeaderMap, String), S3Error> {
        let mut r = r.map_err(S3::transport)?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, r.headers().clone(), body))
    }

    fn etag(headers: &ureq::http::HeaderMap) -> String {
        headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim_matches('"')
            .to_string()
    }

    /// A PUT of `size` bytes with their MD5, and time to send them.
    fn put_request(
        &self,
        url: &str,
        size: u64,
        md5: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .put(url)
            .config()
            .timeout_send_body(send_deadline(size))
            .build()
            .header("Content-Length", size.to_string())
            .header("Content-MD5", md5)
    }

    /// Size and ETag of an object, `not_found` when there is none.
    pub fn head(&self, key: &str) -> Result<(u64, String), S3Error> {
        let url = self
            .bucket
            .head_object(Some(&self.creds), key)
            .sign(SIGNED_FOR);
        let (status, headers, body) = S3::answer(self.agent.head(url.as_str()).call())?;
        if status != 200 {
            return Err(error_words(status, &body));
        }
        let size = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        Ok((size, S3::etag(&headers)))
    }

    /// PUTs `body` (`size` bytes, base64 `md5`) at `key`; `only_new` sends
    /// `If-None-Match: *` so an earlier copy is never replaced. The ETag.
    pub fn put(
        &self,
        key: &str,
        body: &mut dyn Read,
        size: u64,
        md5: &str,
        content_type: &str,
        only_new: bool,
    ) -> Result<String, S3Error> {
        let mut action = self.bucket.put_object(Some(&self.creds), key);
        if let Some(class) = &self.storage_class {
            action
                .headers_mut()
                .insert("x-amz-storage-class", class.clone());
        }
        let url = action.sign(SIGNED_FOR);
        let mut req = self
            .put_request(url.as_str(), size, md5)
            .header("Content-Type", content_type);
        if let Some(class) = &self.storage_class {
            req = req.header("x-amz-storage-class", class);
        }
        if only_new {
            req = req.header("If-None-Match", "*");
        }
        let (status, headers, text) = S3::answer(req.send(ureq::SendBody::from_reader(body)))?;
        if status != 200 {
            return Err(error_words(status, &text));
        }
        Ok(S3::etag(&headers))
    }

    pub fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let mut action = CreateMultipartUpload::new(&self.bucket, Some(&self.creds), key);
        if let Some(class) = &self.storage_class {
            action
                .headers_mut()
                .insert("x-amz-storage-class", class.clone());
        }
        let url = action.sign(SIGNED_FOR);
        let mut req = self.agent.post(url.as_str());
        if let Some(class) = &self.storage_class {
            req = req.header("x-amz-storage-class", class);
        }
        let (status, _, body) = S3::answer(req.send_empty())?;
        if status != 200 {
            return Err(error_words(status, &body));
        }
        CreateMultipartUpload::parse_response(&body)
            .map(|r| r.upload_id().to_string())
            .map_err(|e| S3Error::new(format!("unreadable answer to starting an upload: {e}")))
    }

    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: &mut dyn Read,
        size: u64,
        md5: &str,
    ) -> Result<String, S3Error> {
        let action = UploadPart::new(&self.bucket, Some(&self.creds), key, number, upload_id);
        let url = action.sign(SIGNED_FOR);
        let req = self.put_request(url.as_str(), size, md5);
        let (status, headers, text) = S3::answer(req.send(ureq::SendBody::from_reader(body)))?;
        if status != 200 {
            return Err(error_words(status, &text));
        }
        Ok(S3::etag(&headers))
    }

    /// The parts the server holds for an upload (to resume after a restart).
    pub fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<Part>, S3Error> {
        let action = ListParts::new(&self.bucket, Some(&self.creds), key, upload_id);
        let url = action.sign(SIGNED_FOR);
        let (status, _, body) = S3::answer(self.agent.get(url.as_str()).call())?;
        if status != 200 {
            return Err(error_words(status, &body));
        }
        Ok(parse_parts(&body))
    }

    pub fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), S3Error> {
        let quoted: Vec<String> = etags.iter().map(|e| format!("\"{e}\"")).collect();
        let action = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            key,
            upload_id,
            quoted.iter().map(String::as_str),
        );
        let url = action.sign(SIGNED_FOR);
        let body = action.body();
        let (status, _, text) = S3::answer(self.agent.post(url.as_str()).send(body.as_bytes()))?;
        // S3 may answer 200 with an error in the body.
        if status != 200 || text.contains("<Error>") {
            return Err(error_words(if status == 200 { 500 } else { status }, &text));
        }
        Ok(())
    }

    pub fn abort(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let action = AbortMultipartUpload::new(&self.bucket, Some(&self.creds), key, upload_id);
        let url = action.sign(SIGNED_FOR);
        let (status, _, body) = S3::answer(self.agent.delete(url.as_str()).call())?;
        if !(200..300).contains(&status) && status != 404 {
            return Err(error_words(status, &body));
        }
        Ok(())
    }
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
}
