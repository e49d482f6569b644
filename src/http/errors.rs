//! What can go wrong in a request, by kind, and the one place kinds become
//! statuses (every error reply is made here). A client's error names what
//! went wrong in its own terms: never a server path or an internal detail
//! (those go to the log).

use serde_json::{Value, json};

use super::{Reply, json as json_reply};
use crate::clips::OpenError;
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

    /// Something failed inside: the whole story goes to the log, the
    /// client gets `context` and the system's reason (`Input/output
    /// error`), without paths.
    pub fn internal(context: &str, detail: &str) -> ApiError {
        log::error!("{context}: {detail}");
        ApiError::new(
            Kind::Internal,
            format!("{context}: {}", crate::recorder::os_reason(detail)),
        )
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
            RecError::NoRoom(why) => {
                log::error!("{context}: {why}");
                let message = if why.contains("(os error") {
                    format!(
                        "{context}: the disk is full ({})",
                        crate::recorder::os_reason(&why)
                    )
                } else {
                    format!("{context}: {why}")
                };
                ApiError::new(Kind::DiskFull, message)
            }
            RecError::Empty(why) => ApiError::new(Kind::Unavailable, format!("{context}: {why}")),
            RecError::Failed(why) => ApiError::internal(context, &why),
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
            OpenError::Io(e) => ApiError::internal(&format!("clip {id}"), &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_the_reason_not_the_path() {
        let e = ApiError::internal(
            "cannot finish recording",
            "fsync /srv/clips/cam-20261201-000000.mp4.part: Input/output error (os error 5)",
        );
        assert_eq!(e.kind.status(), 500);
        assert!(e.message.contains("Input/output error"), "{}", e.message);
        assert!(!e.message.contains("/srv"), "{}", e.message);
        let e = ApiError::recording(
            "cannot start recording",
            RecError::NoRoom("create /srv/clips/x: No space left on device (os error 28)".into()),
        );
        assert_eq!(e.kind.status(), 507);
        assert!(e.message.contains("full") && !e.message.contains("/srv"));
        assert_eq!(ApiError::not_found("camera").kind.status(), 404);
        assert_eq!(Kind::Unavailable.status(), 503);
        assert_eq!(Kind::TooLarge.status(), 413);
        assert_eq!(Kind::Unprocessable.status(), 422);
    }
}
