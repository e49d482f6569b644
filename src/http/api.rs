//! The camera API: `/status`, `/cameras`, `/start`, `/stop`, `/last`, for
//! the first camera and for each by id.

use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::Request;

use super::auth::{Principal, Role, Via};
use super::errors::{ApiError, Kind};
use super::{App, MAX_BODY, Reply};
use crate::camera::Camera;
use crate::hub::SourceState;
use crate::recorder::StartOptions;

/// Longest recording a client may ask for (a day).
const MAX_DURATION_SEC: f64 = 86_400.0;

/// One camera's state: what `/cameras/<id>/status` answers, and the
/// first camera's part of `/status`.
pub fn camera_status(app: &App, cam: &Camera) -> Value {
    let src = cam.hub.status();
    let fps = cam.hub.measured_fps();
    let active = cam.recorder.active();
    let counters = &cam.hub.counters;
    use std::sync::atomic::Ordering::Relaxed;
    let warning = match src.state {
        SourceState::Test | SourceState::Down => Some(
            src.message
                .clone()
                .unwrap_or_else(|| format!("source is {}", src.state.as_str())),
        ),
        _ => None,
    };
    let (usage, last) = app.clips.overview(&cam.id);
    let last = last.map(
        |c| json!({ "id": c.id, "size_bytes": c.size_bytes, "url": super::library::url(&c.id) }),
    );
    json!({
        "camera": cam.id,
        "recording": active.is_some(),
        "elapsed_sec": active.as_ref().map_or(0.0, |a| a.elapsed_sec),
        "fps": round2(fps),
        "recording_id": active.as_ref().map(|a| a.id.clone()),
        "dropped_frames": active.as_ref().map_or(0, |a| a.dropped_frames),
        "recorder": active,
        // A recording that stopped by itself (disk full, write error),
        // until the next /stop collects it or /start begins another.
        "stopped_early": cam.recorder.ended_early(),
        "source": {
            "kind": src.kind,
            "name": src.name,
            "state": src.state.as_str(),
            "width": src.width,
            "height": src.height,
            "nominal_fps": src.nominal_fps,
            "fps": round2(fps),
            "message": src.message,
            "pixel_format": (!src.pixel_format.is_empty()).then_some(src.pixel_format),
            "transport": src.transport,
            // RFC 6381, for MSE: what a browser must decode (`avc1.42C01F`).
            "codec": cam.codec(),
            // Frames decoded for the MJPEG view of a video camera: only
            // while someone watches it or asks for a snapshot.
            "decoded_frames": cam.preview.as_ref().map_or(0, |p| p.decoded.load(Relaxed)),
            "requested": {
                "width": src.requested.0,
                "height": src.requested.1,
                "fps": src.requested.2,
            },
            "frames": counters.frames.load(Relaxed),
            "broken_frames": counters.broken.load(Relaxed),
            "reopens": counters.reopens.load(Relaxed),
            // A network camera over its budget: frames it sent faster than
            // its cap (dropped), bytes that were not frames, and how long
            // reading paused because it sent more than allowed.
            "frames_over_rate": counters.over_rate.load(Relaxed),
            "junk_bytes": counters.junk_bytes.load(Relaxed),
            "throttled_sec": counters.throttled_ms.load(Relaxed) as f64 / 1000.0,
        },
        "viewers": cam.viewers(),
        "clips": usage,
        "last_clip": last,
        "warning": warning,
    })
}

/// A camera in `/cameras` and in `/status` → `cameras`: the short form.
pub fn camera_summary(cam: &Camera) -> Value {
    let src = cam.hub.status();
    let active = cam.recorder.active();
    json!({
        "id": cam.id,
        "kind": src.kind,
        "name": src.name,
        "state": src.state.as_str(),
        "message": src.message,
        "width": src.width,
        "height": src.height,
        "fps": round2(cam.hub.measured_fps()),
        "codec": cam.codec(),
        "reconnects": cam.hub.counters.reopens.load(std::sync::atomic::Ordering::Relaxed),
        "broken_frames": cam.hub.counters.broken.load(std::sync::atomic::Ordering::Relaxed),
        "frames_over_rate": cam.hub.counters.over_rate.load(std::sync::atomic::Ordering::Relaxed),
        "live_mp4": cam.sends_video().then(|| format!("/cameras/{}/live.mp4", cam.id)),
        "viewers": cam.viewers(),
        "recording": active.is_some(),
        "elapsed_sec": active.as_ref().map_or(0.0, |a| a.elapsed_sec),
        "recording_id": active.map(|a| a.id),
    })
}

pub fn cameras(app: &App) -> Value {
    json!({ "cameras": app.cameras.iter().map(camera_summary).collect::<Vec<_>>() })
}

/// `/status`: the first camera's fields as they always were, the whole
/// process's, and every camera. `caller` says who asked, so the page can
/// offer to sign out.
pub fn status(app: &App, caller: Option<Principal>) -> Value {
    let mut v = camera_status(app, app.cameras.first());
    let process = json!({
        // As it always was: every viewer (of any camera) against the cap.
        "viewers": app.viewers.count(),
        "max_viewers": app.viewers.max(),
        "cameras": app.cameras.iter().map(camera_summary).collect::<Vec<_>>(),
        "system": crate::system::status(),
        "uploads": app.uploader.as_ref().map_or_else(crate::upload::disabled_status, |u| u.status()),
        "session": caller.map(|c| json!({
            "auth_required": app.auth.required(),
            "role": match c.role { Role::Admin => "admin", Role::Viewer => "viewer" },
            "via": match c.via {
                Via::Open => "open",
                Via::Session => "session",
                Via::Basic => "basic",
                Via::Bearer => "bearer",
            },
        })),
        "uptime_sec": app.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let (Some(v), Value::Object(p)) = (v.as_object_mut(), process) {
        v.extend(p);
    }
    v
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Parses the optional `/start` body: `{}` or `{"max_duration_sec": n}`.
pub fn parse_start(body: &[u8]) -> Result<StartOptions, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(StartOptions::default());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| "body must be a JSON object".to_string())?;
    let mut opts = StartOptions::default();
    for (k, val) in obj {
        match k.as_str() {
            "max_duration_sec" => {
                let secs = val
                    .as_f64()
                    .filter(|s| *s > 0.0 && *s <= MAX_DURATION_SEC)
                    .ok_or_else(|| {
                        format!("max_duration_sec must be a number above 0 and at most {MAX_DURATION_SEC}")
                    })?;
                opts.max_duration = Some(Duration::from_secs_f64(secs));
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    Ok(opts)
}

pub fn start(app: &App, cam: &Camera, req: &mut Request) -> Result<Reply, ApiError> {
    let body = super::body::read(req, MAX_BODY, app.idle_timeout)?;
    let opts = parse_start(&body).map_err(|e| ApiError::new(Kind::BadInput, e))?;
    let active = cam
        .recorder
        .start(opts)
        .map_err(|e| ApiError::recording("cannot start recording", e))?;
    log::info!("camera {}: recording {} started", cam.id, active.id);
    Ok(super::json(200, &json!(active)))
}

pub fn stop(cam: &Camera) -> Result<Reply, ApiError> {
    let clip = cam
        .recorder
        .stop()
        .map_err(|e| ApiError::recording("cannot finish recording", e))?;
    log::info!(
        "camera {}: recording {} saved: {} ({:.2} s, {} bytes)",
        cam.id,
        clip.id,
        clip.path,
        clip.duration_sec,
        clip.size_bytes
    );
    Ok(super::json(200, &json!(clip)))
}

pub fn last(
    app: &App,
    cam: &Camera,
    range: Option<&str>,
    download: bool,
) -> Result<Reply, ApiError> {
    match app.clips.last(&cam.id) {
        Some(c) => super::library::serve(app, &c, range, download),
        None => Err(ApiError::new(Kind::NotFound, "no clip yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_bodies() {
        assert!(parse_start(b"").unwrap().max_duration.is_none());
        assert!(parse_start(b" {} ").unwrap().max_duration.is_none());
        assert_eq!(
            parse_start(br#"{"max_duration_sec": 2.5}"#)
                .unwrap()
                .max_duration,
            Some(Duration::from_millis(2500))
        );
        assert!(parse_start(br#"{"max_duration_sec": 0}"#).is_err());
        assert!(parse_start(br#"{"max_duration_sec": -1}"#).is_err());
        assert!(parse_start(br#"{"max_duration_sec": "10"}"#).is_err());
        // The schema says a number: null is not one.
        assert!(parse_start(br#"{"max_duration_sec": null}"#).is_err());
        assert!(parse_start(br#"{"max_duration_sec": 1e9}"#).is_err());
        assert!(parse_start(br#"{"path": "/etc/passwd"}"#).is_err());
        assert!(parse_start(b"[1]").is_err());
        assert!(parse_start(b"{").is_err());
    }
}
