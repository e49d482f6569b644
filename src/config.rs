//! Settings: defaults < TOML file (`--config`) < environment (`VR_*`) < flags.
//! Every error names the key (and where it came from); unknown keys are refused.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `auto` (`/dev/video0` if it opens, else `test`), `test`, `/dev/videoN`
    /// or a `/dev/v4l/by-id/…` path, or an MJPEG file.
    pub source: String,
    pub host: String,
    /// 0 picks a free port (logged), handy for tests.
    pub port: u16,
    pub clips_dir: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Seconds of frames before `/start` that a clip begins with.
    pub pre_roll_sec: f64,
    /// Simultaneous `/video` viewers; more get 503.
    pub max_viewers: usize,
    /// Byte budget of the clips directory in MiB (0: no budget).
    pub clips_max_mb: u64,
    /// Free space kept on the clips file system in MiB; oldest clips go first.
    pub clips_min_free_mb: u64,
    /// H.264 bitrate in kbit/s (0: chosen from the frame size).
    pub bitrate_kbps: u32,
    /// Default cap on a recording's length in seconds (0: none).
    pub max_duration_sec: f64,
    /// Seconds without a frame before the source counts as down.
    pub stall_timeout_sec: f64,
    /// A connection silent this long is closed; a request's head must
    /// arrive within twice this of its first byte.
    pub idle_timeout_sec: f64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// Name of the user who may do everything.
    pub admin_user: String,
    /// Argon2 PHC string from `video-recorder hash-password` (or `VR_PASSWORD`).
    pub password_hash: String,
    /// Name of the optional read-only user (watch, download, no start/stop).
    pub viewer_user: String,
    /// Argon2 PHC string for the viewer (or `VR_VIEWER_PASSWORD`).
    pub viewer_password_hash: String,
    /// Argon2 PHC string of a bearer token for scripts (or `VR_API_TOKEN`).
    pub api_token_hash: String,
    /// Serve anyone on a non-loopback address without credentials. Loud.
    pub insecure_no_auth: bool,
    /// Simultaneous `/video` viewers from one client address.
    pub max_viewers_per_client: usize,
    /// PEM certificate and key for HTTPS (both or neither).
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Generate a self-signed certificate on first start (fingerprint logged).
    pub tls_self_signed: bool,
    /// Reverse proxies (addresses or networks, comma-separated) whose
    /// `X-Forwarded-For` names the client for the lockout and viewer caps.
    pub trusted_proxies: String,
    /// Host names (comma-separated) a browser may use for this server when
    /// it serves without credentials, besides localhost and loopback
    /// addresses: the defence against DNS rebinding.
    pub allowed_hosts: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            source: "auto".into(),
            host: "127.0.0.1".into(),
            port: 8000,
            clips_dir: PathBuf::from("clips"),
            width: 1280,
            height: 720,
            fps: 30,
            pre_roll_sec: 0.0,
            max_viewers: 1000,
            clips_max_mb: 0,
            clips_min_free_mb: 512,
            bitrate_kbps: 0,
            max_duration_sec: 0.0,
            stall_timeout_sec: 3.0,
            idle_timeout_sec: 30.0,
            log_level: "info".into(),
            admin_user: "admin".into(),
            password_hash: String::new(),
            viewer_user: "viewer".into(),
            viewer_password_hash: String::new(),
            api_token_hash: String::new(),
            insecure_no_auth: false,
            max_viewers_per_client: 16,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_self_signed: false,
            trusted_proxies: String::new(),
            allowed_hosts: String::new(),
        }
    }
}

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

pub const USAGE: &str = "\
video-recorder: live MJPEG from a webcam, H.264 MP4 clips on request

USAGE:
    video-recorder [OPTIONS]
    video-recorder probe FILE.mp4
    video-recorder hash-password    (reads a password on stdin, prints a hash)

OPTIONS (each also VR_<NAME> in the environment and <name> in the TOML file):
    --source SRC           auto | test | /dev/videoN | FILE.mjpeg   [auto]
    --host H               address to listen on                   [127.0.0.1]
    --port P               port (0: any free port)                [8000]
    --clips-dir DIR        where clips go                         [clips]
    --config FILE          TOML file with any of these settings
    --width W --height H   frame size asked of the source          [1280x720]
    --fps N                frame rate asked of the source          [30]
    --pre-roll-sec S       seconds before /start a clip begins     [0]
    --max-viewers N        simultaneous /video viewers             [1000]
    --clips-max-mb N       byte budget of the clips dir, 0: none   [0]
    --clips-min-free-mb N  free disk kept, oldest clips go first   [512]
    --bitrate-kbps N       H.264 bitrate, 0: from frame size       [0]
    --max-duration-sec S   default cap on a recording, 0: none     [0]
    --stall-timeout-sec S  no frame this long: source is down      [3]
    --idle-timeout-sec S   close a connection silent this long     [30]
    --log-level L          error|warn|info|debug|trace             [info]
    --admin-user U         user allowed to start and stop          [admin]
    --password-hash H      admin's hash (or VR_PASSWORD=plain in the environment)
    --viewer-user U        read-only user                          [viewer]
    --viewer-password-hash H   (or VR_VIEWER_PASSWORD)
    --api-token-hash H     bearer token's hash (or VR_API_TOKEN)
    --insecure-no-auth     serve a non-loopback address without credentials
    --max-viewers-per-client N                                     [16]
    --tls-cert FILE --tls-key FILE   serve HTTPS with this certificate
    --tls-self-signed      make a self-signed certificate on first start
    --trusted-proxies LIST proxies whose X-Forwarded-For is believed  [none]
    --allowed-hosts LIST   host names allowed without credentials   [none]
    -h, --help             this text
    -V, --version          version
";

/// Keys settable from the environment and flags, in `snake_case`.
const KEYS: &[&str] = &[
    "source",
    "host",
    "port",
    "clips_dir",
    "width",
    "height",
    "fps",
    "pre_roll_sec",
    "max_viewers",
    "clips_max_mb",
    "clips_min_free_mb",
    "bitrate_kbps",
    "max_duration_sec",
    "stall_timeout_sec",
    "idle_timeout_sec",
    "log_level",
    "admin_user",
    "password_hash",
    "viewer_user",
    "viewer_password_hash",
    "api_token_hash",
    "insecure_no_auth",
    "max_viewers_per_client",
    "tls_cert",
    "tls_key",
    "tls_self_signed",
    "trusted_proxies",
    "allowed_hosts",
];

/// Flags that take no value: their presence means `true`.
const SWITCHES: &[&str] = &["insecure_no_auth", "tls_self_signed"];

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
        let err = |message: String| ConfigError {
            key: key.to_string(),
            origin: origin.to_string(),
            message,
        };
        fn boolean(v: &str) -> Result<bool, String> {
            match v.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(format!("expected true or false, got {v:?}")),
            }
        }
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("expected a number, got {v:?}"))
        }
        match key {
            "source" => self.source = value.to_string(),
            "host" => self.host = value.to_string(),
            "port" => self.port = num(value).map_err(err)?,
            "clips_dir" => self.clips_dir = PathBuf::from(value),
            "width" => self.width = num(value).map_err(err)?,
            "height" => self.height = num(value).map_err(err)?,
            "fps" => self.fps = num(value).map_err(err)?,
            "pre_roll_sec" => self.pre_roll_sec = num(value).map_err(err)?,
            "max_viewers" => self.max_viewers = num(value).map_err(err)?,
            "clips_max_mb" => self.clips_max_mb = num(value).map_err(err)?,
            "clips_min_free_mb" => self.clips_min_free_mb = num(value).map_err(err)?,
            "bitrate_kbps" => self.bitrate_kbps = num(value).map_err(err)?,
            "max_duration_sec" => self.max_duration_sec = num(value).map_err(err)?,
            "stall_timeout_sec" => self.stall_timeout_sec = num(value).map_err(err)?,
            "idle_timeout_sec" => self.idle_timeout_sec = num(value).map_err(err)?,
            "log_level" => self.log_level = value.to_string(),
            "admin_user" => self.admin_user = value.to_string(),
            "password_hash" => self.password_hash = value.to_string(),
            "viewer_user" => self.viewer_user = value.to_string(),
            "viewer_password_hash" => self.viewer_password_hash = value.to_string(),
            "api_token_hash" => self.api_token_hash = value.to_string(),
            "insecure_no_auth" => self.insecure_no_auth = boolean(value).map_err(err)?,
            "max_viewers_per_client" => self.max_viewers_per_client = num(value).map_err(err)?,
            "tls_cert" => self.tls_cert = PathBuf::from(value),
            "tls_key" => self.tls_key = PathBuf::from(value),
            "tls_self_signed" => self.tls_self_signed = boolean(value).map_err(err)?,
            "trusted_proxies" => self.trusted_proxies = value.to_string(),
            "allowed_hosts" => self.allowed_hosts = value.to_string(),
            _ => return Err(err("unknown setting".into())),
        }
        Ok(())
    }

    /// Checks ranges and relations; the first problem found is reported.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.validate_fields(origin)?;
        self.validate_relations(origin)
    }

    /// Rules between settings (`tls_cert` with `tls_key`, the two user
    /// names), checked once a whole layer is applied: checked after each
    /// flag, `--tls-cert A --tls-key B` failed at the first of the two.
    fn validate_relations(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: &str| {
            Err(ConfigError {
                key: key.into(),
                origin: origin.into(),
                message: message.into(),
            })
        };
        if self.admin_user == self.viewer_user {
            return err("viewer_user", "must differ from admin_user");
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return err(
                "tls_key",
                "tls_cert and tls_key go together: set both or neither",
            );
        }
        Ok(())
    }

    /// Each setting on its own: ranges, forms.
    fn validate_fields(&self, origin: &str) -> Result<(), ConfigError> {
        let err = |key: &str, message: &str| {
            Err(ConfigError {
                key: key.into(),
                origin: origin.into(),
                message: message.into(),
            })
        };
        if self.source.trim().is_empty() {
            return err("source", "must not be empty");
        }
        if self.host.trim().is_empty() {
            return err("host", "must not be empty");
        }
        if self.clips_dir.as_os_str().is_empty() {
            return err("clips_dir", "must not be empty");
        }
        if !(16..=7680).contains(&self.width) || !self.width.is_multiple_of(2) {
            return err("width", "must be an even number from 16 to 7680");
        }
        if !(16..=4320).contains(&self.height) || !self.height.is_multiple_of(2) {
            return err("height", "must be an even number from 16 to 4320");
        }
        if !(1..=120).contains(&self.fps) {
            return err("fps", "must be from 1 to 120");
        }
        if !(0.0..=60.0).contains(&self.pre_roll_sec) {
            return err("pre_roll_sec", "must be from 0 to 60 seconds");
        }
        if !(1..=100_000).contains(&self.max_viewers) {
            return err("max_viewers", "must be from 1 to 100000");
        }
        if self.bitrate_kbps != 0 && !(100..=50_000).contains(&self.bitrate_kbps) {
            return err("bitrate_kbps", "must be 0 (automatic) or 100 to 50000");
        }
        if !(self.max_duration_sec >= 0.0 && self.max_duration_sec.is_finite()) {
            return err(
                "max_duration_sec",
                "must be 0 (no cap) or a positive number",
            );
        }
        if !(0.5..=600.0).contains(&self.stall_timeout_sec) {
            return err("stall_timeout_sec", "must be from 0.5 to 600 seconds");
        }
        if !(0.5..=3600.0).contains(&self.idle_timeout_sec) {
            return err("idle_timeout_sec", "must be from 0.5 to 3600 seconds");
        }
        if self.log_level.parse::<log::LevelFilter>().is_err() {
            return err("log_level", "must be error, warn, info, debug or trace");
        }
        for (key, name) in [
            ("admin_user", &self.admin_user),
            ("viewer_user", &self.viewer_user),
        ] {
            if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
                return err(key, "must be non-empty, without ':' or control characters");
            }
        }
        for (key, hash) in [
            ("password_hash", &self.password_hash),
            ("viewer_password_hash", &self.viewer_password_hash),
            ("api_token_hash", &self.api_token_hash),
        ] {
            if !hash.is_empty() && argon2::PasswordHash::new(hash).is_err() {
                return err(
                    key,
                    "is not a password hash; make one with `video-recorder hash-password`",
                );
            }
        }
        if !(1..=100_000).contains(&self.max_viewers_per_client) {
            return err("max_viewers_per_client", "must be from 1 to 100000");
        }
        if let Err(e) = crate::http::client::Proxies::parse(&self.trusted_proxies) {
            return err("trusted_proxies", &e);
        }
        for name in self.allowed_hosts.split(',').map(str::trim) {
            if name.contains(|c: char| c.is_whitespace() || "/@?#".contains(c) || c.is_control()) {
                return err(
                    "allowed_hosts",
                    "must be host names (or host:port), comma-separated",
                );
            }
        }
        Ok(())
    }

    /// Reads a TOML file; unknown keys and wrong types are errors naming the key.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let origin = format!("config file {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            key: "config".into(),
            origin: origin.clone(),
            message: format!("cannot read: {e}"),
        })?;
        toml::from_str(&text).map_err(|e| {
            let message = e.message().to_string();
            let key = key_from_toml_error(&message, &text, e.span());
            ConfigError {
                key,
                origin,
                message: message.trim().to_string(),
            }
        })
    }
}

/// Finds the key a TOML error is about: the unknown field it names, or the
/// key on the line the error points at.
fn key_from_toml_error(message: &str, text: &str, span: Option<std::ops::Range<usize>>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        return rest[..end].to_string();
    }
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

/// Parses the command line and environment into what to do.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = String>,
    E: IntoIterator<Item = (String, String)>,
{
    let args: Vec<String> = args.into_iter().collect();
    let env: Vec<(String, String)> = env.into_iter().collect();
    if args.first().map(String::as_str) == Some("hash-password") {
        return if args.len() == 1 {
            Ok(Command::HashPassword)
        } else {
            Err(ConfigError {
                key: "hash-password".into(),
                origin: "command line".into(),
                message: "takes no arguments; it reads the password from standard input".into(),
            })
        };
    }
    if args.first().map(String::as_str) == Some("probe") {
        return match args.get(1) {
            Some(p) if args.len() == 2 => Ok(Command::Probe(PathBuf::from(p))),
            _ => Err(ConfigError {
                key: "probe".into(),
                origin: "command line".into(),
                message: "usage: video-recorder probe FILE.mp4".into(),
            }),
        };
    }

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
            return Err(ConfigError {
                key: arg.clone(),
                origin: "command line".into(),
                message: "unexpected argument (see --help)".into(),
            });
        };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (name.to_string(), None),
        };
        let key = name.replace('-', "_");
        if key != "config" && !KEYS.contains(&key.as_str()) {
            return Err(ConfigError {
                key,
                origin: format!("flag --{name}"),
                message: "unknown flag (see --help)".into(),
            });
        }
        if SWITCHES.contains(&key.as_str()) {
            flags.push((key, inline.unwrap_or_else(|| "true".into())));
            continue;
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => {
                return Err(ConfigError {
                    key,
                    origin: format!("flag --{name}"),
                    message: "needs a value".into(),
                });
            }
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

    let mut cfg = match &config_path {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    };
    if let Some(p) = &config_path {
        cfg.validate(&format!("config file {}", p.display()))?;
    }
    let mut env_sorted: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("VR_") && !ENV_NOT_SETTINGS.contains(&k.as_str()))
        .collect();
    env_sorted.sort();
    for (k, v) in env_sorted {
        let key = k["VR_".len()..].to_ascii_lowercase();
        let origin = format!("environment {k}");
        if !KEYS.contains(&key.as_str()) {
            return Err(ConfigError {
                key,
                origin,
                message: "unknown setting".into(),
            });
        }
        cfg.set(&key, v, &origin)?;
        cfg.validate_fields(&origin)?;
    }
    for (key, v) in &flags {
        let origin = format!("flag --{}", key.replace('_', "-"));
        cfg.set(key, v, &origin)?;
        cfg.validate_fields(&origin)?;
    }
    // Rules between settings, once every layer is applied (a config file
    // alone was checked whole above).
    cfg.validate_relations("the settings together")?;
    Ok(Command::Serve(Box::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn serve(a: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        match parse(args(a), env)? {
            Command::Serve(c) => Ok(*c),
            other => panic!("expected serve, got {other:?}"),
        }
    }

    fn tmp_toml(name: &str, body: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("vr-cfg-{}-{name}.toml", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn settings_that_go_together_may_come_one_flag_at_a_time() {
        let c = serve("--tls-cert a.pem --tls-key b.pem", &[]).unwrap();
        assert_eq!(c.tls_key, PathBuf::from("b.pem"));
        let c = serve("--admin-user viewer --viewer-user watcher", &[]).unwrap();
        assert_eq!(
            (c.admin_user.as_str(), c.viewer_user.as_str()),
            ("viewer", "watcher")
        );
        let e = serve("--tls-cert a.pem", &[]).unwrap_err();
        assert_eq!(e.key, "tls_key");
        let e = serve("", &[("VR_TLS_KEY", "k.pem")]).unwrap_err();
        assert_eq!(e.key, "tls_key");
        // One layer may finish what another began.
        let c = serve("--viewer-user watcher", &[("VR_ADMIN_USER", "viewer")]).unwrap();
        assert_eq!(c.admin_user, "viewer");
    }

    #[test]
    fn defaults_match_the_original_readme() {
        let c = serve("", &[]).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8000));
        assert_eq!(c.clips_dir, PathBuf::from("clips"));
        assert_eq!(c.source, "auto");
    }

    #[test]
    fn layers_apply_in_order() {
        let p = tmp_toml("layers", "port = 9000\nfps = 15\nwidth = 640\n");
        let c = serve(
            &format!("--config {} --port 9002", p.display()),
            &[("VR_PORT", "9001"), ("VR_FPS", "20")],
        )
        .unwrap();
        assert_eq!(c.port, 9002, "flag beats env");
        assert_eq!(c.fps, 20, "env beats file");
        assert_eq!(c.width, 640, "file beats default");
        let c = serve(
            "--port=9003 --clips-dir /x",
            &[("VR_CONFIG", p.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(
            (c.port, c.fps, c.clips_dir),
            (9003, 15, PathBuf::from("/x"))
        );
    }

    #[test]
    fn errors_name_the_key() {
        let p = tmp_toml("unknown", "port = 8000\nframerate = 30\n");
        let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
        assert_eq!(e.key, "framerate");
        let p = tmp_toml("type", "width = 640\nport = \"eighty\"\n");
        let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
        assert_eq!(e.key, "port", "{e}");
        let p = tmp_toml("range", "fps = 0\n");
        let e = serve(&format!("--config {}", p.display()), &[]).unwrap_err();
        assert_eq!(e.key, "fps");
        let e = serve("", &[("VR_PORT", "99999")]).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.origin.as_str()),
            ("port", "environment VR_PORT")
        );
        let e = serve("", &[("VR_COLOUR", "red")]).unwrap_err();
        assert_eq!(e.key, "colour");
        let e = serve("--width 641", &[]).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.origin.as_str()),
            ("width", "flag --width")
        );
        let e = serve("--bogus 1", &[]).unwrap_err();
        assert_eq!(e.key, "bogus");
        let e = serve("--port", &[]).unwrap_err();
        assert!(e.to_string().contains("needs a value"), "{e}");
        let e = serve("--config /nonexistent/vr.toml", &[]).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/vr.toml"), "{e}");
        let e = serve("--log-level loud", &[]).unwrap_err();
        assert_eq!(e.key, "log_level");
    }

    #[test]
    fn subcommands() {
        assert_eq!(parse(args("--help"), []), Ok(Command::Help));
        assert_eq!(
            parse(args("probe a.mp4"), []),
            Ok(Command::Probe(PathBuf::from("a.mp4")))
        );
        assert!(parse(args("probe"), []).is_err());
    }
}
