//! HTTP over `tiny_http`: routing, JSON errors, and an accept loop that
//! survives errors (tiny_http's own loop ends on the first accept error, for
//! example when descriptors run out, which would silently stop the server).

mod assets;
pub mod auth;
mod body;
pub mod client;
mod files;
mod lockout;
mod login;
mod routes;
pub mod tls;
mod verifier;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

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

pub type Reply = Response<Box<dyn Read + Send>>;

/// A viewer that stops reading is dropped after this long, freeing its thread.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest URL we read; longer ones get 414.
const MAX_URL: usize = 2048;
/// Stack for viewer and worker threads: they hold no big buffers.
const WORKER_STACK: usize = 128 * 1024;
/// Servers kept after their accept loop died, for their open connections.
const MAX_RETIRED: usize = 2;

pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .unwrap_or_else(|_| Header::from_bytes(&b"X-Invalid-Header"[..], &b"1"[..]).unwrap())
}

pub fn json(status: u16, value: &serde_json::Value) -> Reply {
    let body = value.to_string().into_bytes();
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![
            header("Content-Type", "application/json"),
            header("Cache-Control", "no-store"),
        ],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
}

/// Every API error: `{"error": "..."}` with a fitting status.
pub fn error(status: u16, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    let len = body.len();
    Response::new(
        StatusCode(status),
        vec![header("Content-Type", content_type)],
        Box::new(std::io::Cursor::new(body)) as Box<dyn Read + Send>,
        Some(len),
        None,
    )
}

/// No inline script or style, no framing, nothing from elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   media-src 'self' blob:; connect-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Sends a reply with the headers every response carries.
fn respond(req: Request, mut reply: Reply) {
    for (k, v) in security_headers() {
        reply.add_header(header(k, v));
    }
    if let Err(e) = req.respond(reply) {
        log::debug!("client went away before the answer: {e}");
    }
}

pub fn security_headers() -> [(&'static str, &'static str); 5] {
    [
        ("Server", "video-recorder"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CSP),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
}

/// Sets SO_SNDTIMEO on the listening socket; accepted sockets inherit it, so a
/// viewer that stops reading cannot hold its thread forever. (A receive timeout
/// here would make accept() fail and end tiny_http's loop: the vendored
/// tiny_http sets `idle_timeout` on each accepted connection instead.)
fn set_send_timeout(listener: &TcpListener, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt on a socket we own with a correctly sized timeval.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::warn!(
            "cannot set send timeout on the listening socket: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Serves until the hub closes. When tiny_http's accept loop dies (it reports
/// the error through `recv`), a new server is built on the same socket.
pub fn serve(app: Arc<App>, listener: TcpListener) {
    set_send_timeout(&listener, SEND_TIMEOUT);
    let (total, per_client) = connection_caps(open_file_limit(), app.viewers.max_per_client());
    log::info!("connections capped at {total} in all and {per_client} per client address");
    let options = tiny_http::ServerOptions {
        read_timeout: Some(app.idle_timeout),
        max_connections: Some(total),
        max_connections_per_client: Some(per_client),
    };
    let mut backoff = Duration::from_millis(50);
    // Old servers stay alive a while: their open keep-alive connections may
    // still deliver requests.
    let mut retired: Vec<(Server, Instant)> = Vec::new();
    while !app.hub.is_closed() {
        let server = match listener
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|l| {
                let ssl = app.tls.as_ref().map(tls::Tls::ssl_config);
                Server::from_listener_with_options(l, ssl, options).map_err(|e| e.to_string())
            }) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot start the HTTP server: {e}; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            match server.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(req)) => {
                    backoff = Duration::from_millis(50);
                    handle(&app, req);
                }
                Ok(None) => {}
                Err(e) => {
                    log::error!("HTTP accept failed ({e}); restarting the accept loop");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    break;
                }
            }
            for (old, _) in &retired {
                while let Ok(Some(req)) = old.try_recv() {
                    handle(&app, req);
                }
            }
            retired.retain(|(_, since)| since.elapsed() < Duration::from_secs(120));
            if app.hub.is_closed() {
                return;
            }
        }
        // Each retired server holds a duplicate of the listening socket: keep
        // few, or repeated restarts would themselves use up the descriptors.
        if retired.len() >= MAX_RETIRED {
            retired.remove(0);
        }
        retired.push((server, Instant::now()));
    }
}

/// Descriptors kept for everything but connections: the camera, each
/// recording's clip, journal and directory, the clips directory's scans,
/// TLS files, logging, retired listeners.
const RESERVED_FDS: u64 = 256;

/// The process's descriptor limit (`RLIMIT_NOFILE`, soft).
fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    // rlim_t is 32 bits on 32-bit ARM.
    #[allow(clippy::unnecessary_cast)]
    let cur = lim.rlim_cur as u64;
    cur
}

/// Caps on open connections from the descriptor limit: each connection
/// takes two descriptors, and `RESERVED_FDS` stay free for recording, so a
/// crowd of idle connections can neither stop the server nor a recording.
/// One client may hold enough for its viewers and a browser's requests.
fn connection_caps(nofile: u64, viewers_per_client: usize) -> (usize, usize) {
    let total = (nofile.saturating_sub(RESERVED_FDS) / 2).max(16) as usize;
    let per_client = (2 * viewers_per_client + 32).max(64).min(total);
    (total, per_client)
}

/// Runs `f` on its own thread; answers 503 if no thread can be had.
fn spawn_with(name: &str, req: Request, f: impl FnOnce(Request) + Send + 'static) {
    let (tx, rx) = mpsc::sync_channel::<Request>(1);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            if let Ok(req) = rx.recv() {
                f(req);
            }
        });
    match spawned {
        Ok(_) => {
            // The thread is waiting on the channel; it cannot be full.
            let _ = tx.send(req);
        }
        Err(e) => {
            log::warn!("cannot start a thread for {}: {e}", req.url());
            respond(req, error(503, "server busy, try again"));
        }
    }
}

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
        Denied::Busy => {
            let mut r = error(503, "too many sign-ins being checked; try again");
            r.add_header(header("Retry-After", "1"));
            r
        }
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
        log::warn!("refused a request for an unknown host name (DNS rebinding?)");
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

/// `GET http://host/status` (absolute form, RFC 9112 3.2.2) means `/status`.
fn origin_form(url: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = url
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
        {
            let rest = &url[rest.len()..];
            return rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    url
}

/// Without credentials a page on another site could rebind its name to our
/// address and use us: answer only to names that cannot be rebound
/// (localhost, IP literals) and to names the owner listed.
fn host_allowed(req: &Request, allowed: &[String]) -> bool {
    let Some(host) = auth::header(req, "Host") else {
        // Browsers always send Host; a client without one is not a page.
        return true;
    };
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(v6) = host.strip_prefix('[') {
        match v6.split_once(']') {
            Some((addr, rest)) if rest.is_empty() || rest.starts_with(':') => {
                return addr.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n)
    };
    name == "localhost"
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || allowed.iter().any(|a| *a == name || *a == host)
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

/// `download=1` asks for an attachment; `download=0` or none for inline.
fn download_flag(query: &str) -> Result<bool, &'static str> {
    let mut flag = false;
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("download", "1")) => flag = true,
            Some(("download", "0")) => flag = false,
            Some(("download", _)) => return Err("download must be 1 or 0"),
            _ => {}
        }
    }
    Ok(flag)
}

/// Longest total of header names and values we serve.
const MAX_HEADERS: usize = 16 * 1024;
/// Largest body any route reads (forms, `/start` JSON).
pub const MAX_BODY: usize = 4096;

/// What tiny_http lets through but we refuse: oversized headers, an
/// unparseable Content-Length, a body larger than any route reads.
fn malformed(req: &Request) -> Option<Reply> {
    let total: usize = req
        .headers()
        .iter()
        .map(|h| h.field.as_str().as_str().len() + h.value.as_str().len() + 4)
        .sum();
    if total > MAX_HEADERS {
        return Some(error(431, "request headers too large"));
    }
    // Parsed here as u64: tiny_http parses it as usize, which on 32-bit ARM
    // turns a huge value into "no body" rather than a refusal.
    if let Some(cl) = auth::header(req, "Content-Length") {
        match cl.trim().parse::<u64>() {
            Err(_) => return Some(error(400, "Content-Length is not a number")),
            Ok(n) if n > MAX_BODY as u64 => return Some(error(413, "body too large")),
            Ok(_) => {}
        }
    }
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Some(error(413, "body too large"));
    }
    None
}

fn range_of(req: &Request) -> Option<String> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Range"))
        .map(|h| h.value.as_str().to_string())
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
    fn connection_caps_leave_descriptors_for_recording() {
        // The Pi unit's LimitNOFILE, and the default per-client viewer cap.
        assert_eq!(connection_caps(8192, 16), (3968, 64));
        assert_eq!(connection_caps(1024, 16), (384, 64));
        // A benchmark allowing 1,000 viewers from one address.
        assert_eq!(connection_caps(65536, 1000), (32640, 2032));
        // Tiny limits still serve someone.
        assert_eq!(connection_caps(100, 16), (16, 16));
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
