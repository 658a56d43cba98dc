//! The caller's handle on one persistent entity. It follows the entity across restarts and
//! passivation, bounds the commands waiting for it, and times out.

use crate::behavior::EventSourced;
use crate::entities::Phase;
use crate::error::{CommandError, Error, Result};
use crate::host::HostMsg;
use crate::metrics::EntityMetrics;
use crate::persistence::Persistence;
use ractor::ActorRef;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A handle on entity `entity_id` of type `S`. Cheap to clone.
pub struct EntityRef<S: EventSourced> {
    persistence: Persistence,
    entity_id: String,
    name: String,
    _marker: PhantomData<fn() -> S>,
}

impl<S: EventSourced> Clone for EntityRef<S> {
    fn clone(&self) -> Self {
        Self {
            persistence: self.persistence.clone(),
            entity_id: self.entity_id.clone(),
            name: self.name.clone(),
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
    pub(crate) fn new(persistence: Persistence, entity_id: &str) -> Self {
        let name = persistence.actor_name::<S>(entity_id);
        Self {
            persistence,
            entity_id: entity_id.to_owned(),
            name,
            _marker: PhantomData,
        }
    }

    /// The entity id.
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// `collection/entity id`.
    pub fn describe(&self) -> String {
        format!("{}/{}", S::COLLECTION, self.entity_id)
    }

    /// Sends a command and waits for its reply, which comes only after the command's events
    /// are durable. Starts the actor if it is not running (it recovers first); waits for an
    /// actor that is restarting; refuses when too many commands wait.
    pub async fn ask(&self, command: S::Command) -> Result<S::Reply, CommandError<S::Rejection>> {
        let timeout = self.persistence.config().ask_timeout;
        let deadline = Instant::now() + timeout;
        let (actor, pending) = self.resolve(deadline).await?;
        let (reply, replied) = oneshot::channel();
        if actor
            .send_message(HostMsg::Command { command, reply })
            .is_err()
        {
            pending.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Stopped {
                entity: self.describe(),
            }
            .into());
        }
        match tokio::time::timeout_at(deadline, replied).await {
            Ok(Ok(result)) => result,
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

    /// The actor of the current incarnation, if one is running.
    pub fn actor(&self) -> Option<ActorRef<HostMsg<S>>> {
        match &self.persistence.shared.table.lock().get(&self.name)?.phase {
            Phase::Running { cell, .. } => Some(ActorRef::from(cell.clone())),
            _ => None,
        }
    }

    /// The entity's counters.
    pub fn metrics(&self) -> Option<EntityMetrics> {
        self.persistence.entity_metrics::<S>(&self.entity_id)
    }

    /// The running incarnation and its pending counter, counting this command in.
    async fn resolve(&self, deadline: Instant) -> Result<(ActorRef<HostMsg<S>>, Arc<AtomicUsize>)> {
        let table = Arc::clone(&self.persistence.shared.table);
        let limit = self.persistence.config().max_pending_commands;
        loop {
            let notified = table.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between check and wait is not missed.
            notified.as_mut().enable();
            {
                let slots = table.lock();
                match slots.get(&self.name).map(|slot| &slot.phase) {
                    None => {
                        drop(slots);
                        self.persistence.ensure_started::<S>(&self.entity_id)?;
                        continue;
                    }
                    Some(Phase::Running { cell, pending }) => {
                        let waiting = pending.load(Ordering::SeqCst);
                        if waiting >= limit {
                            return Err(Error::Overloaded {
                                entity: self.describe(),
                                pending: waiting,
                                limit,
                            });
                        }
                        pending.fetch_add(1, Ordering::SeqCst);
                        return Ok((ActorRef::from(cell.clone()), Arc::clone(pending)));
                    }
                    Some(Phase::GaveUp { reason }) => {
                        return Err(Error::Unavailable {
                            entity: self.describe(),
                            reason: reason.clone(),
                        });
                    }
                    Some(Phase::BackingOff | Phase::Passivating) => {}
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    entity: self.describe(),
                    after: self.persistence.config().ask_timeout,
                });
            }
        }
    }
}
