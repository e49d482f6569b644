//! One RTSP session: DESCRIBE, SETUP of the first H.264/H.265 track, PLAY,
//! then access units into the hub until the camera fails, stalls or the
//! process stops. Every failure comes back in words, never with secrets.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use retina::client::{PlayOptions, Session, SessionOptions, SetupOptions};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};

use super::timeline::Timeline;
use super::{RtspSettings, SLICE, STEP_TIMEOUT, Transport};
use crate::frame::{Codec, Frame, Payload, Video, VideoParams};
use crate::hub::{Hub, SourceState};

/// How long a camera may send video before any parameter sets arrive.
const PARAMS_WAIT: Duration = Duration::from_secs(10);

pub struct Outcome {
    /// Why the session ended, for `/status` and the log.
    pub error: String,
    /// Frames flowed: the next reconnect starts from the shortest delay.
    pub was_live: bool,
}

/// One session; `seq` and `last` (the last capture time) carry over to the
/// next, so frame numbers and times only ever go forward.
pub async fn run(
    hub: &Hub,
    settings: &RtspSettings,
    seq: &mut u64,
    last: &mut Option<Duration>,
    transport: &mut Transport,
) -> Outcome {
    let mut was_live = false;
    let error = match stream(hub, settings, seq, last, transport, &mut was_live).await {
        Ok(()) => "stopped".to_string(),
        Err(e) => settings.url.scrub(&e),
    };
    Outcome { error, was_live }
}

/// Runs a step with the step deadline, naming the step when it passes.
async fn step<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(words(&e)),
        Err(_) => Err(format!(
            "unreachable: no answer to {what} within {} s",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

/// A retina error in words a person can act on.
fn words(e: &retina::Error) -> String {
    match e.status_code() {
        Some(401) => return "authentication failed (the camera answered 401)".into(),
        Some(403) => return "access refused (the camera answered 403)".into(),
        Some(404) => return "no such stream on the camera (404)".into(),
        Some(c) => return format!("the camera answered {c}"),
        None => {}
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let lower = first.to_ascii_lowercase();
    // The vendored retina's bounds (vendor/README.md), named in its text.
    if lower.contains("head-too-large") {
        format!(
            "the camera sent an RTSP message head over {} KiB (refused)",
            retina::rtsp::parse::DEFAULT_MAX_HEAD_SIZE / 1024
        )
    } else if lower.contains("message-too-large") {
        format!(
            "the camera sent an RTSP message over {} KiB (refused)",
            retina::rtsp::parse::DEFAULT_MAX_MESSAGE_SIZE / 1024
        )
    } else if lower.contains("access unit larger than") {
        format!(
            "the camera sent a frame over {} MiB (refused)",
            crate::budget::ACCESS_UNIT_BYTES >> 20
        )
    } else if lower.contains("connection refused") {
        "connection refused (nothing listens on that port)".into()
    } else if lower.contains("unable to connect") {
        format!(
            "unreachable: {}",
            first.trim_start_matches("Unable to connect to RTSP server: ")
        )
    } else {
        first.chars().take(300).collect()
    }
}

/// Logs the camera's parameter changes: each one, unless they come faster
/// than one every `EVERY` (a broken camera that changes them with every
/// frame), then a count once every `EVERY`.
#[derive(Default)]
struct Changes {
    logged_at: Option<Duration>,
    unlogged: u64,
}

impl Changes {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, camera: &str, p: &VideoParams, now: Duration) {
        if self
            .logged_at
            .is_some_and(|t| now.saturating_sub(t) < Self::EVERY)
        {
            self.unlogged += 1;
            return;
        }
        let more = match std::mem::take(&mut self.unlogged) {
            0 => String::new(),
            n => format!(" (and {n} changes not logged since the last such line)"),
        };
        log::info!(
            "camera {camera}: new stream parameters ({} {}x{}){more}",
            p.rfc6381,
            p.width,
            p.height
        );
        self.logged_at = Some(now);
    }
}

/// Whether an H.265 access unit holds an IRAP picture (BLA, IDR or CRA:
/// NAL types 16 to 23): decoding can start there. Encoders with open GOPs
/// send a CRA, not an IDR, at each keyframe after the first.
fn irap(avcc: &[u8]) -> bool {
    let mut rest = avcc;
    while rest.len() > 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if (16..=23).contains(&((rest[4] >> 1) & 0x3f)) {
            return true;
        }
        rest = rest.get(4 + n..).unwrap_or(&[]);
    }
    false
}

fn params_of(p: &retina::codec::VideoParameters) -> Result<VideoParams, String> {
    let (codec, sets) = match p.codec_params() {
        VideoParametersCodec::H264 { sps, pps } => (Codec::H264, vec![sps.to_vec(), pps.to_vec()]),
        VideoParametersCodec::H265 { vps, sps, pps } => {
            (Codec::H265, vec![vps.to_vec(), sps.to_vec(), pps.to_vec()])
        }
        _ => return Err("the camera's video is not H.264 or H.265".into()),
    };
    let (width, height) = p.pixel_dimensions();
    let sample_entry = p
        .mp4_sample_entry()
        .build()
        .map_err(|e| format!("unusable parameter sets: {e}"))?;
    Ok(VideoParams {
        codec,
        rfc6381: p.rfc6381_codec().to_string(),
        width,
        height,
        frame_rate: p.frame_rate(),
        sets,
        sample_entry,
    })
}

async fn stream(
    hub: &Hub,
    settings: &RtspSettings,
    seq: &mut u64,
    last: &mut Option<Duration>,
    transport: &mut Transport,
    was_live: &mut bool,
) -> Result<(), String> {
    let opts = SessionOptions::default()
        .creds(settings.url.credentials())
        .user_agent(format!("video-recorder/{}", env!("CARGO_PKG_VERSION")));
    let mut session = step(
        "DESCRIBE",
        Session::describe(settings.url.clean().clone(), opts),
    )
    .await?;
    let offered: Vec<String> = session
        .streams()
        .iter()
        .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
        .collect();
    let Some(track) = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
    else {
        return Err(format!(
            "no H.264/H.265 track (the camera offers: {})",
            if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            }
        ));
    };
    let clock_rate = session.streams()[track].clock_rate_hz();
    let options = |t: Transport| {
        let t = match t {
            Transport::Udp => retina::client::Transport::Udp(Default::default()),
            _ => retina::client::Transport::Tcp(Default::default()),
        };
        SetupOptions::default()
            .transport(t)
            .frame_format(FrameFormat::MP4)
            .max_frame_size(crate::budget::ACCESS_UNIT_BYTES)
    };
    match tokio::time::timeout(STEP_TIMEOUT, session.setup(track, options(*transport))).await {
        Ok(Ok(())) => {}
        // The camera does not speak this transport: the other, at once.
        Ok(Err(e)) if settings.transport == Transport::Auto && e.status_code() == Some(461) => {
            let tried = *transport;
            *transport = tried.other();
            log::info!(
                "camera {}: SETUP over {} answered 461 Unsupported Transport; using {}",
                settings.camera,
                tried.as_str(),
                transport.as_str()
            );
            step("SETUP", session.setup(track, options(*transport))).await?;
        }
        Ok(Err(e)) => return Err(words(&e)),
        Err(_) => {
            return Err(format!(
                "unreachable: no answer to SETUP within {} s",
                STEP_TIMEOUT.as_secs()
            ));
        }
    }
    let used = transport.as_str();
    hub.set_status(|s| s.transport = Some(used));
    let playing = step("PLAY", session.play(PlayOptions::default())).await?;
    let demuxed = playing.demuxed().map_err(|e| words(&e))?;
    let mut demuxed = std::pin::pin!(demuxed);
    let mut params: Option<Arc<VideoParams>> = None;
    let mut changes = Changes::default();
    // Since when frames come without parameter sets to decode them with.
    let mut unparameterised: Option<Duration> = None;
    let mut timeline = Timeline::new(clock_rate, *last);
    // A new session's first frames may not be decodable: wait for a keyframe.
    let mut keyed = false;
    let mut quiet = Duration::ZERO;
    // The size /status shows, kept here so a frame costs no status copy.
    let mut shown = (0, 0);
    loop {
        if hub.is_closed() {
            return Ok(());
        }
        let item = match tokio::time::timeout(SLICE, demuxed.next()).await {
            Err(_) => {
                quiet += SLICE;
                if quiet >= settings.stall_timeout {
                    return Err(format!(
                        "no frame for {:.1} s (stalled)",
                        settings.stall_timeout.as_secs_f64()
                    ));
                }
                continue;
            }
            Ok(None) => return Err("the camera ended the stream".into()),
            Ok(Some(Err(e))) => return Err(words(&e)),
            Ok(Some(Ok(item))) => item,
        };
        let CodecItem::VideoFrame(f) = item else {
            continue;
        };
        quiet = Duration::ZERO;
        if f.stream_id() != track {
            continue;
        }
        if params.is_none() || f.has_new_parameters() {
            let Some(ParametersRef::Video(p)) = demuxed.streams()[track].parameters() else {
                // Not in the SDP: they come in band, before a keyframe
                // (retina takes them from there). Frames before are of no
                // use; a camera that never sends them is said so.
                let now = crate::clock::monotonic_now();
                let since = *unparameterised.get_or_insert(now);
                if now.saturating_sub(since) >= PARAMS_WAIT {
                    return Err(format!(
                        "the camera sends video but no parameter sets (SPS/PPS), neither in \
                         its SDP nor in the stream, for {} s",
                        PARAMS_WAIT.as_secs()
                    ));
                }
                continue;
            };
            let p = params_of(p)?;
            if params.as_deref() != Some(&p) {
                if params.is_some() {
                    changes.note(&settings.camera, &p, crate::clock::monotonic_now());
                }
                params = Some(Arc::new(p));
            }
        }
        let Some(p) = params.clone() else { continue };
        let key = f.is_random_access_point() || (p.codec == Codec::H265 && irap(f.data()));
        // Packets were lost before this frame (UDP): the pictures up to the
        // next keyframe refer to what is missing, and would show broken in
        // every clip and view. Left out and counted instead.
        if f.loss() > 0 && keyed && !key {
            keyed = false;
        }
        if !keyed && !key {
            if *was_live {
                hub.counters
                    .broken
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            continue;
        }
        keyed = true;
        let now = crate::clock::monotonic_now();
        let (capture, warning) = timeline.place(f.timestamp().elapsed(), now);
        *last = Some(capture);
        if let Some(w) = warning {
            log::warn!("camera {}: {w}", settings.camera);
        }
        if !*was_live {
            *was_live = true;
            let fps = p.fps().unwrap_or(f64::from(settings.nominal_fps));
            let (width, height) = (p.width, p.height);
            let pixel_format = match p.codec {
                Codec::H264 => "H264",
                Codec::H265 => "H265",
            };
            hub.set_status(|s| {
                if s.state == SourceState::Down {
                    log::info!(
                        "camera {}: {} is back",
                        settings.camera,
                        settings.url.shown()
                    );
                }
                s.state = SourceState::Live;
                s.message = None;
                s.width = width;
                s.height = height;
                s.nominal_fps = fps;
                s.pixel_format = pixel_format;
            });
        } else if shown != (p.width, p.height) {
            hub.set_status(|s| (s.width, s.height) = (p.width, p.height));
        }
        shown = (p.width, p.height);
        *seq += 1;
        let (width, height) = (p.width, p.height);
        let payload = Payload::Video(Video {
            data: f.into_data(),
            key,
            params: p,
        });
        let wall = crate::source::wall_at(capture);
        hub.publish(Frame::new(
            *seq,
            payload,
            capture,
            wall,
            (width, height),
            false,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::irap;

    #[test]
    fn h265_keyframes_are_any_irap_picture() {
        // A 4-byte length, then a NAL header: type in bits 1..7 of byte 0.
        let nal = |t: u8| [vec![0, 0, 0, 3], vec![t << 1, 1, 0xAA]].concat();
        let au = |types: &[u8]| types.iter().flat_map(|&t| nal(t)).collect::<Vec<u8>>();
        assert!(irap(&au(&[35, 39, 19])), "IDR_W_RADL after an AUD and SEI");
        assert!(irap(&au(&[21])), "CRA");
        assert!(irap(&au(&[16])), "BLA");
        assert!(!irap(&au(&[35, 1])), "TRAIL_R");
        assert!(!irap(&au(&[0, 9])), "TRAIL_N, RASL_R");
        assert!(!irap(&[0, 0, 0, 9, 2]), "cut short");
    }
}
