//! video-recorder: wiring only. Each role lives in its own module.

mod capture;
mod clips;
mod clock;
mod config;
mod frame;
mod http;
mod hub;
mod live;
mod recorder;
mod source;

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use config::{Command, Config};
use hub::{Hub, SourceState, SourceStatus};
use source::{Format, SourceSpec};

fn main() -> ExitCode {
    let cfg = match config::parse(std::env::args().skip(1), std::env::vars()) {
        Ok(Command::Serve(cfg)) => *cfg,
        Ok(Command::Help) => {
            print!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("video-recorder {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
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
    init_logging(&cfg);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cfg: &Config) {
    let level = cfg.log_level.parse().unwrap_or(log::LevelFilter::Info);
    let log_cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .add_filter_ignore_str("tiny_http")
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        log_cfg,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
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

fn run(cfg: Config) -> Result<(), String> {
    raise_fd_limit();
    let spec = SourceSpec::parse(&cfg.source);
    let clips = Arc::new(
        clips::Clips::open(clips::ClipsSettings {
            dir: cfg.clips_dir.clone(),
            max_bytes: cfg.clips_max_mb * 1024 * 1024,
            min_free_bytes: cfg.clips_min_free_mb * 1024 * 1024,
        })
        .map_err(|e| format!("clips directory {}: {e}", cfg.clips_dir.display()))?,
    );
    let hub = Arc::new(Hub::new(
        Duration::from_secs_f64(cfg.pre_roll_sec),
        SourceStatus {
            kind: spec.kind().into(),
            name: cfg.source.clone(),
            state: SourceState::Starting,
            width: 0,
            height: 0,
            nominal_fps: f64::from(cfg.fps),
            message: None,
        },
    ));
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port))
        .map_err(|e| format!("cannot listen on {}:{}: {e}", cfg.host, cfg.port))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listening socket: {e}"))?;

    let capture = capture::spawn(
        hub.clone(),
        capture::CaptureSettings {
            spec,
            want: Format {
                width: cfg.width,
                height: cfg.height,
                fps: cfg.fps,
            },
            stall_timeout: Duration::from_secs_f64(cfg.stall_timeout_sec),
        },
    )
    .map_err(|e| format!("cannot start capture thread: {e}"))?;
    let recorder = Arc::new(recorder::Recorder::new(
        hub.clone(),
        clips.clone(),
        recorder::RecorderSettings {
            clips_dir: cfg.clips_dir.clone(),
            bitrate_kbps: cfg.bitrate_kbps,
            pre_roll: Duration::from_secs_f64(cfg.pre_roll_sec),
            default_max_duration: (cfg.max_duration_sec > 0.0)
                .then(|| Duration::from_secs_f64(cfg.max_duration_sec)),
        },
    ));
    let app = Arc::new(http::App {
        viewers: live::Viewers::new(cfg.max_viewers),
        cfg,
        hub: hub.clone(),
        recorder: recorder.clone(),
        clips,
        started: std::time::Instant::now(),
    });
    let http = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || http::serve(app, listener))
        .map_err(|e| format!("cannot start HTTP thread: {e}"))?;
    log::info!("listening on http://{addr}");

    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    if let Some(sig) = signals.forever().next() {
        log::info!("signal {sig}: finishing the current clip, then exiting");
    }
    if let Some(clip) = recorder.shutdown() {
        log::info!("saved {} ({:.1} s)", clip.path, clip.duration_sec);
    }
    hub.close();
    let _ = capture.join();
    let _ = http.join();
    log::info!("bye");
    Ok(())
}
