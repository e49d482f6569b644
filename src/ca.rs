//! The CAs trusted for outgoing TLS (`https://` cameras and the S3
//! endpoint): the file `SSL_CERT_FILE` names when it is set (as OpenSSL
//! and curl read it: that file alone, e.g. a private CA for a MinIO on the
//! LAN), else the system's bundle, else the files beside it.

use std::path::Path;

use crate::error::{Error, Kind, Result};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Debian's bundle, and the directory of the system's CAs.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const CA_DIR: &str = "/etc/ssl/certs";

/// The trusted CAs, or why there are none (in words).
pub fn trusted() -> Result<Vec<CertificateDer<'static>>> {
    trusted_from(std::env::var_os("SSL_CERT_FILE"))
}

/// `trusted` with `SSL_CERT_FILE`'s value given.
fn trusted_from(ssl_cert_file: Option<std::ffi::OsString>) -> Result<Vec<CertificateDer<'static>>> {
    if let Some(file) = ssl_cert_file.filter(|f| !f.is_empty()) {
        let certs = pem_file(Path::new(&file));
        if certs.is_empty() {
            return Err(Error::new(
                Kind::NotFound,
                format!(
                    "no CA certificates in {} (SSL_CERT_FILE)",
                    Path::new(&file).display()
                ),
            ));
        }
        return Ok(certs);
    }
    let mut certs = pem_file(Path::new(CA_BUNDLE));
    if certs.is_empty()
        && let Ok(dir) = std::fs::read_dir(CA_DIR)
    {
        for entry in dir.flatten() {
            certs.extend(pem_file(&entry.path()));
        }
    }
    if certs.is_empty() {
        return Err(Error::new(
            Kind::NotFound,
            format!(
                "no trusted CA certificates in {CA_BUNDLE} or {CA_DIR} (is ca-certificates \
                 installed?)"
            ),
        ));
    }
    Ok(certs)
}

/// The PEM certificates in `path`, skipping what does not parse.
fn pem_file(path: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_cert_file_alone_is_trusted_when_set() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["nas.local".to_string()]).unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, made.cert.pem()).unwrap();
        let got = trusted_from(Some(file.clone().into_os_string())).unwrap();
        assert_eq!(got, vec![made.cert.der().clone()]);
        std::fs::write(&file, "not a certificate").unwrap();
        let e = trusted_from(Some(file.into_os_string())).unwrap_err();
        assert!(e.to_string().contains("SSL_CERT_FILE"), "{e}");
        // Unset or empty: the system's (or why there are none).
        for unset in [None, Some("".into())] {
            match trusted_from(unset) {
                Ok(cas) => assert!(!cas.is_empty()),
                Err(e) => assert!(e.to_string().contains("ca-certificates"), "{e}"),
            }
        }
    }
}
