//! Password and token checks, bounded process-wide. Argon2 (m = 19 MiB) is
//! the one thing an unauthenticated client can make us spend memory and CPU
//! on, so checks run on a fixed pool of workers, each reusing one block
//! buffer, behind a short queue; beyond it a check is refused at once
//! (503) instead of starting another thread and another 19 MiB. Without
//! this, 300 concurrent logins took 1.6 GiB that the allocator kept.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Checks running at once (the Pi has 4 cores; recording needs two).
pub const WORKERS: usize = 2;
/// Checks waiting for a worker; more are refused.
pub const QUEUE: usize = 16;
/// Largest Argon2 memory a hash may ask for (KiB): a config with a huge
/// `m` must not make every check allocate gigabytes.
const MAX_M_COST_KIB: u32 = 256 * 1024;

struct Job {
    secret: Vec<u8>,
    phc: Arc<str>,
    done: mpsc::Sender<bool>,
}

/// Handle to the pool; cheap to share.
pub struct Verifier {
    jobs: SyncSender<Job>,
}

/// A check that was admitted; `wait` blocks until a worker answered.
pub struct Pending(Receiver<bool>);

impl Pending {
    /// True when the secret matches. A worker that died counts as a mismatch.
    pub fn wait(self) -> bool {
        self.0.recv().unwrap_or(false)
    }
}

/// The queue is full: too many checks at once.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Verifier {
    pub fn new() -> Verifier {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..WORKERS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("verify-{n}"))
                .stack_size(256 * 1024)
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                log::error!("cannot start password-check thread: {e}");
            }
        }
        Verifier { jobs: tx }
    }

    /// Queues a check of `secret` against the PHC string `phc`, or refuses
    /// at once when the queue is full.
    pub fn submit(&self, secret: &[u8], phc: Arc<str>) -> Result<Pending, Busy> {
        let (done, answer) = mpsc::channel();
        let job = Job {
            secret: secret.to_vec(),
            phc,
            done,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Pending(answer)),
            Err(TrySendError::Full(mut job) | TrySendError::Disconnected(mut job)) => {
                wipe(&mut job.secret);
                Err(Busy)
            }
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = {
            let rx = lock(rx);
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        let Job {
            mut secret,
            phc,
            done,
        } = job;
        let ok = verify_with(&secret, &phc, &mut blocks);
        wipe(&mut secret);
        let _ = done.send(ok);
    }
}

fn wipe(b: &mut [u8]) {
    for x in b.iter_mut() {
        // SAFETY: a volatile write to a byte we own, so it is not elided.
        unsafe { std::ptr::write_volatile(x, 0) };
    }
}

/// Checks `secret` against a PHC string, with `blocks` as Argon2's memory
/// (grown once to the hash's size and then reused).
pub fn verify_with(secret: &[u8], phc: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        log::warn!("a password hash asks for more than 256 MiB of memory; refused");
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let argon = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon
            .hash_password_into_with_memory(secret, salt, out, &mut blocks[..])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    });
    // Output's equality is constant-time.
    computed.is_ok_and(|c| c == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_what_argon2_hashed() {
        let phc = crate::http::auth::hash_secret("correct horse").unwrap();
        let mut blocks = Vec::new();
        assert!(verify_with(b"correct horse", &phc, &mut blocks));
        let size = blocks.len();
        assert_eq!(size, Params::default().block_count());
        assert!(!verify_with(b"wrong horse", &phc, &mut blocks));
        assert_eq!(blocks.len(), size, "the buffer is reused, not grown");
        assert!(!verify_with(b"correct horse", "not a hash", &mut blocks));
        // Another algorithm and cost: argon2i with t = 3, m = 8 MiB.
        let other = {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let params = Params::new(8192, 3, 1, None).unwrap();
            let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
            Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
                .hash_password(b"pw-other-1", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify_with(b"pw-other-1", &other, &mut blocks));
        assert!(!verify_with(b"pw-other-2", &other, &mut blocks));
    }

    #[test]
    fn the_pool_answers_and_refuses_beyond_its_queue() {
        let v = Verifier::new();
        let phc: Arc<str> = crate::http::auth::hash_secret("correct horse")
            .unwrap()
            .into();
        assert!(v.submit(b"correct horse", phc.clone()).unwrap().wait());
        assert!(!v.submit(b"nope", phc.clone()).unwrap().wait());
        // Flood it: at most WORKERS + QUEUE (+ the ones a worker already
        // took off the queue) are admitted; the rest are refused at once.
        let mut admitted = Vec::new();
        let mut refused = 0;
        for _ in 0..200 {
            match v.submit(b"nope", phc.clone()) {
                Ok(p) => admitted.push(p),
                Err(Busy) => refused += 1,
            }
        }
        assert!(
            admitted.len() <= QUEUE + WORKERS * 2,
            "{} admitted",
            admitted.len()
        );
        assert!(refused >= 200 - QUEUE - WORKERS * 2, "{refused} refused");
        assert!(admitted.into_iter().all(|p| !p.wait()));
    }
}
