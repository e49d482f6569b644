//! V4L2 webcam in MJPEG mode. STUB: to be replaced by the sources work.

use std::path::Path;

use super::{Format, Source, SourceError};

pub fn open(path: &Path, _want: Format) -> Result<Box<dyn Source>, SourceError> {
    Err(SourceError(format!(
        "camera {}: V4L2 not implemented yet",
        path.display()
    )))
}
