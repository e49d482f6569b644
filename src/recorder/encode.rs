//! OpenH264, configured on purpose (its defaults skip frames at 120 kbit/s and
//! make a single keyframe), and its Annex B output turned into MP4 samples.
//!
//! Choices:
//! - Constrained Baseline: plays everywhere (browsers, Android, old phones).
//! - Bitrate rate control with frame skipping OFF: the encoder steers QP toward
//!   the target but never drops a frame; on busy scenes it may overshoot the
//!   target (OpenH264 warns it cannot *guarantee* the rate without skipping),
//!   which we prefer to holes in a recording. Quality mode ignores the target
//!   and Timestamp mode relies on skipping.
//! - A keyframe every `fps` frames (about once a second): seeking, pre-roll
//!   cut points and at most ~1 s of undecodable video after a crash. The
//!   recorder also forces one when a second of media time passed without
//!   (a camera slowing down in the dark delivers fewer frames than assumed).
//! - One thread, one slice: the recorder is one thread among several roles on
//!   a small board; predictable beats fast.
//! - VUI says BT.601 limited range, matching what `decode.rs` produces.

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType, VuiConfig,
};

use super::decode::Yuv420;

/// Target bitrate for a frame size and rate when the user set none:
/// ~0.07 bit per pixel per frame (720p30 ≈ 1.9 Mbit/s), within sane bounds.
pub fn auto_bitrate_kbps(width: usize, height: usize, fps: f64) -> u32 {
    let bps = width as f64 * height as f64 * fps.clamp(1.0, 120.0) * 0.07;
    ((bps / 1000.0) as u32).clamp(200, 12_000)
}

/// One encoded picture as an MP4 sample.
#[derive(Debug, Default)]
pub struct Sample {
    /// AVCC: NAL units each prefixed by a 4-byte big-endian length, without
    /// SPS/PPS (those live in `avcC`).
    pub data: Vec<u8>,
    /// An IDR picture (sync sample).
    pub sync: bool,
}

pub struct H264 {
    enc: Encoder,
    pub width: usize,
    pub height: usize,
    pub sps: Option<Vec<u8>>,
    pub pps: Option<Vec<u8>>,
}

impl H264 {
    pub fn new(width: usize, height: usize, fps: f64, bitrate_kbps: u32) -> Result<H264, String> {
        let fps = if fps.is_finite() && fps >= 1.0 {
            fps.min(120.0)
        } else {
            30.0
        };
        let kbps = if bitrate_kbps == 0 {
            auto_bitrate_kbps(width, height, fps)
        } else {
            bitrate_kbps
        };
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(kbps.saturating_mul(1000)))
            .skip_frames(false)
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .intra_frame_period(IntraFramePeriod::from_num_frames(fps.round() as u32))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .complexity(Complexity::Low)
            .num_threads(1)
            .vui(VuiConfig::bt601());
        let mut enc = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| format!("OpenH264 init ({width}x{height}): {e}"))?;
        route_trace_to_log(&mut enc);
        log::info!(
            "H.264 encoder: {width}x{height}, {fps:.1} fps, {kbps} kbit/s target, keyframe every {} frames",
            fps.round()
        );
        Ok(H264 {
            enc,
            width,
            height,
            sps: None,
            pps: None,
        })
    }

    /// Makes the next picture an IDR frame.
    pub fn force_keyframe(&mut self) {
        self.enc.force_intra_frame();
    }

    /// Encodes one picture. `None` when the encoder produced nothing for it
    /// (an empty bitstream must never become an empty sample).
    pub fn encode(&mut self, pic: &Yuv420, pts_ms: u64) -> Result<Option<Sample>, String> {
        let bs = self
            .enc
            .encode_at(pic, openh264::Timestamp::from_millis(pts_ms))
            .map_err(|e| format!("OpenH264 encode: {e}"))?;
        let mut sample = Sample::default();
        for l in 0..bs.num_layers() {
            let Some(layer) = bs.layer(l) else { continue };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n).map(strip_start_code) else {
                    continue;
                };
                let Some(&head) = nal.first() else { continue };
                match head & 0x1F {
                    7 => keep_param_set(&mut self.sps, nal, "SPS"),
                    8 => keep_param_set(&mut self.pps, nal, "PPS"),
                    // Access unit delimiters carry nothing MP4 needs.
                    9 => {}
                    t => {
                        sample.sync |= t == 5;
                        sample
                            .data
                            .extend_from_slice(&(nal.len() as u32).to_be_bytes());
                        sample.data.extend_from_slice(nal);
                    }
                }
            }
        }
        Ok((!sample.data.is_empty()).then_some(sample))
    }
}

// Option ids and levels from OpenH264's codec_app_def.h (a stable C ABI).
const ENCODER_OPTION_TRACE_CALLBACK: std::ffi::c_int = 26;
const WELS_LOG_ERROR: std::ffi::c_int = 1;

type TraceCallback =
    unsafe extern "C" fn(*mut std::ffi::c_void, std::ffi::c_int, *const std::ffi::c_char);

/// OpenH264 prints to stderr by default; send its messages to our log instead.
/// (It warns at init that bitrate cannot be held without frame skipping —
/// known and intended, see the module doc — so warnings go to debug.)
unsafe extern "C" fn trace(
    _ctx: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    msg: *const std::ffi::c_char,
) {
    if msg.is_null() {
        return;
    }
    // SAFETY: OpenH264 passes a NUL-terminated string valid for this call.
    let text = unsafe { std::ffi::CStr::from_ptr(msg) }.to_string_lossy();
    let text = text.trim();
    if level <= WELS_LOG_ERROR {
        log::error!("OpenH264: {text}");
    } else {
        log::debug!("OpenH264: {text}");
    }
}

fn route_trace_to_log(enc: &mut Encoder) {
    let mut cb: TraceCallback = trace;
    // SAFETY: the trace callback option may be set before initialisation
    // (welsEncoderExt.cpp SetOption); OpenH264 copies the function pointer
    // out of `cb` during the call.
    unsafe {
        enc.raw_api().set_option(
            ENCODER_OPTION_TRACE_CALLBACK,
            (&raw mut cb).cast::<std::ffi::c_void>(),
        );
    }
}

/// The first SPS/PPS goes into `avcC`; the encoder keeps them constant
/// (ConstantId, fixed size), so a different one later would be a bug worth a log line.
fn keep_param_set(slot: &mut Option<Vec<u8>>, nal: &[u8], what: &str) {
    match slot {
        None => *slot = Some(nal.to_vec()),
        Some(old) if old.as_slice() != nal => {
            log::warn!("H.264 encoder changed its {what} mid-clip; keeping the first one")
        }
        Some(_) => {}
    }
}

/// Annex B NAL unit (`00 00 01` or `00 00 00 01` prefix) → bare NAL unit.
pub fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && nal.get(zeros) == Some(&1) {
        &nal[zeros + 1..]
    } else {
        nal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes_are_stripped() {
        assert_eq!(strip_start_code(&[0, 0, 0, 1, 0x67, 1]), &[0x67, 1]);
        assert_eq!(strip_start_code(&[0, 0, 1, 0x68]), &[0x68]);
        assert_eq!(strip_start_code(&[0x65, 0, 0, 1]), &[0x65, 0, 0, 1]);
    }

    #[test]
    fn auto_bitrate_is_sane() {
        assert_eq!(auto_bitrate_kbps(1280, 720, 30.0), 1935);
        assert_eq!(auto_bitrate_kbps(160, 120, 5.0), 200);
        assert_eq!(auto_bitrate_kbps(3840, 2160, 60.0), 12_000);
    }

    #[test]
    fn every_frame_encodes_with_periodic_idr_and_no_param_sets_in_samples() {
        let (w, h) = (320, 240);
        let mut enc = H264::new(w, h, 10.0, 0).unwrap();
        let mut pic = Yuv420::new(w, h);
        let mut syncs = Vec::new();
        for i in 0..25u64 {
            // A moving gradient so the encoder has real work.
            for (j, p) in pic.data[..w * h].iter_mut().enumerate() {
                *p = ((j + i as usize * 7) % 220 + 16) as u8;
            }
            let s = enc
                .encode(&pic, i * 100)
                .unwrap()
                .expect("a sample per frame");
            let mut rest = s.data.as_slice();
            while !rest.is_empty() {
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                let t = rest[4] & 0x1F;
                assert!(t != 7 && t != 8 && t != 9, "param set/AUD in sample");
                rest = &rest[4 + len..];
            }
            syncs.push(s.sync);
        }
        let idr: Vec<usize> = (0..25).filter(|&i| syncs[i]).collect();
        assert_eq!(idr, vec![0, 10, 20]);
        let sps = enc.sps.as_ref().unwrap();
        // profile_idc 66 (Baseline) with constraint_set1 (Constrained Baseline).
        assert_eq!(sps[1], 66);
        assert_ne!(sps[2] & 0x40, 0, "constraint_set1 flag");
        assert!(enc.pps.is_some());
    }
}
