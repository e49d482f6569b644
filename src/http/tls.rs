//! Optional HTTPS: a given certificate and key, or a self-signed pair made on
//! first start, whose SHA-256 fingerprint is logged so clients can pin it.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::Digest;
use tiny_http::SslConfig;

/// What HTTPS needs of the settings (`main` fills it in).
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// The listening address, named in a self-signed certificate.
    pub host: String,
    /// A self-signed pair is kept beside it (and an old one moved out of it).
    pub clips_dir: PathBuf,
    /// A given pair; empty: none.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Make a pair on first start when none is given.
    pub self_signed: bool,
}

pub struct Tls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// `AB:CD:…` SHA-256 of the certificate (DER).
    pub fingerprint: String,
}

impl Tls {
    pub fn ssl_config(&self) -> SslConfig {
        SslConfig {
            certificate: self.cert_pem.clone(),
            private_key: self.key_pem.clone(),
        }
    }
}

/// Where a self-signed pair lives: the service's state directory (systemd's
/// `StateDirectory=` sets `STATE_DIRECTORY`), else beside the clips
/// directory, never inside it: whoever copies the clips must not get the key.
fn self_signed_dir(cfg: &TlsSettings, state_directory: Option<&str>) -> PathBuf {
    match state_directory
        .and_then(|s| s.split(':').next())
        .filter(|s| !s.is_empty())
    {
        Some(state) => Path::new(state).join("tls"),
        None => {
            let parent = cfg
                .clips_dir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            parent.join(".video-recorder-tls")
        }
    }
}

/// Where the certificate and key live: as configured, or `self_signed_dir`.
fn paths(cfg: &TlsSettings, state_directory: Option<&str>) -> (PathBuf, PathBuf) {
    if cfg.cert.as_os_str().is_empty() {
        let dir = self_signed_dir(cfg, state_directory);
        (dir.join("cert.pem"), dir.join("key.pem"))
    } else {
        (cfg.cert.clone(), cfg.key.clone())
    }
}

/// Earlier versions kept the pair in `clips_dir/.tls/`: move it out, so
/// the fingerprint clients pinned stays and the key leaves the clips.
fn move_old_pair(cfg: &TlsSettings, cert: &Path, key: &Path) -> Result<(), String> {
    let old = cfg.clips_dir.join(".tls");
    let (old_cert, old_key) = (old.join("cert.pem"), old.join("key.pem"));
    if !old_key.exists() || cert.exists() || key.exists() {
        return Ok(());
    }
    if let Some(dir) = key.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    for (from, to, mode) in [(&old_key, key, 0o600), (&old_cert, cert, 0o644)] {
        let data =
            std::fs::read(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        write_new(to, &data, mode)?;
        let _ = std::fs::remove_file(from);
    }
    let _ = std::fs::remove_dir(&old);
    log::warn!(
        "moved the self-signed certificate and key out of the clips directory, to {}",
        key.parent().unwrap_or(Path::new(".")).display()
    );
    Ok(())
}

/// Loads (or makes) the certificate; `None` when HTTPS is off.
pub fn load(cfg: &TlsSettings) -> Result<Option<Tls>, String> {
    if cfg.cert.as_os_str().is_empty() && !cfg.self_signed {
        return Ok(None);
    }
    let state = std::env::var("STATE_DIRECTORY").ok();
    let (cert_path, key_path) = paths(cfg, state.as_deref());
    if cfg.cert.as_os_str().is_empty() {
        move_old_pair(cfg, &cert_path, &key_path)?;
    }
    if cfg.self_signed && !cert_path.exists() && !key_path.exists() {
        generate(cfg, &cert_path, &key_path)?;
    }
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map_err(|e| format!("TLS {what} {}: {e}", p.display()))
    };
    let cert_pem = read(&cert_path, "certificate")?;
    let key_pem = read(&key_path, "key")?;
    let der = first_pem_block(&cert_pem, "CERTIFICATE").ok_or_else(|| {
        format!(
            "TLS certificate {}: no PEM CERTIFICATE block",
            cert_path.display()
        )
    })?;
    // Say which kinds work before rustls says only that none was found.
    let key_text = String::from_utf8_lossy(&key_pem);
    if !["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]
        .iter()
        .any(|k| key_text.contains(&format!("-----BEGIN {k}-----")))
    {
        return Err(format!(
            "TLS key {}: expected an unencrypted PKCS#8 (BEGIN PRIVATE KEY), RSA or EC key; \
             convert with `openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem`",
            key_path.display()
        ));
    }
    // rustls accepts a key that is not the certificate's and fails every
    // handshake later; the certificate holds the key's public half verbatim.
    if let Ok(pair) = rcgen::KeyPair::from_pem(&key_text) {
        let public = pair.public_key_raw();
        if !der.windows(public.len()).any(|w| w == public) {
            return Err(format!(
                "TLS certificate {} and key {} do not work together: the key is not the \
                 certificate's",
                cert_path.display(),
                key_path.display()
            ));
        }
    }
    let tls = Tls {
        fingerprint: fingerprint(&der),
        cert_pem,
        key_pem,
    };
    // Build a server once on a throwaway socket: a bad pair fails here, clearly.
    let probe = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("TLS check: cannot bind a loopback socket: {e}"))?;
    tiny_http::Server::from_listener(probe, Some(tls.ssl_config())).map_err(|e| {
        format!(
            "TLS certificate {} and key {} do not work together: {e}",
            cert_path.display(),
            key_path.display()
        )
    })?;
    Ok(Some(tls))
}

fn generate(cfg: &TlsSettings, cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = hostname() {
        names.push(format!("{host}.local"));
        names.push(host);
    }
    let bind = cfg.host.trim_matches(|c| c == '[' || c == ']');
    if !matches!(bind, "0.0.0.0" | "::" | "localhost" | "127.0.0.1" | "::1") {
        names.push(bind.to_string());
    }
    let made = rcgen::generate_simple_self_signed(names.clone())
        .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
    for p in [cert_path, key_path] {
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
    }
    write_new(key_path, made.signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(cert_path, made.cert.pem().as_bytes(), 0o644)?;
    log::info!(
        "made a self-signed certificate for {} at {}",
        names.join(", "),
        cert_path.display()
    );
    Ok(())
}

/// Creates a file that must not exist yet, with `mode`, durably.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/etc/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
    .then(|| h.to_string())
}

fn first_pem_block(pem: &[u8], label: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the default settings give it: loopback, `clips`, no HTTPS.
    fn defaults() -> TlsSettings {
        TlsSettings {
            host: "127.0.0.1".into(),
            clips_dir: "clips".into(),
            ..TlsSettings::default()
        }
    }

    #[test]
    fn self_signed_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsSettings {
            clips_dir: dir.path().join("clips"),
            self_signed: true,
            ..defaults()
        };
        let a = load(&cfg).unwrap().unwrap();
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        assert!(
            !dir.path().join("clips/.tls").exists(),
            "the key is in the clips"
        );
        let key = dir.path().join(".video-recorder-tls/key.pem");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = load(&cfg).unwrap().unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "second start reuses the pair");
    }

    #[test]
    fn the_pair_lives_in_the_state_directory_and_an_old_one_is_moved_there() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsSettings {
            clips_dir: dir.path().join("clips"),
            self_signed: true,
            ..defaults()
        };
        let state = dir.path().join("state");
        assert_eq!(
            paths(&cfg, Some(state.to_str().unwrap())).1,
            state.join("tls/key.pem")
        );
        assert_eq!(
            self_signed_dir(&defaults(), None),
            Path::new(".").join(".video-recorder-tls")
        );
        // A pair from an earlier version, inside the clips directory.
        let old = dir.path().join("clips/.tls");
        std::fs::create_dir_all(&old).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(old.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(old.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        let (cert, key) = paths(&cfg, None);
        move_old_pair(&cfg, &cert, &key).unwrap();
        assert!(!old.exists());
        assert_eq!(std::fs::read_to_string(&cert).unwrap(), made.cert.pem());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not a cert").unwrap();
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let cfg = TlsSettings {
            cert: cert.clone(),
            key: key.clone(),
            ..defaults()
        };
        let e = load(&cfg).err().unwrap();
        assert!(e.contains("c.pem"), "{e}");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&cert, made.cert.pem()).unwrap();
        let e = load(&cfg).err().unwrap();
        assert!(e.contains("k.pem") && e.contains("PKCS#8"), "{e}");
        let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
        let e = load(&cfg).err().unwrap();
        assert!(e.contains("do not work together"), "{e}");
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        assert!(load(&cfg).unwrap().is_some());
    }
}
