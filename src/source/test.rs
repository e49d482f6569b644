//! The synthetic `test` source: a loop of JPEGs rendered once at start (a
//! test card with a moving box, a frame counter and a TEST SOURCE label),
//! handed out at the configured rate. Per frame it only copies bytes out.

use std::time::Duration;

use super::card::{self, BLACK, Canvas, WHITE};
use super::{Format, Pacer, RawFrame, Source, SourceError};

/// Pixels rendered at start at most (60 frames of 1280x720): a 1 s loop at
/// common sizes, a shorter one for very large frames, so startup stays short.
const PIXEL_BUDGET: u64 = 60 * 1280 * 720;

pub struct TestSource {
    format: Format,
    frames: Vec<Vec<u8>>,
    next: usize,
    pacer: Pacer,
}

impl TestSource {
    pub fn new(format: Format) -> Result<TestSource, SourceError> {
        let started = std::time::Instant::now();
        let frames = render_loop(format)?;
        log::info!(
            "test source: rendered {} frames of {}x{} in {:.0} ms",
            frames.len(),
            format.width,
            format.height,
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(TestSource {
            format,
            frames,
            next: 0,
            pacer: Pacer::new(format.fps),
        })
    }
}

impl Source for TestSource {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        let Some(capture) = self.pacer.wait(timeout) else {
            return Ok(None);
        };
        let jpeg = self.frames[self.next].clone();
        self.next = (self.next + 1) % self.frames.len();
        Ok(Some(RawFrame {
            jpeg,
            capture,
            wall: super::wall_at(capture),
        }))
    }

    fn format(&self) -> Format {
        self.format
    }
}

/// How many frames the loop has: one second's worth within the pixel budget.
fn loop_len(format: Format) -> usize {
    let pixels = u64::from(format.width) * u64::from(format.height);
    let by_budget = PIXEL_BUDGET / pixels.max(1);
    u64::from(format.fps).min(by_budget).max(2) as usize
}

/// One rendering thread's frames, with their places in the loop.
type Rendered = Result<Vec<(usize, Vec<u8>)>, SourceError>;

/// Renders and encodes the loop, spread over the available cores.
pub fn render_loop(format: Format) -> Result<Vec<Vec<u8>>, SourceError> {
    let n = loop_len(format);
    let bg = background(format);
    let workers = std::thread::available_parallelism()
        .map_or(1, |p| p.get())
        .clamp(1, 4);
    let results: Vec<Rendered> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let bg = &bg;
                s.spawn(move || {
                    (w..n)
                        .step_by(workers)
                        .map(|i| Ok((i, frame(bg, format, i, n).encode(85)?)))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(SourceError("test source: rendering thread panicked".into()))
                })
            })
            .collect()
    });
    let mut frames = vec![Vec::new(); n];
    for r in results {
        for (i, jpeg) in r? {
            frames[i] = jpeg;
        }
    }
    Ok(frames)
}

/// Layout of the card, in pixels.
struct Layout {
    w: i64,
    h: i64,
    bars_end: i64,
    strip_end: i64,
    ramp_end: i64,
}

fn layout(format: Format) -> Layout {
    let (w, h) = (i64::from(format.width), i64::from(format.height));
    Layout {
        w,
        h,
        bars_end: h * 56 / 100,
        strip_end: h * 62 / 100,
        ramp_end: h * 72 / 100,
    }
}

/// The parts that do not move: colour bars, a grey ramp, the label.
fn background(format: Format) -> Canvas {
    let l = layout(format);
    let mut c = Canvas::new(format.width, format.height, BLACK);
    // 75% colour bars, then the reversed "castellation" strip below them.
    const BARS: [[u8; 3]; 7] = [
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
    ];
    for (i, color) in BARS.iter().enumerate() {
        let (x0, x1) = (i as i64 * l.w / 7, (i as i64 + 1) * l.w / 7);
        c.rect(x0, 0, x1 - x0, l.bars_end, *color);
        let strip = if i % 2 == 0 { BARS[6 - i] } else { BLACK };
        c.rect(x0, l.bars_end, x1 - x0, l.strip_end - l.bars_end, strip);
    }
    for x in 0..l.w {
        let v = (16 + x * (235 - 16) / l.w.max(1)) as u8;
        c.rect(x, l.strip_end, 1, l.ramp_end - l.strip_end, [v, v, v]);
    }
    c.rect(0, l.ramp_end, l.w, l.h - l.ramp_end, [20, 24, 48]);
    let scale = card::fit_scale("TEST SOURCE", l.w * 7 / 10, l.h / 14);
    c.label(
        l.w / 2,
        l.bars_end / 2 - 7 * scale / 2,
        scale,
        WHITE,
        BLACK,
        "TEST SOURCE",
    );
    let info = format!("{}x{} {} FPS", format.width, format.height, format.fps);
    let band = l.h - l.ramp_end;
    let s = card::fit_scale(&info, l.w * 45 / 100, band / 28);
    c.text(s * 4, l.ramp_end + band / 4 - 7 * s / 2, s, WHITE, &info);
    c
}

/// Frame `i` of `n`: the background with the counter and the moving box.
fn frame(bg: &Canvas, format: Format, i: usize, n: usize) -> Canvas {
    let l = layout(format);
    let mut c = bg.clone();
    let band = l.h - l.ramp_end;
    let counter = format!("FRAME {:02}/{:02}", i + 1, n);
    let s = card::fit_scale(&counter, l.w * 45 / 100, band / 28);
    let x = l.w - s * 4 - card::text_width(&counter, s);
    c.text(
        x,
        l.ramp_end + band / 4 - 7 * s / 2,
        s,
        [255, 210, 60],
        &counter,
    );
    // The moving box crosses the whole width once per loop.
    let size = (band / 3).max(2);
    let x = (l.w - size) * i as i64 / (n as i64 - 1).max(1);
    let y = l.ramp_end + band * 5 / 8 - size / 2;
    c.rect(0, y + size / 2 - 1, l.w, 2, [60, 64, 96]);
    c.rect(x, y, size, size, [255, 140, 0]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;

    fn fmt(width: u32, height: u32, fps: u32) -> Format {
        Format { width, height, fps }
    }

    #[test]
    fn loop_is_one_second_within_budget() {
        assert_eq!(loop_len(fmt(1280, 720, 30)), 30);
        assert_eq!(loop_len(fmt(640, 480, 15)), 15);
        assert_eq!(loop_len(fmt(3840, 2160, 30)), 6);
        assert_eq!(loop_len(fmt(7680, 4320, 30)), 2);
    }

    #[test]
    fn frames_are_valid_distinct_and_the_right_size() {
        let frames = render_loop(fmt(320, 240, 5)).unwrap();
        assert_eq!(frames.len(), 5);
        for f in &frames {
            let (_, size) = crate::source::jpeg::sanitize(f.clone()).unwrap();
            assert_eq!(size, (320, 240));
        }
        let decoded: Vec<Vec<u8>> = frames
            .iter()
            .map(|f| JpegDecoder::new(ZCursor::new(f)).decode().unwrap())
            .collect();
        for i in 1..decoded.len() {
            assert_ne!(decoded[i], decoded[i - 1], "frame {i} does not change");
        }
    }

    #[test]
    fn tiny_frames_render_without_panicking() {
        assert_eq!(render_loop(fmt(16, 16, 3)).unwrap().len(), 3);
    }

    #[test]
    fn hands_out_frames_paced_at_the_rate() {
        let mut src = TestSource::new(fmt(64, 48, 50)).unwrap();
        let first = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
        let mut last = first.capture;
        for _ in 0..10 {
            let f = src.next_frame(Duration::from_secs(1)).unwrap().unwrap();
            // On the 20 ms grid (a busy machine may skip ticks, never drift).
            let step = (f.capture - last).as_nanos();
            assert!(
                step > 0 && step.is_multiple_of(20_000_000),
                "step {step} ns"
            );
            last = f.capture;
        }
        let now = crate::clock::monotonic_now();
        assert!(now >= last && now - last < Duration::from_secs(1));
    }
}
