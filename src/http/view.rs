//! Live pictures of a camera: `/video` (one thread per viewer, the camera's
//! JPEGs untouched) and `/snapshot.jpg`.

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
    let (hub, watching) = (camera.hub.clone(), camera.watch());
    spawn_with("viewer", req, move |req| {
        let _seat = (seat, watching);
        let mut out = req.into_writer();
        match crate::live::stream(&hub, &mut out, &security_headers()) {
            Ok(n) => log::debug!("viewer done after {n} frames"),
            Err(e) => log::debug!("viewer gone: {e}"),
        }
    });
}
