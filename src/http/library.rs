//! The clip library: `/clips` (JSON, newest first, by camera, paged),
//! `/clips/<id>.mp4` (HTTP Range), `/clips/<id>.jpg` (the thumbnail stored
//! in the clip at finish: the camera's own first JPEG), `DELETE /clips/<id>`.

use serde_json::{Value, json};

use super::errors::{ApiError, Kind};
use super::{App, Reply, bytes, files, header};
use crate::clips::ClipEntry;
use crate::ids::{CameraId, ClipFile, ClipId};

/// Clips per page unless `limit` says otherwise, and the most it may say.
const PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

/// What `/clips` was asked for.
#[derive(Debug, Default, PartialEq)]
pub struct Query {
    pub camera: Option<CameraId>,
    pub before: Option<ClipId>,
    pub limit: usize,
}

/// Parses `?camera=&before=&limit=`; unknown parameters are refused.
pub fn parse_query(query: &str) -> Result<Query, ApiError> {
    let mut q = Query {
        limit: PAGE,
        ..Query::default()
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |m: &str| ApiError::new(Kind::BadInput, m.to_string());
        match k {
            "camera" => q.camera = Some(v.parse().map_err(|_| bad("camera must be a camera id"))?),
            "before" => q.before = Some(v.parse().map_err(|_| bad("before must be a clip id"))?),
            "limit" => {
                let n: usize = v.parse().map_err(|_| bad("limit must be a number"))?;
                if !(1..=MAX_PAGE).contains(&n) {
                    return Err(ApiError::new(
                        Kind::Unprocessable,
                        "limit must be from 1 to 1000",
                    ));
                }
                q.limit = n;
            }
            // The page's own cache-buster, and the download switch.
            "t" | "download" => {}
            _ => return Err(bad(&format!("unknown parameter {k:?}"))),
        }
    }
    Ok(q)
}

/// `/clips`: one page of the library. `next_before` continues it.
pub fn list(app: &App, q: &Query) -> Result<Reply, ApiError> {
    if let Some(cam) = &q.camera
        && app.cameras.get(cam).is_none()
        && app.clips.list(Some(cam), None, 1).is_empty()
    {
        return Err(ApiError::no_camera(cam));
    }
    let page = app
        .clips
        .list(q.camera.as_deref(), q.before.as_ref(), q.limit + 1);
    let more = page.len() > q.limit;
    let clips: Vec<Value> = page.iter().take(q.limit).map(|c| entry(app, c)).collect();
    let next = more
        .then(|| page.get(q.limit - 1).map(|c| c.id.clone()))
        .flatten();
    Ok(super::json(
        200,
        &json!({ "clips": clips, "next_before": next }),
    ))
}

fn entry(app: &App, c: &ClipEntry) -> Value {
    let meta = app.clips.meta(c);
    json!({
        "id": c.id,
        "camera": c.camera,
        "started_at": meta.as_ref().map(|m| m.started_at.clone()),
        "duration_sec": meta.as_ref().map(|m| m.duration_sec),
        "frames": meta.as_ref().map(|m| m.frames),
        "size_bytes": c.size_bytes,
        "url": url(&c.id),
        "thumbnail_url": meta
            .as_ref()
            .filter(|m| m.thumbnail)
            .map(|_| format!("/clips/{}", c.id.file_name(ClipFile::Thumbnail))),
        // null when uploads are off (no s3_bucket)
        "upload": app.uploader.as_ref().and_then(|u| u.clip_state(&c.id)),
    })
}

/// A clip's URL: `/clips/<id>.mp4`.
pub fn url(id: &ClipId) -> String {
    format!("/clips/{}", id.file_name(ClipFile::Mp4))
}

/// `/clips/<id>.mp4` or `/clips/<id>.jpg`.
pub fn file(
    app: &App,
    name: Option<&(ClipId, ClipFile)>,
    range: Option<&str>,
    download: bool,
) -> Result<Reply, ApiError> {
    let Some((id, file)) = name else {
        return Err(ApiError::not_found("clip"));
    };
    let c = app
        .clips
        .get(id)
        .ok_or_else(|| ApiError::not_found("clip"))?;
    if *file == ClipFile::Mp4 {
        return serve(app, &c, range, download);
    }
    let jpeg = app
        .clips
        .thumbnail(&c)
        .map_err(|e| ApiError::clip(&c.id, e))?
        .ok_or_else(|| ApiError::new(Kind::NotFound, "this clip has no thumbnail"))?;
    let mut r = bytes(200, "image/jpeg", jpeg);
    r.add_header(header("Cache-Control", "private, max-age=86400"));
    Ok(r)
}

/// A clip's bytes, with Range.
pub fn serve(
    app: &App,
    c: &ClipEntry,
    range: Option<&str>,
    download: bool,
) -> Result<Reply, ApiError> {
    let file = app
        .clips
        .open_clip(c)
        .map_err(|e| ApiError::clip(&c.id, e))?;
    Ok(files::serve_mp4(
        file,
        &c.id,
        range,
        download.then(|| c.id.file_name(ClipFile::Mp4)).as_deref(),
    ))
}

/// `POST /clips/<id>/upload`: a failed (or waiting) upload is tried now.
pub fn retry_upload(app: &App, id: Option<&ClipId>) -> Result<Reply, ApiError> {
    let up = app
        .uploader
        .as_ref()
        .ok_or_else(|| ApiError::new(Kind::Busy, "uploads are off: no s3_bucket is set"))?;
    let id = id.ok_or_else(|| ApiError::not_found("clip"))?;
    app.clips
        .get(id)
        .ok_or_else(|| ApiError::not_found("clip"))?;
    let state = up.retry(id).map_err(|e| ApiError::new(Kind::Busy, e))?;
    Ok(super::json(202, &json!({ "id": id, "upload": state })))
}

/// `DELETE /clips/<id>` (or the clip's own URL, `<id>.mp4`).
pub fn delete(app: &App, id: Option<&ClipId>) -> Result<Reply, ApiError> {
    let id = id.ok_or_else(|| ApiError::not_found("clip"))?;
    let c = app.clips.delete(id).map_err(|e| ApiError::clip(id, e))?;
    Ok(super::json(200, &json!({ "deleted": c.id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_queries() {
        assert_eq!(parse_query("").unwrap().limit, PAGE);
        let q = parse_query("camera=door&before=door-20261201-000000&limit=5").unwrap();
        assert_eq!(q.camera.as_deref(), Some("door"));
        assert_eq!(q.before.as_deref(), Some("door-20261201-000000"));
        assert_eq!(q.limit, 5);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "camera=../x",
            "before=/etc",
            "x=1",
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }
}
