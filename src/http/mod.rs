//! HTTP over `tiny_http`: the route table, access rules and dispatch. The
//! accept loop is in `server`, replies in `replies`, request checks in
//! `checks`.

mod assets;
pub mod auth;
mod body;
mod checks;
pub mod client;
mod credentials;
mod files;
mod lockout;
mod login;
mod replies;
mod routes;
mod server;
pub mod tls;
mod verifier;

pub use checks::MAX_BODY;
use checks::{download_flag, host_allowed, malformed, origin_form, range_of};
pub use replies::{Reply, error, header, json, security_headers};
use replies::{bytes, respond};
pub use server::serve;
use server::spawn_with;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiny_http::{Method, Request};

use crate::clips::Clips;
use crate::hub::Hub;
use crate::live::Viewers;
use crate::recorder::Recorder;

/// Everything a request handler may touch.
pub struct App {
    pub hub: Arc<Hub>,
    pub recorder: Arc<Recorder>,
    pub clips: Arc<Clips>,
    pub viewers: Arc<Viewers>,
    pub started: Instant,
    pub auth: auth::Auth,
    /// Served over HTTPS: cookies get `Secure`.
    pub tls: Option<tls::Tls>,
    /// Receive timeout of every connection (idle keep-alive, slow clients).
    pub idle_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub proxies: client::Proxies,
    /// Host names answered without credentials, besides localhost and IPs.
    pub allowed_hosts: Vec<String>,
}

impl App {
    /// The client's address, through trusted proxies.
    pub fn client(&self, req: &Request) -> Option<std::net::IpAddr> {
        self.proxies.client(
            req.remote_addr().map(|a| a.ip()),
            auth::header(req, "X-Forwarded-For"),
        )
    }
}

/// Longest URL we read; longer ones get 414.
const MAX_URL: usize = 2048;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Viewer,
    Admin,
}

/// Every route: `(method, path, access)`; a `*` path ends in a wildcard.
/// `/openapi.json` documents exactly these (a unit test keeps them in step).
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/", "viewer"),
    ("GET", "/app.js", "viewer"),
    ("GET", "/app.css", "public"),
    ("GET", "/login.css", "public"),
    ("GET", "/favicon.svg", "public"),
    ("GET", "/login", "public"),
    ("POST", "/login", "public"),
    ("POST", "/logout", "viewer"),
    ("GET", "/video", "viewer"),
    ("GET", "/snapshot.jpg", "viewer"),
    ("GET", "/status", "viewer"),
    ("POST", "/start", "admin"),
    ("POST", "/stop", "admin"),
    ("GET", "/last", "viewer"),
    ("GET", "/clips/*", "viewer"),
    ("GET", "/openapi.json", "viewer"),
    ("GET", "/healthz", "public"),
];

fn lookup(method: &str, path: &str) -> Result<Access, Vec<&'static str>> {
    let matches = |p: &str| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix) && path.len() > prefix.len(),
        None => p == path,
    };
    let method = if method == "HEAD" { "GET" } else { method };
    let mut allowed = Vec::new();
    for (m, p, access) in ROUTES {
        if matches(p) {
            if *m == method {
                return Ok(match *access {
                    "public" => Access::Public,
                    "admin" => Access::Admin,
                    _ => Access::Viewer,
                });
            }
            allowed.push(*m);
        }
    }
    Err(allowed)
}

fn denied(req: &Request, why: auth::Denied, page: bool) -> Reply {
    use auth::Denied;
    match why {
        Denied::Malformed(m) => error(400, m),
        Denied::Busy => replies::sign_ins_busy(),
        Denied::Limited(secs) => {
            let mut r = error(429, "too many failed logins; try again later");
            r.add_header(header("Retry-After", &secs.to_string()));
            r
        }
        Denied::Missing | Denied::Wrong if page && auth::header(req, "Authorization").is_none() => {
            let mut r = bytes(303, "text/plain", b"login required\n".to_vec());
            r.add_header(header("Location", "/login"));
            r
        }
        Denied::Missing | Denied::Wrong => {
            let msg = if why == Denied::Missing {
                "credentials required"
            } else {
                "wrong credentials"
            };
            let mut r = error(401, msg);
            // No Basic dialog for the page's own scripts: they go to /login instead.
            if !auth::from_script(req) {
                r.add_header(header(
                    "WWW-Authenticate",
                    "Basic realm=\"video-recorder\", charset=\"UTF-8\"",
                ));
            }
            r
        }
    }
}

/// What a request asked for, once its route is known.
struct Target {
    method: Method,
    path: String,
    query: String,
    access: Access,
}

fn handle(app: &Arc<App>, req: Request) {
    let url = req.url().to_string();
    if url.len() > MAX_URL {
        return respond(req, error(414, "URL too long"));
    }
    if let Some(reply) = malformed(&req) {
        return respond(req, reply);
    }
    let url = origin_form(&url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let method = req.method().clone();
    let access = match lookup(method.as_str(), path) {
        Ok(a) => a,
        Err(allowed) if allowed.is_empty() => return respond(req, error(404, "no such route")),
        Err(allowed) => {
            let mut r = error(405, &format!("use {}", allowed.join(" or ")));
            let mut allow = allowed.join(", ");
            if allowed.contains(&"GET") {
                allow.push_str(", HEAD");
            }
            r.add_header(header("Allow", &allow));
            return respond(req, r);
        }
    };
    if !app.auth.required() && !host_allowed(&req, &app.allowed_hosts) {
        // Debug only: anyone can send these, and the log is on an SD card.
        log::debug!("refused a request for an unknown host name (DNS rebinding?)");
        return respond(
            req,
            error(
                421,
                "unknown host name: without credentials this server answers only to \
                 localhost, IP addresses and the names in allowed_hosts",
            ),
        );
    }
    let target = Target {
        method,
        path: path.to_string(),
        query: query.to_string(),
        access,
    };
    if access == Access::Public {
        return route(app, req, target, None);
    }
    let ip = app.client(&req);
    match app.auth.begin(&req, ip) {
        auth::Check::Done(who) => authorized(app, req, target, who),
        // Argon2 takes tens of milliseconds: wait for it on another thread,
        // never on this one, which dispatches every request.
        auth::Check::Verify(attempt) => {
            let app = app.clone();
            spawn_with("auth", req, move |req| {
                let who = app.auth.finish(attempt);
                authorized(&app, req, target, who)
            })
        }
    }
}

fn authorized(app: &Arc<App>, req: Request, t: Target, who: Result<auth::Principal, auth::Denied>) {
    let who = match who {
        Ok(p) => p,
        Err(why) => {
            let r = denied(&req, why, t.path == "/" && t.method == Method::Get);
            return respond(req, r);
        }
    };
    if t.access == Access::Admin && who.role != auth::Role::Admin {
        return respond(req, error(403, "this user may watch but not record"));
    }
    if !matches!(t.method, Method::Get | Method::Head) && !auth::same_origin(&req, who.via) {
        log::warn!("refused cross-site {} {}", t.method.as_str(), t.path);
        return respond(req, error(403, "cross-site request refused"));
    }
    route(app, req, t, Some(who))
}

fn route(app: &Arc<App>, req: Request, t: Target, caller: Option<auth::Principal>) {
    let download = match download_flag(&t.query) {
        Ok(d) => d,
        Err(e) => return respond(req, error(400, e)),
    };
    match (t.method.as_str(), t.path.as_str()) {
        (_, "/video") => live_viewer(app, req),
        (_, "/snapshot.jpg") => respond(req, snapshot(app)),
        (_, "/status") => respond(req, json(200, &routes::status(app, caller))),
        (_, "/healthz") => respond(req, bytes(200, "text/plain", b"ok\n".to_vec())),
        (_, "/openapi.json") => respond(
            req,
            bytes(200, "application/json", assets::OPENAPI.to_vec()),
        ),
        ("GET" | "HEAD", "/login") => respond(req, login::page(&t.query)),
        ("POST", "/login") => {
            let app = app.clone();
            spawn_with("login", req, move |mut req| {
                let reply = login::submit(&app, &mut req);
                respond(req, reply)
            })
        }
        ("POST", "/logout") => {
            let reply = login::logout(app, &req);
            respond(req, reply)
        }
        ("POST", "/start") => {
            let app = app.clone();
            spawn_with("start", req, move |mut req| {
                let reply = routes::start(&app, &mut req);
                respond(req, reply)
            })
        }
        ("POST", "/stop") => {
            let app = app.clone();
            spawn_with("stop", req, move |req| respond(req, routes::stop(&app)))
        }
        (_, "/last") => {
            let app = app.clone();
            spawn_with("last", req, move |req| {
                let reply = routes::last(&app, range_of(&req).as_deref(), download);
                respond(req, reply)
            })
        }
        (_, p) if p.starts_with("/clips/") => {
            let app = app.clone();
            let id = p["/clips/".len()..].to_string();
            spawn_with("clip", req, move |req| {
                let reply = routes::clip(&app, &id, range_of(&req).as_deref(), download);
                respond(req, reply)
            })
        }
        (_, p) => match assets::find(p) {
            Some((ct, body)) => {
                let mut r = bytes(200, ct, body.to_vec());
                r.add_header(header("Cache-Control", "no-cache"));
                respond(req, r)
            }
            None => respond(req, error(404, "no such route")),
        },
    }
}

fn snapshot(app: &App) -> Reply {
    match app.hub.latest() {
        Some(frame) => {
            let mut r = bytes(200, "image/jpeg", frame.jpeg.clone());
            r.add_header(header("Cache-Control", "no-store"));
            r.add_header(header(
                "X-Timestamp",
                &format!("{:.6}", crate::clock::unix_secs(frame.wall)),
            ));
            r
        }
        None => error(503, "no frame yet"),
    }
}

fn live_viewer(app: &Arc<App>, req: Request) {
    let ip = app.client(&req);
    let seat = match app.viewers.try_seat(ip) {
        Ok(seat) => seat,
        Err(why) => {
            log::warn!("viewer refused: {why}");
            return respond(req, error(503, why));
        }
    };
    if *req.method() == Method::Head {
        // The stream's status and headers, no body, no seat kept.
        drop(seat);
        let mut out = req.into_writer();
        let _ = out
            .write_all(crate::live::response_head(&security_headers()).as_bytes())
            .and_then(|()| out.flush());
        return;
    }
    let hub = app.hub.clone();
    spawn_with("viewer", req, move |req| {
        let _seat = seat;
        let mut out = req.into_writer();
        match crate::live::stream(&hub, &mut out, &security_headers()) {
            Ok(n) => log::debug!("viewer done after {n} frames"),
            Err(e) => log::debug!("viewer gone: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/openapi.json` documents exactly the routes we serve, with the same
    /// access rule (`security: []` for public ones).
    #[test]
    fn openapi_matches_the_route_table() {
        let doc: serde_json::Value = serde_json::from_slice(assets::OPENAPI).unwrap();
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let public = op["security"].as_array().is_some_and(|a| a.is_empty());
                let path = path.replace("{name}", "*");
                documented.push((method.to_uppercase(), path, public));
            }
        }
        documented.sort();
        let mut served: Vec<(String, String, bool)> = ROUTES
            .iter()
            .map(|(m, p, a)| (m.to_string(), p.to_string(), *a == "public"))
            .collect();
        served.sort();
        assert_eq!(documented, served);
    }

    #[test]
    fn route_lookup() {
        assert_eq!(lookup("GET", "/status"), Ok(Access::Viewer));
        assert_eq!(lookup("HEAD", "/video"), Ok(Access::Viewer));
        assert_eq!(lookup("POST", "/start"), Ok(Access::Admin));
        assert_eq!(lookup("GET", "/healthz"), Ok(Access::Public));
        assert_eq!(lookup("GET", "/clips/x.mp4"), Ok(Access::Viewer));
        assert_eq!(lookup("GET", "/clips/"), Err(vec![]));
        assert_eq!(lookup("GET", "/start"), Err(vec!["POST"]));
        assert_eq!(lookup("DELETE", "/status"), Err(vec!["GET"]));
        assert_eq!(lookup("GET", "/nope"), Err(vec![]));
    }
}
