//! Locks that survive a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// A poisoned lock only means another thread panicked mid-update of plain
/// data: keep serving rather than spreading the panic to every viewer.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
