//! An RTSP network camera (H.264/H.265), received with `retina` (Moonfire
//! NVR's RTSP client) on a current-thread tokio runtime that lives on the
//! camera's own capture thread, so the rest of the binary stays synchronous.
//! Access units are published as they came (AVCC, parameter sets out of
//! band); nothing is decoded here. A camera that drops is reconnected with a
//! backoff capped at one second, so it is live again soon after it is back.

mod session;
mod timeline;
mod url;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::hub::{Hub, SourceState};

pub use url::RtspUrl;

/// RTP over the RTSP connection (interleaved) or over UDP; `Auto` (the
/// default) starts with TCP and moves to the other when a camera answers
/// SETUP with 461 Unsupported Transport (many cheap cameras speak UDP only),
/// and back; the one that worked is tried first at the next reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Auto,
    Tcp,
    Udp,
}

impl Transport {
    pub fn parse(s: &str) -> Result<Transport, String> {
        match s {
            "auto" => Ok(Transport::Auto),
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(format!("must be auto, tcp or udp, not {s:?}")),
        }
    }

    /// As `/status` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    /// The other concrete transport.
    fn other(self) -> Transport {
        match self {
            Transport::Udp => Transport::Tcp,
            _ => Transport::Udp,
        }
    }
}

pub struct RtspSettings {
    /// The camera's id, for the log.
    pub camera: String,
    pub url: RtspUrl,
    pub transport: Transport,
    /// No frame this long and the camera counts as down (and is reconnected).
    pub stall_timeout: Duration,
    /// The rate the configuration names, until the camera's own is known.
    pub nominal_fps: u32,
}

/// Connecting, DESCRIBE, SETUP and PLAY each must answer within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays: doubled from the first to the cap, reset once live.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Longest wait between checks for shutdown.
const SLICE: Duration = Duration::from_millis(250);

/// Starts the capture thread of an RTSP camera (`cap-<camera>` in `top -H`).
pub fn spawn(
    camera: &str,
    hub: Arc<Hub>,
    settings: RtspSettings,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("cap-{camera}");
    let camera = camera.to_string();
    std::thread::Builder::new().name(name).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                log::error!("camera {camera}: cannot start the RTSP runtime: {e}");
                hub.set_status(|s| {
                    s.state = SourceState::Down;
                    s.message = Some(format!("cannot start the RTSP runtime: {e}"));
                });
                return;
            }
        };
        run(&rt, &camera, &hub, &settings);
    })
}

fn run(rt: &tokio::runtime::Runtime, camera: &str, hub: &Hub, settings: &RtspSettings) {
    let mut backoff = BACKOFF_MIN;
    let mut seq = 0u64;
    let mut last = None;
    let mut last_error: Option<String> = None;
    let mut attempts = 0u64;
    // The transport to try first: the override, or the last that worked.
    let mut transport = match settings.transport {
        Transport::Auto => Transport::Tcp,
        t => t,
    };
    while !hub.is_closed() {
        hub.set_status(|s| {
            if s.state != SourceState::Down {
                s.state = SourceState::Connecting;
            }
        });
        // Every attempt after the first is a reconnect.
        if attempts > 0 {
            hub.counters
                .reopens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        attempts += 1;
        // Shutdown does not wait for a step's deadline (5 s each): the
        // session is dropped as soon as the hub closes.
        let outcome = rt.block_on(async {
            let session = std::pin::pin!(session::run(
                hub,
                settings,
                &mut seq,
                &mut last,
                &mut transport
            ));
            let closed = std::pin::pin!(closed(hub));
            match futures_util::future::select(session, closed).await {
                futures_util::future::Either::Left((outcome, _)) => Some(outcome),
                futures_util::future::Either::Right(_) => None,
            }
        });
        let Some(outcome) = outcome.filter(|_| !hub.is_closed()) else {
            break;
        };
        if outcome.was_live {
            backoff = BACKOFF_MIN;
        }
        // Each change of error is logged once; retries of the same are not.
        if last_error.as_deref() != Some(outcome.error.as_str()) {
            log::warn!(
                "camera {camera}: {} is down: {}; reconnecting",
                settings.url.shown(),
                outcome.error
            );
            last_error = Some(outcome.error.clone());
        }
        hub.set_status(|s| {
            s.state = SourceState::Down;
            s.message = Some(outcome.error);
        });
        let until = crate::clock::monotonic_now() + backoff;
        while !hub.is_closed() && crate::clock::monotonic_now() < until {
            std::thread::sleep(SLICE.min(backoff));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Resolves once the hub is closed (shutdown), checked every `SLICE`.
async fn closed(hub: &Hub) {
    while !hub.is_closed() {
        tokio::time::sleep(SLICE).await;
    }
}
