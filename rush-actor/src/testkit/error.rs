//! Why a test-kit check failed.

use crate::error::Error;

/// Why a test-kit check failed, or what kept it from running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestKitError {
    /// The state recovered after a restart differs from the live one.
    #[error("{how} recovered {recovered}, but the live state was {live}")]
    StateMismatch {
        /// How the state was recovered ("a restart", "a restart from a snapshot", "a replay
        /// of every event").
        how: &'static str,
        /// The live state (`Debug`).
        live: String,
        /// The recovered state (`Debug`).
        recovered: String,
    },
    /// A value read back differs from the value written.
    #[error("{what} does not round-trip: wrote {written}, read back {read}")]
    RoundTrip {
        /// What was written ("event", "state", "value").
        what: &'static str,
        /// The value written (`Debug`).
        written: String,
        /// The value read back (`Debug`), or why it could not be.
        read: String,
    },
    /// The command was rejected, where [`CommandResult::reply`](super::CommandResult::reply) expected a reply.
    #[error("the command was rejected: {0}")]
    Rejected(String),
    /// The command failed, where [`CommandResult::reply`](super::CommandResult::reply) expected a reply (the typed
    /// error is in [`CommandResult::outcome`](super::CommandResult::outcome)).
    #[error("the command failed: {0}")]
    Failed(String),
    /// The persistence extension, the actor or the journal failed.
    #[error(transparent)]
    Persistence(#[from] Error),
    /// The journal failed.
    #[error(transparent)]
    Store(#[from] rush_store::Error),
}
