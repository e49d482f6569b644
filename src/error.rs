//! The crate's one error type. Its kind is set where the error happens —
//! from the system's errno, or from the protocol a server broke — and never
//! recovered from a message later. Context (which camera, clip, path, URL)
//! is for the log; a client is shown the kind's words and the system's
//! reason only (`http::errors` maps kinds to statuses, in one place).

use std::fmt;
use std::io;

/// What went wrong, as the code that saw it knew it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ENOSPC or EDQUOT: the card (or a quota) cannot take more.
    DiskFull,
    /// Any other failed read, write or sync of a file or device.
    Io,
    /// No such camera, clip or file.
    NotFound,
    /// In the way of something else: already recording, not recording, a
    /// file another process holds.
    Busy,
    /// The camera has no picture to give (down, or not up yet).
    CameraDown,
    /// Nothing usable to keep: a recording stopped before any frame.
    Empty,
    /// The process is finishing its clips to exit.
    Closing,
    /// A server (a camera, the bucket) answered, and the answer was no: a
    /// refused connection, an error status, a stream that breaks its protocol.
    Refused,
    /// A server could not be reached in time: timeout, no route, no name.
    Unreachable,
    /// Input that cannot be used: a malformed request, setting or file.
    BadInput,
    /// Credentials missing or wrong (a client's, or ours at a server).
    Unauthorized,
    /// Our fault: a broken invariant, a thread that could not start.
    Internal,
}

impl Kind {
    /// The kind of a system error: errno first, then what std made of it.
    pub fn of_io(e: &io::Error) -> Kind {
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => return Kind::DiskFull,
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => return Kind::NotFound,
            Some(libc::EBUSY) => return Kind::Busy,
            Some(libc::ECONNREFUSED | libc::ECONNRESET | libc::EPIPE) => return Kind::Refused,
            Some(
                libc::ETIMEDOUT
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN,
            ) => return Kind::Unreachable,
            _ => {}
        }
        match e.kind() {
            io::ErrorKind::NotFound => Kind::NotFound,
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Kind::Refused,
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Kind::Unreachable,
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => Kind::BadInput,
            _ => Kind::Io,
        }
    }

    /// What a client is told (`the disk is full`): no names, no paths.
    pub fn words(self) -> &'static str {
        match self {
            Kind::DiskFull => "the disk is full",
            Kind::Io => "a read or write failed",
            Kind::NotFound => "not found",
            Kind::Busy => "busy",
            Kind::CameraDown => "the camera has no picture",
            Kind::Empty => "nothing was recorded",
            Kind::Closing => "shutting down",
            Kind::Refused => "the server refused",
            Kind::Unreachable => "the server could not be reached",
            Kind::BadInput => "bad input",
            Kind::Unauthorized => "wrong or missing credentials",
            Kind::Internal => "an internal error",
        }
    }
}

/// An error: a kind, what was being done (for the log), and its cause.
pub struct Error {
    kind: Kind,
    /// Outermost first: `camera front`, `create /srv/clips/x.mp4.part`.
    context: Vec<String>,
    cause: Cause,
}

enum Cause {
    /// The system's error: its errno gives the client's reason.
    Os(io::Error),
    /// Words of ours or a server's: the log's, shown to a client only when
    /// made with [`Error::said`].
    Text(String),
    /// Words made to be shown to a client as they are (no names in them).
    Said(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`, in words for the log (they may name things).
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            context: Vec::new(),
            cause: Cause::Text(message.into()),
        }
    }

    /// An error of `kind` whose words a client may see as they are: they
    /// must name no path, URL or credential.
    pub fn said(kind: Kind, words: impl Into<String>) -> Error {
        Error {
            kind,
            context: Vec::new(),
            cause: Cause::Said(words.into()),
        }
    }

    /// A system error, its kind from its errno; `context` says what was
    /// being done to what (`create /srv/clips/x.part`).
    pub fn io(context: impl Into<String>, e: io::Error) -> Error {
        Error {
            kind: Kind::of_io(&e),
            context: vec![context.into()],
            cause: Cause::Os(e),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Adds what was being done around it (`camera front`).
    pub fn context(mut self, context: impl Into<String>) -> Error {
        self.context.insert(0, context.into());
        self
    }

    /// Changes the kind where the caller knows better (a write that failed
    /// with EIO is still the recording's `Io`, a timeout on a camera is
    /// `Unreachable` whatever std called it).
    pub fn with_kind(mut self, kind: Kind) -> Error {
        self.kind = kind;
        self
    }

    /// The system's error, if it was one.
    pub fn os_error(&self) -> Option<&io::Error> {
        match &self.cause {
            Cause::Os(e) => Some(e),
            _ => None,
        }
    }

    /// What a client may be told of the cause: the system's reason or words
    /// made to be shown; `None` for words that may name things.
    pub fn client_cause(&self) -> Option<String> {
        match &self.cause {
            Cause::Os(e) => Some(os_words(e)),
            Cause::Said(t) => Some(t.clone()),
            Cause::Text(_) => None,
        }
    }
}

/// `No space left on device` from `No space left on device (os error 28)`.
fn os_words(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let s = io::Error::from_raw_os_error(n).to_string();
            match s.rsplit_once(" (os error ") {
                Some((words, _)) => words.to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        match &self.cause {
            Cause::Os(e) => write!(f, "{e}"),
            Cause::Text(t) | Cause::Said(t) => f.write_str(t),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl std::error::Error for Error {}

/// Context on a `Result`: `.context(|| format!("create {}", p.display()))`.
pub trait Context<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}

impl<T> Context<T> for Result<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_errno() {
        let full = Error::io("write /x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.kind(), Kind::DiskFull);
        assert_eq!(
            full.client_cause().as_deref(),
            Some("No space left on device")
        );
        assert_eq!(
            full.to_string(),
            "write /x: No space left on device (os error 28)"
        );
        let quota = io::Error::from_raw_os_error(libc::EDQUOT);
        assert_eq!(Kind::of_io(&quota), Kind::DiskFull);
        let eio = io::Error::from_raw_os_error(libc::EIO);
        assert_eq!(Kind::of_io(&eio), Kind::Io);
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(Kind::of_io(&refused), Kind::Refused);
        let late = io::Error::new(io::ErrorKind::TimedOut, "late");
        assert_eq!(Kind::of_io(&late), Kind::Unreachable);
        let gone = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(Kind::of_io(&gone), Kind::NotFound);
    }

    #[test]
    fn context_is_for_the_log_only() {
        let e = Error::io(
            "create /srv/clips/a.part",
            io::Error::from_raw_os_error(libc::EIO),
        )
        .context("camera front");
        assert_eq!(
            e.to_string(),
            "camera front: create /srv/clips/a.part: Input/output error (os error 5)"
        );
        assert_eq!(e.client_cause().as_deref(), Some("Input/output error"));
        let e = Error::new(Kind::Refused, "http://user:pw@cam/ answered 500");
        assert_eq!(e.client_cause(), None);
        let r: Result<()> = Err(io::Error::from_raw_os_error(libc::ENOSPC)).context(|| "sync");
        assert_eq!(r.unwrap_err().kind(), Kind::DiskFull);
    }
}
