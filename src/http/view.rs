//! Live pictures of a camera: `/video` (one thread per viewer, the camera's
//! JPEGs untouched), `live.mp4` (a network camera's H.264/H.265 untouched)
//! and `/snapshot.jpg`.

use std::io::Write;

use tiny_http::{Method, Request};

use super::errors::{ApiError, Kind};
use super::server::spawn_with;
use super::{App, Reply, bytes, error, header, respond, security_headers};
use crate::camera::Camera;

pub fn snapshot(cam: &Camera) -> Result<Reply, ApiError> {
    let latest = cam.hub.latest();
    let (frame, jpeg) = latest
        .as_ref()
        .and_then(|f| f.payload.jpeg().map(|j| (f, j)))
        .ok_or_else(|| ApiError::new(Kind::Unavailable, "no frame yet"))?;
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
    watch(app, req, camera, crate::live::response_head, |hub, out| {
        crate::live::stream(hub, out, &security_headers())
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
    watch(
        app,
        req,
        camera,
        crate::live::mp4::response_head,
        |hub, out| crate::live::mp4::stream(hub, out, &security_headers()),
    );
}

type Head = fn(&[(&str, &str)]) -> String;

fn watch<F>(app: &App, req: Request, camera: &Camera, head: Head, stream: F)
where
    F: FnOnce(&crate::hub::Hub, &mut dyn Write) -> std::io::Result<u64> + Send + 'static,
{
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
            .write_all(head(&security_headers()).as_bytes())
            .and_then(|()| out.flush());
        return;
    }
    let (hub, watching) = (camera.hub.clone(), camera.watch());
    spawn_with("viewer", req, move |req| {
        let _seat = (seat, watching);
        let mut out = req.into_writer();
        match stream(&hub, &mut out) {
            Ok(n) => log::debug!("viewer done after {n} frames"),
            Err(e) => log::debug!("viewer gone: {e}"),
        }
    });
}
