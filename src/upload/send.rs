//! Sending one clip: a single PUT up to the part size, else a multipart
//! upload resumed from the parts already there; each verified by a HEAD
//! (size and MD5 ETag) before it counts; then its manifest. The job record
//! is saved after every step that a restart must not redo.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::{Digest, Md5};
use serde_json::json;
use sha2::Sha256;

use super::Uploader;
use super::job::{DonePart, Job, Multipart};
use super::key::manifest_key;
use super::s3::Payload;
use crate::error::{Context as _, Error, Kind, Result};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256_of(mut f: File) -> std::io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex(&h.finalize())))
}

/// Reads what it is given at no more than `bytes_per_sec` (0: no cap),
/// counting what went out.
struct Paced<'a> {
    inner: &'a [u8],
    /// Shutdown: a paced send ends at once rather than hold up the exit.
    stop: &'a std::sync::atomic::AtomicBool,
    at: usize,
    bytes_per_sec: u64,
    started: Instant,
    sent: Arc<AtomicU64>,
    base: u64,
}

impl Read for Paced<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Acquire) {
            return Err(std::io::Error::other("shutting down"));
        }
        let left = &self.inner[self.at..];
        let n = left.len().min(buf.len()).min(16 * 1024);
        if self.bytes_per_sec > 0 && n > 0 {
            let due = Duration::from_secs_f64((self.at + n) as f64 / self.bytes_per_sec as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        buf[..n].copy_from_slice(&left[..n]);
        self.at += n;
        self.sent
            .store(self.base + self.at as u64, Ordering::Relaxed);
        Ok(n)
    }
}

struct Digests {
    hex: String,
    b64: String,
    raw: [u8; 16],
}

fn md5(data: &[u8]) -> Digests {
    let raw: [u8; 16] = Md5::digest(data).into();
    Digests {
        hex: hex(&raw),
        b64: base64::engine::general_purpose::STANDARD.encode(raw),
        raw,
    }
}

fn read_range(f: &mut File, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut buf))
        .context(|| "cannot read the clip")?;
    Ok(buf)
}

impl Uploader {
    fn paced<'a>(&'a self, data: &'a [u8], base: u64) -> Paced<'a> {
        Paced {
            inner: data,
            stop: &self.stopping,
            at: 0,
            bytes_per_sec: self.settings.max_kbps * 1000 / 8,
            started: Instant::now(),
            sent: self.sent.clone(),
            base,
        }
    }
}

/// Sends `job`'s clip (if it is not up yet) and its manifest.
pub fn upload(up: &Uploader, job: &mut Job, record: &Path) -> Result<()> {
    let clip = up
        .clips
        .get(&job.id)
        .ok_or_else(|| Error::new(Kind::NotFound, "the clip is gone from the disk"))?;
    let mut file = up
        .clips
        .open_clip(&clip)
        .map_err(|e| Error::new(Kind::Io, format!("cannot open the clip: {e:?}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len != job.size {
        return Err(Error::new(
            Kind::Io,
            format!(
                "the clip changed size ({} → {len} bytes) since it was recorded for upload",
                job.size
            ),
        ));
    }
    if job.size <= up.settings.part_bytes {
        single(up, job, &mut file)?;
    } else {
        multipart(up, job, &mut file, record)?;
    }
    if !job.manifest {
        manifest(up, job, &clip)?;
        job.manifest = true;
    }
    Ok(())
}

fn single(up: &Uploader, job: &mut Job, file: &mut File) -> Result<()> {
    let data = read_range(file, 0, job.size)?;
    let d = md5(&data);
    // An earlier try may have stored it and lost the answer: never twice.
    let only_new = match up.s3.head(&job.key) {
        Ok((size, etag)) if already_there(up, job, size, &etag, &d.hex)? => return Ok(()),
        Ok(_) => false, // a wrong copy (damaged on the way): replace it
        // (AWS says 403 for a missing key to one without s3:ListBucket.)
        Err(e) if e.not_found || e.forbidden => true,
        Err(e) => return Err(e.into()),
    };
    let body = Payload {
        reader: &mut up.paced(&data, 0),
        size: job.size,
        md5_b64: &d.b64,
        sha256: Sha256::digest(&data).into(),
    };
    match up.s3.put(&job.key, body, "video/mp4", only_new) {
        Ok(_) => {}
        Err(e) if e.exists => {} // stored meanwhile: checked below
        Err(e) => return Err(e.into()),
    }
    verify(up, job, &d.hex)
}

/// Whether the object found before sending is the clip. After a copy was
/// found wrong, it is replaced without reading it back again.
fn already_there(up: &Uploader, job: &Job, size: u64, etag: &str, want_etag: &str) -> Result<bool> {
    if size != job.size || (etag != want_etag && job.reuploads > 0) {
        return Ok(false);
    }
    proven(up, job, size, etag, want_etag)
}

/// Whether the stored object provably holds the clip's bytes. Its ETag is
/// the MD5 the server computed of what it stores (a single PUT; for a
/// multipart upload, the MD5 of its parts' MD5s): equal to ours, that is
/// proof. Where it is not (an SSE-KMS bucket, servers whose ETags are not
/// MD5s, or damage), the object is read back and its SHA-256 compared.
/// A checksum the server returns is no proof: moto echoes whatever
/// `x-amz-checksum-sha256` was sent, damaged body or not.
fn proven(up: &Uploader, job: &Job, size: u64, etag: &str, want: &str) -> Result<bool> {
    if size != job.size {
        return Ok(false);
    }
    if etag == want {
        return Ok(true);
    }
    let sha = up
        .s3
        .sha256_of(&job.key, job.size, &up.stopping)
        .map_err(|e| {
            let kind = e.kind;
            Error::new(
                kind,
                format!(
                    "the server's ETag is not the clip's MD5 and reading the object back failed \
                     ({e}): the copy is unproven, so the clip stays here"
                ),
            )
        })?;
    let same = hex(&sha) == job.sha256;
    if same {
        log::info!(
            "upload of {}: the server's ETag is not the clip's MD5; read back, the object's \
             SHA-256 is the clip's",
            job.id
        );
    }
    Ok(same)
}

/// The object counts only when the server proves it holds the clip's bytes.
fn verify(up: &Uploader, job: &mut Job, want_etag: &str) -> Result<()> {
    let (size, etag) = up.s3.head(&job.key)?;
    if proven(up, job, size, &etag, want_etag)? {
        return Ok(());
    }
    job.reuploads += 1;
    job.multipart = None;
    Err(Error::new(
        Kind::Refused,
        format!(
            "the stored object is not the clip (size {size}, ETag {etag}; want {} bytes with \
         SHA-256 {}…): it is not counted as uploaded, the clip stays here, and it is sent \
         again ({} times so far)",
            job.size,
            &job.sha256[..job.sha256.len().min(12)],
            job.reuploads
        ),
    ))
}

/// MD5 of the parts' MD5s (the hex before a multipart ETag's `-N`).
fn parts_md5(file: &mut File, part: u64, size: u64) -> Result<String> {
    let mut all = Vec::new();
    let mut offset = 0;
    while offset < size {
        let len = part.min(size - offset);
        all.extend_from_slice(&md5(&read_range(file, offset, len)?).raw);
        offset += len;
    }
    Ok(md5(&all).hex)
}

fn multipart(up: &Uploader, job: &mut Job, file: &mut File, record: &Path) -> Result<()> {
    let part = up.settings.part_bytes.max(1);
    let count = job.size.div_ceil(part);
    if count > 10_000 {
        return Err(Error::new(
            Kind::BadInput,
            "the clip needs more than 10000 parts: raise s3_part_mb",
        ));
    }
    // An earlier try may have completed it and not lived to say so (a power
    // cut, a failed manifest): the object itself says.
    let want = format!("{}-{count}", parts_md5(file, part, job.size)?);
    if let Ok((size, etag)) = up.s3.head(&job.key)
        && already_there(up, job, size, &etag, &want)?
    {
        return Ok(());
    }
    let mp = match &job.multipart {
        Some(mp) => mp.clone(),
        None => {
            let upload_id = up.s3.create_multipart(&job.key)?;
            let mp = Multipart {
                upload_id,
                parts: Vec::new(),
            };
            job.multipart = Some(mp.clone());
            job.save(record)?;
            mp
        }
    };
    // What the server holds (a restart, or a part whose answer was lost).
    let held = match up.s3.list_parts(&job.key, &mp.upload_id) {
        Ok(p) => p,
        Err(e) if e.not_found => {
            job.multipart = None;
            return Err(Error::new(
                Kind::NotFound,
                "the multipart upload was gone from the server; starting it again",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let mut kept = 0;
    let mut md5s = Vec::with_capacity(count as usize);
    let mut etags = Vec::with_capacity(count as usize);
    for n in 1..=count {
        let offset = (n - 1) * part;
        let len = part.min(job.size - offset);
        let data = read_range(file, offset, len)?;
        let d = md5(&data);
        let number = n as u16;
        let there = held
            .iter()
            .any(|p| p.number == number && p.size == len && p.etag == d.hex);
        if !there {
            let etag = up
                .s3
                .upload_part(
                    &job.key,
                    &mp.upload_id,
                    number,
                    Payload {
                        reader: &mut up.paced(&data, offset),
                        size: len,
                        md5_b64: &d.b64,
                        sha256: Sha256::digest(&data).into(),
                    },
                )
                .map_err(|e| Error::from(e).context(format!("part {n} of {count}")))?;
            if etag != d.hex {
                return Err(Error::new(
                    Kind::Refused,
                    format!("part {n} of {count} arrived damaged (ETag {etag}); sending it again"),
                ));
            }
            if let Some(mp) = job.multipart.as_mut() {
                mp.parts.retain(|p| p.number != number);
                mp.parts.push(DonePart {
                    number,
                    etag: etag.clone(),
                    size: len,
                });
            }
            job.save(record)?;
        } else {
            kept += 1;
            up.sent.store(offset + len, Ordering::Relaxed);
        }
        md5s.extend_from_slice(&d.raw);
        etags.push(d.hex);
    }
    if kept > 0 {
        log::info!(
            "upload of {}: resumed; {kept} of {count} parts were on the server already",
            job.id
        );
    }
    match up.s3.complete(&job.key, &mp.upload_id, &etags) {
        Ok(()) => {}
        // Completed by an earlier try whose answer was lost: the HEAD decides.
        Err(e) if e.not_found => {}
        Err(e) => return Err(e.into()),
    }
    debug_assert_eq!(want, format!("{}-{count}", md5(&md5s).hex));
    verify(up, job, &want).inspect_err(|_| {
        // The bad object is replaced by a new upload; drop the old one.
        let _ = up.s3.abort(&job.key, &mp.upload_id);
    })
}

fn manifest(up: &Uploader, job: &Job, clip: &crate::clips::ClipEntry) -> Result<()> {
    let meta = up.clips.meta(clip);
    let body = json!({
        "device": up.settings.device,
        "camera": job.camera,
        "id": job.id,
        "key": job.key,
        "start": meta.as_ref().map(|m| m.started_at.clone()),
        "end": meta.as_ref().and_then(|m| {
            let d = Duration::try_from_secs_f64(m.duration_sec).ok()?;
            m.started.checked_add(d).map(crate::clock::rfc3339)
        }),
        "duration_sec": meta.as_ref().map(|m| m.duration_sec),
        "frames": meta.as_ref().map(|m| m.frames),
        "size_bytes": job.size,
        "sha256": job.sha256,
    });
    let bytes =
        serde_json::to_vec_pretty(&body).map_err(|e| Error::new(Kind::Internal, e.to_string()))?;
    let d = md5(&bytes);
    let key = manifest_key(&job.key);
    let body = Payload {
        reader: &mut &bytes[..],
        size: bytes.len() as u64,
        md5_b64: &d.b64,
        sha256: Sha256::digest(&bytes).into(),
    };
    up.s3
        .put(&key, body, "application/json", false)
        .map_err(|e| Error::from(e).context("manifest"))?;
    Ok(())
}
