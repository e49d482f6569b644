//! A network camera's H.264 as JPEG pictures, for the MJPEG view of a
//! video camera and for clip thumbnails: decoded with OpenH264 (already
//! linked for recording), every n-th pixel kept, encoded as YCbCr JPEG.

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use crate::frame::{Codec, Video};

const QUALITY: u8 = 80;

/// An access unit as a decoder's byte stream: start codes instead of
/// lengths, the parameter sets before a keyframe.
pub fn annex_b(v: &Video) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.data.len() + 64);
    if v.key {
        for set in &v.params.sets {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(set);
        }
    }
    let mut rest = &v.data[..];
    while rest.len() >= 4 {
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + n) else { break };
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        rest = &rest[4 + n..];
    }
    out
}

/// A decoded picture as a JPEG no wider than `max_width` (every n-th pixel:
/// cheap, and a preview needs no better).
pub fn to_jpeg(yuv: &impl YUVSource, max_width: u32) -> Option<(Vec<u8>, (u32, u32))> {
    let (w, h) = yuv.dimensions();
    let step = w.div_ceil(max_width as usize).max(1);
    let (ow, oh) = ((w / step) & !1, (h / step) & !1);
    // The one size rule: a stream that decodes to an absurd shape (16 wide,
    // 60000 high) makes no picture rather than a huge one.
    if !crate::frame::size_ok((u32::try_from(ow).ok()?, u32::try_from(oh).ok()?)) {
        return None;
    }
    let (ys, us, vs) = yuv.strides();
    let (py, pu, pv) = (yuv.y(), yuv.u(), yuv.v());
    let mut px = Vec::with_capacity(ow * oh * 3);
    for oy in 0..oh {
        let sy = oy * step;
        for ox in 0..ow {
            let sx = ox * step;
            px.push(*py.get(sy * ys + sx)?);
            px.push(*pu.get((sy / 2) * us + sx / 2)?);
            px.push(*pv.get((sy / 2) * vs + sx / 2)?);
        }
    }
    let (w16, h16) = (u16::try_from(ow).ok()?, u16::try_from(oh).ok()?);
    let mut out = Vec::with_capacity(ow * oh / 4);
    jpeg_encoder::Encoder::new(&mut out, QUALITY)
        .encode(&px, w16, h16, jpeg_encoder::ColorType::Ycbcr)
        .ok()?;
    Some((out, (ow as u32, oh as u32)))
}

/// One keyframe decoded once (a clip's thumbnail), if it is H.264.
pub fn keyframe_jpeg(v: &Video, max_width: u32) -> Option<Vec<u8>> {
    if !v.key || v.params.codec != Codec::H264 {
        return None;
    }
    let mut dec = Decoder::new().ok()?;
    let yuv = dec.decode(&annex_b(v)).ok()??;
    to_jpeg(&yuv, max_width).map(|(j, _)| j)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey picture of a given size.
    struct Yuv420(usize, usize, Vec<u8>);

    impl Yuv420 {
        fn new(w: usize, h: usize) -> Yuv420 {
            Yuv420(w, h, vec![128; w * h])
        }
    }

    impl YUVSource for Yuv420 {
        fn dimensions(&self) -> (usize, usize) {
            (self.0, self.1)
        }
        fn strides(&self) -> (usize, usize, usize) {
            (self.0, self.0 / 2, self.0 / 2)
        }
        fn y(&self) -> &[u8] {
            &self.2
        }
        fn u(&self) -> &[u8] {
            &self.2[..self.0 * self.1 / 4]
        }
        fn v(&self) -> &[u8] {
            &self.2[..self.0 * self.1 / 4]
        }
    }

    #[test]
    fn pictures_follow_the_size_rule() {
        let (_, size) = to_jpeg(&Yuv420::new(64, 48), 640).unwrap();
        assert_eq!(size, (64, 48));
        let (_, size) = to_jpeg(&Yuv420::new(1280, 720), 640).unwrap();
        assert_eq!(size, (640, 360), "every other pixel");
        assert!(to_jpeg(&Yuv420::new(16, 4000), 640).is_none(), "too tall");
    }
}
