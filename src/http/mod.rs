//! HTTP: routes over `tiny_http`. STUB until the HTTP work lands.

use std::net::TcpListener;
use std::sync::Arc;

use crate::clips::Clips;
use crate::config::Config;
use crate::hub::Hub;
use crate::recorder::Recorder;

/// Everything a request handler may touch.
pub struct App {
    pub cfg: Config,
    pub hub: Arc<Hub>,
    pub recorder: Arc<Recorder>,
    pub clips: Arc<Clips>,
}

/// Serves until the hub closes.
pub fn serve(_app: Arc<App>, _listener: TcpListener) {}
