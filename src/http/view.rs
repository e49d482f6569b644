//! Live pictures of a camera: `/video` (one thread per viewer, the camera's
//! JPEGs untouched), `live.mp4` (a network camera's H.264/H.265 untouched)
//! and `/snapshot.jpg`.

use std::io::Write;

use tiny_http::{Method, Request};

use super::auth::{Via, same_origin};
use super::errors::{ApiError, Kind};
use super::threads::spawn_with;
use super::websocket;
use super::{App, Reply, bytes, header, respond, security_headers};
use crate::camera::Camera;
use crate::error::{Error, Kind as ErrorKind};
use crate::hub::Hub;
use crate::live::Wire;
use std::sync::Arc;

pub fn snapshot(cam: &Camera) -> Result<Reply, ApiError> {
    let latest = match &cam.preview {
        // A picture decoded now (or within one preview period), not a stale one.
        Some(p) => {
            p.decodable().map_err(|e| ApiError::said(&e))?;
            let _use = p.watch();
            let asked = crate::clock::monotonic_now();
            p.picture_since(asked, SNAPSHOT_WAIT)
        }
        None => cam.hub.latest(),
    };
    let (frame, jpeg) = latest
        .as_ref()
        .and_then(|f| f.payload.jpeg().map(|j| (f, j)))
        .ok_or_else(|| ApiError::said(&Error::said(ErrorKind::CameraDown, "no frame yet")))?;
    let mut r = bytes(200, "image/jpeg", jpeg.to_vec());
    r.add_header(header("Cache-Control", "no-store"));
    r.add_header(header(
        "X-Timestamp",
        &format!("{:.6}", crate::clock::unix_secs(frame.wall)),
    ));
    Ok(r)
}

/// A viewer of `camera`: a seat under the process's caps, then a thread of
/// its own for as long as it watches.
pub fn live(app: &App, req: Request, camera: &Camera) {
    let Some(p) = &camera.preview else {
        return watch(app, req, camera.hub.clone(), camera, |hub, out, wire| {
            crate::live::stream(hub, out, wire)
        });
    };
    // A video camera's MJPEG view: pictures decoded while this viewer watches.
    if let Err(e) = p.decodable() {
        return respond(req, ApiError::said(&e).reply());
    }
    let using = p.watch();
    watch(app, req, p.hub.clone(), camera, move |hub, out, wire| {
        let _using = using;
        crate::live::stream(hub, out, wire)
    });
}

/// The fMP4 live view; only a camera that sends H.264/H.265 has one.
pub fn live_mp4(app: &App, req: Request, camera: &Camera) {
    if !camera.sends_video() {
        let e = ApiError::new(
            Kind::NotFound,
            format!(
                "camera {} sends JPEGs: its live view is /cameras/{}/video",
                camera.id, camera.id
            ),
        );
        return respond(req, e.reply());
    }
    watch(app, req, camera.hub.clone(), camera, |hub, out, wire| {
        crate::live::mp4::stream(hub, out, wire)
    });
}

/// How long a snapshot of a video camera waits for its decoder.
const SNAPSHOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A viewer of `hub` (a camera's, or its preview's): a seat under the
/// process's caps, then a thread of its own for as long as it watches,
/// over its HTTP response or, when it asks, a WebSocket (the page's tiles).
fn watch<F>(app: &App, req: Request, hub: Arc<Hub>, camera: &Camera, stream: F)
where
    F: FnOnce(&Hub, &mut dyn Write, Wire) -> std::io::Result<u64> + Send + 'static,
{
    let ws = if websocket::wanted(&req) {
        // A WebSocket carries the browser's cookies from any page: only
        // this server's own page may open one (as for a state change).
        if !same_origin(&req, Via::Session) {
            let e = ApiError::new(Kind::Forbidden, "cross-site WebSocket refused");
            return respond(req, e.reply());
        }
        match websocket::accept(&req) {
            Ok(accept) => Some(accept),
            Err(e) => {
                let mut r = e.reply();
                r.add_header(header("Sec-WebSocket-Version", "13"));
                return respond(req, r);
            }
        }
    } else {
        None
    };
    let ip = app.client(&req);
    let seat = match app.viewers.try_seat(ip) {
        Ok(seat) => seat,
        Err(why) => {
            log::warn!("viewer refused: {why}");
            return respond(req, Kind::Unavailable.reply(why));
        }
    };
    if *req.method() == Method::Head {
        // The stream's status and headers, no body, no seat kept.
        drop(seat);
        let head = if camera.sends_video() && req.url().ends_with("live.mp4") {
            crate::live::mp4::response_head(&security_headers())
        } else {
            crate::live::response_head(&security_headers())
        };
        let mut out = req.into_writer();
        let _ = out.write_all(head.as_bytes()).and_then(|()| out.flush());
        return;
    }
    let watching = camera.watch();
    spawn_with("viewer", req, move |req| {
        let _seat = (seat, watching);
        let out = req.into_writer();
        let done = match ws {
            None => {
                let mut out = out;
                stream(&hub, &mut out, Wire::Http(&security_headers()))
            }
            Some(accept) => {
                let mut out = websocket::Messages::new(out);
                let head = websocket::switching_head(&accept);
                out.get_mut()
                    .write_all(head.as_bytes())
                    .and_then(|()| out.flush())
                    .and_then(|()| stream(&hub, &mut out, Wire::Messages))
            }
        };
        match done {
            Ok(n) => log::debug!("viewer done after {n} frames"),
            Err(e) => log::debug!("viewer gone: {e}"),
        }
    });
}
