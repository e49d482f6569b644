//! The few S3 calls the uploader makes, each signed in its `Authorization`
//! header (`sigv4.rs`, as the SDKs do: servers such as moto with IAM on
//! read no other) and sent by `ureq` (blocking, rustls), so the uploader
//! stays a plain thread. rusty-s3 builds the URLs and the multipart XML; no
//! URL is presigned. A body goes out after `Expect: 100-continue`, so a
//! server that refuses the signature before reading the body is heard
//! ("the secret key is wrong"), not cut off mid-send. Errors are words,
//! never a URL, a header, or a secret.

mod words;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use sha2::{Digest as _, Sha256};

use super::sigv4;
use crate::error::{Error, Kind};
pub use words::Part;
use words::{error_words, parse_parts};

/// How long sending or receiving `size` bytes may take: as over a 256 kbit/s
/// link, plus a minute (ureq counts the time our rate cap spends in the reader).
fn transfer_deadline(size: u64) -> Option<Duration> {
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
    /// From the status, or the transport's failure.
    pub kind: Kind,
}

impl S3Error {
    fn new(kind: Kind, message: impl Into<String>) -> S3Error {
        S3Error {
            message: message.into(),
            not_found: false,
            exists: false,
            forbidden: false,
            kind,
        }
    }
}

impl From<S3Error> for Error {
    fn from(e: S3Error) -> Error {
        Error::new(e.kind, e.message)
    }
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A body to send: its reader (paced, counted), size and digests.
pub struct Payload<'a> {
    pub reader: &'a mut dyn Read,
    pub size: u64,
    /// Base64 MD5, for `Content-MD5`.
    pub md5_b64: &'a str,
    pub sha256: [u8; 32],
}

type Answer = (u16, ureq::http::HeaderMap, String);

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// TLS trusting the CAs the cameras trust (`crate::ca`: the system's, or
/// `SSL_CERT_FILE`), so an `https://` MinIO signed by a private CA in the
/// system store is reached; where none are found, the CAs built into the
/// binary (Mozilla's), which still reach AWS.
fn tls_config(endpoint: &str) -> ureq::tls::TlsConfig {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = match crate::ca::trusted() {
        Ok(cas) => RootCerts::Specific(Arc::new(
            cas.iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect(),
        )),
        Err(e) => {
            if endpoint.starts_with("https://") {
                log::warn!("S3: {e}; trusting the CAs built into the binary only");
            }
            RootCerts::WebPki
        }
    };
    TlsConfig::builder().root_certs(roots).build()
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
            // A redirect (another region) is said, not followed with our signature.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .tls_config(tls_config(&endpoint))
            .build()
            .into();
        Ok(S3 {
            bucket,
            creds,
            agent,
            storage_class,
        })
    }

    /// What must never be part of an error: the access key id, the session
    /// token (the secret is never sent).
    fn secrets(&self) -> [&str; 3] {
        [
            self.creds.key(),
            self.creds.token().unwrap_or(""),
            self.creds.secret(),
        ]
    }

    fn words(&self, status: u16, body: &str) -> S3Error {
        error_words(status, body, &self.secrets())
    }

    fn transport(&self, e: ureq::Error) -> S3Error {
        // ureq's own words, minus anything that may quote a URL.
        let text = e.to_string();
        let text = text
            .split("http")
            .next()
            .unwrap_or("")
            .trim()
            .trim_end_matches(':');
        let hint = if text.contains("certificate") {
            " (the endpoint's certificate must be valid for its name and signed by a CA in \
             the system's store, or in the file SSL_CERT_FILE names)"
        } else {
            ""
        };
        S3Error::new(
            Kind::Unreachable,
            format!(
                "cannot reach the server: {}{hint}",
                words::scrub(text, &self.secrets())
            ),
        )
    }

    /// Sends one signed request: to `key` (or the bucket), with `query`
    /// pairs, extra headers to sign, and a body or none.
    fn send(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<Payload>,
        recv_body: Option<Duration>,
    ) -> Result<ureq::http::Response<ureq::Body>, S3Error> {
        let mut url = match key {
            Some(k) => self.bucket.object_url(k),
            None => self.bucket.base_url().clone(),
        };
        let q = sigv4::query(query);
        url.set_query((!q.is_empty()).then_some(q.as_str()));
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let payload_hash = body
            .as_ref()
            .map_or(sigv4::EMPTY_SHA256.to_string(), |b| hex(&b.sha256));
        let mut signed: Vec<(&str, String)> = headers.to_vec();
        if let Some(b) = &body {
            signed.push(("content-md5", b.md5_b64.to_string()));
        }
        let req = sigv4::Request {
            method,
            host: &host,
            path: url.path(),
            query: &q,
            headers: &signed,
            payload_sha256: &payload_hash,
        };
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str());
        for (k, v) in sigv4::sign(&self.creds, self.bucket.region(), &req, SystemTime::now()) {
            builder = builder.header(k, v);
        }
        let recv_body = recv_body.or(Some(Duration::from_secs(60)));
        let built = |e: ureq::http::Error| {
            S3Error::new(Kind::Internal, format!("cannot build the request: {e}"))
        };
        let result = match body {
            Some(b) => {
                let request = builder
                    .header("content-length", b.size.to_string())
                    .header("expect", "100-continue")
                    .body(ureq::SendBody::from_reader(b.reader))
                    .map_err(built)?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_send_body(transfer_deadline(b.size))
                    .timeout_recv_body(recv_body)
                    .build();
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(built)?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_recv_body(recv_body)
                    .build();
                self.agent.run(request)
            }
        };
        result.map_err(|e| self.transport(e))
    }

    /// Sends a request and reads its whole (small) answer.
    fn call(
        &self,
        method: &str,
        key: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Option<Payload>,
    ) -> Result<Answer, S3Error> {
        let mut r = self.send(method, key, query, headers, body, None)?;
        let status = r.status().as_u16();
        let text = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok((status, r.headers().clone(), text))
    }

    fn etag(headers: &ureq::http::HeaderMap) -> String {
        headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim_matches('"')
            .to_string()
    }

    fn class_header(&self) -> Vec<(&str, String)> {
        let class = self.storage_class.iter();
        class.map(|c| ("x-amz-storage-class", c.clone())).collect()
    }

    /// Size and ETag of an object, `not_found` when there is none.
    pub fn head(&self, key: &str) -> Result<(u64, String), S3Error> {
        let (status, headers, body) = self.call("HEAD", Some(key), &[], &[], None)?;
        if status != 200 {
            return Err(self.words(status, &body));
        }
        let size = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        Ok((size, S3::etag(&headers)))
    }

    /// Reads an object back and hashes it: its SHA-256, or why not. At most
    /// `size` bytes are read (more is an error); a shutdown ends it.
    pub fn sha256_of(&self, key: &str, size: u64, stop: &AtomicBool) -> Result<[u8; 32], S3Error> {
        let mut r = self.send("GET", Some(key), &[], &[], None, transfer_deadline(size))?;
        let status = r.status().as_u16();
        if status != 200 {
            let body = r.body_mut().with_config().limit(1 << 20);
            let text = body.read_to_string().unwrap_or_default();
            return Err(self.words(status, &text));
        }
        let mut reader = r.body_mut().with_config().limit(size + 1).reader();
        let (mut h, mut got, mut buf) = (Sha256::new(), 0u64, vec![0u8; 1 << 16]);
        loop {
            if stop.load(Ordering::Acquire) {
                return Err(S3Error::new(Kind::Closing, "shutting down"));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err(S3Error::new(
                        Kind::Unreachable,
                        format!("reading the object back: {e}"),
                    ));
                }
            };
            h.update(&buf[..n]);
            got += n as u64;
        }
        if got != size {
            return Err(S3Error::new(
                Kind::Refused,
                format!("reading the object back gave {got} bytes, not {size}"),
            ));
        }
        Ok(h.finalize().into())
    }

    /// PUTs `body` at `key` with its `Content-MD5` and
    /// `x-amz-checksum-sha256` (AWS refuses a body that matches neither);
    /// `only_new` sends `If-None-Match: *` so an earlier copy is never
    /// replaced. The ETag.
    pub fn put(
        &self,
        key: &str,
        body: Payload,
        content_type: &str,
        only_new: bool,
    ) -> Result<String, S3Error> {
        let mut headers = self.class_header();
        headers.push(("content-type", content_type.to_string()));
        headers.push(("x-amz-checksum-sha256", b64(&body.sha256)));
        if only_new {
            headers.push(("if-none-match", "*".into()));
        }
        let (status, h, text) = self.call("PUT", Some(key), &[], &headers, Some(body))?;
        if status != 200 {
            return Err(self.words(status, &text));
        }
        Ok(S3::etag(&h))
    }

    pub fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let headers = self.class_header();
        let (status, _, body) = self.call("POST", Some(key), &[("uploads", "")], &headers, None)?;
        if status != 200 {
            return Err(self.words(status, &body));
        }
        CreateMultipartUpload::parse_response(&body)
            .map(|r| r.upload_id().to_string())
            .map_err(|e| {
                S3Error::new(
                    Kind::Refused,
                    format!("unreadable answer to starting an upload: {e}"),
                )
            })
    }

    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        body: Payload,
    ) -> Result<String, S3Error> {
        let n = number.to_string();
        let query = [("partNumber", n.as_str()), ("uploadId", upload_id)];
        let (status, h, text) = self.call("PUT", Some(key), &query, &[], Some(body))?;
        if status != 200 {
            return Err(self.words(status, &text));
        }
        Ok(S3::etag(&h))
    }

    /// The parts the server holds for an upload (to resume after a restart).
    pub fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<Part>, S3Error> {
        let (status, _, body) =
            self.call("GET", Some(key), &[("uploadId", upload_id)], &[], None)?;
        if status != 200 {
            return Err(self.words(status, &body));
        }
        Ok(parse_parts(&body))
    }

    pub fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), S3Error> {
        let quoted: Vec<String> = etags.iter().map(|e| format!("\"{e}\"")).collect();
        let xml = CompleteMultipartUpload::new(
            &self.bucket,
            Some(&self.creds),
            key,
            upload_id,
            quoted.iter().map(String::as_str),
        )
        .body();
        let md5: [u8; 16] = md5::Md5::digest(xml.as_bytes()).into();
        let body = Payload {
            reader: &mut xml.as_bytes(),
            size: xml.len() as u64,
            md5_b64: &b64(&md5),
            sha256: Sha256::digest(xml.as_bytes()).into(),
        };
        let query = [("uploadId", upload_id)];
        let (status, _, text) = self.call("POST", Some(key), &query, &[], Some(body))?;
        // S3 may answer 200 with an error in the body.
        if status != 200 || text.contains("<Error>") {
            return Err(self.words(if status == 200 { 500 } else { status }, &text));
        }
        Ok(())
    }

    pub fn abort(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let query = [("uploadId", upload_id)];
        let (status, _, body) = self.call("DELETE", Some(key), &query, &[], None)?;
        if !(200..300).contains(&status) && status != 404 {
            return Err(self.words(status, &body));
        }
        Ok(())
    }
}
