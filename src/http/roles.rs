//! Who a request is, in the terms every part of the HTTP layer uses (a
//! leaf: requests, sessions and auth all read it).

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Admin,
}

/// How a request proved who it is; CSRF checks depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// No credentials needed (loopback without credentials configured).
    Open,
    Session,
    Basic,
    Bearer,
}
