//! From the upload settings to a running uploader: the credentials the AWS way (the environment, else a credentials file only
//! the service may read), the client. Errors name the key; no secret is
//! ever part of one.

use std::path::Path;
use std::sync::Arc;

use rusty_s3::Credentials;

use super::{S3, UploadSettings, Uploader};
use crate::clips::Clips;

/// `(key, why)`: what is wrong with the upload settings.
pub type SetupError = (&'static str, String);

/// The credentials uploads need (`None` when no bucket is set). Read at
/// start, before the environment's secrets are wiped (`main`).
pub fn credentials_for(settings: &UploadSettings) -> Result<Option<Credentials>, SetupError> {
    if settings.bucket.is_empty() {
        return Ok(None);
    }
    credentials(&settings.credentials_file).map(Some)
}

/// The uploader the settings ask for: `None` when no bucket is set. An
/// empty `device` is the host name.
pub fn start(
    mut settings: UploadSettings,
    clips: &Arc<Clips>,
    creds: Option<Credentials>,
) -> Result<Option<Arc<Uploader>>, SetupError> {
    let Some(creds) = creds.filter(|_| !settings.bucket.is_empty()) else {
        return Ok(None);
    };
    if settings.device.is_empty() {
        settings.device = host_name();
    }
    let class = (!settings.storage_class.is_empty()).then(|| settings.storage_class.clone());
    let s3 = S3::new(
        &settings.endpoint,
        settings.path_style,
        &settings.bucket,
        &settings.region,
        creds,
        class,
    )
    .map_err(|e| ("s3_endpoint_url", e))?;
    Uploader::start(clips.clone(), settings, s3)
        .map(Some)
        .map_err(|e| ("s3_bucket", e))
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "video-recorder".into())
}

fn credentials(file: &Path) -> Result<Credentials, SetupError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(match env("AWS_SESSION_TOKEN") {
            Some(t) => Credentials::new_with_token(key, secret, t),
            None => Credentials::new(key, secret),
        });
    }
    const KEY: &str = "s3_credentials_file";
    if file.as_os_str().is_empty() {
        return Err((
            "s3_bucket",
            "is set but there are no credentials: set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY in the service's environment, or s3_credentials_file"
                .into(),
        ));
    }
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).map_err(|e| (KEY, format!("{}: {e}", file.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err((
            KEY,
            format!(
                "{} can be read by others (mode {mode:o}): chmod 600 it",
                file.display()
            ),
        ));
    }
    let text =
        std::fs::read_to_string(file).map_err(|e| (KEY, format!("{}: {e}", file.display())))?;
    parse_credentials(&text).ok_or((
        KEY,
        format!(
            "{} has no [default] aws_access_key_id and aws_secret_access_key",
            file.display()
        ),
    ))
}

/// The `[default]` profile of an AWS credentials file.
fn parse_credentials(text: &str) -> Option<Credentials> {
    let (mut section, mut key, mut secret, mut token) = (String::new(), None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if section != "default" {
            continue;
        }
        let v = v.trim().to_string();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    let (key, secret) = (key?, secret?);
    Some(match token {
        Some(t) => Credentials::new_with_token(key, secret, t),
        None => Credentials::new(key, secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_is_read() {
        let c = parse_credentials(
            "[other]\naws_access_key_id = X\n[default]\naws_access_key_id = AKIA1\n\
             aws_secret_access_key = s3cr3t\n",
        )
        .unwrap();
        assert_eq!((c.key(), c.secret(), c.token()), ("AKIA1", "s3cr3t", None));
        assert!(parse_credentials("[default]\naws_access_key_id = A\n").is_none());
    }

    #[test]
    fn a_credentials_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id=A\naws_secret_access_key=Zq9secret\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (key, why) = credentials(&f).err().unwrap();
        assert_eq!(key, "s3_credentials_file");
        assert!(
            why.contains("chmod 600") && !why.contains("Zq9secret"),
            "{why}"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(credentials(&f).is_ok() || std::env::var("AWS_ACCESS_KEY_ID").is_ok());
    }
}
