//! Every setting, defined once: name, type, default, range check, help text
//! and scope. The one table below generates the `Config` and
//! `CameraSettings` fields, their defaults, the setters used by the TOML
//! file, the environment and flags, `--help`, and the list the README test
//! checks against.

use std::path::PathBuf;

use crate::ids::CameraId;
use crate::proxies::ProxyList;
use crate::source::SourceSpec;
use crate::source::rtsp::Transport;
use crate::upload::KeyTemplate;

/// Where a setting applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole process (address, users, clips directory).
    Global,
    /// One camera: a `[[camera]]` key, or a flat key for the one camera of a
    /// config without `[[camera]]` (and the default for every camera).
    Camera,
}

/// One row of the table, for `--help`, the README test and key lookups.
#[derive(Debug, Clone)]
pub struct Setting {
    pub name: &'static str,
    pub scope: Scope,
    /// What the flag takes (`N`, `S`, `DIR`); empty for a switch.
    pub hint: &'static str,
    pub help: &'static str,
    pub default: String,
}

/// A value as it arrives: text (environment, flags) or a TOML value.
pub enum Input<'a> {
    Text(&'a str),
    Toml(&'a toml::Value),
}

/// How each setting type reads text and TOML, and shows its default.
pub trait Value: Sized {
    fn read(input: Input<'_>) -> Result<Self, String>;
    fn show(&self) -> String;
}

fn toml_kind(v: &toml::Value) -> &'static str {
    v.type_str()
}

impl Value for String {
    fn read(input: Input<'_>) -> Result<String, String> {
        match input {
            Input::Text(t) => Ok(t.to_string()),
            Input::Toml(toml::Value::String(s)) => Ok(s.clone()),
            Input::Toml(v) => Err(format!("expected a string, got {}", toml_kind(v))),
        }
    }
    fn show(&self) -> String {
        if self.is_empty() {
            "none".into()
        } else {
            self.clone()
        }
    }
}

impl Value for PathBuf {
    fn read(input: Input<'_>) -> Result<PathBuf, String> {
        String::read(input).map(PathBuf::from)
    }
    fn show(&self) -> String {
        self.display().to_string().show()
    }
}

impl Value for bool {
    fn read(input: Input<'_>) -> Result<bool, String> {
        match input {
            Input::Text(t) => match t.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(format!("expected true or false, got {t:?}")),
            },
            Input::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Input::Toml(v) => Err(format!("expected true or false, got {}", toml_kind(v))),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn read(input: Input<'_>) -> Result<$t, String> {
                match input {
                    Input::Text(t) => t
                        .trim()
                        .parse()
                        .map_err(|_| format!("expected a whole number, got {t:?}")),
                    Input::Toml(toml::Value::Integer(i)) => <$t>::try_from(*i)
                        .map_err(|_| format!("{i} is out of range")),
                    Input::Toml(v) => Err(format!("expected a whole number, got {}", toml_kind(v))),
                }
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
integer!(u16, u32, u64, usize);

impl Value for f64 {
    fn read(input: Input<'_>) -> Result<f64, String> {
        match input {
            Input::Text(t) => t
                .trim()
                .parse()
                .map_err(|_| format!("expected a number, got {t:?}")),
            Input::Toml(toml::Value::Float(f)) => Ok(*f),
            Input::Toml(toml::Value::Integer(i)) => Ok(*i as f64),
            Input::Toml(v) => Err(format!("expected a number, got {}", toml_kind(v))),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// Range checks shared by several rows.
fn within<T: PartialOrd + Copy>(lo: T, hi: T, message: &'static str) -> impl Fn(&T) -> Check {
    move |v| {
        if (lo..=hi).contains(v) {
            Ok(())
        } else {
            Err(message.into())
        }
    }
}

type Check = Result<(), String>;

#[allow(clippy::ptr_arg)] // checks take the setting's own type
fn not_empty(v: &String) -> Check {
    if v.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

fn any<T>(_: &T) -> Check {
    Ok(())
}

#[allow(clippy::ptr_arg)] // checks take the setting's own type
fn user_name(v: &String) -> Check {
    if v.is_empty() || v.contains(':') || v.chars().any(char::is_control) {
        Err("must be non-empty, without ':' or control characters".into())
    } else {
        Ok(())
    }
}

#[allow(clippy::ptr_arg)] // checks take the setting's own type
fn password_hash(v: &String) -> Check {
    if !v.is_empty() && argon2::PasswordHash::new(v).is_err() {
        Err("is not a password hash; make one with `video-recorder hash-password`".into())
    } else {
        Ok(())
    }
}

fn even(lo: u32, hi: u32, message: &'static str) -> impl Fn(&u32) -> Check {
    move |v| {
        if (lo..=hi).contains(v) && v.is_multiple_of(2) {
            Ok(())
        } else {
            Err(message.into())
        }
    }
}

/// Reads `input` as the setting's type, checks it, and only then stores it.
fn assign<T: Value>(slot: &mut T, input: Input<'_>, check: &dyn Fn(&T) -> Check) -> Check {
    let v = T::read(input)?;
    check(&v)?;
    *slot = v;
    Ok(())
}

macro_rules! settings {
    (
        global { $( $g:ident : $gt:ty = $gd:expr, $gh:literal, $ghelp:literal, $gc:expr; )* }
        camera { $( $c:ident : $ct:ty = $cd:expr, $ch:literal, $chelp:literal, $cc:expr; )* }
    ) => {
        /// The settings of the whole process, and the flat per-camera keys.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( pub $g: $gt, )*
            /// The flat per-camera keys: the one camera of a config without
            /// `[[camera]]`, and every camera's defaults.
            pub camera: CameraSettings,
            /// The cameras, in order; the first is the original routes' camera.
            pub cameras: Vec<CameraSettings>,
            /// Whether they came from `[[camera]]` sections (then each has
            /// its own directory for clips).
            pub camera_sections: bool,
        }

        /// One camera's settings. `Debug` shows each as `Value::show` does
        /// (`source` without credentials).
        #[derive(Clone, PartialEq)]
        pub struct CameraSettings {
            /// `[a-z0-9-]{1,32}`, unique; `cam` for a config without `[[camera]]`.
            pub id: CameraId,
            $( pub $c: $ct, )*
        }

        impl std::fmt::Debug for CameraSettings {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut d = f.debug_struct("CameraSettings");
                d.field("id", &self.id);
                $( d.field(stringify!($c), &self.$c.show()); )*
                d.finish()
            }
        }

        impl Default for CameraSettings {
            fn default() -> CameraSettings {
                let id = super::DEFAULT_CAMERA.parse().expect("a camera id");
                CameraSettings { id, $( $c: $cd.into(), )* }
            }
        }

        impl Default for Config {
            fn default() -> Config {
                Config {
                    $( $g: $gd.into(), )*
                    camera: CameraSettings::default(),
                    cameras: vec![CameraSettings::default()],
                    camera_sections: false,
                }
            }
        }

        impl Config {
            /// Sets a global or flat camera key; `None` if no such key.
            pub(super) fn set_key(&mut self, key: &str, input: Input<'_>) -> Option<Check> {
                match key {
                    $( stringify!($g) => Some(assign(&mut self.$g, input, &$gc)), )*
                    _ => self.camera.set_key(key, input),
                }
            }
        }

        impl CameraSettings {
            /// Sets a per-camera key; `None` if no such key.
            pub(super) fn set_key(&mut self, key: &str, input: Input<'_>) -> Option<Check> {
                match key {
                    $( stringify!($c) => Some(assign(&mut self.$c, input, &$cc)), )*
                    _ => None,
                }
            }
        }

        /// Every setting, in `--help` order.
        pub fn table() -> Vec<Setting> {
            let g = Config::default();
            let c = CameraSettings::default();
            let _ = (&g, &c);
            vec![
                $( Setting { name: stringify!($g), scope: Scope::Global, hint: $gh, help: $ghelp, default: g.$g.show() }, )*
                $( Setting { name: stringify!($c), scope: Scope::Camera, hint: $ch, help: $chelp, default: c.$c.show() }, )*
            ]
        }
    };
}

settings! {
    global {
        host: String = "127.0.0.1", "H", "address to listen on", not_empty;
        port: u16 = 8000u16, "P", "port (0: any free port, logged)", any;
        clips_dir: PathBuf = "clips", "DIR", "where clips go (one subdirectory per [[camera]])",
            |v: &PathBuf| if v.as_os_str().is_empty() { Err("must not be empty".into()) } else { Ok(()) };
        clips_max_mb: u64 = 0u64, "N", "byte budget of the clips directory, all cameras (0: none)", any;
        clips_min_free_mb: u64 = 512u64, "N", "free disk kept; the oldest clips go first", any;
        max_viewers: usize = 1000usize, "N", "simultaneous live viewers, all cameras; more get 503",
            within(1, 100_000, "must be from 1 to 100000");
        max_viewers_per_client: usize = 40usize, "N", "simultaneous live viewers from one client address",
            within(1, 100_000, "must be from 1 to 100000");
        idle_timeout_sec: f64 = 30.0, "S", "close a connection silent this long",
            within(0.5, 3600.0, "must be from 0.5 to 3600 seconds");
        log_level: log::LevelFilter = log::LevelFilter::Info, "L", "error|warn|info|debug|trace", any;
        admin_user: String = "admin", "U", "user allowed to start and stop", user_name;
        password_hash: String = "", "H", "admin's hash (or VR_PASSWORD=plain in the environment)", password_hash;
        viewer_user: String = "viewer", "U", "read-only user", user_name;
        viewer_password_hash: String = "", "H", "viewer's hash (or VR_VIEWER_PASSWORD)", password_hash;
        api_token_hash: String = "", "H", "bearer token's hash (or VR_API_TOKEN)", password_hash;
        insecure_no_auth: bool = false, "", "serve a non-loopback address without credentials", any;
        tls_cert: PathBuf = "", "FILE", "PEM certificate for HTTPS (with tls_key)", any;
        tls_key: PathBuf = "", "FILE", "PEM key for HTTPS (with tls_cert)", any;
        tls_self_signed: bool = false, "", "make a self-signed certificate on first start", any;
        trusted_proxies: ProxyList = ProxyList::default(), "LIST", "proxies whose X-Forwarded-For is believed", any;
        allowed_hosts: String = "", "LIST", "host names allowed without credentials",
            |v: &String| if v.split(',').map(str::trim).any(|n| n.contains(|c: char| c.is_whitespace() || "/@?#".contains(c) || c.is_control())) {
                Err("must be host names (or host:port), comma-separated".into())
            } else { Ok(()) };
        s3_bucket: String = "", "NAME", "S3 bucket finished clips are uploaded to (empty: no uploads)",
            |v: &String| if v.is_empty() || (v.len() >= 3 && v.len() <= 63 && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')) {
                Ok(())
            } else { Err("must be a bucket name: 3 to 63 of a-z, 0-9, '-' and '.'".into()) };
        s3_region: String = "us-east-1", "R", "the bucket's region", not_empty;
        s3_endpoint_url: String = "", "URL", "S3 API endpoint (MinIO, R2, B2, Wasabi; empty: AWS)",
            |v: &String| if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
                Ok(())
            } else { Err("must be an http:// or https:// URL, or empty for AWS".into()) };
        s3_path_style: bool = false, "", "path-style requests (MinIO, most self-hosted servers)", any;
        s3_prefix: KeyTemplate = KeyTemplate::default(), "T", "object key template", any;
        s3_device: String = "", "NAME", "{device} in keys (empty: the host name)", any;
        s3_delete_after_upload: bool = false, "", "delete the local clip once the bucket holds it (checked)", any;
        s3_max_kbps: u64 = 0u64, "N", "upload rate cap in kbit/s (0: none)", any;
        s3_storage_class: String = "", "C", "x-amz-storage-class of uploads (empty: the bucket's default)",
            |v: &String| if v.chars().all(|c| c.is_ascii_uppercase() || c == '_') { Ok(()) } else { Err("must be like STANDARD_IA".into()) };
        s3_credentials_file: PathBuf = "", "FILE", "AWS credentials file (else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)", any;
        s3_part_mb: f64 = 16.0, "N", "clips up to this size go in one PUT, larger ones in parts this size (S3 wants 5 or more)",
            within(0.01, 512.0, "must be from 0.01 to 512 MiB (S3 wants 5 or more; each part is read whole)");
    }
    camera {
        source: SourceSpec = SourceSpec::Auto, "SRC", "auto | test | /dev/videoN | FILE.mjpeg | http://… | rtsp://…", any;
        width: u32 = 1280u32, "W", "frame width asked of the source",
            even(16, crate::frame::MAX_SIDE, "must be an even number from 16 to 3840");
        height: u32 = 720u32, "H", "frame height asked of the source (width x height at most 3840x2160)",
            even(16, crate::frame::MAX_SIDE, "must be an even number from 16 to 3840");
        fps: u32 = 30u32, "N", "frame rate asked of the source", within(1, 120, "must be from 1 to 120");
        pre_roll_sec: f64 = 0.0, "S", "seconds before /start a clip begins",
            within(0.0, 60.0, "must be from 0 to 60 seconds");
        max_duration_sec: f64 = 0.0, "S", "default cap on a recording (0: none)",
            |v: &f64| if *v >= 0.0 && v.is_finite() { Ok(()) } else { Err("must be 0 (no cap) or a positive number".into()) };
        bitrate_kbps: u32 = 0u32, "N", "H.264 bitrate (0: from the frame size)",
            |v: &u32| if *v == 0 || (100..=50_000).contains(v) { Ok(()) } else { Err("must be 0 (automatic) or 100 to 50000".into()) };
        stall_timeout_sec: f64 = 3.0, "S", "no frame this long: the source is down",
            within(0.5, 600.0, "must be from 0.5 to 600 seconds");
        rtsp_transport: Transport = Transport::Auto, "T", "RTSP cameras: auto (tcp, else udp on 461), tcp or udp", any;
        preview_fps: u32 = 5u32, "N", "RTSP cameras: rate of the MJPEG view decoded on demand",
            within(1, 30, "must be from 1 to 30");
        preview_width: u32 = 640u32, "W", "RTSP cameras: widest MJPEG view and snapshot",
            even(16, crate::frame::MAX_SIDE, "must be an even number from 16 to 3840");
    }
}

/// The row for `key`, if it is a setting.
pub fn find(key: &str) -> Option<Setting> {
    table().into_iter().find(|s| s.name == key)
}
