//! `http://` and `https://` URLs of network cameras: just enough parsing to
//! connect, send a request line and follow a same-host redirect, and the
//! redaction every message goes through.

/// A parsed camera URL. `Debug` is not derived: it would print the password.
#[derive(Clone, PartialEq)]
pub struct Url {
    pub tls: bool,
    /// Host name or IP address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Path and query as sent in the request line, at least `/`.
    pub target: String,
    /// Percent-decoded user name and password.
    pub credentials: Option<(String, String)>,
}

impl Url {
    /// Parses `url`; the error does not repeat the URL (the caller names it,
    /// redacted).
    pub fn parse(url: &str) -> Result<Url, String> {
        let url = url.trim();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or("not a URL: expected http://host/path or https://host/path")?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => false,
            "https" => true,
            _ => return Err("only http:// and https:// camera URLs are supported".into()),
        };
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            (percent_decode(user), percent_decode(pass))
        });
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(hostport, default_port)?;
        Ok(Url {
            tls,
            host,
            port,
            target: request_target(target)?,
            credentials,
        })
    }

    /// The `Host` header: brackets around IPv6, the port unless the default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Where a redirect's `Location` leads, if it is the same scheme, host
    /// and port: the credentials are only ever sent to the host the user
    /// named, so anything else is refused.
    pub fn redirect(&self, location: &str) -> Result<Url, String> {
        let location = location.trim();
        let scheme = if self.tls { "https" } else { "http" };
        let next = if location.contains("://") {
            Url::parse(location)
        } else if let Some(rest) = location.strip_prefix("//") {
            Url::parse(&format!("{scheme}://{rest}"))
        } else {
            let target = if location.starts_with('/') {
                location.to_string()
            } else {
                let path = self.target.split('?').next().unwrap_or("/");
                let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{location}")
            };
            Ok(Url {
                target: request_target(&target)?,
                ..self.clone()
            })
        };
        let mut next = next.map_err(|e| format!("redirects to {}: {e}", redact(location)))?;
        if next.tls != self.tls
            || !next.host.eq_ignore_ascii_case(&self.host)
            || next.port != self.port
        {
            return Err(format!(
                "redirects to {}, another scheme, host or port; not followed, so the password \
                 goes nowhere else: give that URL instead",
                redact(location)
            ));
        }
        if next.credentials.is_none() {
            next.credentials = self.credentials.clone();
        }
        Ok(next)
    }
}

/// What a host or port that does not parse gets: never its text, which may
/// be a piece of a password cut short by an unencoded `#`, `/` or `?`.
const UNPARSED: &str = "the host or port does not parse (a password holding #, / or ? \
                        must be written %23, %2F or %3F)";

fn split_host_port(hostport: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed [ in the host")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the host in [ ] is not an IPv6 address".into());
        }
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no host in the URL".into());
    }
    if !hostport.starts_with('[')
        && !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(UNPARSED.into());
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().ok().filter(|&p| p != 0).ok_or(UNPARSED)?,
    };
    Ok((host.to_string(), port))
}

/// Path and query for the request line: `/` if empty, non-ASCII
/// percent-encoded; spaces and control characters are refused (they would
/// end the request line).
fn request_target(target: &str) -> Result<String, String> {
    let mut out = String::with_capacity(target.len() + 1);
    if !target.starts_with('/') {
        out.push('/');
    }
    for c in target.chars() {
        match c {
            c if c.is_ascii_control() || c == ' ' => {
                return Err("the URL holds a space or control character: percent-encode it".into());
            }
            c if c.is_ascii() => out.push(c),
            c => {
                let mut b = [0; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
        }
    }
    Ok(out)
}

/// `%XX` escapes decoded (as UTF-8, lossily); a stray `%` is kept as is.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query parameters whose values are masked: cheap cameras take their
/// credentials there (`videostream.cgi?user=admin&pwd=…`).
pub const SECRET_PARAMS: [&str; 8] = [
    "pass", "pw", "token", "key", "auth", "secret", "sig", "cred",
];

/// The URL with any `user:password@` removed and secret-looking query
/// values replaced by `***`, for logs, `/status` and errors. Works on
/// malformed URLs too, since those end up in error messages as well.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // Everything up to the last `@` anywhere may be a password: one holding
    // an unencoded `/`, `?` or `#` puts its `@` past where the host seems
    // to end. (A path with an `@` then shows shortened; never a secret.)
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}{hostport}{path}");
    if let Some(query) = query {
        let (query, fragment) = match query.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (query, None),
        };
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if SECRET_PARAMS
                        .iter()
                        .any(|s| k.to_ascii_lowercase().contains(s)) =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&masked.join("&"));
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_credentials() {
        let u = Url::parse("http://admin:p%40ss%3Aw%2Frd@cam.local:8080/stream?x=1#frag").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.target.as_str()),
            (false, "cam.local", 8080, "/stream?x=1")
        );
        assert_eq!(
            u.credentials,
            Some(("admin".to_string(), "p@ss:w/rd".to_string()))
        );
        assert_eq!(u.host_header(), "cam.local:8080");
        let u = Url::parse("HTTPS://[fe80::1]/").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "fe80::1", 443));
        assert_eq!(u.host_header(), "[fe80::1]");
        let u = Url::parse("http://10.0.0.9?action=stream").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/?action=stream"));
        assert_eq!(u.credentials, None);
        // An unencoded @ in the password: the last @ ends the user info.
        let u = Url::parse("http://u:a@b@h/").unwrap();
        assert_eq!(u.credentials, Some(("u".into(), "a@b".into())));
        assert_eq!(
            Url::parse("http://h/caf\u{e9}").unwrap().target,
            "/caf%C3%A9"
        );
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "rtsp://cam/stream",
            "cam.local/stream",
            "http:///stream",
            "http://cam:99999/",
            "http://cam:0/",
            "http://[::1/",
            "http://bad host/",
            "http://cam/a b",
            "http://cam/a\r\nX: y",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn follows_only_same_host_redirects() {
        let base = Url::parse("http://u:pw@cam:8080/video/stream?a=1").unwrap();
        let r = base.redirect("/mjpg").unwrap();
        assert_eq!((r.target.as_str(), r.port), ("/mjpg", 8080));
        assert_eq!(r.credentials, base.credentials);
        assert_eq!(
            base.redirect("live.mjpg").unwrap().target,
            "/video/live.mjpg"
        );
        assert_eq!(base.redirect("http://CAM:8080/x").unwrap().target, "/x");
        assert_eq!(base.redirect("//cam:8080/y").unwrap().target, "/y");
        for away in [
            "http://evil/x",
            "http://cam/x",
            "https://cam:8080/x",
            "//other:8080/",
        ] {
            let e = base.redirect(away).err().unwrap();
            assert!(e.contains("another scheme, host or port"), "{away}: {e}");
        }
        let e = base.redirect("http://u:leak@evil/").err().unwrap();
        assert!(!e.contains("leak"), "{e}");
    }

    #[test]
    fn redacts_credentials_anywhere() {
        assert_eq!(redact("http://user:pw@cam:81/s?x=1"), "http://cam:81/s?x=1");
        assert_eq!(redact("https://user@cam"), "https://cam");
        // An `@` in a path shows shortened: it could end a password.
        assert_eq!(redact("http://cam/a@b"), "http://b");
        // Passwords holding unencoded `#`, `/` or `?` never show, and the
        // parse error does not quote them either.
        for url in [
            "http://admin:Zq9#Kx7@cam/stream",
            "http://admin:Zq9/Kx7@cam/stream",
            "http://admin:Zq9?Kx7@cam/stream",
        ] {
            let shown = redact(url);
            assert_eq!(shown, "http://cam/stream", "{url}");
            if let Err(e) = Url::parse(url) {
                assert!(!e.contains("Zq9") && !e.contains("Kx7"), "{e}");
            }
        }
        assert_eq!(redact("http://cam/s?pw=x"), "http://cam/s?pw=***");
        assert_eq!(redact("u:pw@cam/x"), "cam/x");
        assert_eq!(redact("http://u:p@ss@cam/"), "http://cam/");
        assert_eq!(
            redact("http://cam/videostream.cgi?user=admin&pwd=hunter2&Password=x&res=1#f"),
            "http://cam/videostream.cgi?user=admin&pwd=***&Password=***&res=1#f"
        );
        assert_eq!(
            redact("http://cam/?api_key=k&token=t"),
            "http://cam/?api_key=***&token=***"
        );
    }
}
