//! HTTP over `tiny_http`: routing, JSON errors, and an accept loop that
//! survives errors (tiny_http's own loop ends on the first accept error, for
//! example when descriptors run out, which would silently stop the server).

mod assets;
mod files;
mod routes;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

use crate::clips::Clips;
use crate::config::Config;
use crate::hub::Hub;
use crate::live::Viewers;
use crate::recorder::Recorder;

/// Everything a request handler may touch.
pub struct App {
    pub cfg: Config,
    pub hub: Arc<Hub>,
    pub recorder: Arc<Recorder>,
    pub clips: Arc<Clips>,
    pub viewers: Arc<Viewers>,
    pub started: Instant,
}

pub type Reply = Response<Box<dyn Read + Send>>;

/// A viewer that stops reading is dropped after this long, freeing its thread.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest URL we read; longer ones get 414.
const MAX_URL: usize = 2048;
/// Stack for viewer and worker threads: they hold no big buffers.
const WORKER_STACK: usize = 128 * 1024;

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

/// Sends a reply with the headers every response carries.
fn respond(req: Request, mut reply: Reply) {
    reply.add_header(header("Server", "video-recorder"));
    reply.add_header(header("X-Content-Type-Options", "nosniff"));
    if let Err(e) = req.respond(reply) {
        log::debug!("client went away before the answer: {e}");
    }
}

/// Sets SO_SNDTIMEO on the listening socket; accepted sockets inherit it, so a
/// viewer that stops reading cannot hold its thread forever. (A receive timeout
/// here would make accept() fail and end tiny_http's loop.)
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
    let mut backoff = Duration::from_millis(50);
    // Old servers stay alive a while: their open keep-alive connections may
    // still deliver requests.
    let mut retired: Vec<(Server, Instant)> = Vec::new();
    while !app.hub.is_closed() {
        let server = match listener
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|l| Server::from_listener(l, None).map_err(|e| e.to_string()))
        {
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
        retired.push((server, Instant::now()));
    }
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

fn handle(app: &Arc<App>, req: Request) {
    let url = req.url().to_string();
    if url.len() > MAX_URL {
        return respond(req, error(414, "URL too long"));
    }
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let method = req.method().clone();
    let get = matches!(method, Method::Get | Method::Head);
    match (path, get, &method) {
        ("/video", true, _) => live_viewer(app, req),
        ("/snapshot.jpg", true, _) => respond(req, snapshot(app)),
        ("/status", true, _) => respond(req, json(200, &routes::status(app))),
        ("/healthz", true, _) => respond(req, bytes(200, "text/plain", b"ok\n".to_vec())),
        ("/start", _, Method::Post) => {
            let app = app.clone();
            spawn_with("start", req, move |mut req| {
                let reply = routes::start(&app, &mut req);
                respond(req, reply)
            })
        }
        ("/stop", _, Method::Post) => {
            let app = app.clone();
            spawn_with("stop", req, move |req| respond(req, routes::stop(&app)))
        }
        ("/last", true, _) => {
            let app = app.clone();
            let download = query.split('&').any(|kv| kv == "download=1");
            spawn_with("last", req, move |req| {
                let reply = routes::last(&app, range_of(&req).as_deref(), download);
                respond(req, reply)
            })
        }
        (p, true, _) if p.starts_with("/clips/") => {
            let app = app.clone();
            let id = p["/clips/".len()..].to_string();
            let download = query.split('&').any(|kv| kv == "download=1");
            spawn_with("clip", req, move |req| {
                let reply = routes::clip(&app, &id, range_of(&req).as_deref(), download);
                respond(req, reply)
            })
        }
        (p, true, _) if assets::find(p).is_some() => {
            let (ct, body) = assets::find(p).unwrap_or(("text/plain", b""));
            let mut r = bytes(200, ct, body.to_vec());
            r.add_header(header("Cache-Control", "no-cache"));
            respond(req, r)
        }
        ("/start" | "/stop", _, _) => {
            let mut r = error(405, "use POST");
            r.add_header(header("Allow", "POST"));
            respond(req, r)
        }
        ("/video" | "/snapshot.jpg" | "/status" | "/last" | "/healthz", _, _) => {
            let mut r = error(405, "use GET");
            r.add_header(header("Allow", "GET, HEAD"));
            respond(req, r)
        }
        _ => respond(req, error(404, "no such route")),
    }
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
    let Some(seat) = app.viewers.try_seat() else {
        log::warn!("viewer refused: {} viewers already", app.viewers.max());
        return respond(req, error(503, "too many viewers"));
    };
    let hub = app.hub.clone();
    spawn_with("viewer", req, move |req| {
        let _seat = seat;
        let mut out = req.into_writer();
        match crate::live::stream(&hub, &mut out) {
            Ok(n) => log::debug!("viewer done after {n} frames"),
            Err(e) => log::debug!("viewer gone: {e}"),
        }
    });
}
