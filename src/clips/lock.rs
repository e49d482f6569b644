//! One process per clips directory. Recovery finishes every `.part` it
//! finds: a second process on the same directory would finish the first
//! one's live recordings under it. The lock is an exclusive `flock` on the
//! directory itself (no file of ours appears in it), held for the life of
//! the process and dropped by the kernel when it dies, however it dies.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Context as _, Error, Kind, Result};

/// Holds the directory locked while alive.
#[derive(Debug)]
pub struct DirLock {
    _dir: File,
}

/// Locks `dir`, or says which process holds it.
pub fn lock(dir: &Path) -> Result<DirLock> {
    let file = File::open(dir).context(|| "cannot open")?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(DirLock { _dir: file });
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
        return Err(Error::io("cannot lock", e));
    }
    let holder = holder(&file)
        .map(|(pid, name)| format!("process {pid} ({name})"))
        .unwrap_or_else(|| "another process".into());
    Err(Error::new(
        Kind::Busy,
        format!(
            "in use by {holder}: one video-recorder per clips directory (a second one would \
             finish the first one's recordings); stop it or choose another clips_dir"
        ),
    ))
}

/// The pid holding a `flock` on `file`, from `/proc/locks`, and its name.
fn holder(file: &File) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let want = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid: u32 = locks.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF`
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    Some((pid, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock(tmp.path()).unwrap();
        // flock locks belong to the open file: a second open in this
        // process conflicts just as another process would.
        let e = lock(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Busy);
        assert!(
            e.to_string()
                .contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(held);
        lock(tmp.path()).unwrap();
    }
}
