//! Who may do what. Loopback without credentials is open, like the original;
//! anything else needs the admin (start/stop) or viewer (watch) credentials via
//! HTTP Basic, a bearer token, or the login form's session cookie.
//!
//! Passwords and tokens are kept only as Argon2 hashes. A successful check is
//! cached under a keyed BLAKE2 digest of the header, so a browser polling with
//! Basic credentials does not pay for Argon2 on every request. Digests are
//! keyed with a per-process random key, so lookup timing reveals nothing.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use tiny_http::Request;

pub use super::credentials::{
    AuthSettings, Credentials, check_exposure, hash_secret, is_loopback_host,
};
use super::device::Devices;
use super::lockout::{Claim, Key, Lockout, Refused};
use super::request::cookie;
pub use super::request::{header, same_origin};
use super::sessions::Memory;
pub use super::sessions::SESSION_COOKIE;
use super::verifier::{Pending, Verifier};

pub use super::roles::{Role, Via};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    pub via: Via,
}

/// Why a request was not let in; the HTTP layer turns it into a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No credentials: 401.
    Missing,
    /// Wrong credentials: 401.
    Wrong,
    /// Unparseable or oversized Authorization header: 400.
    Malformed(&'static str),
    /// Too many failures from this client: 429, retry after so many seconds.
    Limited(u64),
    /// Too many checks running at once: 503.
    Busy,
}

/// Longest Authorization header we look at.
const MAX_AUTH_HEADER: usize = 1024;
/// Lockout name for bearer tokens, and for user names we do not have (so
/// guessing names neither grows the table nor dodges the delays).
const TOKEN_USER: &str = "(token)";
const OTHER_USER: &str = "(unknown user)";

pub struct Auth {
    /// False only on loopback without any credentials (or `--insecure-no-auth`).
    required: bool,
    admin_user: String,
    viewer_user: String,
    creds: Credentials,
    /// Verified credentials and login sessions.
    memory: Memory,
    lockout: Lockout,
    verifier: Verifier,
    /// A valid hash to verify against for unknown users, so timing does not
    /// tell which user names exist.
    decoy: Arc<str>,
    /// Checks queued behind their client's own (`MAX_QUEUED` at most).
    queued: Arc<AtomicUsize>,
    pub devices: Devices,
}

/// What `begin` found: an answer now, or a password check to wait for (off
/// the dispatch thread: Argon2 takes tens of milliseconds), or one queued
/// behind the client's own earlier checks.
pub enum Check {
    Done(Result<Principal, Denied>),
    Verify(Attempt),
    Queued(Queued),
}

/// How long a client's check waits behind its own earlier ones (or for a
/// free verifier) before it is refused with 503. A page that opens several
/// requests at once with fresh credentials must not see 503s.
const QUEUE_WAIT: Duration = Duration::from_secs(10);
/// Checks waiting so, at most, process-wide (each holds a thread).
const MAX_QUEUED: usize = 64;

/// A check that could not start yet; `wait_queued` runs it when it can.
pub struct Queued {
    ip: Option<IpAddr>,
    user: Option<String>,
    secret: Vec<u8>,
    via: Via,
    cache_key: Option<String>,
    /// Gives its place among the queued back when dropped.
    _place: QueuePlace,
}

struct QueuePlace(Arc<AtomicUsize>);

impl Drop for QueuePlace {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        for b in self.secret.iter_mut() {
            // SAFETY: a volatile write to a byte we own, so it is not elided.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// An admitted credential check; `finish` waits for it and records it.
pub struct Attempt {
    pending: Pending,
    claim: Claim,
    role: Role,
    via: Via,
    /// False when checked against the decoy: fails whatever was typed.
    real: bool,
    /// Remembered on success, so the next request needs no Argon2.
    cache_key: Option<String>,
}

impl Auth {
    pub fn new(cfg: &AuthSettings, creds: Credentials) -> Auth {
        let open = !creds.any() && (is_loopback_host(&cfg.host) || cfg.insecure_no_auth);
        Auth {
            required: !open,
            admin_user: cfg.admin_user.clone(),
            viewer_user: cfg.viewer_user.clone(),
            memory: Memory::new(),
            lockout: Lockout::new(Instant::now()),
            verifier: Verifier::new(),
            decoy: hash_secret("decoy-password-never-valid")
                .unwrap_or_default()
                .into(),
            queued: Arc::default(),
            devices: Devices::new(&[creds.admin.as_deref(), creds.viewer.as_deref()]),
            creds,
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    /// The user name as logged and as counted: only names we have.
    pub fn known_user<'a>(&self, user: &'a str) -> &'a str {
        if user == self.admin_user || user == self.viewer_user {
            user
        } else {
            OTHER_USER
        }
    }

    /// Claims an attempt for `user` from `ip` and queues the check of
    /// `secret` against the user's hash (or the decoy).
    fn admit(
        &self,
        ip: Option<IpAddr>,
        user: Option<&str>,
        secret: &[u8],
        via: Via,
        cache_key: Option<String>,
        trusted: bool,
    ) -> Check {
        let (role, hash, name) = match user {
            None => (Role::Admin, self.creds.token.as_deref(), TOKEN_USER),
            Some(u) if u == self.admin_user => (Role::Admin, self.creds.admin.as_deref(), u),
            Some(u) if u == self.viewer_user => (Role::Viewer, self.creds.viewer.as_deref(), u),
            Some(_) => (Role::Viewer, None, OTHER_USER),
        };
        let now = Instant::now();
        let claim = match self.lockout.claim_as(Key::new(ip, name), now, trusted) {
            Ok(c) => c,
            Err(Refused::Wait(secs)) => return Check::Done(Err(Denied::Limited(secs))),
            Err(Refused::Busy) => return Check::Done(Err(Denied::Busy)),
        };
        // No hash for this user: check the decoy, so the answer takes as
        // long, and let it fail.
        let (phc, real) = match hash {
            Some(h) => (Arc::from(h), true),
            None => (self.decoy.clone(), false),
        };
        match self.verifier.submit(secret, phc) {
            Ok(pending) => Check::Verify(Attempt {
                pending,
                claim,
                role,
                via,
                real,
                cache_key,
            }),
            Err(_) => {
                // Not checked: give the claim back without counting it
                // either way (a success would forget the failures).
                self.lockout.release(claim);
                Check::Done(Err(Denied::Busy))
            }
        }
    }

    /// Who sent this request, or why not, or the check to wait for. `ip` is
    /// the client as `client::address` sees it (proxies resolved).
    pub fn begin(&self, req: &Request, ip: Option<IpAddr>) -> Check {
        let authz = header(req, "Authorization");
        if !self.required && authz.is_none() {
            return Check::Done(Ok(Principal {
                role: Role::Admin,
                via: Via::Open,
            }));
        }
        if let Some(h) = authz {
            return self.authorization(h, ip);
        }
        if let Some(token) = cookie(req, SESSION_COOKIE)
            && let Some(role) = self.memory.session(token)
        {
            return Check::Done(Ok(Principal {
                role,
                via: Via::Session,
            }));
        }
        Check::Done(Err(Denied::Missing))
    }

    fn authorization(&self, h: &str, ip: Option<IpAddr>) -> Check {
        if h.len() > MAX_AUTH_HEADER {
            return Check::Done(Err(Denied::Malformed("Authorization header too long")));
        }
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        let rest = rest.trim();
        let via = if scheme.eq_ignore_ascii_case("basic") {
            Via::Basic
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Via::Bearer
        } else {
            return Check::Done(Err(Denied::Malformed(
                "Authorization must be Basic or Bearer",
            )));
        };
        if rest.is_empty() {
            return Check::Done(Err(Denied::Malformed("empty credentials")));
        }
        // Parse fully first: malformed input is a 400 whatever the lockout says.
        let basic = match via {
            Via::Basic => match parse_basic(rest) {
                Ok(b) => Some(b),
                Err(e) => return Check::Done(Err(e)),
            },
            _ => None,
        };
        // Credentials already verified go first: a lockout of this address
        // (a NAT, a proxy, a guessing neighbour) must not lock out the owner.
        let kind = if via == Via::Basic { "basic" } else { "bearer" };
        let cache_key = format!("{kind}\u{0}{rest}");
        if let Some(role) = self.memory.cached(&cache_key) {
            return Check::Done(Ok(Principal { role, via }));
        }
        let (user, secret) = match &basic {
            Some((user, pass)) => (Some(user.as_str()), pass.as_bytes()),
            None => (None, rest.as_bytes()),
        };
        match self.admit(ip, user, secret, via, Some(cache_key.clone()), false) {
            Check::Done(Err(Denied::Busy)) => self.queue(ip, user, secret, via, Some(cache_key)),
            other => other,
        }
    }

    /// Queues a check that is busy now (its client's earlier checks are
    /// still running, or every verifier is): 503 only when too many wait.
    fn queue(
        &self,
        ip: Option<IpAddr>,
        user: Option<&str>,
        secret: &[u8],
        via: Via,
        cache_key: Option<String>,
    ) -> Check {
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Check::Done(Err(Denied::Busy));
        }
        Check::Queued(Queued {
            ip,
            user: user.map(str::to_string),
            secret: secret.to_vec(),
            via,
            cache_key,
            _place: QueuePlace(self.queued.clone()),
        })
    }

    /// Runs a queued check once it can start (blocks: off the dispatch
    /// thread): the credentials may have been verified meanwhile by the
    /// check it waited behind, and then cost nothing.
    pub fn wait_queued(&self, q: Queued) -> Result<Principal, Denied> {
        self.waiting(
            q.ip,
            q.user.as_deref(),
            &q.secret,
            q.via,
            q.cache_key.clone(),
            false,
        )
    }

    /// Admits and runs a check, waiting up to `QUEUE_WAIT` while it is busy.
    fn waiting(
        &self,
        ip: Option<IpAddr>,
        user: Option<&str>,
        secret: &[u8],
        via: Via,
        cache_key: Option<String>,
        trusted: bool,
    ) -> Result<Principal, Denied> {
        let deadline = Instant::now() + QUEUE_WAIT;
        loop {
            if let Some(k) = &cache_key
                && let Some(role) = self.memory.cached(k)
            {
                return Ok(Principal { role, via });
            }
            match self.admit(ip, user, secret, via, cache_key.clone(), trusted) {
                Check::Verify(a) => return self.finish(a),
                Check::Done(Err(Denied::Busy)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Denied::Busy);
                    }
                    self.lockout
                        .wait_answer(left.min(Duration::from_millis(250)));
                }
                Check::Done(r) => return r,
                Check::Queued(_) => unreachable!("admit does not queue"),
            }
        }
    }

    /// Waits for an admitted check and records its outcome.
    pub fn finish(&self, a: Attempt) -> Result<Principal, Denied> {
        let ok = a.pending.wait() && a.real;
        self.lockout.settle(a.claim, ok, Instant::now());
        if !ok {
            return Err(Denied::Wrong);
        }
        if let Some(k) = &a.cache_key {
            self.memory.remember(k, a.role);
        }
        Ok(Principal {
            role: a.role,
            via: a.via,
        })
    }

    /// The login form: on success a new session token for the cookie.
    /// Blocks while the password is checked (call it off the dispatch thread).
    /// `device`: the browser's device cookie, if it sent one (a browser
    /// that signed in as `user` before is not slowed by the device-wide
    /// budget). Several logins at once from one client queue, briefly.
    pub fn login(
        &self,
        ip: Option<IpAddr>,
        user: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<String, Denied> {
        if user.len() > 256 || password.len() > 1024 {
            return Err(Denied::Malformed("user or password too long"));
        }
        let trusted = device.is_some_and(|d| self.devices.valid_for(d, user));
        let who = self.waiting(
            ip,
            Some(user),
            password.as_bytes(),
            Via::Session,
            None,
            trusted,
        )?;
        Ok(self.memory.open_session(who.role))
    }

    pub fn logout(&self, req: &Request) {
        if let Some(token) = cookie(req, SESSION_COOKIE) {
            self.memory.end_session(token);
        }
    }
}

fn parse_basic(b64: &str) -> Result<(String, String), Denied> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| Denied::Malformed("Basic credentials are not base64"))?;
    let text =
        String::from_utf8(raw).map_err(|_| Denied::Malformed("Basic credentials are not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or(Denied::Malformed("Basic credentials lack ':'"))?;
    Ok((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests;
