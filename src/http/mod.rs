//! HTTP over `tiny_http`. `route` is the one table of routes; `dispatch`
//! decodes, checks access and hands each request to its handler (`api` for
//! cameras, `library` for clips, `view` for live pictures, `login`); the
//! accept loop is in `server`, replies in `replies` and `errors`, request
//! checks in `checks`.

mod api;
mod assets;
pub mod auth;
mod body;
mod checks;
mod credentials;
mod device;
mod dispatch;
mod errors;
mod files;
mod library;
mod lockout;
mod login;
mod replies;
mod request;
mod roles;
mod route;
mod server;
mod sessions;
mod threads;
pub mod tls;
mod verifier;
mod view;
mod websocket;

pub use checks::MAX_BODY;
pub use replies::{Reply, header, json, security_headers};
use replies::{bytes, respond};
pub use server::serve;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tiny_http::Request;

use crate::camera::{Camera, Cameras};
use crate::clips::Clips;
use crate::live::Viewers;
use errors::ApiError;
use route::Cam;

/// Everything a request handler may touch.
pub struct App {
    pub cameras: Cameras,
    pub clips: Arc<Clips>,
    /// Uploads to S3, when a bucket is set.
    pub uploader: Option<Arc<crate::upload::Uploader>>,
    /// Live viewers of all cameras, against the process's caps.
    pub viewers: Arc<Viewers>,
    pub started: Instant,
    pub auth: auth::Auth,
    /// Served over HTTPS: cookies get `Secure`.
    pub tls: Option<tls::Tls>,
    /// Receive timeout of every connection (idle keep-alive, slow clients).
    pub idle_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub proxies: crate::proxies::ProxyList,
    /// Host names answered without credentials, besides localhost and IPs.
    pub allowed_hosts: Vec<String>,
    /// Set once every clip is finished: the accept loop ends.
    pub stopping: AtomicBool,
}

impl App {
    /// The client's address, through trusted proxies.
    pub fn client(&self, req: &Request) -> Option<std::net::IpAddr> {
        self.proxies.client(
            req.remote_addr().map(|a| a.ip()),
            request::header(req, "X-Forwarded-For"),
        )
    }

    /// The camera a route names.
    fn camera(&self, cam: &Cam) -> Result<&Camera, ApiError> {
        match cam {
            Cam::First => Ok(self.cameras.first()),
            Cam::Named(id) => self.cameras.get(id).ok_or_else(|| ApiError::no_camera(id)),
            Cam::Unknown(name) => Err(ApiError::no_camera(name)),
        }
    }

    /// Ends the accept loop (after the cameras are shut down).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
