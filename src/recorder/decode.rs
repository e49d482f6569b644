//! JPEG → planar YUV 4:2:0 (I420, limited range) for the encoder.
//!
//! `zune-jpeg` decodes straight to interleaved YCbCr (no RGB round trip); we
//! then subsample chroma 2×2 and map JPEG's full range (0–255) to the video
//! range (Y 16–235, C 16–240) that H.264 players assume when the stream says
//! nothing else, so blacks and whites come out as the camera saw them.

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// An I420 picture: Y plane then U and V planes at half size, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Yuv420 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Yuv420 {
    pub fn new(width: usize, height: usize) -> Yuv420 {
        Yuv420 {
            width,
            height,
            data: vec![0; width * height * 3 / 2],
        }
    }

    pub fn planes(&self) -> (&[u8], &[u8], &[u8]) {
        let ys = self.width * self.height;
        let cs = ys / 4;
        let (y, rest) = self.data.split_at(ys);
        let (u, v) = rest.split_at(cs);
        (y, u, v)
    }

    fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let ys = self.width * self.height;
        let cs = ys / 4;
        let (y, rest) = self.data.split_at_mut(ys);
        let (u, v) = rest.split_at_mut(cs);
        (y, u, v)
    }

    /// Nearest-neighbour resize into `dst` (the rare camera-renegotiation path).
    pub fn scale_into(&self, dst: &mut Yuv420) {
        let (sy, su, sv) = self.planes();
        let (dw, dh, sw, sh) = (dst.width, dst.height, self.width, self.height);
        let (dy, du, dv) = dst.planes_mut();
        scale_plane(sy, sw, sh, dy, dw, dh);
        scale_plane(su, sw / 2, sh / 2, du, dw / 2, dh / 2);
        scale_plane(sv, sw / 2, sh / 2, dv, dw / 2, dh / 2);
    }
}

fn scale_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], dw: usize, dh: usize) {
    if sw == 0 || sh == 0 {
        dst.fill(128);
        return;
    }
    for y in 0..dh {
        let row = &src[(y * sh / dh) * sw..][..sw];
        for (x, d) in dst[y * dw..][..dw].iter_mut().enumerate() {
            *d = row[x * sw / dw];
        }
    }
}

impl openh264::formats::YUVSource for Yuv420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        self.planes().0
    }

    fn u(&self) -> &[u8] {
        self.planes().1
    }

    fn v(&self) -> &[u8] {
        self.planes().2
    }
}

/// Full-range → video-range lookup tables, built once per decoder.
struct RangeTables {
    luma: [u8; 256],
    /// Indexed by the sum of four chroma samples (0..=1020): averages and maps in one step.
    chroma4: Vec<u8>,
}

impl RangeTables {
    fn new() -> RangeTables {
        let mut luma = [0u8; 256];
        for (i, v) in luma.iter_mut().enumerate() {
            *v = (16 + (i as u32 * 219 + 127) / 255) as u8;
        }
        let chroma4 = (0..=1020u32)
            .map(|sum| (16 + (sum * 224 + 510) / 1020) as u8)
            .collect();
        RangeTables { luma, chroma4 }
    }
}

/// Reusable decoder state: scratch buffers survive between frames.
pub struct Decoder {
    scratch: Vec<u8>,
    tables: RangeTables,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            scratch: Vec::new(),
            tables: RangeTables::new(),
        }
    }

    /// Decodes `jpeg` into `out` (resized to the JPEG's even-cropped size).
    /// Odd widths/heights lose their last column/row: 4:2:0 needs even sizes.
    pub fn decode(&mut self, jpeg: &[u8], out: &mut Yuv420) -> Result<(), String> {
        let side = crate::frame::MAX_SIDE as usize;
        let opts = DecoderOptions::default()
            .set_max_width(side)
            .set_max_height(side);
        let mut dec = JpegDecoder::new_with_options(ZCursor::new(jpeg), opts);
        dec.decode_headers()
            .map_err(|e| format!("JPEG headers: {e:?}"))?;
        let (w, h) = dec
            .dimensions()
            .ok_or_else(|| "JPEG without dimensions".to_string())?;
        // The one size rule, before anything is allocated for the picture.
        let fits = u32::try_from(w)
            .is_ok_and(|w| u32::try_from(h).is_ok_and(|h| crate::frame::size_ok((w, h))));
        if !fits {
            return Err(format!(
                "JPEG of {w}x{h} is over the size limit ({})",
                crate::frame::SIZE_RULE
            ));
        }
        let (ew, eh) = (w & !1, h & !1);
        if ew == 0 || eh == 0 {
            return Err(format!("JPEG too small to encode: {w}x{h}"));
        }
        let input = dec.input_colorspace().unwrap_or(ColorSpace::YCbCr);
        let out_cs = match input {
            ColorSpace::Luma => ColorSpace::Luma,
            ColorSpace::YCbCr => ColorSpace::YCbCr,
            // CMYK/YCCK/RGB JPEGs are rare in webcams: go through RGB for them.
            _ => ColorSpace::RGB,
        };
        dec.set_options(opts.jpeg_set_out_colorspace(out_cs));
        let size = w * h * out_cs.num_components();
        self.scratch.resize(size, 0);
        dec.decode_into(&mut self.scratch)
            .map_err(|e| format!("JPEG data: {e:?}"))?;
        if out.width != ew || out.height != eh {
            *out = Yuv420::new(ew, eh);
        }
        match out_cs {
            ColorSpace::Luma => self.luma_to_i420(w, out),
            ColorSpace::RGB => {
                rgb_to_ycbcr_in_place(&mut self.scratch);
                self.ycbcr_to_i420(w, out)
            }
            _ => self.ycbcr_to_i420(w, out),
        }
        Ok(())
    }

    /// Interleaved full-range YCbCr (stride `src_w`) → I420 video range.
    fn ycbcr_to_i420(&self, src_w: usize, out: &mut Yuv420) {
        let (w, h) = (out.width, out.height);
        let t = &self.tables;
        let src = &self.scratch;
        let (py, pu, pv) = out.planes_mut();
        for y in 0..h {
            let row = &src[y * src_w * 3..][..w * 3];
            for (d, px) in py[y * w..][..w].iter_mut().zip(row.chunks_exact(3)) {
                *d = t.luma[px[0] as usize];
            }
        }
        let cw = w / 2;
        for cy in 0..h / 2 {
            let r0 = &src[(2 * cy) * src_w * 3..][..w * 3];
            let r1 = &src[(2 * cy + 1) * src_w * 3..][..w * 3];
            let (du, dv) = (&mut pu[cy * cw..][..cw], &mut pv[cy * cw..][..cw]);
            for cx in 0..cw {
                let (a, b) = (&r0[cx * 6..cx * 6 + 6], &r1[cx * 6..cx * 6 + 6]);
                let cb = a[1] as usize + a[4] as usize + b[1] as usize + b[4] as usize;
                let cr = a[2] as usize + a[5] as usize + b[2] as usize + b[5] as usize;
                du[cx] = t.chroma4[cb];
                dv[cx] = t.chroma4[cr];
            }
        }
    }

    fn luma_to_i420(&self, src_w: usize, out: &mut Yuv420) {
        let (w, h) = (out.width, out.height);
        let (py, pu, pv) = out.planes_mut();
        for y in 0..h {
            for (d, s) in py[y * w..][..w]
                .iter_mut()
                .zip(&self.scratch[y * src_w..][..w])
            {
                *d = self.tables.luma[*s as usize];
            }
        }
        pu.fill(128);
        pv.fill(128);
    }
}

/// BT.601 full-range RGB → YCbCr, as JFIF defines it (fallback path only).
fn rgb_to_ycbcr_in_place(buf: &mut [u8]) {
    for px in buf.chunks_exact_mut(3) {
        let (r, g, b) = (px[0] as i32, px[1] as i32, px[2] as i32);
        let y = (19595 * r + 38470 * g + 7471 * b + 32768) >> 16;
        let cb = ((-11059 * r - 21709 * g + 32768 * b + 32768) >> 16) + 128;
        let cr = ((32768 * r - 27439 * g - 5329 * b + 32768) >> 16) + 128;
        px[0] = y.clamp(0, 255) as u8;
        px[1] = cb.clamp(0, 255) as u8;
        px[2] = cr.clamp(0, 255) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_rgb(w: u16, h: u16, rgb: [u8; 3]) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w as usize * h as usize).flat_map(|_| rgb).collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 95)
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn range_tables_map_ends_and_middle() {
        let t = RangeTables::new();
        assert_eq!((t.luma[0], t.luma[255]), (16, 235));
        assert_eq!((t.chroma4[0], t.chroma4[1020]), (16, 240));
        assert_eq!(t.chroma4[512], 128);
    }

    #[test]
    fn decodes_colour_to_video_range_i420() {
        let mut d = Decoder::new();
        let mut out = Yuv420::new(2, 2);
        // Pure white and pure red: known BT.601 video-range values.
        d.decode(&jpeg_rgb(64, 48, [255, 255, 255]), &mut out)
            .unwrap();
        assert_eq!((out.width, out.height), (64, 48));
        assert_eq!(out.data.len(), 64 * 48 * 3 / 2);
        let (y, u, v) = out.planes();
        assert!(y.iter().all(|&p| (233..=236).contains(&p)), "{:?}", &y[..4]);
        assert!(u.iter().chain(v).all(|&p| (126..=130).contains(&p)));
        d.decode(&jpeg_rgb(64, 48, [255, 0, 0]), &mut out).unwrap();
        let (y, u, v) = out.planes();
        // Red in BT.601 video range: Y≈81, Cb≈90, Cr≈240.
        assert!((78..=85).contains(&y[100]), "Y {}", y[100]);
        assert!((86..=95).contains(&u[10]), "U {}", u[10]);
        assert!((235..=240).contains(&v[10]), "V {}", v[10]);
    }

    #[test]
    fn odd_sizes_are_cropped_to_even_and_gray_jpegs_work() {
        let mut d = Decoder::new();
        let mut out = Yuv420::new(2, 2);
        d.decode(&jpeg_rgb(33, 17, [10, 200, 30]), &mut out)
            .unwrap();
        assert_eq!((out.width, out.height), (32, 16));
        let pixels = vec![0u8; 16 * 16];
        let mut gray = Vec::new();
        jpeg_encoder::Encoder::new(&mut gray, 90)
            .encode(&pixels, 16, 16, jpeg_encoder::ColorType::Luma)
            .unwrap();
        d.decode(&gray, &mut out).unwrap();
        let (y, u, _) = out.planes();
        assert!(y.iter().all(|&p| p <= 18));
        assert!(u.iter().all(|&p| p == 128));
    }

    #[test]
    fn broken_jpeg_is_an_error_not_a_panic() {
        let mut d = Decoder::new();
        let mut out = Yuv420::new(2, 2);
        assert!(d.decode(b"\xFF\xD8garbage", &mut out).is_err());
        let mut j = jpeg_rgb(64, 48, [1, 2, 3]);
        j.truncate(j.len() / 3);
        // Truncated data may decode to gray or fail, but must never panic.
        let _ = d.decode(&j, &mut out);
    }

    #[test]
    fn a_jpeg_over_the_size_rule_is_refused_before_any_allocation() {
        let mut d = Decoder::new();
        let mut out = Yuv420::new(2, 2);
        let j = crate::source::jpeg::tests::with_sof_size(jpeg_rgb(16, 16, [9, 9, 9]), 3000, 3000);
        let e = d.decode(&j, &mut out).unwrap_err();
        assert!(e.contains("over the size limit"), "{e}");
        assert_eq!((d.scratch.capacity(), out.data.len()), (0, 6));
    }

    #[test]
    fn scaling_keeps_planes_consistent() {
        let mut src = Yuv420::new(4, 4);
        src.data
            .iter_mut()
            .enumerate()
            .for_each(|(i, p)| *p = i as u8);
        let mut dst = Yuv420::new(8, 2);
        src.scale_into(&mut dst);
        let (y, u, v) = dst.planes();
        assert_eq!(y, &[0, 0, 1, 1, 2, 2, 3, 3, 8, 8, 9, 9, 10, 10, 11, 11]);
        assert_eq!(u, &[16, 16, 17, 17]);
        assert_eq!(v, &[20, 20, 21, 21]);
    }
}
