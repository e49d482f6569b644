//! The shared harness (`tests/harness`), compiled once as a library.
pub use vr_harness::*;
