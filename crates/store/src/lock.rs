//! `LOCK`: the advisory lock that keeps garbage collection away from writers and readers; and
//! `OPEN`, which keeps an index rebuild away from every open handle.
//!
//! Every operation opens a fresh descriptor of `LOCK`, so two operations in one process exclude
//! each other just as two processes do (flock locks belong to the open file description).
//! Writers and readers share the lock; GC and repair take it exclusively and never wait for it.
//! Each handle holds `OPEN` shared from before it opens the index until it is dropped; a rebuild
//! takes it exclusively, never waiting, before it removes the index.
//!
//! Neither file holds data; they are created here (not through the [`crate::Vfs`]) because they
//! are only targets for `flock` and must exist on the real filesystem even under a simulated one.

use std::fs::{File, OpenOptions, TryLockError};

use camino::Utf8Path;

use crate::error::{Error, Result};

/// Holds `LOCK` or `OPEN` until dropped.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub(crate) struct LockGuard {
    _file: File,
}

fn open(path: &Utf8Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open", path, e))
}

/// Waits for the lock in shared mode.
pub(crate) fn shared(path: &Utf8Path) -> Result<LockGuard> {
    let file = open(path)?;
    file.lock_shared().map_err(|e| Error::io("lock", path, e))?;
    Ok(LockGuard { _file: file })
}

/// Takes the lock exclusively, or fails with [`Error::Busy`] at once if anyone holds it.
pub(crate) fn try_exclusive(path: &Utf8Path) -> Result<LockGuard> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(LockGuard { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Error::Busy {
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(Error::io("lock", path, e)),
    }
}
