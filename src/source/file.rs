//! An MJPEG file looped at its rate. STUB: to be replaced by the sources work.

use std::path::Path;
use std::time::Duration;

use super::{Format, RawFrame, Source, SourceError};

pub struct FileSource {
    format: Format,
}

impl FileSource {
    pub fn open(path: &Path, _want: Format) -> Result<FileSource, SourceError> {
        Err(SourceError(format!(
            "MJPEG file {}: not implemented yet",
            path.display()
        )))
    }
}

impl Source for FileSource {
    fn next_frame(&mut self, _timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        Ok(None)
    }

    fn format(&self) -> Format {
        self.format
    }
}
