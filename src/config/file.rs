//! The TOML file: flat keys (global, or the flat per-camera keys) and
//! `[[camera]]` sections, each checked key by key against the table.

use std::path::Path;

use super::ConfigError;
use super::table::{self, CameraSettings, Config, Input, Scope};
use crate::ids::{CAMERA_ID_RULE, CameraId};
use crate::source::SourceSpec;

/// One `[[camera]]` section, kept until every flat layer is applied (the
/// flat camera keys are its defaults).
pub(super) struct Section {
    /// `config file x.toml, [[camera]] 2`
    origin: String,
    keys: toml::Table,
}

pub(super) struct FileRead {
    pub cameras: Vec<Section>,
    /// Whether the file set the flat `source`.
    pub source_set: bool,
}

/// Reads the file's flat keys into `cfg`; returns its `[[camera]]` sections.
pub(super) fn read(path: &Path, cfg: &mut Config) -> Result<FileRead, ConfigError> {
    let origin = format!("config file {}", path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("config", &origin, format!("cannot read: {e}")))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| {
        let message = e.message().trim().to_string();
        ConfigError::new(&key_from_toml_error(&text, e.span()), &origin, message)
    })?;
    let mut read = FileRead {
        cameras: Vec::new(),
        source_set: false,
    };
    for (key, value) in &doc {
        if key == "camera" {
            let Some(list) = value.as_array() else {
                return Err(ConfigError::new(
                    "camera",
                    &origin,
                    "must be [[camera]] sections (an array of tables)",
                ));
            };
            for (i, v) in list.iter().enumerate() {
                let here = format!("{origin}, [[camera]] {}", i + 1);
                let Some(keys) = v.as_table() else {
                    return Err(ConfigError::new("camera", &here, "must be a table"));
                };
                read.cameras.push(Section {
                    origin: here,
                    keys: keys.clone(),
                });
            }
            continue;
        }
        match cfg.set_key(key, Input::Toml(value)) {
            Some(result) => result.map_err(|m| ConfigError::new(key, &origin, m))?,
            None => return Err(ConfigError::new(key, &origin, "unknown setting")),
        }
        read.source_set |= key == "source";
    }
    Ok(read)
}

/// Builds each `[[camera]]` from the flat camera keys and its own; refuses
/// a missing or repeated id and two cameras on one device.
pub(super) fn cameras(
    defaults: &CameraSettings,
    sections: Vec<Section>,
) -> Result<Vec<CameraSettings>, ConfigError> {
    let mut out: Vec<(CameraSettings, String)> = Vec::new();
    for s in sections {
        let mut cam = defaults.clone();
        let id: CameraId = match s.keys.get("id") {
            Some(toml::Value::String(id)) => id
                .parse()
                .map_err(|rule| ConfigError::new("id", &s.origin, rule))?,
            Some(_) => {
                return Err(ConfigError::new("id", &s.origin, CAMERA_ID_RULE));
            }
            None => {
                return Err(ConfigError::new(
                    "id",
                    &s.origin,
                    "every camera needs an id",
                ));
            }
        };
        let origin = format!("{} ({id})", s.origin);
        if !s.keys.contains_key("source") {
            return Err(ConfigError::new(
                "source",
                &origin,
                "every camera needs a source",
            ));
        }
        cam.id = id.clone();
        for (key, value) in s.keys.iter().filter(|(k, _)| *k != "id") {
            match cam.set_key(key, Input::Toml(value)) {
                Some(result) => result.map_err(|m| ConfigError::new(key, &origin, m))?,
                None => {
                    let global = table::find(key).is_some_and(|t| t.scope == Scope::Global);
                    let message = if global {
                        "is a setting of the whole process, not of a camera: put it before \
                         the first [[camera]]"
                    } else {
                        "unknown setting"
                    };
                    return Err(ConfigError::new(key, &origin, message));
                }
            }
        }
        if let Some((_, first)) = out.iter().find(|(c, _)| c.id == id) {
            return Err(ConfigError::new(
                "id",
                &origin,
                format!("camera id {id:?} is already used by {first}"),
            ));
        }
        let device = device_of(&cam.source);
        if let Some((other, _)) = out
            .iter()
            .find(|(c, _)| device.is_some() && device_of(&c.source) == device)
        {
            return Err(ConfigError::new(
                "source",
                &origin,
                format!(
                    "camera {:?} already uses this device; a camera can be opened by one \
                     camera entry only",
                    other.id
                ),
            ));
        }
        out.push((cam, origin));
    }
    Ok(out.into_iter().map(|(c, _)| c).collect())
}

/// The device a source opens, resolved through `/dev/v4l/by-id` links, so
/// that two names of one camera are seen as one; `None` for sources that
/// may be opened more than once (test, files, network cameras).
fn device_of(source: &SourceSpec) -> Option<std::path::PathBuf> {
    match source {
        SourceSpec::Auto => Some("auto".into()),
        SourceSpec::Device(p) => Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        _ => None,
    }
}

/// Finds the key a TOML syntax error is about: the key on the line the
/// error points at.
fn key_from_toml_error(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    if let Some(span) = span {
        let line_start = text[..span.start.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = &text[line_start..];
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim().trim_matches('"');
            if !key.is_empty() && !key.contains('\n') {
                return key.to_string();
            }
        }
    }
    "config".into()
}
