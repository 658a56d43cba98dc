//! The behaviour of a persistent actor: pure decisions over its state. No I/O here; the
//! host runs it, journals the events and replies.

use crate::effect::Effect;
use crate::snapshot_policy::SnapshotPolicy;
use rush_store::PersistentActor;
use std::time::Duration;

/// An event-sourced actor. Its state is `Self` (a [`PersistentActor`]: `apply` events),
/// and `decide` turns a command into an [`Effect`] or a rejection, without changing the
/// state: the runtime applies the events only after the journal has them.
///
/// ```
/// use rush_actor::{Effect, EventSourced};
/// use rush_store::PersistentActor;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(Debug, Clone, Serialize, Deserialize)]
/// struct Added(u64);
///
/// impl PersistentActor for Counter {
///     type Event = Added;
///     fn apply(&mut self, event: &Added) { self.value += event.0; }
/// }
///
/// impl EventSourced for Counter {
///     const COLLECTION: &'static str = "counters";
///     type Command = u64;
///     type Reply = u64;
///     type Rejection = String;
///
///     fn decide(&self, add: u64) -> Result<Effect<Self>, String> {
///         if add == 0 {
///             return Err("nothing to add".into());
///         }
///         Ok(Effect::persist(Added(add)).then_reply(|s: &Counter| s.value))
///     }
/// }
/// ```
pub trait EventSourced: PersistentActor + Sync {
    /// Journal collection of this actor type (entities are `COLLECTION/entity id`).
    const COLLECTION: &'static str;
    /// Messages the actor handles.
    type Command: Send + 'static;
    /// What a successful command answers.
    type Reply: Send + 'static;
    /// Why a command is refused (validation).
    type Rejection: Send + std::fmt::Debug + std::fmt::Display + 'static;

    /// Decides what a command does. Pure: same state and command, same effect.
    ///
    /// # Errors
    ///
    /// The behaviour's rejection, to refuse the command: nothing is persisted and the
    /// caller gets [`CommandError::Rejected`](crate::CommandError::Rejected).
    fn decide(&self, command: Self::Command) -> Result<Effect<Self>, Self::Rejection>;

    /// Called once the state is recovered, before the first command.
    fn on_recovery_completed(&self, _info: &RecoveryInfo) {}

    /// Snapshot policy of this actor type, overriding the extension's default.
    fn snapshot_policy() -> Option<SnapshotPolicy> {
        None
    }
}

/// What a recovery did, for [`EventSourced::on_recovery_completed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryInfo {
    /// The entity id.
    pub entity_id: String,
    /// The highest sequence number recovered.
    pub sequence_number: u64,
    /// How long loading the snapshot and replaying events took.
    pub took: Duration,
    /// 1 for the first start, then +1 per restart.
    pub incarnation: u64,
}
