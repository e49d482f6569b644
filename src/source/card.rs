//! Pictures we draw ourselves: the `test` source's card and the NO SIGNAL
//! frame. An RGB canvas, a 5x7 bitmap font (no font crate) and JPEG encoding.
//! Drawing happens once at start (or once per outage), never per frame.

use super::SourceError;
use crate::frame;

pub type Rgb = [u8; 3];

pub const WHITE: Rgb = [235, 235, 235];
pub const BLACK: Rgb = [16, 16, 16];

/// A plain RGB image that clips everything drawn outside it.
#[derive(Clone)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Canvas {
    pub fn new(width: u32, height: u32, fill: Rgb) -> Canvas {
        let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
        for _ in 0..width as usize * height as usize {
            pixels.extend_from_slice(&fill);
        }
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Fills a rectangle; parts outside the canvas are ignored.
    pub fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        let x0 = x.clamp(0, self.width as i64) as usize;
        let x1 = (x + w).clamp(0, self.width as i64) as usize;
        let y0 = y.clamp(0, self.height as i64) as usize;
        let y1 = (y + h).clamp(0, self.height as i64) as usize;
        let stride = self.width as usize * 3;
        for row in y0..y1 {
            for px in self.pixels[row * stride + x0 * 3..row * stride + x1 * 3].chunks_exact_mut(3)
            {
                px.copy_from_slice(&color);
            }
        }
    }

    /// Draws text in the 5x7 font, each font pixel `scale` pixels square.
    pub fn text(&mut self, x: i64, y: i64, scale: i64, color: Rgb, text: &str) {
        let mut cx = x;
        for ch in text.chars() {
            let rows = glyph(ch);
            for (ry, bits) in rows.iter().enumerate() {
                for rx in 0..5 {
                    if bits & (0x10 >> rx) != 0 {
                        self.rect(cx + rx * scale, y + ry as i64 * scale, scale, scale, color);
                    }
                }
            }
            cx += 6 * scale;
        }
    }

    /// Draws text centred horizontally on `cx`, on a backing box for contrast.
    pub fn label(&mut self, cx: i64, y: i64, scale: i64, color: Rgb, back: Rgb, text: &str) {
        let w = text_width(text, scale);
        let pad = scale * 2;
        self.rect(
            cx - w / 2 - pad,
            y - pad,
            w + 2 * pad,
            7 * scale + 2 * pad,
            back,
        );
        self.text(cx - w / 2, y, scale, color, text);
    }

    pub fn encode(&self, quality: u8) -> Result<Vec<u8>, SourceError> {
        let (w, h) = (u16::try_from(self.width), u16::try_from(self.height));
        let (Ok(w), Ok(h)) = (w, h) else {
            return Err(SourceError(format!(
                "cannot draw a {}x{} picture: JPEG allows at most 65535x65535",
                self.width, self.height
            )));
        };
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, quality)
            .encode(&self.pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| SourceError(format!("cannot encode a {w}x{h} JPEG: {e}")))?;
        Ok(out)
    }
}

/// Width in pixels of `text` at `scale` (without the last column's gap).
pub fn text_width(text: &str, scale: i64) -> i64 {
    (text.chars().count() as i64 * 6 - 1).max(0) * scale
}

/// Largest scale at which `text` fits in `max_w` pixels, at most `cap`.
pub fn fit_scale(text: &str, max_w: i64, cap: i64) -> i64 {
    let cols = (text.chars().count() as i64 * 6 - 1).max(1);
    (max_w / cols).clamp(1, cap.max(1))
}

/// 5x7 glyphs, one byte per row, bit 4 is the leftmost column. Lower case is
/// drawn as upper case (but for the `x` of `1280x720`); characters without a
/// glyph are drawn as a box.
fn glyph(c: char) -> [u8; 7] {
    if c == 'x' {
        return [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11];
    }
    match c.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ' ' => [0; 7],
        '/' => [0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10],
        ':' => [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00],
        '.' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C],
        ',' => [0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        '_' => [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04],
        '?' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '=' => [0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00],
        '+' => [0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00],
        '\'' => [0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

/// How often NO SIGNAL goes out while a source is away (its dot blinks at
/// this rate); writing it is also how a viewer who left is noticed.
pub const NO_SIGNAL_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// NO SIGNAL at one size, drawn once with and once without its dot, and
/// handed out in turn: drawing happens once per outage, not per picture.
pub struct NoSignal {
    size: (u32, u32),
    jpegs: [Vec<u8>; 2],
    next: usize,
}

impl NoSignal {
    /// The next NO SIGNAL picture naming `source`, and its size: `size`
    /// (the last accepted frame's) if the size rule allows it, else
    /// [`frame::DEFAULT_SIZE`], never what a camera merely claimed. `cache`
    /// keeps the drawings between calls (drawn again when the size changes).
    pub fn next(
        cache: &mut Option<NoSignal>,
        size: (u32, u32),
        source: &str,
    ) -> Result<(Vec<u8>, (u32, u32)), SourceError> {
        let size = frame::drawable(size);
        let ns = match cache.take() {
            Some(n) if n.size == size => n,
            _ => {
                let draw = |blink| no_signal(size.0, size.1, source, blink).encode(80);
                NoSignal {
                    size,
                    jpegs: [draw(false)?, draw(true)?],
                    next: 0,
                }
            }
        };
        let jpeg = ns.jpegs[ns.next].clone();
        *cache = Some(NoSignal {
            next: 1 - ns.next,
            ..ns
        });
        Ok((jpeg, size))
    }
}

/// The NO SIGNAL picture: dark, with a large NO SIGNAL, the source name and
/// what is being done about it. `blink` adds a red dot so a viewer can tell
/// the stream itself is alive.
pub fn no_signal(width: u32, height: u32, source: &str, blink: bool) -> Canvas {
    let mut c = Canvas::new(width, height, [24, 24, 28]);
    let (w, h) = (i64::from(width), i64::from(height));
    let border = (h / 60).max(1);
    c.rect(0, 0, w, border, [160, 30, 30]);
    c.rect(0, h - border, w, border, [160, 30, 30]);
    let big = fit_scale("NO SIGNAL", w * 8 / 10, h / 10);
    c.text(
        w / 2 - text_width("NO SIGNAL", big) / 2,
        h / 2 - 7 * big,
        big,
        WHITE,
        "NO SIGNAL",
    );
    let small = (big / 3).max(1);
    let name: String = source.chars().take(60).collect();
    for (i, line) in [name.as_str(), "reconnecting..."].iter().enumerate() {
        let s = fit_scale(line, w * 9 / 10, small);
        c.text(
            w / 2 - text_width(line, s) / 2,
            h / 2 + 2 * big + i as i64 * 10 * s,
            s,
            [170, 170, 170],
            line,
        );
    }
    if blink {
        let d = (h / 24).max(2);
        c.rect(w - 2 * d, 2 * d, d, d, [220, 40, 40]);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawing_clips_at_the_edges() {
        let mut c = Canvas::new(16, 16, BLACK);
        c.rect(-5, -5, 100, 7, WHITE);
        c.text(10, 10, 3, WHITE, "WIDE TEXT OFF THE EDGE");
        c.text(-100, -100, 1, WHITE, "x");
        assert_eq!(c.pixels.len(), 16 * 16 * 3);
        assert_eq!(&c.pixels[..3], &WHITE);
        assert_eq!(&c.pixels[16 * 3 * 5..16 * 3 * 5 + 3], &BLACK);
    }

    #[test]
    fn text_is_drawn_where_expected() {
        let mut c = Canvas::new(12, 7, BLACK);
        c.text(0, 0, 1, WHITE, "T");
        // Top row of T is 5 pixels wide, then the gap column stays black.
        for x in 0..5 {
            assert_eq!(&c.pixels[x * 3..x * 3 + 3], &WHITE, "x={x}");
        }
        assert_eq!(&c.pixels[5 * 3..5 * 3 + 3], &BLACK);
        assert_eq!(text_width("TT", 2), 22);
        assert_eq!(fit_scale("TT", 22, 10), 2);
    }

    #[test]
    fn no_signal_is_drawn_at_a_size_we_chose() {
        let mut cache = None;
        let (j, size) = NoSignal::next(&mut cache, (65535, 65535), "cam").unwrap();
        assert_eq!(size, frame::DEFAULT_SIZE);
        assert_eq!(super::super::jpeg::sanitize(j).unwrap().1, size);
        let (_, size) = NoSignal::next(&mut cache, (320, 240), "cam").unwrap();
        assert_eq!(size, (320, 240));
    }

    #[test]
    fn no_signal_encodes_at_any_allowed_size() {
        for (w, h) in [(16, 16), (320, 240), (1280, 720)] {
            let j = no_signal(w, h, "/dev/video0", true).encode(80).unwrap();
            let (_, size) = super::super::jpeg::sanitize(j).unwrap();
            assert_eq!(size, (w, h));
        }
    }
}
