//! The caller's handle on one persistent entity. It follows the entity across restarts and
//! passivation, bounds the commands waiting for it, and times out.

use crate::behavior::EventSourced;
use crate::entities::Mailbox;
use crate::entities::Phase;
use crate::error::{CommandError, Error, Result};
use crate::host::{HostMsg, Ticket};
use crate::metrics::EntityMetrics;
use crate::persistence::Persistence;
use ractor::ActorRef;
use rush_store::EventMetadata;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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
        self.ask_with(command, EventMetadata::default()).await
    }

    /// [`EntityRef::ask`], recording `metadata` (correlation and causation ids, user,
    /// tenant) on every event the command persists; queries return it.
    pub async fn ask_with(
        &self,
        command: S::Command,
        metadata: EventMetadata,
    ) -> Result<S::Reply, CommandError<S::Rejection>> {
        let timeout = self.persistence.config().ask_timeout;
        let deadline = Instant::now() + timeout;
        let mut command = command;
        loop {
            let (actor, mailbox) = self.resolve(deadline).await?;
            let (reply, replied) = oneshot::channel();
            let (returned, came_back) = oneshot::channel();
            if let Err(unsent) = actor.send_message(HostMsg::Command(
                Ticket::new(command, reply, returned).with_metadata(metadata.clone()),
            )) {
                // The mailbox closed before the send: the ticket (now dropped) hands the
                // command back below.
                drop(unsent);
            }
            match tokio::time::timeout_at(deadline, replied).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_no_reply)) => match came_back.await {
                    // The actor died before taking it: deliver it to the next incarnation.
                    Ok(untaken) => {
                        mailbox.pending.fetch_sub(1, Ordering::SeqCst);
                        command = untaken;
                    }
                    // It took the command and died: its outcome is unknown to us.
                    Err(_) => {
                        return Err(Error::Stopped {
                            entity: self.describe(),
                        }
                        .into());
                    }
                },
                Err(_elapsed) => {
                    return Err(Error::Timeout {
                        entity: self.describe(),
                        after: timeout,
                    }
                    .into());
                }
            }
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

    /// The running incarnation and its mailbox, counting this command in.
    async fn resolve(&self, deadline: Instant) -> Result<(ActorRef<HostMsg<S>>, Arc<Mailbox>)> {
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
                    Some(Phase::Running { cell, mailbox }) if !mailbox.accepting(cell) => {
                        // Failing or dead, and the supervisor has not handled it yet: wait.
                    }
                    Some(Phase::Running { cell, mailbox }) => {
                        let waiting = mailbox.pending.load(Ordering::SeqCst);
                        if waiting >= limit {
                            return Err(Error::Overloaded {
                                entity: self.describe(),
                                pending: waiting,
                                limit,
                            });
                        }
                        mailbox.pending.fetch_add(1, Ordering::SeqCst);
                        return Ok((ActorRef::from(cell.clone()), Arc::clone(mailbox)));
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
            // A dying actor changes status without notifying: poll it now and then.
            let poll = Instant::now() + std::time::Duration::from_millis(5);
            if tokio::time::timeout_at(deadline.min(poll), notified)
                .await
                .is_err()
                && Instant::now() >= deadline
            {
                return Err(Error::Timeout {
                    entity: self.describe(),
                    after: self.persistence.config().ask_timeout,
                });
            }
        }
    }
}
