//! The one error type of `rush-actor`.

use std::time::Duration;

/// What can go wrong between a caller and a persistent actor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The journal refused or failed a write or read. When it failed a write, the actor
    /// stopped (its memory may no longer match the journal) and is restarted from it.
    #[error("journal error for {entity}: {source}")]
    Journal {
        /// `collection/entity id`.
        entity: String,
        /// What the store said.
        #[source]
        source: rush_store::Error,
    },
    /// Recovery failed (corruption, wrong key...): the actor did not start.
    #[error("recovery of {entity} failed: {reason}")]
    RecoveryFailed {
        /// `collection/entity id`.
        entity: String,
        /// Why.
        reason: String,
        /// The store's error, with its kind (`Corrupted`, `Decryption`, `DiskFull`...),
        /// when recovery failed with one.
        #[source]
        source: Option<rush_store::Error>,
    },
    /// Too many commands are waiting for this actor.
    #[error("{entity} has {pending} commands waiting, the limit is {limit}")]
    Overloaded {
        /// `collection/entity id`.
        entity: String,
        /// Commands waiting.
        pending: usize,
        /// The configured bound.
        limit: usize,
    },
    /// The actor stopped before it replied (it crashed while handling this or an earlier
    /// command). Whether the command's events were persisted is unknown: read the state.
    #[error("{entity} stopped before replying")]
    Stopped {
        /// `collection/entity id`.
        entity: String,
    },
    /// The supervisor gave up restarting this actor.
    #[error("{entity} is unavailable: {reason}")]
    Unavailable {
        /// `collection/entity id`.
        entity: String,
        /// Why.
        reason: String,
    },
    /// No reply within the ask timeout.
    #[error("{entity} did not reply within {after:?}")]
    Timeout {
        /// `collection/entity id`.
        entity: String,
        /// The timeout.
        after: Duration,
    },
    /// The actor system refused to spawn (e.g. the name is taken by another system).
    #[error("cannot spawn {entity}: {reason}")]
    Spawn {
        /// `collection/entity id`.
        entity: String,
        /// Why.
        reason: String,
    },
    /// Two actor types use one collection: the first type used with it owns it, and the
    /// entities of another are refused (their events would mix in one journal). Give the
    /// second type its own `COLLECTION`.
    #[error("collection {collection} belongs to actor type {owner}, not to {other}")]
    CollectionClaimed {
        /// The collection both types name.
        collection: String,
        /// The actor type that owns it.
        owner: &'static str,
        /// The actor type that was refused.
        other: &'static str,
    },
    /// The persistence extension was shut down.
    #[error("persistence is shut down")]
    Shutdown,
    /// A projection did not catch up within the time given.
    #[error("projection {projection} is still {offsets_behind} offsets behind after {after:?}")]
    ProjectionBehind {
        /// The projection's name.
        projection: String,
        /// Log entries not yet checkpointed (of those committed before the wait began).
        offsets_behind: u64,
        /// How long the caller waited.
        after: Duration,
    },
    /// A projection is stopped, or its supervisor gave up after too many failures: spawn
    /// it again (it resumes from its checkpoint) once the cause is fixed.
    #[error("projection {projection} is unavailable: {reason}")]
    ProjectionUnavailable {
        /// The projection's name.
        projection: String,
        /// Why.
        reason: String,
    },
    /// No saga definition of this name is registered with the `Sagas` manager (register
    /// it before starting or resuming its sagas).
    #[error("no saga definition named {name} is registered")]
    UnknownSaga {
        /// The definition's name.
        name: String,
    },
    /// No dead letter has this id: it was replayed or discarded already.
    #[error("no dead letter {id}")]
    DeadLetterNotFound {
        /// The letter's id.
        id: String,
    },
    /// A saga could not be driven: its journal does not fit the registered definition
    /// (steps were removed), or the saga's own task died. The saga stays incomplete;
    /// `Sagas::resume_incomplete` tries it again.
    #[error("saga {saga} failed: {reason}")]
    SagaFailed {
        /// `rush.saga.<name>/<saga id>`.
        saga: String,
        /// Why.
        reason: String,
    },
    /// A store could not be opened (bad id, bad key...).
    #[error(transparent)]
    Store(#[from] rush_store::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a command did not get its reply: the behaviour rejected it, or the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<R> {
    /// The command handler refused the command (validation); nothing was persisted.
    #[error("rejected: {0}")]
    Rejected(R),
    /// The runtime or the journal failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl<R> CommandError<R> {
    /// The rejection, if the handler refused the command.
    pub fn rejection(&self) -> Option<&R> {
        match self {
            CommandError::Rejected(r) => Some(r),
            CommandError::Failed(_) => None,
        }
    }
}
