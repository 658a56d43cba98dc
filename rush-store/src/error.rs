//! The one error type of `rush-store`.

use crate::crypto::KeyProblem;
use std::path::PathBuf;

/// What can go wrong in the store. Every variant names something a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage engine failed (I/O error, full disk, engine-level corruption).
    #[error("storage error during {operation}: {message}")]
    Storage {
        /// What the store was doing.
        operation: &'static str,
        /// The engine's message.
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
    #[error("cannot read key file {path}: {source}")]
    KeyFileUnreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
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
    /// writes because its view may no longer match the journal. Open a new store.
    #[error("store is poisoned by an earlier failed write ({0}); reopen it")]
    Poisoned(String),
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
}
