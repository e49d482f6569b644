//! The synthetic `test` source. STUB: to be replaced by the sources work.

use std::time::{Duration, SystemTime};

use super::{Format, RawFrame, Source, SourceError};

pub struct TestSource {
    format: Format,
    jpeg: Vec<u8>,
    next: Duration,
}

impl TestSource {
    pub fn new(format: Format) -> Result<TestSource, SourceError> {
        let (w, h) = (format.width as u16, format.height as u16);
        let pixels = vec![128u8; w as usize * h as usize * 3];
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| SourceError(format!("test source: cannot render pattern: {e}")))?;
        Ok(TestSource {
            format,
            jpeg,
            next: crate::clock::monotonic_now(),
        })
    }
}

impl Source for TestSource {
    fn next_frame(&mut self, _timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        let now = crate::clock::monotonic_now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        let capture = self.next;
        self.next += Duration::from_secs(1) / self.format.fps;
        Ok(Some(RawFrame {
            jpeg: self.jpeg.clone(),
            capture,
            wall: SystemTime::now(),
        }))
    }

    fn format(&self) -> Format {
        self.format
    }
}
