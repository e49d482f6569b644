//! What can go wrong in a request, by kind, and the one place kinds become
//! statuses (every error reply is made here). A client's error names what
//! went wrong in its own terms: never a server path or an internal detail
//! (those go to the log).

use serde_json::{Value, json};

use super::{Reply, json as json_reply};
use crate::clips::OpenError;
use crate::error::{Error, Kind as ErrorKind};
use crate::recorder::RecError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Malformed input: 400.
    BadInput,
    /// A body over the limit: 413.
    TooLarge,
    /// A body that did not arrive in time: 408.
    TooSlow,
    /// Well-formed but not acceptable (a value out of range): 422.
    Unprocessable,
    /// No such camera, clip or route: 404.
    NotFound,
    /// In the way of something else (already recording, not recording): 409.
    Busy,
    /// The camera has no picture to give, or the recorder is closing: 503.
    Unavailable,
    /// The disk cannot take it: 507.
    DiskFull,
    /// Our fault: 500, the detail in the log only.
    Internal,
    /// No or wrong credentials: 401.
    Unauthorized,
    /// Signed in, but not allowed this (a viewer recording, a cross-site
    /// form): 403.
    Forbidden,
    /// A route that exists for other methods: 405.
    MethodNotAllowed,
    /// 414.
    UrlTooLong,
    /// A range outside the file: 416.
    RangeNotSatisfiable,
    /// A host name this server does not answer to without credentials: 421.
    MisdirectedHost,
    /// Too many failed sign-ins: 429.
    TooManyAttempts,
    /// 431.
    HeadersTooLarge,
}

impl Kind {
    pub fn status(self) -> u16 {
        match self {
            Kind::BadInput => 400,
            Kind::TooLarge => 413,
            Kind::TooSlow => 408,
            Kind::Unprocessable => 422,
            Kind::NotFound => 404,
            Kind::Busy => 409,
            Kind::Unavailable => 503,
            Kind::DiskFull => 507,
            Kind::Internal => 500,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::MethodNotAllowed => 405,
            Kind::UrlTooLong => 414,
            Kind::RangeNotSatisfiable => 416,
            Kind::MisdirectedHost => 421,
            Kind::TooManyAttempts => 429,
            Kind::HeadersTooLarge => 431,
        }
    }

    /// `{"error": message}` with this kind's status.
    pub fn reply(self, message: impl Into<String>) -> Reply {
        ApiError::new(self, message).reply()
    }
}

/// The one mapping of the crate's error kinds to HTTP statuses.
pub fn status_of(kind: ErrorKind) -> Kind {
    match kind {
        ErrorKind::DiskFull => Kind::DiskFull,
        ErrorKind::NotFound => Kind::NotFound,
        ErrorKind::Busy => Kind::Busy,
        ErrorKind::CameraDown
        | ErrorKind::Empty
        | ErrorKind::Closing
        | ErrorKind::Refused
        | ErrorKind::Unreachable => Kind::Unavailable,
        ErrorKind::BadInput => Kind::BadInput,
        ErrorKind::Unauthorized => Kind::Unauthorized,
        ErrorKind::Io | ErrorKind::Internal => Kind::Internal,
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub kind: Kind,
    pub message: String,
    /// More for the client (`"recording": {...}` with a 409).
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(kind: Kind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            extra: None,
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(Kind::NotFound, format!("no such {what}"))
    }

    /// No camera with the id a client named (quoted, at most 64 characters
    /// of it: the id is the client's).
    pub fn no_camera(id: &str) -> ApiError {
        let id: String = id.chars().take(64).collect();
        ApiError::new(Kind::NotFound, format!("no such camera {id:?}"))
    }

    pub fn with(mut self, key: &'static str, value: Value) -> ApiError {
        self.extra = Some((key, value));
        self
    }

    pub fn reply(&self) -> Reply {
        let mut body = json!({ "error": self.message });
        if let Some((k, v)) = &self.extra {
            body[*k] = v.clone();
        }
        json_reply(self.kind.status(), &body)
    }

    /// An error of the crate, for `context` (`cannot start recording`): the
    /// status from its kind, the words from its kind and the system's
    /// reason; what it names (paths, URLs) goes to the log only.
    pub fn from_error(context: &str, e: &Error) -> ApiError {
        let status = status_of(e.kind());
        if status == Kind::Internal {
            log::error!("{context}: {e}");
        } else {
            log::warn!("{context}: {e}");
        }
        let message = match (e.kind(), e.os_error(), e.client_cause()) {
            (ErrorKind::DiskFull, Some(_), Some(why)) => {
                format!("{context}: the disk is full ({why})")
            }
            // Words made for clients (`no frames arrived from the source`).
            (_, None, Some(words)) => format!("{context}: {words}"),
            (_, Some(_), Some(why)) => format!("{context}: {why}"),
            (kind, _, None) => match status {
                Kind::Internal => format!("{context}: see the server log"),
                _ => format!("{context}: {}", kind.words()),
            },
        };
        ApiError::new(status, message)
    }

    /// An error whose own words are the whole answer (`no frame yet`): the
    /// status from its kind, the words as made for clients.
    pub fn said(e: &Error) -> ApiError {
        let words = e
            .client_cause()
            .unwrap_or_else(|| e.kind().words().to_string());
        ApiError::new(status_of(e.kind()), words)
    }

    /// A recorder's answer, for `context` (`cannot start recording`).
    pub fn recording(context: &str, e: RecError) -> ApiError {
        match e {
            RecError::AlreadyRecording(active) => {
                ApiError::new(Kind::Busy, "already recording").with("recording", json!(active))
            }
            RecError::NotRecording => ApiError::new(Kind::Busy, "not recording"),
            RecError::Closing => {
                ApiError::new(Kind::Unavailable, "shutting down: no new recording")
            }
            RecError::Failed(e) => ApiError::from_error(context, &e),
        }
    }

    /// A clip that could not be opened (or deleted).
    pub fn clip(id: &str, e: OpenError) -> ApiError {
        match e {
            OpenError::NotFound => ApiError::not_found("clip"),
            OpenError::Refused(why) => {
                log::warn!("clip {id} not served: {why}");
                ApiError::not_found("clip")
            }
            OpenError::Io(e) => ApiError::from_error(&format!("clip {id}"), &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn os(errno: i32) -> Error {
        Error::io(
            "fsync /srv/clips/cam-20261201-000000.mp4.part",
            io::Error::from_raw_os_error(errno),
        )
    }

    /// Every kind: its status, and words that come from the kind and the
    /// system's reason, never the path or URL the error names.
    #[test]
    fn each_kind_has_its_status_and_words_without_names() {
        let secret = "http://user:pw@10.0.0.9/stream";
        let cases = [
            (
                os(libc::ENOSPC),
                507,
                "the disk is full (No space left on device)",
            ),
            (
                os(libc::EDQUOT),
                507,
                "the disk is full (Disk quota exceeded)",
            ),
            (os(libc::EIO), 500, "Input/output error"),
            (os(libc::ENOENT), 404, "No such file or directory"),
            (Error::new(ErrorKind::Busy, secret), 409, "busy"),
            (
                Error::new(ErrorKind::CameraDown, secret),
                503,
                "the camera has no picture",
            ),
            (
                Error::said(ErrorKind::Empty, "no frames arrived"),
                503,
                "no frames arrived",
            ),
            (Error::new(ErrorKind::Closing, secret), 503, "shutting down"),
            (
                Error::new(ErrorKind::Refused, secret),
                503,
                "the server refused",
            ),
            (os(libc::ECONNREFUSED), 503, "Connection refused"),
            (
                Error::new(ErrorKind::Unreachable, secret),
                503,
                "could not be reached",
            ),
            (os(libc::EHOSTUNREACH), 503, "No route to host"),
            (Error::new(ErrorKind::BadInput, secret), 400, "bad input"),
            (
                Error::new(ErrorKind::Unauthorized, secret),
                401,
                "credentials",
            ),
            (
                Error::new(ErrorKind::Internal, secret),
                500,
                "see the server log",
            ),
        ];
        for (e, status, words) in cases {
            let a = ApiError::from_error("cannot do it", &e);
            assert_eq!(a.kind.status(), status, "{e:?}");
            assert!(a.message.starts_with("cannot do it: "), "{}", a.message);
            assert!(a.message.contains(words), "{e:?}: {}", a.message);
            assert!(
                !a.message.contains("/srv") && !a.message.contains("pw@"),
                "{}",
                a.message
            );
        }
    }

    #[test]
    fn a_recorders_answer_keeps_its_words() {
        let e = ApiError::recording("cannot start recording", RecError::Failed(os(libc::ENOSPC)));
        assert_eq!(e.kind.status(), 507);
        assert_eq!(
            e.message,
            "cannot start recording: the disk is full (No space left on device)"
        );
        let room = Error::said(ErrorKind::DiskFull, "the disk is nearly full (3 MiB free)");
        let e = ApiError::recording("cannot start recording", RecError::Failed(room));
        assert_eq!(e.kind.status(), 507);
        assert!(
            e.message.ends_with("nearly full (3 MiB free)"),
            "{}",
            e.message
        );
        assert_eq!(
            ApiError::recording("x", RecError::NotRecording)
                .kind
                .status(),
            409
        );
        assert_eq!(
            ApiError::recording("x", RecError::Closing).kind.status(),
            503
        );
        assert_eq!(ApiError::not_found("camera").kind.status(), 404);
        assert_eq!(Kind::TooLarge.status(), 413);
        assert_eq!(Kind::Unprocessable.status(), 422);
    }
}
