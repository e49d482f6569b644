//! From request to handler: the URL is checked and decoded once into a
//! `Route`, access is checked against the route's level (Argon2 checks on
//! their own thread), and the route's handler answers. Handlers that may
//! block (disk, the recorder, a body to read) run on a thread of their own:
//! this thread dispatches every request.

use std::sync::Arc;

use tiny_http::{Method, Request};

use super::checks::{download_flag, host_allowed, malformed, origin_form, range_of};
use super::errors::{ApiError, Kind};
use super::route::{Access, Route, lookup};
use super::threads::spawn_with;
use super::{App, Reply, api, assets, auth, bytes, header, library, login, request, respond, view};

/// Longest URL we read; longer ones get 414.
const MAX_URL: usize = 2048;

fn denied(req: &Request, why: auth::Denied, page: bool) -> Reply {
    use auth::Denied;
    match why {
        Denied::Malformed(m) => Kind::BadInput.reply(m),
        Denied::Busy => super::replies::sign_ins_busy(),
        Denied::Limited(secs) => {
            let mut r = Kind::TooManyAttempts.reply("too many failed logins; try again later");
            r.add_header(header("Retry-After", &secs.to_string()));
            r
        }
        Denied::Missing | Denied::Wrong
            if page && request::header(req, "Authorization").is_none() =>
        {
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
            let mut r = Kind::Unauthorized.reply(msg);
            // No Basic dialog for the page's own scripts: they go to /login instead.
            if !request::from_script(req) {
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
    route: Route,
    access: Access,
}

pub fn handle(app: &Arc<App>, req: Request) {
    let url = req.url().to_string();
    if url.len() > MAX_URL {
        return respond(req, Kind::UrlTooLong.reply("URL too long"));
    }
    if let Some(reply) = malformed(&req) {
        return respond(req, reply);
    }
    let url = origin_form(&url);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let method = req.method().clone();
    let (route, access) = match lookup(method.as_str(), path) {
        Ok(found) => found,
        Err(allowed) if allowed.is_empty() => {
            return respond(req, Kind::NotFound.reply("no such route"));
        }
        Err(allowed) => {
            let mut r = Kind::MethodNotAllowed.reply(format!("use {}", allowed.join(" or ")));
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
            Kind::MisdirectedHost.reply(
                "unknown host name: without credentials this server answers only to \
                 localhost, IP addresses and the names in allowed_hosts",
            ),
        );
    }
    let target = Target {
        method,
        path: path.to_string(),
        query: query.to_string(),
        route,
        access,
    };
    if access == Access::Public {
        return dispatch(app, req, target, None);
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
        // Behind the client's own earlier checks: waits for them there too.
        auth::Check::Queued(queued) => {
            let app = app.clone();
            spawn_with("auth", req, move |req| {
                let who = app.auth.wait_queued(queued);
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
        return respond(
            req,
            Kind::Forbidden.reply("this user may watch but not record"),
        );
    }
    if !matches!(t.method, Method::Get | Method::Head) && !request::same_origin(&req, who.via) {
        log::warn!("refused cross-site {} {}", t.method.as_str(), t.path);
        return respond(req, Kind::Forbidden.reply("cross-site request refused"));
    }
    dispatch(app, req, t, Some(who))
}

/// Answers with a handler's result, whichever it was.
fn answer(req: Request, result: Result<Reply, ApiError>) {
    respond(req, result.unwrap_or_else(|e| e.reply()));
}

/// Runs a handler on its own thread and answers with what it returns.
fn off_thread<F>(app: &Arc<App>, name: &'static str, req: Request, f: F)
where
    F: FnOnce(&App, &mut Request) -> Result<Reply, ApiError> + Send + 'static,
{
    let app = app.clone();
    spawn_with(name, req, move |mut req| {
        let r = f(&app, &mut req);
        answer(req, r)
    })
}

fn dispatch(app: &Arc<App>, req: Request, t: Target, caller: Option<auth::Principal>) {
    let download = match download_flag(&t.query) {
        Ok(d) => d,
        Err(e) => return respond(req, Kind::BadInput.reply(e)),
    };
    match t.route {
        Route::Asset(path) => match assets::find(path) {
            Some((ct, body)) => {
                let mut r = bytes(200, ct, body.to_vec());
                r.add_header(header("Cache-Control", "no-cache"));
                respond(req, r)
            }
            None => respond(req, Kind::NotFound.reply("no such route")),
        },
        Route::LoginPage => respond(req, login::page(&t.query)),
        Route::LoginSubmit => off_thread(app, "login", req, |app, req| Ok(login::submit(app, req))),
        Route::Logout => {
            let reply = login::logout(app, &req);
            respond(req, reply)
        }
        Route::Healthz => respond(req, bytes(200, "text/plain", b"ok\n".to_vec())),
        Route::OpenApi => respond(
            req,
            bytes(200, "application/json", super::route::openapi().to_vec()),
        ),
        Route::Cameras => respond(req, super::json(200, &api::cameras(app))),
        Route::Status(cam) => match cam {
            super::route::Cam::First => respond(req, super::json(200, &api::status(app, caller))),
            cam => {
                let r = app
                    .camera(&cam)
                    .map(|c| super::json(200, &api::camera_status(app, c)));
                answer(req, r)
            }
        },
        Route::Video(cam) => match app.camera(&cam) {
            Ok(camera) => view::live(app, req, camera),
            Err(e) => answer(req, Err(e)),
        },
        Route::LiveMp4(cam) => match app.camera(&cam) {
            Ok(camera) => view::live_mp4(app, req, camera),
            Err(e) => answer(req, Err(e)),
        },
        Route::Snapshot(cam) => match app.camera(&cam) {
            // A video camera's snapshot may wait for its decoder: never on
            // the dispatch thread. A JPEG camera's is its latest frame.
            Ok(c) if c.preview.is_some() => off_thread(app, "snapshot", req, move |app, _| {
                view::snapshot(app.camera(&cam)?)
            }),
            r => answer(req, r.and_then(view::snapshot)),
        },
        Route::Start(cam) => off_thread(app, "start", req, move |app, req| {
            api::start(app, app.camera(&cam)?, req)
        }),
        Route::Stop(cam) => {
            off_thread(app, "stop", req, move |app, _| api::stop(app.camera(&cam)?))
        }
        Route::Last(cam) => off_thread(app, "last", req, move |app, req| {
            let range = range_of(req);
            api::last(app, app.camera(&cam)?, range.as_deref(), download)
        }),
        Route::Library => {
            let q = t.query.clone();
            off_thread(app, "clips", req, move |app, _| {
                library::list(app, &library::parse_query(&q)?)
            })
        }
        Route::ClipFile(name) => off_thread(app, "clip", req, move |app, req| {
            let range = range_of(req);
            library::file(app, name.as_ref(), range.as_deref(), download)
        }),
        Route::DeleteClip(id) => off_thread(app, "delete", req, move |app, _| {
            library::delete(app, id.as_ref())
        }),
        Route::RetryUpload(id) => answer(req, library::retry_upload(app, id.as_ref())),
    }
}
