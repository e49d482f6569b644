//! An `rtsp://` URL split into what is sent (no credentials: retina takes
//! them apart) and the credentials, which only ever go to the camera.

use percent_encoding::percent_decode_str;

#[derive(Clone, PartialEq, Eq)]
pub struct RtspUrl {
    /// Without credentials: safe to show.
    clean: ::url::Url,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for RtspUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RtspUrl({:?})", self.shown())
    }
}

impl RtspUrl {
    /// Parses `rtsp://[user[:password]@]host[:port]/path`. The credentials
    /// end at the last `@`, so a password holding `/`, `?`, `#` or `@` works
    /// unencoded; errors never quote them.
    pub fn parse(s: &str) -> Result<RtspUrl, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err("not a URL".into());
        };
        match scheme.to_ascii_lowercase().as_str() {
            "rtsp" => {}
            "rtsps" => {
                return Err(
                    "rtsps:// (RTSP over TLS) is not supported yet; use rtsp:// on a trusted LAN"
                        .into(),
                );
            }
            _ => return Err("an RTSP camera's URL starts with rtsp://".into()),
        }
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let clean = ::url::Url::parse(&format!("rtsp://{hostpart}"))
            .map_err(|e| format!("not a valid RTSP URL: {e}"))?;
        if clean.host_str().is_none_or(str::is_empty) {
            return Err("an RTSP URL needs a host".into());
        }
        let decode = |v: &str| percent_decode_str(v).decode_utf8_lossy().into_owned();
        let (user, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
            Some((u, p)) => (Some(decode(u)), Some(decode(p))),
            None => (None, None),
        };
        Ok(RtspUrl {
            clean,
            user,
            password,
        })
    }

    /// What retina connects to.
    pub fn clean(&self) -> &::url::Url {
        &self.clean
    }

    /// The URL as logs, `/status` and the page show it: secret-looking
    /// query parameters (`password=`, `token=`…, as some cameras want) masked.
    pub fn shown(&self) -> String {
        crate::source::http_mjpeg::redact(self.clean.as_str())
    }

    pub fn credentials(&self) -> Option<retina::client::Credentials> {
        self.user.as_ref().map(|u| retina::client::Credentials {
            username: u.clone(),
            password: self.password.clone().unwrap_or_default(),
        })
    }

    /// `text` with the password (and user:password) taken out: error
    /// messages from the client are scrubbed before anyone sees them.
    pub fn scrub(&self, text: &str) -> String {
        match self.password.as_deref() {
            Some(p) if !p.is_empty() => text.replace(p, "***"),
            _ => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_never_shown() {
        let u = RtspUrl::parse("rtsp://admin:p%40ss@cam.local:554/Streaming/101").unwrap();
        assert_eq!(u.shown(), "rtsp://cam.local:554/Streaming/101");
        assert_eq!(u.user.as_deref(), Some("admin"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        for raw in [
            "rtsp://admin:Zq9#Kx7@cam/s",
            "rtsp://admin:Zq9/Kx7@cam/s",
            "rtsp://admin:Zq9@Kx7@cam/s",
        ] {
            let u = RtspUrl::parse(raw).unwrap();
            assert_eq!(u.shown(), "rtsp://cam/s", "{raw}");
            assert!(u.password.as_deref().unwrap().starts_with("Zq9"));
            assert!(!format!("{u:?}").contains("Kx7"));
            assert_eq!(
                u.scrub("bad Zq9x"),
                "bad Zq9x".replace(u.password.as_deref().unwrap(), "***")
            );
        }
        let u = RtspUrl::parse("rtsp://10.0.0.5/live").unwrap();
        assert!(u.credentials().is_none());
        let q = RtspUrl::parse("rtsp://cam/live?user=admin&password=Kx7q&channel=1").unwrap();
        assert!(
            !q.shown().contains("Kx7q") && q.shown().contains("channel=1"),
            "{}",
            q.shown()
        );
        assert_eq!(
            RtspUrl::parse("rtsp://u:secret@h/x").unwrap().shown(),
            "rtsp://h/x"
        );
    }

    #[test]
    fn other_schemes_and_broken_urls_are_refused() {
        let check = |s| RtspUrl::parse(s).map(|_| ());
        assert!(check("rtsps://cam/x").unwrap_err().contains("TLS"));
        assert!(check("rtsp://").is_err());
        assert!(check("rtsp://u:Kx7@/x").is_err_and(|e| !e.contains("Kx7")));
    }
}
