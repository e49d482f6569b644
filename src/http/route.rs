//! Every route, once: a typed `Route` (carrying the camera or clip it
//! names) decoded from the request path, with its access level. The same
//! table feeds dispatch, the access check, the 405 answer's `Allow` and
//! `/openapi.json` (which adds only the responses, from `openapi.json`).

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::ids::{CameraId, ClipFile, ClipId};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Viewer,
    Admin,
}

/// Which camera a route means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cam {
    /// The original routes' camera (`/video`, `/start`, …).
    First,
    Named(CameraId),
    /// A segment that is no camera id: no camera has it (the 404 names it).
    Unknown(String),
}

/// A request's target, decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A static asset: the page, its script, styles, icon.
    Asset(&'static str),
    LoginPage,
    LoginSubmit,
    Logout,
    Video(Cam),
    /// A network camera's own H.264/H.265 as fragmented MP4 (MSE).
    LiveMp4(Cam),
    Snapshot(Cam),
    /// `/status` (the first camera, plus the whole process) or a camera's.
    Status(Cam),
    Start(Cam),
    Stop(Cam),
    Last(Cam),
    Cameras,
    /// `/clips`: the clip library as JSON.
    Library,
    /// `/clips/<id>.mp4` or `/clips/<id>.jpg`. In the clip routes `None`
    /// is a name that is no clip's: a 404 once the caller may ask.
    ClipFile(Option<(ClipId, ClipFile)>),
    /// `DELETE /clips/<id>` (or the clip's own URL, `<id>.mp4`).
    DeleteClip(Option<ClipId>),
    /// `POST /clips/<id>/upload`: try a clip's upload again now.
    RetryUpload(Option<ClipId>),
    OpenApi,
    Healthz,
}

/// One row: method, path template (`{camera}`, `{name}` match one path
/// segment), access, summary, and how the matched segments make a route.
pub struct Row {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    make: fn(Vec<String>) -> Route,
}

use Access::{Admin, Public, Viewer};

fn cam(mut p: Vec<String>) -> Cam {
    match p.pop() {
        None => Cam::First,
        Some(s) => s.parse().map_or(Cam::Unknown(s), Cam::Named),
    }
}

/// A clip named by its id or its own URL's file name (`<id>.mp4`).
fn clip(mut p: Vec<String>) -> Option<ClipId> {
    let name = p.pop()?;
    name.parse()
        .ok()
        .or_else(|| match ClipId::from_file_name(&name)? {
            (id, ClipFile::Mp4) => Some(id),
            _ => None,
        })
}

/// A clip's file as a URL may name it: the clip or its thumbnail.
fn clip_file(mut p: Vec<String>) -> Option<(ClipId, ClipFile)> {
    ClipId::from_file_name(&p.pop()?)
        .filter(|(_, f)| matches!(f, ClipFile::Mp4 | ClipFile::Thumbnail))
}

macro_rules! row {
    ($m:literal, $p:literal, $a:expr, $s:literal, $make:expr) => {
        Row {
            method: $m,
            path: $p,
            access: $a,
            summary: $s,
            make: $make,
        }
    };
}

/// The route table. Order matters only for `Allow` lists.
pub const ROUTES: &[Row] = &[
    row!(
        "GET",
        "/",
        Viewer,
        "the web page: live tiles, Start/Stop, REC indicator, clip library",
        |_| Route::Asset("/")
    ),
    row!("GET", "/app.js", Viewer, "the page's script", |_| {
        Route::Asset("/app.js")
    }),
    row!(
        "GET",
        "/tiles.js",
        Viewer,
        "the page's camera tiles",
        |_| Route::Asset("/tiles.js")
    ),
    row!(
        "GET",
        "/live.js",
        Viewer,
        "the page's live video (MSE) of an RTSP camera",
        |_| Route::Asset("/live.js")
    ),
    row!(
        "GET",
        "/library.js",
        Viewer,
        "the page's clip library",
        |_| Route::Asset("/library.js")
    ),
    row!("GET", "/app.css", Public, "the page's styles", |_| {
        Route::Asset("/app.css")
    }),
    row!(
        "GET",
        "/login.css",
        Public,
        "the login form's styles",
        |_| Route::Asset("/login.css")
    ),
    row!("GET", "/favicon.svg", Public, "the icon", |_| Route::Asset(
        "/favicon.svg"
    )),
    row!("GET", "/login", Public, "the login form", |_| {
        Route::LoginPage
    }),
    row!(
        "POST",
        "/login",
        Public,
        "signs in with the form; sets the session cookie",
        |_| Route::LoginSubmit
    ),
    row!("POST", "/logout", Viewer, "ends the session", |_| {
        Route::Logout
    }),
    row!(
        "GET",
        "/video",
        Viewer,
        "live MJPEG of the first camera, its JPEGs untouched",
        |_| Route::Video(Cam::First)
    ),
    row!(
        "GET",
        "/snapshot.jpg",
        Viewer,
        "the first camera's latest JPEG as it sent it",
        |_| Route::Snapshot(Cam::First)
    ),
    row!(
        "GET",
        "/status",
        Viewer,
        "recording or not, elapsed seconds, measured fps, source, viewers, clips, every camera",
        |_| Route::Status(Cam::First)
    ),
    row!(
        "POST",
        "/start",
        Admin,
        "starts recording the first camera",
        |_| Route::Start(Cam::First)
    ),
    row!(
        "POST",
        "/stop",
        Admin,
        "stops the first camera's recording, closes the file and describes the clip",
        |_| Route::Stop(Cam::First)
    ),
    row!(
        "GET",
        "/last",
        Viewer,
        "the first camera's last finished clip",
        |_| Route::Last(Cam::First)
    ),
    row!(
        "GET",
        "/cameras",
        Viewer,
        "every camera: id, source kind and state, size, measured fps, viewers, recording",
        |_| Route::Cameras
    ),
    row!(
        "GET",
        "/cameras/{camera}/video",
        Viewer,
        "live MJPEG of a camera",
        |p| Route::Video(cam(p))
    ),
    row!(
        "GET",
        "/cameras/{camera}/live.mp4",
        Viewer,
        "live fragmented MP4 of an RTSP camera, its H.264/H.265 untouched (for MSE)",
        |p| Route::LiveMp4(cam(p))
    ),
    row!(
        "GET",
        "/cameras/{camera}/snapshot.jpg",
        Viewer,
        "a camera's latest JPEG as it sent it",
        |p| Route::Snapshot(cam(p))
    ),
    row!(
        "GET",
        "/cameras/{camera}/status",
        Viewer,
        "one camera: recording, elapsed seconds, fps, source",
        |p| Route::Status(cam(p))
    ),
    row!(
        "POST",
        "/cameras/{camera}/start",
        Admin,
        "starts recording a camera (cameras record independently)",
        |p| Route::Start(cam(p))
    ),
    row!(
        "POST",
        "/cameras/{camera}/stop",
        Admin,
        "stops a camera's recording and describes the clip",
        |p| Route::Stop(cam(p))
    ),
    row!(
        "GET",
        "/cameras/{camera}/last",
        Viewer,
        "a camera's last finished clip",
        |p| Route::Last(cam(p))
    ),
    row!(
        "GET",
        "/clips",
        Viewer,
        "the clip library, newest first",
        |_| Route::Library
    ),
    row!(
        "GET",
        "/clips/{name}",
        Viewer,
        "a clip (`<id>.mp4`) or its thumbnail (`<id>.jpg`); ids, never paths",
        |p| Route::ClipFile(clip_file(p))
    ),
    row!(
        "DELETE",
        "/clips/{name}",
        Admin,
        "deletes a finished clip (never one being recorded)",
        |p| Route::DeleteClip(clip(p))
    ),
    row!(
        "POST",
        "/clips/{name}/upload",
        Admin,
        "tries a clip's upload to the bucket again now (after a failure)",
        |p| Route::RetryUpload(clip(p))
    ),
    row!("GET", "/openapi.json", Viewer, "this document", |_| {
        Route::OpenApi
    }),
    row!("GET", "/healthz", Public, "`ok`, always open", |_| {
        Route::Healthz
    }),
];

/// The segments a template's placeholders matched, if the path fits it.
fn matches(template: &str, path: &str) -> Option<Vec<String>> {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    let mut params = Vec::new();
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with('{') => {
                if ps.is_empty() {
                    return None;
                }
                params.push(ps.to_string());
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// Decodes a request: the route and who may call it, or the methods the
/// path allows (empty: no such path).
pub fn lookup(method: &str, path: &str) -> Result<(Route, Access), Vec<&'static str>> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut allowed = Vec::new();
    for row in ROUTES {
        if let Some(params) = matches(row.path, path) {
            if row.method == method {
                return Ok(((row.make)(params), row.access));
            }
            allowed.push(row.method);
        }
    }
    Err(allowed)
}

/// `/openapi.json`: paths, methods, summaries, access and path parameters
/// from the table; responses and bodies from `openapi.json`'s `paths`,
/// which documents nothing the table does not serve (a unit test checks).
pub fn openapi() -> &'static [u8] {
    static DOC: OnceLock<Vec<u8>> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc: Value =
            serde_json::from_slice(super::assets::OPENAPI).expect("openapi.json is JSON");
        let details = doc["paths"].take();
        let mut paths = serde_json::Map::new();
        for row in ROUTES {
            let m = row.method.to_ascii_lowercase();
            let mut op = details[row.path][&m].clone();
            if !op.is_object() {
                op = json!({});
            }
            op["summary"] = json!(row.summary);
            if row.access == Access::Public {
                op["security"] = json!([]);
            }
            let mut params: Vec<Value> = row
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| json!({"$ref": format!("#/components/parameters/{name}")}))
                .collect();
            if let Some(extra) = op["parameters"].as_array() {
                params.extend(extra.iter().cloned());
            }
            if !params.is_empty() {
                op["parameters"] = Value::Array(params);
            }
            let entry = paths.entry(row.path).or_insert_with(|| json!({}));
            entry[&m] = op;
        }
        doc["paths"] = Value::Object(paths);
        serde_json::to_vec(&doc).expect("serialisable")
    })
}

#[cfg(test)]
mod tests;
