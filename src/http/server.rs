//! The accept loop, which survives errors (tiny_http's own loop ends on the
//! first accept error, for example when descriptors run out, which would
//! silently stop the server), the connection caps, and worker threads.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tiny_http::Server;

use super::dispatch::handle;
use super::{App, tls};

/// A viewer that stops reading is dropped after this long, freeing its thread.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Servers kept after their accept loop died, for their open connections.
const MAX_RETIRED: usize = 2;

/// Sets SO_SNDTIMEO on the listening socket; accepted sockets inherit it, so a
/// viewer that stops reading cannot hold its thread forever. (A receive timeout
/// here would make accept() fail and end tiny_http's loop: the vendored
/// tiny_http sets `idle_timeout` on each accepted connection instead.)
fn set_send_timeout(listener: &TcpListener, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt on a socket we own with a correctly sized timeval.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::warn!(
            "cannot set send timeout on the listening socket: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Serves until the hub closes. When tiny_http's accept loop dies (it reports
/// the error through `recv`), a new server is built on the same socket.
pub fn serve(app: Arc<App>, listener: TcpListener) {
    set_send_timeout(&listener, SEND_TIMEOUT);
    let (total, per_client) = connection_caps(open_file_limit(), app.viewers.max_per_client());
    log::info!("connections capped at {total} in all and {per_client} per client address");
    let options = tiny_http::ServerOptions {
        read_timeout: Some(app.idle_timeout),
        max_connections: Some(total),
        max_connections_per_client: Some(per_client),
    };
    let mut backoff = Duration::from_millis(50);
    // Old servers stay alive a while: their open keep-alive connections may
    // still deliver requests.
    let mut retired: Vec<(Server, Instant)> = Vec::new();
    while !app.is_stopping() {
        let server = match listener
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|l| {
                let ssl = app.tls.as_ref().map(tls::Tls::ssl_config);
                Server::from_listener_with_options(l, ssl, options).map_err(|e| e.to_string())
            }) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot start the HTTP server: {e}; retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        loop {
            match server.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(req)) => {
                    backoff = Duration::from_millis(50);
                    handle(&app, req);
                }
                Ok(None) => {}
                Err(e) => {
                    log::error!("HTTP accept failed ({e}); restarting the accept loop");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    break;
                }
            }
            for (old, _) in &retired {
                while let Ok(Some(req)) = old.try_recv() {
                    handle(&app, req);
                }
            }
            retired.retain(|(_, since)| since.elapsed() < Duration::from_secs(120));
            if app.is_stopping() {
                return;
            }
        }
        // Each retired server holds a duplicate of the listening socket: keep
        // few, or repeated restarts would themselves use up the descriptors.
        if retired.len() >= MAX_RETIRED {
            retired.remove(0);
        }
        retired.push((server, Instant::now()));
    }
}

/// Descriptors kept for everything but connections: the camera, each
/// recording's clip, journal and directory, the clips directory's scans,
/// TLS files, logging, retired listeners.
const RESERVED_FDS: u64 = 256;

/// The process's descriptor limit (`RLIMIT_NOFILE`, soft).
fn open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    // rlim_t is 32 bits on 32-bit ARM.
    #[allow(clippy::unnecessary_cast)]
    let cur = lim.rlim_cur as u64;
    cur
}

/// Caps on open connections from the descriptor limit: each connection
/// takes two descriptors, and `RESERVED_FDS` stay free for recording, so a
/// crowd of idle connections can neither stop the server nor a recording.
/// One client may hold enough for its viewers (a connection each: the
/// page's tiles are WebSockets) and a browser's requests (six at most).
fn connection_caps(nofile: u64, viewers_per_client: usize) -> (usize, usize) {
    let total = (nofile.saturating_sub(RESERVED_FDS) / 2).max(16) as usize;
    let per_client = (viewers_per_client + 24).max(64).min(total);
    (total, per_client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_leave_descriptors_for_recording() {
        // The Pi unit's LimitNOFILE, and the default per-client viewer cap.
        assert_eq!(connection_caps(8192, 40), (3968, 64));
        assert_eq!(connection_caps(1024, 40), (384, 64));
        // A benchmark allowing 1,000 viewers from one address.
        assert_eq!(connection_caps(65536, 1000), (32640, 1024));
        // Tiny limits still serve someone.
        assert_eq!(connection_caps(100, 16), (16, 16));
    }
}
