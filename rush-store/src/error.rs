//! The one error type of `rush-store`.

use crate::crypto::KeyProblem;
use std::path::PathBuf;

/// What can go wrong in the store. Every variant names something a caller can act on.
///
/// Errors are `Clone`: the group-commit writer hands each member of a failed group the
/// same error, variant and all, so a caller can still tell a [`Conflict`](Error::Conflict)
/// (nothing was written) from an engine failure (outcome unknown).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed in a way that has no more specific variant.
    #[error("storage error during {operation}: {message}")]
    Storage {
        /// What the store was doing.
        operation: &'static str,
        /// The engine's message.
        message: String,
    },
    /// An I/O error of the engine other than a full disk, with its kind.
    #[error("i/o error during {operation} ({kind}): {message}")]
    Io {
        /// What the store was doing.
        operation: &'static str,
        /// The operating system's kind of error.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// The disk (or the engine's quota) is full. Nothing acknowledged is lost; free space
    /// and open a new handle.
    #[error("disk full during {operation}: {message}")]
    DiskFull {
        /// What the store was doing.
        operation: &'static str,
        /// The operating system's message.
        message: String,
    },
    /// The database was shut down ([`Database::shutdown`](crate::Database::shutdown)):
    /// nothing more is accepted. Open it again to go on.
    #[error("the database is shut down")]
    Shutdown,
    /// Code inside the storage core panicked (an engine, or a value's `Serialize`); the
    /// job that ran it failed, and the core goes on. Whether a write landed is unknown.
    #[error("panic during {operation}: {message}")]
    Panicked {
        /// What the core was doing.
        operation: &'static str,
        /// The panic's message.
        message: String,
    },
    /// The database folder is locked by another process (sled takes an exclusive lock).
    #[error("database at {path} is in use by another process")]
    DatabaseLocked {
        /// The folder that could not be opened.
        path: PathBuf,
    },
    /// The folder is missing, or holds no sled database. Opening an existing database
    /// ([`SledManager::open_existing`](crate::SledManager::open_existing)) never creates one.
    #[error("no Rush database at {path}: {reason}")]
    NotADatabase {
        /// The folder that was given.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// An event or state could not be (de)serialized.
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// An encryption key is not exactly 32 bytes.
    #[error("encryption key must be exactly 32 bytes, got {actual} bytes")]
    InvalidKey {
        /// The length that was given.
        actual: usize,
    },
    /// Text given as a key is not 64 hex digits
    /// ([`EncryptionKey::from_hex`](crate::EncryptionKey::from_hex)).
    #[error("invalid hex key: {problem}")]
    InvalidKeyText {
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A key file holds neither 32 raw bytes nor 64 hex digits
    /// ([`EncryptionKey::from_file`](crate::EncryptionKey::from_file)).
    #[error("key file {path}: {problem}")]
    InvalidKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A key file could not be read.
    #[error("cannot read key file {path}: {message}")]
    KeyFileUnreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's kind of error.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// A record could not be opened with the keys this store holds: wrong key, a key
    /// that is missing, or an encrypted record read by a store without a key.
    #[error("cannot decrypt {record}: {reason}")]
    Decryption {
        /// Which record (kind, collection, entity, sequence number).
        record: String,
        /// Why it cannot be opened.
        reason: String,
    },
    /// A record failed its checksum or authentication tag, is torn, or the journal has a gap.
    #[error("corrupted {record}: {reason}")]
    Corrupted {
        /// Which record (kind, collection, entity, sequence number).
        record: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another writer appended to this entity since this handle last saw it.
    #[error("concurrent modification: expected highest sequence number {expected}, found {actual}")]
    Conflict {
        /// The highest sequence number this writer expected.
        expected: u64,
        /// The highest sequence number found in the journal.
        actual: u64,
    },
    /// A write failed after it may have reached the engine: this handle refuses further
    /// writes because its view may no longer match the journal. Open a new store. The
    /// error of that write is kept, with its kind.
    #[error("store is poisoned by an earlier failed write ({0}); reopen it")]
    Poisoned(Box<Error>),
    /// An argument is out of its allowed range (empty id, event too large, bad range...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A storage error from any engine error.
    pub(crate) fn storage(operation: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Storage {
            operation,
            message: err.to_string(),
        }
    }

    /// An I/O error, keeping its kind: a full disk is [`Error::DiskFull`].
    pub fn from_io(operation: &'static str, err: &std::io::Error) -> Self {
        /// `ENOSPC` and `EDQUOT` on Linux: a full disk or quota.
        const FULL: [i32; 2] = [28, 122];
        let full = err.kind() == std::io::ErrorKind::StorageFull
            || err.kind() == std::io::ErrorKind::QuotaExceeded
            || err.raw_os_error().is_some_and(|code| FULL.contains(&code));
        if full {
            Error::DiskFull {
                operation,
                message: err.to_string(),
            }
        } else {
            Error::Io {
                operation,
                kind: err.kind(),
                message: err.to_string(),
            }
        }
    }

    /// Whether nothing of the failed operation was written, so it can be retried as is
    /// (a [`Conflict`](Error::Conflict), a refused argument, a shut-down database) as
    /// opposed to an engine failure whose outcome is unknown.
    pub fn nothing_written(&self) -> bool {
        matches!(
            self,
            Error::Conflict { .. }
                | Error::InvalidArgument(_)
                | Error::InvalidKey { .. }
                | Error::Serialization(_)
                | Error::Shutdown
        )
    }

    /// The message of a caught panic.
    pub(crate) fn panicked(operation: &'static str, panic: &(dyn std::any::Any + Send)) -> Self {
        Error::Panicked {
            operation,
            message: panic_message(panic),
        }
    }
}

/// The text of a caught panic's payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned())
}
