//! video-recorder: wiring only. Each role lives in its own module.

mod budget;
mod ca;
mod camera;
mod capture;
mod clips;
mod clock;
mod config;
mod error;
mod fmp4;
mod frame;
mod http;
mod hub;
mod ids;
mod live;
mod picture;
mod proxies;
mod recorder;
mod source;
mod sync;
mod system;
#[cfg(test)]
mod test_tools;
mod upload;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use config::{Command, Config};

fn main() -> ExitCode {
    system::limit_malloc_arenas();
    let cfg = match config::parse(std::env::args().skip(1), std::env::vars()) {
        Ok(Command::Serve(cfg)) => *cfg,
        Ok(Command::Help) => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("video-recorder {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::HashPassword) => {
            return match read_password().and_then(|p| http::auth::hash_secret(&p)) {
                Ok(hash) => {
                    println!("{hash}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("video-recorder: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Ok(Command::Probe(path)) => {
            return match recorder::probe(&path) {
                Ok(json) => {
                    println!("{json:#}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("video-recorder: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Err(e) => {
            eprintln!("video-recorder: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(cfg.log_level);
    let auth = auth_settings(&cfg);
    let upload = upload_settings(&cfg);
    let creds = match http::auth::Credentials::load(&auth, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("video-recorder: {e}");
            return ExitCode::from(2);
        }
    };
    let s3_creds = match upload::setup::credentials_for(&upload) {
        Ok(c) => c,
        Err((key, e)) => {
            eprintln!("video-recorder: {key}: {e}");
            return ExitCode::from(2);
        }
    };
    forget_secrets_in_environment();
    if let Err(e) = http::auth::check_exposure(&auth, &creds) {
        log::error!("{e}");
        eprintln!("video-recorder: {e}");
        return ExitCode::from(2);
    }
    match run(cfg, auth, upload, creds, s3_creds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Each role's own settings, from the one `Config`.
fn auth_settings(cfg: &Config) -> http::auth::AuthSettings {
    http::auth::AuthSettings {
        host: cfg.host.clone(),
        insecure_no_auth: cfg.insecure_no_auth,
        admin_user: cfg.admin_user.clone(),
        viewer_user: cfg.viewer_user.clone(),
        password_hash: cfg.password_hash.clone(),
        viewer_password_hash: cfg.viewer_password_hash.clone(),
        api_token_hash: cfg.api_token_hash.clone(),
    }
}

fn tls_settings(cfg: &Config) -> http::tls::TlsSettings {
    http::tls::TlsSettings {
        host: cfg.host.clone(),
        clips_dir: cfg.clips_dir.clone(),
        cert: cfg.tls_cert.clone(),
        key: cfg.tls_key.clone(),
        self_signed: cfg.tls_self_signed,
    }
}

fn upload_settings(cfg: &Config) -> upload::UploadSettings {
    upload::UploadSettings {
        bucket: cfg.s3_bucket.clone(),
        region: cfg.s3_region.clone(),
        endpoint: cfg.s3_endpoint_url.clone(),
        path_style: cfg.s3_path_style,
        prefix: cfg.s3_prefix.clone(),
        device: cfg.s3_device.clone(),
        delete_after_upload: cfg.s3_delete_after_upload,
        max_kbps: cfg.s3_max_kbps,
        storage_class: cfg.s3_storage_class.clone(),
        part_bytes: (cfg.s3_part_mb * 1024.0 * 1024.0) as u64,
        credentials_file: cfg.s3_credentials_file.clone(),
    }
}

fn init_logging(level: log::LevelFilter) {
    // tiny_http's own lines stay: its warnings (connections dropped when
    // descriptors run out) are the only sign of that state.
    let log_cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        // ureq's debug lines show requests and its trace lines their bytes,
        // signatures and session tokens among them: never ours to print.
        .add_filter_ignore_str("ureq")
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        log_cfg,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}

/// Plain secrets are hashed (and S3's read, and the settings parsed) by now:
/// take them out of the environment (and any `VR_*` setting whose value is a
/// URL with credentials, such as `VR_SOURCE=rtsp://user:pw@cam/`), and
/// wipe the bytes the kernel shows in `/proc/PID/environ` (unsetting alone
/// leaves them there for the life of the process). Runs before any other
/// thread exists: the environment is not thread-safe.
fn forget_secrets_in_environment() {
    unsafe extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    const SECRETS: [&str; 6] = [
        "VR_PASSWORD",
        "VR_VIEWER_PASSWORD",
        "VR_API_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ];
    let mut found: Vec<(*mut libc::c_char, usize)> = Vec::new();
    let mut keys: Vec<String> = SECRETS.iter().map(|k| k.to_string()).collect();
    // SAFETY: single-threaded; `environ` is a null-terminated array of C
    // strings that glibc never frees, so the pointers stay valid after
    // unsetenv, and overwriting their bytes in place is allowed.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() {
            let entry = std::ffi::CStr::from_ptr(*p).to_bytes();
            let named = SECRETS.iter().any(|k| {
                entry.len() > k.len() && entry.starts_with(k.as_bytes()) && entry[k.len()] == b'='
            });
            if named {
                found.push((*p, entry.len()));
            } else if let Some(key) = url_with_credentials(entry) {
                keys.push(key);
                found.push((*p, entry.len()));
            }
            p = p.add(1);
        }
        for key in &keys {
            std::env::remove_var(key);
        }
        for (ptr, len) in found {
            for i in 0..len {
                std::ptr::write_volatile(ptr.add(i), 0);
            }
        }
    }
}

/// The name of a `VR_*=scheme://user:password@host…` environment entry.
fn url_with_credentials(entry: &[u8]) -> Option<String> {
    let entry = std::str::from_utf8(entry).ok()?;
    let (key, value) = entry.split_once('=')?;
    let (_, rest) = value.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (key.starts_with("VR_") && authority.contains('@')).then(|| key.to_string())
}

/// Viewers each hold a socket: let the process use all the descriptors it may.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Reads a password from standard input, without echo on a terminal.
fn read_password() -> Result<String, String> {
    use std::io::BufRead;
    // SAFETY: termios calls on stdin with a struct we own; restored below.
    let tty = unsafe { libc::isatty(0) } == 1;
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if tty && unsafe { libc::tcgetattr(0, &mut saved) } == 0 {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        eprint!("Password: ");
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if tty {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &saved) };
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.chars().count() < 8 {
        return Err("password too short: use at least 8 characters".into());
    }
    Ok(password)
}

fn run(
    cfg: Config,
    auth: http::auth::AuthSettings,
    upload: upload::UploadSettings,
    creds: http::auth::Credentials,
    s3_creds: Option<rusty_s3::Credentials>,
) -> Result<(), String> {
    // First of all: a SIGTERM from here on finishes clips instead of killing
    // us. SIGHUP (a closed terminal, `systemctl kill -s HUP`) and SIGQUIT do
    // the same; their default would kill the process with the clip unfinished.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGQUIT,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    raise_fd_limit();
    for w in system::warnings() {
        log::warn!("{w}");
    }
    if cfg.insecure_no_auth && !http::auth::is_loopback_host(&cfg.host) && !creds.any() {
        log::warn!(
            "INSECURE: --insecure-no-auth: anyone who can reach {}:{} may watch and record",
            cfg.host,
            cfg.port
        );
    }
    let homes = cfg
        .cameras
        .iter()
        .map(|c| clips::Home {
            camera: c.id.clone(),
            own_dir: cfg.camera_sections,
        })
        .collect();
    let clips = Arc::new(
        clips::Clips::open(
            clips::ClipsSettings {
                dir: cfg.clips_dir.clone(),
                max_bytes: cfg.clips_max_mb * 1024 * 1024,
                min_free_bytes: cfg.clips_min_free_mb * 1024 * 1024,
                uploads: s3_creds.is_some(),
            },
            homes,
            &|dir, valid| {
                recorder::recover_dir(dir, valid);
            },
        )
        .map_err(|e| format!("clips directory {}: {e}", cfg.clips_dir.display()))?,
    );
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", cfg.host, cfg.port))?;
    // Rust listens with a backlog of 128: a crowd of viewers connecting at
    // once overflowed it and got resets. The kernel caps this at somaxconn.
    // SAFETY: listen() again on our own bound socket only resizes its queue.
    unsafe {
        use std::os::fd::AsRawFd;
        libc::listen(listener.as_raw_fd(), 4096);
    }
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;

    let uploader =
        upload::setup::start(upload, &clips, s3_creds).map_err(|(key, e)| format!("{key}: {e}"))?;
    let cameras = camera::Cameras::start(&cfg.cameras, &clips)?;
    for c in cameras.iter() {
        log::info!("camera {}: {}", c.id, c.hub.status().name);
    }
    let tls = http::tls::load(&tls_settings(&cfg))?;
    if let Some(t) = &tls {
        log::info!(
            "HTTPS on; certificate SHA-256 fingerprint {}",
            t.fingerprint
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let auth = http::auth::Auth::new(&auth, creds);
    if !auth.required() {
        log::info!("no credentials needed: listening on loopback only");
    }
    let app = Arc::new(http::App {
        viewers: live::Viewers::new(cfg.max_viewers, cfg.max_viewers_per_client),
        auth,
        tls,
        cameras,
        clips,
        uploader,
        started: std::time::Instant::now(),
        idle_timeout: Duration::from_secs_f64(cfg.idle_timeout_sec),
        proxies: cfg.trusted_proxies.clone(),
        allowed_hosts: cfg
            .allowed_hosts
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
        stopping: Default::default(),
    });
    let server = app.clone();
    let http = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || http::serve(server, listener))
        .map_err(|e| format!("cannot start HTTP thread: {e}"))?;
    log::info!("listening on {scheme}://{addr}");

    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: finishing every clip, then exiting");
    }
    for clip in app.cameras.shutdown() {
        log::info!("saved {} ({:.1} s)", clip.path, clip.duration_sec);
    }
    app.stop();
    if let Some(u) = &app.uploader {
        // The request in flight ends; what is left resumes at the next start.
        u.stop();
    }
    let _ = http.join();
    log::info!("bye");
    Ok(())
}
