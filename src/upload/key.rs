//! Object keys: the `s3_prefix` template, checked when the settings are
//! read, filled in per clip. Imports only the ids, so that the settings can
//! hold a parsed template.

use crate::ids::ClipId;

/// An `s3_prefix`: `{device}`, `{camera}`, `{date}` (the clip's UTC day,
/// `YYYY-MM-DD`) and `{id}`, which it must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate(String);

impl KeyTemplate {
    pub fn parse(t: &str) -> Result<KeyTemplate, String> {
        if !t.contains("{id}") {
            return Err("must contain {id} (else clips would overwrite each other)".into());
        }
        if t.starts_with('/') || t.contains("//") || t.contains("..") {
            return Err("must be a relative key: no leading /, no // or ..".into());
        }
        Ok(KeyTemplate(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object key of clip `id` of `camera`.
    pub fn key_for(&self, device: &str, camera: &str, id: &ClipId) -> String {
        let d = id.stamp();
        let date = format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]);
        self.0
            .replace("{device}", device)
            .replace("{camera}", camera)
            .replace("{date}", &date)
            .replace("{id}", id)
    }
}

impl Default for KeyTemplate {
    fn default() -> KeyTemplate {
        KeyTemplate("{device}/{camera}/{date}/{id}.mp4".into())
    }
}

/// The manifest's key: the clip's, `.mp4` replaced by `.json`.
pub fn manifest_key(key: &str) -> String {
    match key.strip_suffix(".mp4") {
        Some(k) => format!("{k}.json"),
        None => format!("{key}.json"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_template() {
        let t = KeyTemplate::default();
        assert_eq!(
            t.key_for("pi", "door", &"door-20261202-063000".parse().unwrap()),
            "pi/door/2026-12-02/door-20261202-063000.mp4"
        );
        assert_eq!(manifest_key("a/b.mp4"), "a/b.json");
        assert!(KeyTemplate::parse("clips/{camera}.mp4").is_err());
        assert!(KeyTemplate::parse("/x/{id}").is_err());
        assert!(KeyTemplate::parse(t.as_str()).is_ok());
    }
}
