//! The harness's look at what the recorder left in the bucket: the
//! buckets it makes, listings (every page), objects and their ETags,
//! multipart uploads and their parts.

use super::*;

impl S3Server {
    /// CreateBucket (path style).
    pub fn create_bucket(&self, name: &str) {
        let r = self.call("PUT", &format!("/{name}"), &[], &[], b"");
        self.expect_ok(&format!("create bucket {name}"), &r);
    }

    /// Every object's key and size (ListObjectsV2, all pages), in key order.
    pub fn list(&self, bucket: &str) -> Vec<(String, u64)> {
        self.list_paged(bucket, 1000)
    }

    pub(super) fn list_paged(&self, bucket: &str, page: usize) -> Vec<(String, u64)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("list-type", "2"), ("max-keys", page.as_str())];
            if let Some(t) = &token {
                q.push(("continuation-token", t));
            }
            let r = self.call("GET", &format!("/{bucket}"), &q, &[], b"");
            self.expect_ok(&format!("list {bucket}"), &r);
            let xml = r.text();
            for c in elements(&xml, "Contents") {
                let key = element(c, "Key").unwrap_or_else(|| panic!("no Key in {c}"));
                let size = element(c, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no Size in {c}"));
                out.push((key, size));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            token = Some(
                element(&xml, "NextContinuationToken")
                    .unwrap_or_else(|| panic!("truncated, no NextContinuationToken: {xml}")),
            );
        }
    }

    /// GetObject: the bytes, or `None` if there is no such key.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let r = self.call("GET", &format!("/{bucket}/{key}"), &[], &[], b"");
        if r.status == 404 {
            return None;
        }
        self.expect_ok(&format!("get {bucket}/{key}"), &r);
        Some(r.body)
    }

    /// HeadObject: size and ETag (without its quotes: the MD5 in hex for a
    /// single PUT, `<md5 of the parts' MD5s>-<parts>` after a multipart
    /// upload), or `None` if there is no such key.
    pub fn head(&self, bucket: &str, key: &str) -> Option<(u64, String)> {
        let r = self.call("HEAD", &format!("/{bucket}/{key}"), &[], &[], b"");
        if r.status == 404 {
            return None;
        }
        self.expect_ok(&format!("head {bucket}/{key}"), &r);
        let size = r
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("HEAD {bucket}/{key}: no Content-Length: {r:?}"));
        let etag = r
            .header("ETag")
            .unwrap_or_else(|| panic!("HEAD {bucket}/{key}: no ETag: {r:?}"));
        Some((size, etag.trim_matches('"').to_string()))
    }

    /// One header of HeadObject's answer (e.g. `x-amz-storage-class`, which
    /// moto sends for a class other than STANDARD), `None` without it.
    pub fn head_header(&self, bucket: &str, key: &str, name: &str) -> Option<String> {
        let r = self.call("HEAD", &format!("/{bucket}/{key}"), &[], &[], b"");
        self.expect_ok(&format!("head {bucket}/{key}"), &r);
        r.header(name).map(str::to_string)
    }

    /// The multipart uploads begun and neither completed nor aborted: key
    /// and upload id (ListMultipartUploads, all pages).
    pub fn multipart_uploads(&self, bucket: &str) -> Vec<(String, String)> {
        self.multipart_uploads_paged(bucket, 1000)
    }

    pub(super) fn multipart_uploads_paged(
        &self,
        bucket: &str,
        page: usize,
    ) -> Vec<(String, String)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut q = vec![("uploads", ""), ("max-uploads", page.as_str())];
            if let Some((k, u)) = &markers {
                q.push(("key-marker", k));
                q.push(("upload-id-marker", u));
            }
            let r = self.call("GET", &format!("/{bucket}"), &q, &[], b"");
            self.expect_ok(&format!("list multipart uploads in {bucket}"), &r);
            let xml = r.text();
            for u in elements(&xml, "Upload") {
                let key = element(u, "Key").unwrap_or_else(|| panic!("no Key in {u}"));
                let id = element(u, "UploadId").unwrap_or_else(|| panic!("no UploadId in {u}"));
                out.push((key, id));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            let next = |tag| {
                element(&xml, tag)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| panic!("truncated, no {tag}: {xml}"))
            };
            markers = Some((next("NextKeyMarker"), next("NextUploadIdMarker")));
        }
    }

    /// The parts an upload holds so far: number and size (ListParts, all
    /// pages), in part order.
    pub fn parts(&self, bucket: &str, key: &str, upload_id: &str) -> Vec<(u32, u64)> {
        self.parts_paged(bucket, key, upload_id, 1000)
    }

    pub(super) fn parts_paged(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        page: usize,
    ) -> Vec<(u32, u64)> {
        let page = page.to_string();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut q = vec![("uploadId", upload_id), ("max-parts", page.as_str())];
            if let Some(m) = &marker {
                q.push(("part-number-marker", m));
            }
            let r = self.call("GET", &format!("/{bucket}/{key}"), &q, &[], b"");
            self.expect_ok(&format!("list parts of {bucket}/{key} {upload_id}"), &r);
            let xml = r.text();
            for p in elements(&xml, "Part") {
                let n = element(p, "PartNumber").and_then(|s| s.parse().ok());
                let size = element(p, "Size").and_then(|s| s.parse().ok());
                let (Some(n), Some(size)) = (n, size) else {
                    panic!("no PartNumber or Size in {p}");
                };
                out.push((n, size));
            }
            if element(&xml, "IsTruncated").as_deref() != Some("true") {
                return out;
            }
            marker = Some(
                element(&xml, "NextPartNumberMarker")
                    .unwrap_or_else(|| panic!("truncated, no NextPartNumberMarker: {xml}")),
            );
        }
    }
}
