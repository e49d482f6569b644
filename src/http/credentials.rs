//! The secrets: Argon2 hashes from the config or hashed from the
//! environment, and the rule that a non-loopback address needs them.

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use rand_core::OsRng;

/// What sign-in needs of the settings (`main` fills it in).
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// The listening address: loopback needs no credentials.
    pub host: String,
    pub insecure_no_auth: bool,
    pub admin_user: String,
    pub viewer_user: String,
    /// Argon2 hashes; empty: none configured.
    pub password_hash: String,
    pub viewer_password_hash: String,
    pub api_token_hash: String,
}

/// Argon2 hashes of the secrets, from the config file or the environment.
#[derive(Default)]
pub struct Credentials {
    pub(super) admin: Option<String>,
    pub(super) viewer: Option<String>,
    pub(super) token: Option<String>,
}

impl Credentials {
    /// `VR_PASSWORD` / `VR_VIEWER_PASSWORD` / `VR_API_TOKEN` beat the config's
    /// hashes; plain secrets are hashed at once and never kept.
    pub fn load<E>(cfg: &AuthSettings, env: E) -> Result<Credentials, String>
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

/// True for addresses only this machine can reach.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The refuse-to-start rule: a non-loopback address needs credentials.
pub fn check_exposure(cfg: &AuthSettings, creds: &Credentials) -> Result<(), String> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Settings listening on `host`, users as by default (also for
    /// `auth`'s tests).
    pub fn cfg(host: &str) -> AuthSettings {
        AuthSettings {
            host: host.into(),
            admin_user: "admin".into(),
            viewer_user: "viewer".into(),
            ..AuthSettings::default()
        }
    }

    /// Credentials with this admin password, as from `VR_PASSWORD`.
    pub fn creds(admin: &str) -> Credentials {
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
}
