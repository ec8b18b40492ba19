//! Lock files: the one place the store takes file locks.
//!
//! A path lock is an exclusive `flock` on `ROOT/locks/<store path>.lock`, held while that path is
//! written and registered, so two processes never build or register the same path at once. Lock
//! files are never deleted while the store is in use: deleting one would let a second process
//! lock a fresh file while the first still holds the old one.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext};

/// An exclusive lock, released when dropped.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// Waits until the lock at `path` is ours.
    pub fn acquire(path: &Path) -> Result<LockFile, Error> {
        let file = open(path)?;
        file.lock().at("lock", path)?;
        tracing::trace!(lock = %path.display(), "locked");
        Ok(LockFile { file, path: path.to_owned() })
    }

    /// Waits until the lock at `path` is ours, shared with other shared holders.
    pub fn acquire_shared(path: &Path) -> Result<LockFile, Error> {
        let file = open(path)?;
        file.lock_shared().at("lock", path)?;
        Ok(LockFile { file, path: path.to_owned() })
    }

    /// Takes the lock at `path` if nobody holds it, without waiting.
    pub fn try_acquire(path: &Path) -> Result<Option<LockFile>, Error> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(LockFile { file, path: path.to_owned() })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e).at("lock", path),
        }
    }

    /// Returns the lock file's location.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the order explicit.
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .at("open the lock file", path)
}
