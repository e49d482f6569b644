//! Device cookies (OWASP's "Slow Down Online Guessing Attacks with Device
//! Cookies"): a browser that signed in as a user before carries a token,
//! bound to that user, that lets its sign-ins past the device-wide budget
//! for failed sign-ins. A crowd of guessers from rotating addresses can use
//! that budget up; then only browsers never seen before are slowed, not the
//! owner's. The token is `user.nonce.mac`, keyed by the users' own password
//! hashes: it survives restarts, and changing a password retires the
//! tokens issued before. It proves nothing by itself: the password is still
//! checked, and the delays per (client, user) still apply.

use blake2::digest::{KeyInit, Mac};
use rand_core::{OsRng, RngCore};

pub const DEVICE_COOKIE: &str = "vr_device";
/// A year: as long as a browser keeps it.
pub const DEVICE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

pub struct Devices {
    /// `None` without any password hash: nothing to sign in to.
    key: Option<[u8; 32]>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 512 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Devices {
    /// Keyed by the users' password hashes (PHC strings, secret as they are).
    pub fn new(hashes: &[Option<&str>]) -> Devices {
        let present: Vec<&str> = hashes.iter().flatten().copied().collect();
        if present.is_empty() {
            return Devices { key: None };
        }
        let mut mac =
            <blake2::Blake2sMac256 as KeyInit>::new_from_slice(b"video-recorder device cookies")
                .expect("a key BLAKE2s takes");
        for h in present {
            mac.update(h.as_bytes());
            mac.update(&[0]);
        }
        Devices {
            key: Some(mac.finalize().into_bytes().into()),
        }
    }

    fn mac(&self, user: &[u8], nonce: &[u8]) -> Option<blake2::Blake2sMac256> {
        let mut m = <blake2::Blake2sMac256 as KeyInit>::new_from_slice(self.key.as_ref()?).ok()?;
        m.update(user);
        m.update(&[0]);
        m.update(nonce);
        Some(m)
    }

    /// A new token for a browser that just signed in as `user`.
    pub fn issue(&self, user: &str) -> Option<String> {
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let tag = self.mac(user.as_bytes(), &nonce)?.finalize().into_bytes();
        Some(format!(
            "{}.{}.{}",
            hex(user.as_bytes()),
            hex(&nonce),
            hex(&tag)
        ))
    }

    /// Whether `token` was issued here to a browser that signed in as `user`.
    pub fn valid_for(&self, token: &str, user: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(u), Some(n), Some(t), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Some(u), Some(n), Some(t)) = (unhex(u), unhex(n), unhex(t)) else {
            return false;
        };
        if u != user.as_bytes() || n.len() != 16 {
            return false;
        }
        // Constant-time comparison of the tag.
        self.mac(&u, &n).is_some_and(|m| m.verify_slice(&t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_user_and_to_the_passwords() {
        let d = Devices::new(&[Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), None]);
        let t = d.issue("admin").unwrap();
        assert!(d.valid_for(&t, "admin"));
        assert!(!d.valid_for(&t, "viewer"), "another user");
        // Any byte changed, a part missing or added: refused.
        let mut bad = t.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
        assert!(!d.valid_for(std::str::from_utf8(&bad).unwrap(), "admin"));
        assert!(!d.valid_for(&t[..t.rfind('.').unwrap()], "admin"));
        assert!(!d.valid_for(&format!("{t}.00"), "admin"));
        assert!(!d.valid_for("", "admin"));
        // The same passwords after a restart: still valid. Another: not.
        let again = Devices::new(&[Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), None]);
        assert!(again.valid_for(&t, "admin"));
        let changed = Devices::new(&[Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$b3RoZXI"), None]);
        assert!(!changed.valid_for(&t, "admin"));
        // Nothing to sign in to: no tokens.
        assert!(Devices::new(&[None, None]).issue("admin").is_none());
    }
}
