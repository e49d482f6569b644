//! What the server remembers about callers: credentials it already
//! verified (so a browser polling with Basic does not pay for Argon2 on
//! every request) and the login form's sessions. Both are kept under a
//! keyed BLAKE2 digest (a per-process random key), never as given, so
//! lookup timing reveals nothing and a memory dump holds no token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use blake2::digest::{KeyInit, Mac};
use rand_core::{OsRng, RngCore};

use super::roles::Role;
use crate::sync::lock;

const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 1000;
const CACHE_TTL: Duration = Duration::from_secs(600);
const MAX_CACHE: usize = 1000;
pub const SESSION_COOKIE: &str = "vr_session";

pub struct Memory {
    key: [u8; 32],
    /// Verified credentials: role, first verified, last used.
    verified: Mutex<HashMap<[u8; 32], (Role, Instant, Instant)>>,
    sessions: Mutex<HashMap<[u8; 32], (Role, Instant)>>,
}

impl Memory {
    pub fn new() -> Memory {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Memory {
            key,
            verified: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, what: &[u8]) -> [u8; 32] {
        let mut mac = <blake2::Blake2sMac256 as KeyInit>::new_from_slice(&self.key)
            .expect("32-byte key fits BLAKE2s");
        mac.update(what);
        mac.finalize().into_bytes().into()
    }

    /// A verified credential stays cached while it is used (each use
    /// renews it), so a script polling with Basic never needs a fresh check,
    /// which a guesser behind the same NAT could keep waiting; at most for
    /// `SESSION_TTL` in all.
    pub fn cached(&self, header: &str) -> Option<Role> {
        let d = self.digest(header.as_bytes());
        let mut cache = lock(&self.verified);
        let (role, first, last) = cache.get_mut(&d)?;
        if last.elapsed() >= CACHE_TTL || first.elapsed() >= SESSION_TTL {
            return None;
        }
        *last = Instant::now();
        Some(*role)
    }

    pub fn remember(&self, header: &str, role: Role) {
        let d = self.digest(header.as_bytes());
        let mut cache = lock(&self.verified);
        if cache.len() >= MAX_CACHE {
            cache.retain(|_, (_, _, last)| last.elapsed() < CACHE_TTL);
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
        }
        let now = Instant::now();
        cache.insert(d, (role, now, now));
    }

    pub fn session(&self, token: &str) -> Option<Role> {
        let d = self.digest(token.as_bytes());
        let sessions = lock(&self.sessions);
        sessions
            .get(&d)
            .filter(|(_, at)| at.elapsed() < SESSION_TTL)
            .map(|(r, _)| *r)
    }

    /// A new session for `role`: the token for the cookie.
    pub fn open_session(&self, role: Role) -> String {
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, (_, at)| at.elapsed() < SESSION_TTL);
            if sessions.len() >= MAX_SESSIONS
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(self.digest(token.as_bytes()), (role, Instant::now()));
        token
    }

    pub fn end_session(&self, token: &str) {
        let d = self.digest(token.as_bytes());
        lock(&self.sessions).remove(&d);
    }
}
