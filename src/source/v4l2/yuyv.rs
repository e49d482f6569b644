//! YUYV (4:2:2, two pixels in four bytes: Y0 U Y1 V) to JPEG, for cameras
//! without MJPEG. Every frame costs an encode, so the log says so when such
//! a camera is opened; the buffers are reused from frame to frame.

/// Quality of the JPEGs made here: what the live view and the recorder's
/// decoder get instead of the camera's own compression.
const QUALITY: u8 = 80;

pub struct Encoder {
    size: (u32, u32),
    ycbcr: Vec<u8>,
}

impl Encoder {
    pub fn new(size: (u32, u32)) -> Encoder {
        Encoder {
            size,
            ycbcr: Vec::new(),
        }
    }

    /// The frame as a JPEG; an empty vector (a broken frame, counted as
    /// such) when it is too short for its size.
    pub fn encode(&mut self, yuyv: &[u8]) -> Vec<u8> {
        let (w, h) = self.size;
        let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
            return Vec::new();
        };
        let pixels = w as usize * h as usize;
        if w % 2 != 0 || yuyv.len() < pixels * 2 {
            return Vec::new();
        }
        self.ycbcr.clear();
        self.ycbcr.reserve(pixels * 3);
        for q in yuyv[..pixels * 2].chunks_exact(4) {
            let (y0, u, y1, v) = (q[0], q[1], q[2], q[3]);
            self.ycbcr.extend_from_slice(&[y0, u, v, y1, u, v]);
        }
        let mut out = Vec::with_capacity(pixels / 4);
        match jpeg_encoder::Encoder::new(&mut out, QUALITY).encode(
            &self.ycbcr,
            w16,
            h16,
            jpeg_encoder::ColorType::Ycbcr,
        ) {
            Ok(()) => out,
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_yuyv_picture_to_a_jpeg_of_its_size() {
        let (w, h) = (64u32, 32u32);
        // Left half dark, right half bright, neutral chroma.
        let mut px = Vec::new();
        for _ in 0..h {
            for x in (0..w).step_by(2) {
                let y = if x < w / 2 { 30 } else { 220 };
                px.extend_from_slice(&[y, 128, y, 128]);
            }
        }
        let jpeg = Encoder::new((w, h)).encode(&px);
        let mut dec =
            zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&jpeg));
        let rgb = dec.decode().expect("a JPEG");
        assert_eq!(dec.dimensions(), Some((w as usize, h as usize)));
        let at = |x: usize, y: usize| rgb[(y * w as usize + x) * 3];
        assert!(
            at(4, 16) < 60 && at(60, 16) > 190,
            "{} {}",
            at(4, 16),
            at(60, 16)
        );
    }

    #[test]
    fn a_short_frame_is_broken_not_a_panic() {
        assert!(Encoder::new((64, 32)).encode(&[0; 100]).is_empty());
        assert!(Encoder::new((63, 32)).encode(&[0; 63 * 32 * 2]).is_empty());
    }
}
