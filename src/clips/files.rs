//! Serving and deleting listed clips: opened relative to their directory,
//! never through a symlink, and checked to be the file the scan listed.

use crate::error::Error;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};

use super::{ClipEntry, Clips, OpenError};
use crate::ids::{CameraId, ClipFile};
use crate::sync::lock;

impl Clips {
    /// Opens a listed clip for reading, refusing anything but the regular,
    /// singly linked file the scan listed: opened without following
    /// symlinks, relative to its directory, then checked by its descriptor
    /// (checking a path and then opening it lets a symlink in between).
    pub fn open_clip(&self, clip: &ClipEntry) -> Result<File, OpenError> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.open_home_of(clip)?;
        let file = open_at(&dir, &clip.id.file_name(ClipFile::Mp4), libc::O_NONBLOCK).map_err(
            |e| match e.raw_os_error() {
                Some(libc::ENOENT) => OpenError::NotFound,
                Some(libc::ELOOP) => OpenError::Refused("a symlink"),
                _ => OpenError::Io(Error::io("open clip", e)),
            },
        )?;
        let meta = file
            .metadata()
            .map_err(|e| OpenError::Io(Error::io("open clip", e)))?;
        if !meta.is_file() {
            return Err(OpenError::Refused("not a regular file"));
        }
        if meta.nlink() != 1 {
            return Err(OpenError::Refused("a file with other links"));
        }
        if (meta.dev(), meta.ino()) != clip.dev_ino {
            return Err(OpenError::Refused("not the file that was listed"));
        }
        Ok(file)
    }

    /// The directory a listed clip is in, opened without following a
    /// symlink put in place of a camera directory.
    fn open_home_of(&self, clip: &ClipEntry) -> Result<File, OpenError> {
        let root =
            File::open(&self.settings.dir).map_err(|e| OpenError::Io(Error::io("open clip", e)))?;
        let parent = clip.path.parent().ok_or(OpenError::NotFound)?;
        if parent == self.settings.dir {
            return Ok(root);
        }
        let sub = parent
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.parse::<CameraId>().is_ok())
            .ok_or(OpenError::NotFound)?;
        open_at(&root, sub, libc::O_DIRECTORY).map_err(|_| OpenError::NotFound)
    }

    /// Deletes a finished clip. A recording in progress has no `.mp4` yet,
    /// so it is never found here.
    pub fn delete(&self, id: &str) -> Result<ClipEntry, OpenError> {
        let _one = lock(&self.enforcing);
        let clip = self.get(id).ok_or(OpenError::NotFound)?;
        // Only the file that was listed, checked as for serving.
        drop(self.open_clip(&clip)?);
        self.unlink(&clip)?;
        self.index().clips.retain(|c| c.id != clip.id);
        log::info!("deleted clip {} on request", clip.id);
        Ok(clip)
    }

    /// Removes a listed clip's file through its directory's descriptor
    /// (never through a path a symlink could have been put into).
    pub(super) fn unlink(&self, clip: &ClipEntry) -> Result<(), OpenError> {
        let dir = self.open_home_of(clip)?;
        let name = c_name(&clip.id.file_name(ClipFile::Mp4));
        // SAFETY: unlinkat on a directory descriptor we hold, a valid C string.
        if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
            return Err(OpenError::Io(Error::io(
                "unlink clip",
                std::io::Error::last_os_error(),
            )));
        }
        // Its upload record, if any, goes with it.
        let record = c_name(&clip.id.file_name(ClipFile::Upload));
        // SAFETY: as above; a missing record is fine.
        unsafe { libc::unlinkat(dir.as_raw_fd(), record.as_ptr(), 0) };
        Ok(())
    }
}

/// Ids and camera ids hold no NUL (checked before they get here).
fn c_name(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(name).expect("no NUL in an id")
}

/// Opens `name` in `dir` for reading, never following a symlink.
fn open_at(dir: &File, name: &str, flags: libc::c_int) -> std::io::Result<File> {
    let name = c_name(name);
    // SAFETY: openat on a directory descriptor we hold, with a valid C
    // string; the new descriptor is owned by the File from here on.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}
