//! The capture thread. STUB: to be replaced by the sources work (watchdog,
//! NO SIGNAL frames, broken-JPEG checks, Huffman tables).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::frame::Frame;
use crate::hub::{Hub, SourceState};
use crate::source::{self, Format, SourceSpec};

pub struct CaptureSettings {
    pub spec: SourceSpec,
    pub want: Format,
    pub stall_timeout: Duration,
}

pub fn spawn(hub: Arc<Hub>, settings: CaptureSettings) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let spec = match settings.spec {
                SourceSpec::Auto => SourceSpec::Test,
                s => s,
            };
            let mut src = match source::open(&spec, settings.want) {
                Ok(s) => s,
                Err(e) => {
                    log::error!("{e}");
                    return;
                }
            };
            hub.set_status(|s| s.state = SourceState::Test);
            let mut seq = 0;
            while !hub.is_closed() {
                if let Ok(Some(raw)) = src.next_frame(settings.stall_timeout) {
                    seq += 1;
                    let f = src.format();
                    hub.publish(Frame::new(
                        seq,
                        raw.jpeg,
                        raw.capture,
                        SystemTime::now(),
                        (f.width, f.height),
                        false,
                    ));
                }
            }
        })
}
