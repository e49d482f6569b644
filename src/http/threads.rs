//! A thread per slow request (a viewer, a password check): started with a
//! small stack, and a 503 where no thread can be had.

use std::sync::mpsc;

use tiny_http::Request;

use super::errors::Kind;
use super::respond;

/// Stack for viewer and worker threads: they hold no big buffers.
const WORKER_STACK: usize = 128 * 1024;

/// Runs `f` on its own thread; answers 503 if no thread can be had.
pub(super) fn spawn_with(name: &str, req: Request, f: impl FnOnce(Request) + Send + 'static) {
    let (tx, rx) = mpsc::sync_channel::<Request>(1);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            if let Ok(req) = rx.recv() {
                f(req);
            }
        });
    match spawned {
        Ok(_) => {
            // The thread is waiting on the channel; it cannot be full.
            let _ = tx.send(req);
        }
        Err(e) => {
            log::warn!("cannot start a thread for {}: {e}", req.url());
            respond(req, Kind::Unavailable.reply("server busy, try again"));
        }
    }
}
