//! Settings: defaults < TOML file (`--config`) < environment (`VR_*`) < flags.
//! Every setting is defined once, in `table`; every error names the key (and
//! where it came from); unknown keys are refused. Cameras come from
//! `[[camera]]` sections of the file, each starting from the flat
//! per-camera keys; a config without them is one camera named `cam`.

mod file;
mod table;
mod values;

use std::fmt;
use std::path::PathBuf;

use table::Input;
pub use table::{CameraSettings, Config, Scope, table};

/// The id of the one camera of a config without `[[camera]]` sections.
pub const DEFAULT_CAMERA: &str = "cam";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(Box<Config>),
    /// `video-recorder probe FILE`: our own MP4 reader, prints JSON.
    Probe(PathBuf),
    /// `video-recorder hash-password`: reads a password, prints its hash.
    HashPassword,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The key at fault (`port`), or the file / flag when no key applies.
    pub key: String,
    /// `config file x.toml`, `environment VR_PORT`, `flag --port`, …
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            origin: origin.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid setting `{}` ({}): {}",
            self.key, self.origin, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// `--help`, made from the settings table.
pub fn usage() -> String {
    let mut out = String::from(
        "video-recorder: live MJPEG from webcams and network cameras, H.264 MP4 clips on request

USAGE:
    video-recorder [OPTIONS]
    video-recorder probe FILE.mp4
    video-recorder hash-password    (reads a password on stdin, prints a hash)

OPTIONS (each also VR_<NAME> in the environment and <name> in the TOML file;
camera options set the one camera of a config without [[camera]] sections,
and are the defaults of every [[camera]]):
    --config FILE          TOML file with any of these settings and [[camera]] sections
",
    );
    for s in table() {
        let flag = format!("--{} {}", s.name.replace('_', "-"), s.hint);
        let scope = if s.scope == Scope::Camera {
            " (camera)"
        } else {
            ""
        };
        out.push_str(&format!(
            "    {flag:<30} {}{scope} [{}]\n",
            s.help, s.default
        ));
    }
    out.push_str(
        "    -h, --help             this text
    -V, --version          version
",
    );
    out
}

/// Environment variables with our prefix that are not settings: the config
/// path, and secrets, which are read by `auth` and never stored in `Config`.
pub const ENV_NOT_SETTINGS: &[&str] = &[
    "VR_CONFIG",
    "VR_PASSWORD",
    "VR_VIEWER_PASSWORD",
    "VR_API_TOKEN",
];

impl Config {
    /// Sets one key from text (environment or flag), naming the key on error.
    fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        match self.set_key(key, Input::Text(value)) {
            Some(result) => result.map_err(|m| ConfigError::new(key, origin, m)),
            None => Err(ConfigError::new(key, origin, "unknown setting")),
        }
    }

    /// Rules between settings (`tls_cert` with `tls_key`, the two user
    /// names), checked once every layer is applied: checked after each
    /// flag, `--tls-cert A --tls-key B` failed at the first of the two.
    fn validate_relations(&self, origin: &str) -> Result<(), ConfigError> {
        if self.admin_user == self.viewer_user {
            return Err(ConfigError::new(
                "viewer_user",
                origin,
                "must differ from admin_user",
            ));
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "tls_key",
                origin,
                "tls_cert and tls_key go together: set both or neither",
            ));
        }
        Ok(())
    }
}

/// Parses the command line and environment into what to do.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = String>,
    E: IntoIterator<Item = (String, String)>,
{
    let args: Vec<String> = args.into_iter().collect();
    let env: Vec<(String, String)> = env.into_iter().collect();
    match args.first().map(String::as_str) {
        Some("hash-password") if args.len() == 1 => return Ok(Command::HashPassword),
        Some("hash-password") => {
            return Err(ConfigError::new(
                "hash-password",
                "command line",
                "takes no arguments; it reads the password from standard input",
            ));
        }
        Some("probe") => {
            return match args.get(1) {
                Some(p) if args.len() == 2 => Ok(Command::Probe(PathBuf::from(p))),
                _ => Err(ConfigError::new(
                    "probe",
                    "command line",
                    "usage: video-recorder probe FILE.mp4",
                )),
            };
        }
        _ => {}
    }
    let keys = table();
    let is_key = |k: &str| keys.iter().any(|s| s.name == k);
    let is_switch = |k: &str| keys.iter().any(|s| s.name == k && s.hint.is_empty());

    // Flags first, so `--config` is known before the file is read.
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut config_path: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
        let Some(name) = arg.strip_prefix("--") else {
            return Err(ConfigError::new(
                &arg,
                "command line",
                "unexpected argument (see --help)",
            ));
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (name.to_string(), None),
        };
        let key = name.replace('-', "_");
        let origin = format!("flag --{name}");
        if key != "config" && !is_key(&key) {
            return Err(ConfigError::new(&key, &origin, "unknown flag (see --help)"));
        }
        if is_switch(&key) {
            flags.push((key, inline.unwrap_or_else(|| "true".into())));
            continue;
        }
        let Some(value) = inline.or_else(|| it.next()) else {
            return Err(ConfigError::new(&key, &origin, "needs a value"));
        };
        if key == "config" {
            config_path = Some(PathBuf::from(value));
        } else {
            flags.push((key, value));
        }
    }
    if config_path.is_none()
        && let Some((_, v)) = env.iter().find(|(k, _)| k == "VR_CONFIG")
    {
        config_path = Some(PathBuf::from(v));
    }

    let mut cfg = Config::default();
    let mut sections = Vec::new();
    // Where the flat `source` was set, if anywhere: with `[[camera]]`
    // sections it has no camera to set.
    let mut source_origin = None;
    if let Some(p) = &config_path {
        let read = file::read(p, &mut cfg)?;
        sections = read.cameras;
        source_origin = read
            .source_set
            .then(|| format!("config file {}", p.display()));
    }
    let mut env_sorted: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("VR_") && !ENV_NOT_SETTINGS.contains(&k.as_str()))
        .collect();
    env_sorted.sort();
    let layers = env_sorted
        .into_iter()
        .map(|(k, v)| {
            (
                k["VR_".len()..].to_ascii_lowercase(),
                v.clone(),
                format!("environment {k}"),
            )
        })
        .chain(
            flags
                .into_iter()
                .map(|(k, v)| (k.clone(), v, format!("flag --{}", k.replace('_', "-")))),
        );
    for (key, value, origin) in layers {
        cfg.set(&key, &value, &origin)?;
        if key == "source" {
            source_origin = Some(origin);
        }
    }
    // Rules between settings, once every layer is applied.
    cfg.validate_relations("the settings together")?;
    cfg.camera_sections = !sections.is_empty();
    cfg.cameras = if sections.is_empty() {
        vec![cfg.camera.clone()]
    } else {
        if let Some(origin) = source_origin {
            return Err(ConfigError::new(
                "source",
                &origin,
                "with [[camera]] sections each camera names its own source; a flat source \
                 (or --source) is only for a config without them",
            ));
        }
        file::cameras(&cfg.camera, sections)?
    };
    // The one size rule for frames (each side is checked by its key).
    if let Some(c) = cfg
        .cameras
        .iter()
        .find(|c| !crate::frame::size_ok((c.width, c.height)))
    {
        return Err(ConfigError::new(
            "height",
            &format!("camera {}", c.id),
            format!(
                "{}x{} is over the size limit: {}",
                c.width,
                c.height,
                crate::frame::SIZE_RULE
            ),
        ));
    }
    Ok(Command::Serve(Box::new(cfg)))
}

#[cfg(test)]
mod tests;
