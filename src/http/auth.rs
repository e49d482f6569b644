//! Who may do what. Loopback without credentials is open, like the original;
//! anything else needs the admin (start/stop) or viewer (watch) credentials via
//! HTTP Basic, a bearer token, or the login form's session cookie.
//!
//! Passwords and tokens are kept only as Argon2 hashes. A successful check is
//! cached under a keyed BLAKE2 digest of the header, so a browser polling with
//! Basic credentials does not pay for Argon2 on every request. Digests are
//! keyed with a per-process random key, so lookup timing reveals nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use blake2::digest::{KeyInit, Mac};
use rand_core::{OsRng, RngCore};
use tiny_http::Request;

use crate::config::Config;

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Admin,
}

/// How a request proved who it is; CSRF checks depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// No credentials needed (loopback without credentials configured).
    Open,
    Session,
    Basic,
    Bearer,
}

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
}

/// Argon2 hashes of the secrets, from the config file or the environment.
#[derive(Default)]
pub struct Credentials {
    admin: Option<String>,
    viewer: Option<String>,
    token: Option<String>,
}

impl Credentials {
    /// `VR_PASSWORD` / `VR_VIEWER_PASSWORD` / `VR_API_TOKEN` beat the config's
    /// hashes; plain secrets are hashed at once and never kept.
    pub fn load<E>(cfg: &Config, env: E) -> Result<Credentials, String>
    where
        E: IntoIterator<Item = (String, String)>,
    {
        let mut c = Credentials {
            admin: non_empty(&cfg.password_hash),
            viewer: non_empty(&cfg.viewer_password_hash),
            token: non_empty(&cfg.api_token_hash),
        };
        for (k, v) in env {
            let slot = match k.as_str() {
                "VR_PASSWORD" => &mut c.admin,
                "VR_VIEWER_PASSWORD" => &mut c.viewer,
                "VR_API_TOKEN" => &mut c.token,
                _ => continue,
            };
            if v.is_empty() {
                return Err(format!("environment {k} is set but empty"));
            }
            if v.len() < 8 {
                return Err(format!(
                    "environment {k} is too short (at least 8 characters)"
                ));
            }
            *slot = Some(hash_secret(&v).map_err(|e| format!("environment {k}: {e}"))?);
        }
        Ok(c)
    }

    pub fn any(&self) -> bool {
        self.admin.is_some() || self.viewer.is_some() || self.token.is_some()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// An Argon2id PHC string for a secret (`hash-password` prints this).
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash: {e}"))
}

fn verify(secret: &[u8], phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(secret, &h).is_ok())
        .unwrap_or(false)
}

/// True for addresses only this machine can reach.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The refuse-to-start rule: a non-loopback address needs credentials.
pub fn check_exposure(cfg: &Config, creds: &Credentials) -> Result<(), String> {
    if is_loopback_host(&cfg.host) || creds.admin.is_some() || cfg.insecure_no_auth {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {} without an admin password: anyone on the network could \
         watch the camera and record. Set VR_PASSWORD in the environment, or password_hash \
         in the config file (make one with `video-recorder hash-password`), or pass \
         --insecure-no-auth if you really want an open camera.",
        cfg.host
    ))
}

const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 1000;
const CACHE_TTL: Duration = Duration::from_secs(600);
const MAX_CACHE: usize = 1000;
/// Failures allowed per client within `FAIL_WINDOW` before it is locked out.
const MAX_FAILURES: u32 = 5;
const FAIL_WINDOW: Duration = Duration::from_secs(300);
const LOCKOUT: Duration = Duration::from_secs(60);
/// Longest Authorization header we look at.
const MAX_AUTH_HEADER: usize = 1024;
pub const SESSION_COOKIE: &str = "vr_session";

struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

pub struct Auth {
    /// False only on loopback without any credentials (or `--insecure-no-auth`).
    required: bool,
    admin_user: String,
    viewer_user: String,
    creds: Credentials,
    key: [u8; 32],
    verified: Mutex<HashMap<[u8; 32], (Role, Instant)>>,
    sessions: Mutex<HashMap<[u8; 32], (Role, Instant)>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// A valid hash to verify against for unknown users, so timing does not
    /// tell which user names exist.
    decoy: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Auth {
    pub fn new(cfg: &Config, creds: Credentials) -> Auth {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let open = !creds.any() && (is_loopback_host(&cfg.host) || cfg.insecure_no_auth);
        Auth {
            required: !open,
            admin_user: cfg.admin_user.clone(),
            viewer_user: cfg.viewer_user.clone(),
            creds,
            key,
            verified: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            decoy: hash_secret("decoy-password-never-valid").unwrap_or_default(),
        }
    }

    pub fn required(&self) -> bool {
        self.required
    }

    fn digest(&self, what: &[u8]) -> [u8; 32] {
        let mut mac = <blake2::Blake2sMac256 as KeyInit>::new_from_slice(&self.key)
            .expect("32-byte key fits BLAKE2s");
        mac.update(what);
        mac.finalize().into_bytes().into()
    }

    /// Locked out? Returns the seconds left.
    fn locked(&self, ip: Option<IpAddr>) -> Option<u64> {
        let ip = ip?;
        let f = lock(&self.failures);
        let until = f.get(&ip)?.locked_until?;
        let left = until.checked_duration_since(Instant::now())?;
        Some(left.as_secs().max(1))
    }

    fn fail(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let mut all = lock(&self.failures);
        if all.len() > 10_000 {
            all.retain(|_, f| f.since.elapsed() < FAIL_WINDOW);
        }
        let now = Instant::now();
        let f = all.entry(ip).or_insert(Failures {
            count: 0,
            since: now,
            locked_until: None,
        });
        if now.duration_since(f.since) > FAIL_WINDOW {
            *f = Failures {
                count: 0,
                since: now,
                locked_until: None,
            };
        }
        f.count += 1;
        if f.count >= MAX_FAILURES {
            f.locked_until = Some(now + LOCKOUT);
            log::warn!(
                "client {ip}: {} failed logins, locked out for {}s",
                f.count,
                LOCKOUT.as_secs()
            );
        }
    }

    fn succeed(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            lock(&self.failures).remove(&ip);
        }
    }

    /// Checks a user name and password; the answer takes as long either way.
    fn check_password(&self, user: &str, password: &str) -> Option<Role> {
        let (role, hash) = if user == self.admin_user {
            (Role::Admin, self.creds.admin.as_deref())
        } else if user == self.viewer_user {
            (Role::Viewer, self.creds.viewer.as_deref())
        } else {
            (Role::Viewer, None)
        };
        match hash {
            Some(h) => verify(password.as_bytes(), h).then_some(role),
            None => {
                verify(password.as_bytes(), &self.decoy);
                None
            }
        }
    }

    fn cached(&self, header: &str) -> Option<Role> {
        let d = self.digest(header.as_bytes());
        let cache = lock(&self.verified);
        cache
            .get(&d)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(r, _)| *r)
    }

    fn remember(&self, header: &str, role: Role) {
        let d = self.digest(header.as_bytes());
        let mut cache = lock(&self.verified);
        if cache.len() >= MAX_CACHE {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
        }
        cache.insert(d, (role, Instant::now()));
    }

    /// Who sent this request, or why not.
    pub fn authenticate(&self, req: &Request) -> Result<Principal, Denied> {
        let ip = req.remote_addr().map(|a| a.ip());
        let authz = header(req, "Authorization");
        if !self.required && authz.is_none() {
            return Ok(Principal {
                role: Role::Admin,
                via: Via::Open,
            });
        }
        if let Some(h) = authz {
            return self.authorization(h, ip);
        }
        if let Some(token) = cookie(req, SESSION_COOKIE)
            && let Some(role) = self.session(token)
        {
            return Ok(Principal {
                role,
                via: Via::Session,
            });
        }
        Err(Denied::Missing)
    }

    fn authorization(&self, h: &str, ip: Option<IpAddr>) -> Result<Principal, Denied> {
        if h.len() > MAX_AUTH_HEADER {
            return Err(Denied::Malformed("Authorization header too long"));
        }
        let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
        let rest = rest.trim();
        let via = if scheme.eq_ignore_ascii_case("basic") {
            Via::Basic
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Via::Bearer
        } else {
            return Err(Denied::Malformed("Authorization must be Basic or Bearer"));
        };
        if rest.is_empty() {
            return Err(Denied::Malformed("empty credentials"));
        }
        // Parse fully first: malformed input is a 400 whatever the lockout says.
        let basic = match via {
            Via::Basic => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(rest)
                    .map_err(|_| Denied::Malformed("Basic credentials are not base64"))?;
                let text = String::from_utf8(raw)
                    .map_err(|_| Denied::Malformed("Basic credentials are not UTF-8"))?;
                let (user, pass) = text
                    .split_once(':')
                    .ok_or(Denied::Malformed("Basic credentials lack ':'"))?;
                Some((user.to_string(), pass.to_string()))
            }
            _ => None,
        };
        if let Some(secs) = self.locked(ip) {
            return Err(Denied::Limited(secs));
        }
        let kind = if via == Via::Basic { "basic" } else { "bearer" };
        let cache_key = format!("{kind}\u{0}{rest}");
        if let Some(role) = self.cached(&cache_key) {
            return Ok(Principal { role, via });
        }
        let role = match (&basic, &self.creds.token) {
            (Some((user, pass)), _) => self.check_password(user, pass),
            (None, Some(h)) => verify(rest.as_bytes(), h).then_some(Role::Admin),
            (None, None) => {
                verify(rest.as_bytes(), &self.decoy);
                None
            }
        };
        match role {
            Some(role) => {
                self.succeed(ip);
                self.remember(&cache_key, role);
                Ok(Principal { role, via })
            }
            None => {
                self.fail(ip);
                Err(Denied::Wrong)
            }
        }
    }

    fn session(&self, token: &str) -> Option<Role> {
        let d = self.digest(token.as_bytes());
        let sessions = lock(&self.sessions);
        sessions
            .get(&d)
            .filter(|(_, at)| at.elapsed() < SESSION_TTL)
            .map(|(r, _)| *r)
    }

    /// The login form: on success a new session token for the cookie.
    pub fn login(&self, ip: Option<IpAddr>, user: &str, password: &str) -> Result<String, Denied> {
        if let Some(secs) = self.locked(ip) {
            return Err(Denied::Limited(secs));
        }
        if user.len() > 256 || password.len() > 1024 {
            return Err(Denied::Malformed("user or password too long"));
        }
        let Some(role) = self.check_password(user, password) else {
            self.fail(ip);
            return Err(Denied::Wrong);
        };
        self.succeed(ip);
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
        Ok(token)
    }

    pub fn logout(&self, req: &Request) {
        if let Some(token) = cookie(req, SESSION_COOKIE) {
            let d = self.digest(token.as_bytes());
            lock(&self.sessions).remove(&d);
        }
    }
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    header(req, "Cookie")?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Blocks cross-site state changes a browser could send on its own, with a
/// session cookie or with cached Basic credentials alike. Non-browser clients
/// (curl) send neither `Sec-Fetch-Site` nor `Origin` and pass; bearer calls pass.
pub fn same_origin(req: &Request, via: Via) -> bool {
    if via == Via::Bearer {
        return true;
    }
    if let Some(site) = header(req, "Sec-Fetch-Site") {
        return matches!(site.trim(), "same-origin" | "none");
    }
    match header(req, "Origin") {
        None => true,
        Some(origin) => {
            let host = header(req, "Host").unwrap_or("");
            let origin = origin.trim();
            !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"))
        }
    }
}

/// Whether a browser script made the request (then no Basic dialog is wanted).
pub fn from_script(req: &Request) -> bool {
    header(req, "Sec-Fetch-Mode").is_some_and(|m| m != "navigate")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str) -> Config {
        Config {
            host: host.into(),
            ..Config::default()
        }
    }

    fn creds(admin: &str) -> Credentials {
        Credentials::load(
            &cfg("0.0.0.0"),
            [("VR_PASSWORD".to_string(), admin.to_string())],
        )
        .unwrap()
    }

    #[test]
    fn exposure_rule() {
        let none = Credentials::default();
        assert!(check_exposure(&cfg("127.0.0.1"), &none).is_ok());
        assert!(check_exposure(&cfg("::1"), &none).is_ok());
        assert!(check_exposure(&cfg("localhost"), &none).is_ok());
        let e = check_exposure(&cfg("0.0.0.0"), &none).unwrap_err();
        assert!(
            e.contains("VR_PASSWORD") && e.contains("--insecure-no-auth"),
            "{e}"
        );
        assert!(check_exposure(&cfg("192.168.1.5"), &none).is_err());
        assert!(check_exposure(&cfg("0.0.0.0"), &creds("correct horse")).is_ok());
        let mut open = cfg("0.0.0.0");
        open.insecure_no_auth = true;
        assert!(check_exposure(&open, &none).is_ok());
    }

    #[test]
    fn env_secrets_are_hashed_and_checked() {
        let e = Credentials::load(&cfg("0.0.0.0"), [("VR_PASSWORD".into(), "short".into())]);
        assert!(e.err().unwrap().contains("VR_PASSWORD"));
        let c = creds("correct horse");
        let admin = c.admin.clone().unwrap();
        assert!(admin.starts_with("$argon2id$"));
        assert!(!admin.contains("correct horse"));
        let a = Auth::new(&cfg("0.0.0.0"), c);
        assert!(a.required());
        assert_eq!(
            a.check_password("admin", "correct horse"),
            Some(Role::Admin)
        );
        assert_eq!(a.check_password("admin", "wrong horse"), None);
        assert_eq!(a.check_password("mallory", "correct horse"), None);
        assert_eq!(a.check_password("viewer", "correct horse"), None);
    }

    #[test]
    fn basic_header_parsing() {
        let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            a.authorization(&format!("Basic {}", b64("admin:correct horse")), None),
            Ok(Principal {
                role: Role::Admin,
                via: Via::Basic
            })
        );
        // Cached now, and still right.
        assert!(
            a.authorization(&format!("basic {}", b64("admin:correct horse")), None)
                .is_ok()
        );
        assert_eq!(
            a.authorization(&format!("Basic {}", b64("admin:nope")), None),
            Err(Denied::Wrong)
        );
        assert!(matches!(
            a.authorization("Basic !!!", None),
            Err(Denied::Malformed(_))
        ));
        assert!(matches!(
            a.authorization(&format!("Basic {}", b64("nocolon")), None),
            Err(Denied::Malformed(_))
        ));
        assert!(matches!(
            a.authorization("Basic", None),
            Err(Denied::Malformed(_))
        ));
        assert!(matches!(
            a.authorization("Digest x", None),
            Err(Denied::Malformed(_))
        ));
        assert!(matches!(
            a.authorization(&"x".repeat(5000), None),
            Err(Denied::Malformed(_))
        ));
        assert_eq!(a.authorization("Bearer whatever", None), Err(Denied::Wrong));
    }

    #[test]
    fn lockout_after_repeated_failures() {
        let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
        let ip: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login(ip, "admin", "guess"), Err(Denied::Wrong));
        }
        assert!(matches!(
            a.login(ip, "admin", "correct horse"),
            Err(Denied::Limited(_))
        ));
        // Another client is not affected.
        assert!(
            a.login(Some("10.0.0.10".parse().unwrap()), "admin", "correct horse")
                .is_ok()
        );
    }

    #[test]
    fn sessions() {
        let a = Auth::new(&cfg("0.0.0.0"), creds("correct horse"));
        let t = a.login(None, "admin", "correct horse").unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(a.session(&t), Some(Role::Admin));
        assert_eq!(a.session("0000"), None);
    }
}
