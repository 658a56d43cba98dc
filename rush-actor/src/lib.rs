//! # rush-actor
//!
//! Persistent, supervised, event-sourced actors on [ractor], journaling through
//! [`rush_store`].
//!
//! - A behaviour implements [`EventSourced`]: a pure `decide(&state, command)` that returns
//!   an [`Effect`] (events to persist, then a reply) or a rejection.
//! - The [`Persistence`] extension spawns one ractor actor per entity under a supervisor.
//!   The actor recovers (snapshot + later events) before its first command, persists
//!   through a group-commit writer (many actors' events, one atomic batch, one flush),
//!   replies only once the events are durable, and snapshots every N events.
//! - A panic or journal failure stops the actor; the supervisor restarts it with
//!   exponential backoff, and the new incarnation replays exactly what is durable.
//! - Callers talk through an [`EntityRef`], which follows restarts and passivation and
//!   bounds the commands waiting for an actor.
//! - A [`Projection`] builds a read model from every event of an actor type, under a
//!   supervised runner that checkpoints its offset (exactly-once for read models in the
//!   same database); see [`Persistence::spawn_projection`].
//!
//! See `ARCHITECTURE.md` at the repository root for how a command becomes a durable event.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![deny(missing_docs)]
// Every fallible public function says which `Error` variants it returns and when (issue 12).
#![warn(clippy::missing_errors_doc)]

mod behavior;
mod config;
mod effect;
mod entities;
mod entity_ref;
mod error;
mod host;
mod idempotency;
mod metrics;
mod persistence;
mod projection;
mod saga;
mod shared;
mod snapshot_policy;
mod supervision;
pub mod testkit;

pub use behavior::{EventSourced, RecoveryInfo};
pub use config::PersistenceConfig;
pub use effect::{Effect, PendingEffect};
pub use entity_ref::{EntityRef, PendingReply};
pub use error::{CommandError, Error, Result};
pub use idempotency::{DEFAULT_IDEMPOTENCY_CAPACITY, IdempotencyKeys};
pub use metrics::EntityMetrics;
pub use persistence::Persistence;
pub use projection::{
    CHECKPOINT_TABLE, Checkpoint, Delivery, EventOf, Projection, ProjectionError, ProjectionHandle,
    ProjectionLag, ProjectionSettings, ProjectionState, ProjectionTx,
};
pub use rush_store::metric_names;
pub use saga::{
    DEFAULT_SAGA_RETENTION, DeadLetter, DeadLetters, RetryPolicy, SagaData, SagaDefinition,
    SagaOutcome, SagaStatus, SagaStep, Sagas, StepContext, StepError, StepFuture, StepPhase,
};
pub use snapshot_policy::SnapshotPolicy;
pub use supervision::RestartPolicy;

/// What stays private: an entity's mailbox is reached only through its [`EntityRef`],
/// which counts and orders every command, so no caller can unbalance the count of waiting
/// commands or overtake the commands of another. None of these compile.
///
/// ```compile_fail
/// use rush_actor::HostMsg;
/// ```
/// ```compile_fail
/// use rush_actor::Ticket;
/// ```
/// ```compile_fail
/// use rush_actor::ReplyTo;
/// ```
/// ```compile_fail
/// use rush_actor::SupervisorMsg;
/// ```
/// ```compile_fail
/// fn find<S: rush_actor::EventSourced>(persistence: &rush_actor::Persistence) {
///     let _actor = persistence.lookup::<S>("id");
/// }
/// ```
/// ```compile_fail
/// fn peek<S: rush_actor::EventSourced>(entity: &rush_actor::EntityRef<S>) {
///     let _actor = entity.actor();
/// }
/// ```
#[cfg(doctest)]
pub struct PrivateInternals;
