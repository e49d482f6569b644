//! Uploads every finished clip to an S3 bucket, exactly once, through
//! outages, restarts and power cuts. One plain thread: it finds finished
//! clips (stopped, split, or recovered after a crash) in the clips index,
//! records each one's job durably beside it (`job.rs`) before sending
//! anything, and works through them oldest first with capped exponential
//! backoff and jitter. A clip counts as uploaded only when a HEAD of the
//! object shows its size and MD5 (the ETag of a single PUT, or of the
//! parts of a multipart upload), so a byte damaged on the way is caught and
//! sent again; the key comes from the clip id, and a PUT carries
//! `If-None-Match: *` after a HEAD found nothing, so a retry after a lost
//! answer never makes a second copy. Then a small JSON manifest.

mod job;
mod key;
mod s3;
mod send;
pub mod setup;
mod sigv4;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clips::Clips;
use crate::ids::ClipId;
use crate::sync::lock;
use job::{Job, State};

pub use key::KeyTemplate;
pub use s3::S3;

/// What the configuration says (credentials resolved by `setup`).
pub struct UploadSettings {
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    pub path_style: bool,
    pub prefix: KeyTemplate,
    pub device: String,
    pub delete_after_upload: bool,
    pub max_kbps: u64,
    pub storage_class: String,
    /// Clips up to this size go in one PUT; larger ones in parts this size.
    pub part_bytes: u64,
    /// Read when the environment has no AWS keys.
    pub credentials_file: PathBuf,
}

/// Backoff after failures: 2 s doubling to 5 minutes, ±50 % jitter.
const BACKOFF_MIN: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the clips index is looked at for newly finished clips.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How long shutdown waits for the request in flight. A server that answers
/// late (or never) must not hold the exit past systemd's `TimeoutStopSec`
/// (30 s): what is cut off resumes at the next start, as after a power cut
/// (the job record is only ever replaced whole).
const STOP_GRACE: Duration = Duration::from_secs(5);

struct Entry {
    job: Job,
    record: PathBuf,
    /// Monotonic time of the next try.
    next_try: Duration,
    failures: u32,
}

#[derive(Default)]
struct Shared {
    entries: HashMap<ClipId, Entry>,
    /// The clip being sent now.
    current: Option<String>,
    last_error: Option<String>,
    /// Clips the disk could not keep until they were uploaded.
    deleted_before_upload: u64,
    /// Asked to try a clip now (`POST /clips/<id>/upload`).
    nudged: bool,
    /// The uploader thread has returned.
    exited: bool,
    /// Clips whose job could not be recorded (unreadable, a full disk):
    /// not tried again before this monotonic time.
    unrecorded: HashMap<ClipId, Duration>,
}

pub struct Uploader {
    clips: Arc<Clips>,
    settings: UploadSettings,
    s3: S3,
    shared: Mutex<Shared>,
    wake: Condvar,
    stopping: AtomicBool,
    /// Bytes of the current clip sent so far.
    sent: Arc<AtomicU64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_MIN
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    // Jitter from the clock's low bits: enough to spread a fleet's retries.
    let nanos = crate::clock::monotonic_now().subsec_nanos();
    base.mul_f64(0.5 + f64::from(nanos % 1000) / 1000.0)
}

impl Uploader {
    /// Starts the uploader thread; clips the index lists are uploaded.
    pub fn start(
        clips: Arc<Clips>,
        settings: UploadSettings,
        s3: S3,
    ) -> Result<Arc<Uploader>, String> {
        let up = Arc::new(Uploader {
            clips: clips.clone(),
            settings,
            s3,
            shared: Mutex::default(),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            sent: Arc::default(),
            thread: Mutex::new(None),
        });
        // Retention keeps clips still waiting (unless the disk is about to fill).
        let weak = Arc::downgrade(&up);
        clips.hold_with(Box::new(move |id| {
            weak.upgrade().is_some_and(|u| u.waiting(id))
        }));
        let weak = Arc::downgrade(&up);
        clips.on_lost(Box::new(move |id| {
            if let Some(u) = weak.upgrade() {
                u.lost(id);
            }
        }));
        let worker = up.clone();
        let handle = std::thread::Builder::new()
            .name("uploader".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the uploader thread: {e}"))?;
        *lock(&up.thread) = Some(handle);
        log::info!(
            "uploading finished clips to bucket {} ({})",
            up.settings.bucket,
            if up.settings.endpoint.is_empty() {
                "AWS".to_string()
            } else {
                // Never credentials, should the URL hold any.
                crate::source::http_mjpeg::redact(&up.settings.endpoint)
            }
        );
        Ok(up)
    }

    /// Stops (shutdown): a paced body ends at once, and a request still
    /// waiting for its answer after `STOP_GRACE` is left to the exit.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_all();
        let Some(h) = lock(&self.thread).take() else {
            return;
        };
        let s = lock(&self.shared);
        let (s, wait) = self
            .wake
            .wait_timeout_while(s, STOP_GRACE, |s| !s.exited)
            .unwrap_or_else(|e| e.into_inner());
        if wait.timed_out() {
            log::warn!(
                "upload of {} still waits for the server after {} s: left for the next start",
                s.current.as_deref().unwrap_or("a clip"),
                STOP_GRACE.as_secs()
            );
            return;
        }
        drop(s);
        let _ = h.join();
    }

    fn waiting(&self, id: &str) -> bool {
        lock(&self.shared)
            .entries
            .get(id)
            .is_none_or(|e| e.job.state == State::Pending)
    }

    fn lost(&self, id: &str) {
        let mut s = lock(&self.shared);
        // No entry yet: deleted before it was looked at (the retention pass
        // at start), so never uploaded either.
        if s.entries
            .remove(id)
            .is_none_or(|e| e.job.state == State::Pending)
        {
            s.deleted_before_upload += 1;
        }
    }

    /// Tries a clip again now (admin): `Ok` with its state, or why not.
    pub fn retry(&self, id: &str) -> Result<Value, String> {
        let mut s = lock(&self.shared);
        let e = s
            .entries
            .get_mut(id)
            .ok_or("no upload for that clip (yet)")?;
        if e.job.state == State::Uploaded {
            return Err("already uploaded".into());
        }
        e.next_try = Duration::ZERO;
        s.nudged = true;
        drop(s);
        self.wake.notify_all();
        Ok(self.clip_state(id).unwrap_or(Value::Null))
    }

    /// A clip's `upload` for `/clips` and the page.
    pub fn clip_state(&self, id: &str) -> Option<Value> {
        let s = lock(&self.shared);
        let e = s.entries.get(id)?;
        let now = crate::clock::monotonic_now();
        Some(match e.job.state {
            State::Uploaded => json!({
                "state": "uploaded", "key": e.job.key, "uploaded_at": e.job.uploaded_at,
            }),
            State::Pending if s.current.as_deref() == Some(id) => json!({
                "state": "uploading", "sent_bytes": self.sent.load(Ordering::Relaxed),
                "size_bytes": e.job.size,
            }),
            State::Pending => match &e.job.error {
                Some(err) => json!({
                    "state": "failed", "error": err,
                    "next_try_sec": e.next_try.saturating_sub(now).as_secs_f64().round(),
                    "attempts": e.job.attempts,
                }),
                None => json!({ "state": "pending" }),
            },
        })
    }

    /// The backlog for `/status`.
    pub fn status(&self) -> Value {
        let s = lock(&self.shared);
        let pending: Vec<&Entry> = s
            .entries
            .values()
            .filter(|e| e.job.state == State::Pending)
            .collect();
        json!({
            "enabled": true,
            "bucket": self.settings.bucket,
            "pending": pending.len(),
            "pending_bytes": pending.iter().map(|e| e.job.size).sum::<u64>(),
            "failed": pending.iter().filter(|e| e.job.error.is_some()).count(),
            "uploaded": s.entries.len() - pending.len(),
            "uploading": s.current.as_ref().map(|id| json!({
                "id": id, "sent_bytes": self.sent.load(Ordering::Relaxed),
            })),
            "last_error": s.last_error,
            "deleted_before_upload": s.deleted_before_upload,
        })
    }

    fn run(self: Arc<Self>) {
        /// Says the thread returned, however it did (a panic too).
        struct Exited<'a>(&'a Uploader);
        impl Drop for Exited<'_> {
            fn drop(&mut self) {
                lock(&self.0.shared).exited = true;
                self.0.wake.notify_all();
            }
        }
        let _exited = Exited(&self);
        let mut looked = Duration::ZERO;
        while !self.stopping.load(Ordering::Acquire) {
            let now = crate::clock::monotonic_now();
            if now >= looked + LOOK_EVERY {
                self.discover();
                looked = now;
            }
            let next = {
                let s = lock(&self.shared);
                // Oldest first, whichever camera it is from.
                s.entries
                    .iter()
                    .filter(|(_, e)| e.job.state == State::Pending && e.next_try <= now)
                    .min_by(|(a, _), (b, _)| a.age_key().cmp(&b.age_key()))
                    .map(|(id, _)| id.clone())
            };
            let Some(id) = next else {
                let s = lock(&self.shared);
                let (mut s, _) = self
                    .wake
                    .wait_timeout_while(s, LOOK_EVERY, |s| {
                        !s.nudged && !self.stopping.load(Ordering::Acquire)
                    })
                    .unwrap_or_else(|e| e.into_inner());
                s.nudged = false;
                continue;
            };
            self.attempt(&id);
        }
    }

    /// Records a job for every finished clip that has none yet (or reads
    /// the one a previous run left).
    fn discover(&self) {
        let all = self.clips.all();
        {
            // A clip deleted here (by a person, or retention) is no job.
            let ids: std::collections::HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
            let mut s = lock(&self.shared);
            let current = s.current.clone();
            s.entries.retain(|id, _| {
                ids.contains(id.as_str()) || current.as_deref() == Some(id.as_str())
            });
        }
        let now = crate::clock::monotonic_now();
        for clip in all {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            {
                let s = lock(&self.shared);
                if s.entries.contains_key(&clip.id)
                    || s.unrecorded.get(&clip.id).is_some_and(|&t| now < t)
                {
                    continue;
                }
            }
            let record = job::path_for(&clip.path);
            let job = match Job::load(&record) {
                // Uploaded, and deleting after upload: a crash came between.
                Some(j)
                    if clip.id == j.id
                        && j.state == State::Uploaded
                        && self.settings.delete_after_upload =>
                {
                    if self.clips.delete(&clip.id).is_ok() {
                        log::info!("deleted {} here: it is in the bucket", clip.id);
                    }
                    continue;
                }
                Some(j) if clip.id == j.id => j,
                _ => match self
                    .new_job(&clip)
                    .and_then(|j| j.save(&record).map(|()| j))
                {
                    Ok(j) => j,
                    Err(e) => {
                        log::warn!("upload of {}: {e}; trying again in a minute", clip.id);
                        let later = now + Duration::from_secs(60);
                        lock(&self.shared).unrecorded.insert(clip.id.clone(), later);
                        continue;
                    }
                },
            };
            let entry = Entry {
                job,
                record,
                next_try: Duration::ZERO,
                failures: 0,
            };
            let mut s = lock(&self.shared);
            s.unrecorded.remove(&clip.id);
            s.entries.insert(clip.id.clone(), entry);
        }
    }

    fn new_job(&self, clip: &crate::clips::ClipEntry) -> crate::error::Result<Job> {
        use crate::error::{Context as _, Error, Kind};
        let file = self
            .clips
            .open_clip(clip)
            .map_err(|e| Error::new(Kind::Io, format!("cannot open the clip: {e:?}")))?;
        let (size, sha256) = send::sha256_of(file).context(|| "cannot read the clip")?;
        Ok(Job {
            id: clip.id.to_string(),
            camera: clip.camera.to_string(),
            key: self
                .settings
                .prefix
                .key_for(&self.settings.device, &clip.camera, &clip.id),
            size,
            sha256,
            state: State::Pending,
            multipart: None,
            manifest: false,
            uploaded_at: None,
            attempts: 0,
            error: None,
            reuploads: 0,
        })
    }

    fn attempt(&self, id: &str) {
        let Some((mut job, record)) = ({
            let mut s = lock(&self.shared);
            let found = s.entries.get(id).map(|e| (e.job.clone(), e.record.clone()));
            if found.is_some() {
                s.current = Some(id.to_string());
            }
            found
        }) else {
            return;
        };
        self.sent.store(0, Ordering::Relaxed);
        job.attempts += 1;
        let result = send::upload(self, &mut job, &record);
        let now = crate::clock::monotonic_now();
        let mut s = lock(&self.shared);
        s.current = None;
        let Some(e) = s.entries.get_mut(id) else {
            return;
        };
        match result {
            Ok(()) => {
                job.state = State::Uploaded;
                job.error = None;
                job.uploaded_at = Some(crate::clock::rfc3339(std::time::SystemTime::now()));
                log::info!("uploaded {} to {} ({} bytes)", id, job.key, job.size);
                e.failures = 0;
            }
            Err(err) => {
                // What the uploads' status shows and the record keeps.
                let err = err.to_string();
                e.failures += 1;
                e.next_try = now + backoff(e.failures);
                if job.error.as_deref() != Some(err.as_str()) {
                    log::warn!(
                        "upload of {id} failed: {err}; next try in {:.0} s",
                        (e.next_try - now).as_secs_f64()
                    );
                }
                job.error = Some(err.clone());
                s.last_error = Some(err);
            }
        }
        let e = s.entries.get_mut(id).expect("still listed");
        e.job = job.clone();
        drop(s);
        // A clip deleted meanwhile leaves no record behind.
        if self.clips.get(id).is_some()
            && let Err(err) = job.save(&record)
        {
            log::error!("upload of {id}: {err}");
        }
        if job.state == State::Uploaded {
            lock(&self.shared).last_error = None;
            if self.settings.delete_after_upload {
                match self.clips.delete(id) {
                    Ok(_) => {
                        lock(&self.shared).entries.remove(id);
                        log::info!("deleted {id} here: it is in the bucket");
                    }
                    Err(err) => log::warn!("cannot delete uploaded {id}: {err:?}"),
                }
            }
        }
    }
}

/// Off, or on with a bucket: what `/status` says and where uploads go.
pub fn disabled_status() -> Value {
    json!({ "enabled": false })
}
