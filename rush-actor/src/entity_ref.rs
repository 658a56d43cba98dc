//! The caller's handle on one persistent entity. It follows the entity across restarts and
//! passivation: each command is admitted by the entity table (see `entities`), which sends
//! it to the running incarnation or keeps it for the next one, in send order. The handle
//! then waits for the reply until the ask timeout.

use crate::behavior::EventSourced;
use crate::config::deadline_after;
use crate::entities::{Claim, EntityKey, Startup};
use crate::error::{CommandError, Error, Result};
use crate::host::new_slot;
use crate::metrics::EntityMetrics;
use crate::shared::Shared;
use rush_store::EventMetadata;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::sync::{oneshot, watch};

/// A handle on entity `entity_id` of type `S`. Cheap to clone.
///
/// It never hands out the actor itself: every command goes through the entity table, which
/// bounds the commands waiting and keeps their order across restarts.
pub struct EntityRef<S: EventSourced> {
    shared: Arc<Shared>,
    key: EntityKey,
    _marker: PhantomData<fn() -> S>,
}

impl<S: EventSourced> Clone for EntityRef<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            key: self.key.clone(),
            _marker: PhantomData,
        }
    }
}

impl<S: EventSourced> std::fmt::Debug for EntityRef<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityRef")
            .field("entity", &self.describe())
            .finish()
    }
}

impl<S: EventSourced> EntityRef<S> {
    pub(crate) fn new(shared: Arc<Shared>, entity_id: &str) -> Self {
        Self {
            shared,
            key: EntityKey::of::<S>(entity_id),
            _marker: PhantomData,
        }
    }

    /// The entity id.
    pub fn entity_id(&self) -> &str {
        self.key.id()
    }

    /// `collection/entity id`, for messages (the entity is the pair, not this string).
    pub fn describe(&self) -> String {
        self.key.to_string()
    }

    /// Sends a command and waits for its reply, which comes only after the command's events
    /// are durable. Starts the actor if it is not running (it recovers first); a command
    /// for an actor that is restarting or passivating waits for its next incarnation, in
    /// send order. Refused at once when too many commands wait ([`Error::Overloaded`]),
    /// when the supervisor gave up ([`Error::Unavailable`]) or after shutdown
    /// ([`Error::Shutdown`]); [`Error::Timeout`] after the ask timeout.
    pub async fn ask(&self, command: S::Command) -> Result<S::Reply, CommandError<S::Rejection>> {
        self.ask_with(command, EventMetadata::default()).await
    }

    /// [`EntityRef::ask`], recording `metadata` (correlation and causation ids, user,
    /// tenant) on every event the command persists; queries return it.
    pub async fn ask_with(
        &self,
        command: S::Command,
        metadata: EventMetadata,
    ) -> Result<S::Reply, CommandError<S::Rejection>> {
        let timeout = self.shared.config.ask_timeout;
        let deadline = deadline_after(timeout);
        let (reply, replied) = oneshot::channel();
        self.shared
            .table
            .post::<S>(&self.key, || self.new_slot(), command, reply, metadata)?;
        match tokio::time::timeout_at(deadline, replied).await {
            Ok(Ok(result)) => result,
            // An actor took the command and stopped before replying: its outcome is unknown.
            Ok(Err(_dropped)) => Err(Error::Stopped {
                entity: self.describe(),
            }
            .into()),
            Err(_elapsed) => Err(Error::Timeout {
                entity: self.describe(),
                after: timeout,
            }
            .into()),
        }
    }

    /// The entity's counters.
    pub fn metrics(&self) -> Option<EntityMetrics> {
        self.shared.table.metrics(&self.key)
    }

    /// Starts the entity if it has no incarnation (with `fresh`, [`Error::Spawn`] if it
    /// has) and waits until its recovery is over, at most the ask timeout.
    pub(crate) async fn started(&self, fresh: bool) -> Result<()> {
        let timeout = self.shared.config.ask_timeout;
        let deadline = deadline_after(timeout);
        let mut startup: watch::Receiver<Startup> =
            self.shared
                .table
                .start(&self.key, Claim::of::<S>(), || self.new_slot(), fresh)?;
        let outcome = tokio::time::timeout_at(
            deadline,
            startup.wait_for(|startup| !matches!(startup, Startup::Recovering)),
        )
        .await;
        match outcome {
            Err(_elapsed) => Err(Error::Timeout {
                entity: self.describe(),
                after: timeout,
            }),
            Ok(Ok(state)) => match &*state {
                Startup::Failed(reason, cause) => Err(Error::RecoveryFailed {
                    entity: self.describe(),
                    reason: reason.clone(),
                    source: cause.clone(),
                }),
                Startup::Recovering | Startup::Ready => Ok(()),
            },
            // The slot is gone: shut down, or released after giving up.
            Ok(Err(_closed)) if self.shared.table.is_closed() => Err(Error::Shutdown),
            Ok(Err(_closed)) => Ok(()),
        }
    }

    fn new_slot(&self) -> crate::entities::NewSlot {
        new_slot::<S>(&self.shared, &self.key)
    }
}
