//! The JSON API: `/status`, `/start`, `/stop`, `/last`.

use std::time::Duration;

use serde_json::{Value, json};
use tiny_http::Request;

use super::auth::{Principal, Role, Via};
use super::{App, MAX_BODY, Reply, error, files};
use crate::clips::{ClipEntry, OpenError};
use crate::hub::SourceState;
use crate::recorder::{RecError, StartOptions};

/// Longest recording a client may ask for (a day).
const MAX_DURATION_SEC: f64 = 86_400.0;

/// `caller` says who asked, so the page can offer to sign out.
pub fn status(app: &App, caller: Option<Principal>) -> Value {
    let src = app.hub.status();
    let fps = app.hub.measured_fps();
    let active = app.recorder.active();
    let counters = &app.hub.counters;
    use std::sync::atomic::Ordering::Relaxed;
    let warning = match src.state {
        SourceState::Test | SourceState::Down => Some(
            src.message
                .clone()
                .unwrap_or_else(|| format!("source is {}", src.state.as_str())),
        ),
        _ => None,
    };
    let (usage, last) = app.clips.overview();
    let last = last.map(|c| {
        json!({ "id": c.id, "size_bytes": c.size_bytes, "url": format!("/clips/{}.mp4", c.id) })
    });
    json!({
        "recording": active.is_some(),
        "elapsed_sec": active.as_ref().map_or(0.0, |a| a.elapsed_sec),
        "fps": round2(fps),
        "recording_id": active.as_ref().map(|a| a.id.clone()),
        "dropped_frames": active.as_ref().map_or(0, |a| a.dropped_frames),
        "recorder": active,
        // A recording that stopped by itself (disk full, write error),
        // until the next /stop collects it or /start begins another.
        "stopped_early": app.recorder.ended_early(),
        "source": {
            "kind": src.kind,
            "name": src.name,
            "state": src.state.as_str(),
            "width": src.width,
            "height": src.height,
            "nominal_fps": src.nominal_fps,
            "fps": round2(fps),
            "message": src.message,
            "pixel_format": src.pixel_format,
            "requested": {
                "width": src.requested.0,
                "height": src.requested.1,
                "fps": src.requested.2,
            },
            "frames": counters.frames.load(Relaxed),
            "broken_frames": counters.broken.load(Relaxed),
            "reopens": counters.reopens.load(Relaxed),
        },
        "viewers": app.viewers.count(),
        "max_viewers": app.viewers.max(),
        "clips": usage,
        "last_clip": last,
        "warning": warning,
        "system": crate::system::status(),
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
    })
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

pub fn start(app: &App, req: &mut Request) -> Reply {
    let body = match super::body::read(req, MAX_BODY, app) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let opts = match parse_start(&body) {
        Ok(o) => o,
        Err(e) => return error(400, &e),
    };
    match app.recorder.start(opts) {
        Ok(active) => {
            log::info!("recording {} started", active.id);
            super::json(200, &json!(active))
        }
        Err(RecError::AlreadyRecording(active)) => super::json(
            409,
            &json!({ "error": "already recording", "recording": active }),
        ),
        Err(RecError::NotRecording) => error(409, "not recording"),
        Err(RecError::NoRoom(e)) => {
            log::error!("cannot start recording: {e}");
            error(507, &format!("cannot start recording: {e}"))
        }
        Err(RecError::Failed(e)) => {
            log::error!("cannot start recording: {e}");
            error(500, &format!("cannot start recording: {e}"))
        }
    }
}

pub fn stop(app: &App) -> Reply {
    match app.recorder.stop() {
        Ok(clip) => {
            log::info!(
                "recording {} saved: {} ({:.2} s, {} bytes)",
                clip.id,
                clip.path,
                clip.duration_sec,
                clip.size_bytes
            );
            app.clips.enforce(None);
            super::json(200, &json!(clip))
        }
        Err(RecError::NotRecording) => error(409, "not recording"),
        Err(RecError::AlreadyRecording(_)) => error(409, "already recording"),
        Err(RecError::NoRoom(e)) => error(507, &e),
        Err(RecError::Failed(e)) => {
            log::error!("cannot finish recording: {e}");
            error(500, &format!("cannot finish recording: {e}"))
        }
    }
}

pub fn last(app: &App, range: Option<&str>, download: bool) -> Reply {
    match app.clips.last() {
        Some(c) => serve(app, &c, range, download),
        None => error(404, "no clip yet"),
    }
}

pub fn clip(app: &App, name: &str, range: Option<&str>, download: bool) -> Reply {
    let Some(id) = name.strip_suffix(".mp4") else {
        return error(404, "no such clip");
    };
    match app.clips.get(id) {
        Some(c) => serve(app, &c, range, download),
        None => error(404, "no such clip"),
    }
}

fn serve(app: &App, c: &ClipEntry, range: Option<&str>, download: bool) -> Reply {
    match app.clips.open_clip(c) {
        Ok(file) => files::serve_mp4(
            file,
            &c.id,
            range,
            download.then(|| format!("{}.mp4", c.id)).as_deref(),
        ),
        Err(OpenError::NotFound) => error(404, "no such clip"),
        Err(OpenError::Refused(why)) => {
            log::warn!("clip {} not served: {why}", c.id);
            error(404, "no such clip")
        }
        Err(OpenError::Io(e)) => {
            log::error!("cannot open clip {}: {e}", c.id);
            error(500, "cannot open clip")
        }
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
