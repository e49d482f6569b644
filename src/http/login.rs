//! The login form and its session cookie, for browsers.

use tiny_http::Request;

use super::auth::{Denied, SESSION_COOKIE};
use super::device::{DEVICE_COOKIE, DEVICE_MAX_AGE_SECS};
use super::errors::Kind;
use super::{App, Reply, assets, bytes, header};

const MAX_FORM: usize = 4096;

/// The login page; `?failed=1` / `?locked=1` show why the last try failed.
pub fn page(query: &str) -> Reply {
    let html = String::from_utf8_lossy(assets::LOGIN_HTML).into_owned();
    let message = if query.split('&').any(|kv| kv == "failed=1") {
        "<p class=\"error\" role=\"alert\">Wrong user or password.</p>"
    } else if query.split('&').any(|kv| kv == "locked=1") {
        "<p class=\"error\" role=\"alert\">Too many failed attempts. Wait a little (each wrong try waits longer) and try again.</p>"
    } else {
        ""
    };
    let mut r = bytes(
        200,
        "text/html; charset=utf-8",
        html.replace("<!--message-->", message).into_bytes(),
    );
    r.add_header(header("Cache-Control", "no-store"));
    r
}

fn redirect(to: &str) -> Reply {
    let mut r = bytes(303, "text/plain", b"see other\n".to_vec());
    r.add_header(header("Location", to));
    r.add_header(header("Cache-Control", "no-store"));
    r
}

/// Decodes `application/x-www-form-urlencoded` text.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

pub fn parse_form(body: &str) -> Option<(String, String)> {
    let (mut user, mut pass) = (None, None);
    for kv in body.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "user" => user = Some(form_decode(v)?),
            "password" => pass = Some(form_decode(v)?),
            _ => {}
        }
    }
    Some((user?, pass?))
}

pub fn submit(app: &App, req: &mut Request) -> Reply {
    // Login CSRF: a foreign page must not log the browser into our session.
    if !super::auth::same_origin(req, super::auth::Via::Session) {
        return Kind::Forbidden.reply("cross-site request refused");
    }
    let body = match super::body::read(req, MAX_FORM, app.idle_timeout) {
        Ok(b) => b,
        Err(e) => return e.reply(),
    };
    let Some((user, password)) = std::str::from_utf8(&body).ok().and_then(parse_form) else {
        return Kind::BadInput.reply("expected a form with user and password");
    };
    let ip = app.client(req);
    // Only names we have are logged: a password typed into the user field
    // must not end up in the journal.
    let shown = app.auth.known_user(&user);
    let device = super::request::cookie(req, DEVICE_COOKIE);
    match app.auth.login(ip, &user, &password, device) {
        Ok(token) => {
            log::info!(
                "login by {shown:?} from {}",
                ip.map_or("?".into(), |i| i.to_string())
            );
            let mut r = redirect("/");
            let secure = if app.tls.is_some() { "; Secure" } else { "" };
            r.add_header(header(
                "Set-Cookie",
                &format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200{secure}"),
            ));
            // This browser is known from now on (kept across sign-outs).
            if let Some(d) = app.auth.devices.issue(&user) {
                r.add_header(header(
                    "Set-Cookie",
                    &format!(
                        "{DEVICE_COOKIE}={d}; Path=/login; HttpOnly; SameSite=Strict; \
                         Max-Age={DEVICE_MAX_AGE_SECS}{secure}"
                    ),
                ));
            }
            r
        }
        Err(Denied::Limited(secs)) => {
            let mut r = redirect("/login?locked=1");
            r.add_header(header("Retry-After", &secs.to_string()));
            r
        }
        Err(Denied::Malformed(m)) => Kind::BadInput.reply(m),
        Err(Denied::Busy) => super::replies::sign_ins_busy(),
        Err(_) => {
            log::warn!(
                "failed login for {shown:?} from {}",
                ip.map_or("?".into(), |i| i.to_string())
            );
            redirect("/login?failed=1")
        }
    }
}

pub fn logout(app: &App, req: &Request) -> Reply {
    app.auth.logout(req);
    let mut r = redirect("/login");
    r.add_header(header(
        "Set-Cookie",
        &format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    ));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(
            parse_form("user=admin&password=p%40ss+word%21"),
            Some(("admin".into(), "p@ss word!".into()))
        );
        assert_eq!(parse_form("user=admin"), None);
        assert_eq!(parse_form("user=a&password=%zz"), None);
        assert_eq!(parse_form("user=a&password=%"), None);
        assert_eq!(
            parse_form("user=a&password=%C3%A9"),
            Some(("a".into(), "é".into()))
        );
        assert_eq!(parse_form("user=a&password=%FF"), None);
    }
}
