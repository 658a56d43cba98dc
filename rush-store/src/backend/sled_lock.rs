//! sled's folder lock, as this process sees it: sled takes an exclusive `flock` on the
//! folder's `db` file, and so can we (`File::try_lock`) to tell a folder in use without
//! reading sled's messages, and to wait until a database this process closes has let go.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a closing database may take to let go of its lock.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// How long an open waits for a close of the same folder in this process to be over
/// (the close's wait for the lock, and a margin).
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(6);

/// Whether another open file (sled's, in this process or another) holds the lock on the
/// `db` file.
pub(super) fn is_locked(db_file: &Path) -> bool {
    match File::open(db_file) {
        Ok(file) => matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Waits (at most [`RELEASE_WAIT`]) until no open file holds the lock on `db_file`.
fn wait_until_unlocked(db_file: &Path) {
    let started = Instant::now();
    while is_locked(db_file) && started.elapsed() < RELEASE_WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Kept as the last field of an open database: dropped after sled's handle, it waits
/// until the folder's lock is free again, then calls `forget` with the folder (the
/// registry of open folders drops it), so the folder can be opened again at once.
pub(super) struct LockRelease {
    folder: PathBuf,
    forget: fn(&Path),
}

impl LockRelease {
    pub(super) fn new(folder: &Path, forget: fn(&Path)) -> Self {
        Self {
            folder: folder.to_path_buf(),
            forget,
        }
    }
}

impl Drop for LockRelease {
    fn drop(&mut self) {
        // sled's last handle is gone; its background threads finish within milliseconds.
        wait_until_unlocked(&self.folder.join("db"));
        (self.forget)(&self.folder);
    }
}
