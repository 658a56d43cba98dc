//! The caller's handle on one persistent entity. It follows the entity across restarts and
//! passivation: each command is admitted by the entity table (see `entities`), which sends
//! it to the running incarnation or keeps it for the next one, in send order. The handle
//! then waits for the reply until the ask timeout.

use crate::behavior::EventSourced;
use crate::config::deadline_after;
use crate::entities::{Claim, EntityKey, Read, Startup, Work};
use crate::error::{CommandError, Error, Result};
use crate::host::new_slot;
use crate::metrics::EntityMetrics;
use crate::shared::Shared;
use rush_store::EventMetadata;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
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
    /// send order.
    ///
    /// The command is admitted when the returned future is first polled; to fix the order
    /// of several commands before awaiting any, use [`EntityRef::send`].
    ///
    /// # Errors
    ///
    /// [`CommandError::Rejected`] with the behaviour's rejection (nothing was written), or
    /// [`CommandError::Failed`] with: [`Error::Overloaded`] when too many commands wait,
    /// [`Error::Unavailable`] when the supervisor gave up, [`Error::Shutdown`] after
    /// shutdown, [`Error::CollectionClaimed`] when another actor type owns the collection,
    /// [`Error::Spawn`] when the actor cannot be spawned (each with nothing written);
    /// [`Error::Journal`] when persisting failed (its source tells `Conflict`, nothing
    /// written, from an unknown outcome); [`Error::Stopped`] when the actor stopped after
    /// taking the command, and [`Error::Timeout`] after the ask timeout (outcome unknown).
    pub async fn ask(&self, command: S::Command) -> Result<S::Reply, CommandError<S::Rejection>> {
        self.ask_with(command, EventMetadata::default()).await
    }

    /// [`EntityRef::ask`], recording `metadata` (correlation and causation ids, user,
    /// tenant) on every event the command persists; queries return it.
    ///
    /// # Errors
    ///
    /// As [`EntityRef::ask`].
    pub async fn ask_with(
        &self,
        command: S::Command,
        metadata: EventMetadata,
    ) -> Result<S::Reply, CommandError<S::Rejection>> {
        // As `send_with(..)?.await`, without boxing the wait: `ask` is the hot path.
        let timeout = self.shared.config.ask_timeout;
        let deadline = deadline_after(timeout);
        let (reply, replied) = oneshot::channel();
        self.post(Work::Command(command, reply), metadata)?;
        let outcome = tokio::time::timeout_at(deadline, replied).await;
        reply_outcome::<S>(outcome, || self.describe(), timeout)
    }

    /// Admits a command now, in call order, and returns its reply to await later: ordered
    /// pipelining. Commands sent one after another are handled in that order, whether
    /// their replies are awaited one by one, together or not at all; the ask timeout
    /// counts from this call.
    ///
    /// ```
    /// # use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig};
    /// # use rush_store::{MemoryManager, PersistentActor};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Default, Clone, Serialize, Deserialize)]
    /// # struct Log { lines: Vec<String> }
    /// # impl PersistentActor for Log {
    /// #     type Event = String;
    /// #     fn apply(&mut self, line: &String) { self.lines.push(line.clone()); }
    /// # }
    /// # impl EventSourced for Log {
    /// #     const COLLECTION: &'static str = "logs";
    /// #     type Command = String;
    /// #     type Reply = usize;
    /// #     type Rejection = String;
    /// #     fn decide(&self, line: String) -> Result<Effect<Self>, String> {
    /// #         Ok(Effect::persist(line).then_reply(|s: &Log| s.lines.len()))
    /// #     }
    /// # }
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let persistence = Persistence::open(MemoryManager::default(), PersistenceConfig::default()).await?;
    /// let log = persistence.entity::<Log>("log-1");
    /// let first = log.send("a".to_owned())?;
    /// let second = log.send("b".to_owned())?;
    /// let (first, second) = tokio::join!(second, first); // awaited in any order
    /// assert_eq!((first?, second?), (2, 1));
    /// assert_eq!(log.state().await?.lines, ["a", "b"]);
    /// # persistence.shutdown().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// At once (nothing admitted): [`Error::Overloaded`], [`Error::Unavailable`],
    /// [`Error::Shutdown`], [`Error::CollectionClaimed`], [`Error::Spawn`]. The reply then fails as [`EntityRef::ask`]'s does.
    pub fn send(&self, command: S::Command) -> Result<PendingReply<S>> {
        self.send_with(command, EventMetadata::default())
    }

    /// [`EntityRef::send`] with event metadata, as [`EntityRef::ask_with`].
    ///
    /// # Errors
    ///
    /// As [`EntityRef::send`].
    pub fn send_with(
        &self,
        command: S::Command,
        metadata: EventMetadata,
    ) -> Result<PendingReply<S>> {
        let timeout = self.shared.config.ask_timeout;
        let deadline = deadline_after(timeout);
        let (reply, replied) = oneshot::channel();
        self.post(Work::Command(command, reply), metadata)?;
        Ok(PendingReply {
            replied: Box::pin(tokio::time::timeout_at(deadline, replied)),
            entity: self.describe(),
            timeout,
        })
    }

    /// Sends a command without waiting for its reply (fire and forget), in order with every
    /// other command sent to this entity. Its events are persisted as an `ask`'s are; its
    /// reply, rejection or failure goes nowhere (a failure still restarts the actor).
    ///
    /// # Errors
    ///
    /// At once (nothing admitted): as [`EntityRef::send`].
    pub fn tell(&self, command: S::Command) -> Result<()> {
        // The receiver is dropped: the actor's reply goes nowhere.
        let (reply, _) = oneshot::channel();
        self.post(Work::Command(command, reply), EventMetadata::default())
    }

    /// A copy of the entity's state after every command sent before this call, read by its
    /// actor in command order (it starts and recovers the entity if needed).
    ///
    /// # Errors
    ///
    /// As [`EntityRef::read`].
    pub async fn state(&self) -> Result<S> {
        self.read(S::clone).await
    }

    /// `view` of the entity's state after every command sent before this call, computed by
    /// its actor in command order (it starts and recovers the entity if needed). Keep
    /// `view` short: the entity handles nothing else meanwhile.
    ///
    /// # Errors
    ///
    /// At once, as [`EntityRef::send`]; later, [`Error::Unavailable`] when the supervisor
    /// gives up on the entity while the read waits (it cannot recover, say),
    /// [`Error::Shutdown`] when the extension shuts down first, [`Error::Stopped`] when its
    /// actor stopped first or `view` panicked, [`Error::Timeout`] after the ask timeout.
    pub async fn read<T: Send + 'static>(
        &self,
        view: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T> {
        let timeout = self.shared.config.ask_timeout;
        let deadline = deadline_after(timeout);
        let (answer, answered) = oneshot::channel();
        let read: Read<S> = Box::new(move |state| {
            let _ = answer.send(state.map(view));
        });
        self.post(Work::Read(read), EventMetadata::default())?;
        match tokio::time::timeout_at(deadline, answered).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_dropped)) => Err(Error::Stopped {
                entity: self.describe(),
            }),
            Err(_elapsed) => Err(Error::Timeout {
                entity: self.describe(),
                after: timeout,
            }),
        }
    }

    fn post(&self, work: Work<S>, metadata: EventMetadata) -> Result<()> {
        self.shared
            .table
            .post::<S>(&self.key, || self.new_slot(), work, metadata)
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

/// A command's answer: its reply, or why there is none.
type Answer<S> =
    std::result::Result<<S as EventSourced>::Reply, CommandError<<S as EventSourced>::Rejection>>;

type Replied<S> = oneshot::Receiver<Answer<S>>;

/// What waiting for an answer until the ask timeout gives.
type Waited<S> = std::result::Result<
    std::result::Result<Answer<S>, oneshot::error::RecvError>,
    tokio::time::error::Elapsed,
>;

/// The reply of a command admitted by [`EntityRef::send`]: await it for the reply (or
/// drop it; the command is handled all the same).
#[must_use = "the command is sent; await this for its reply, or use `tell`"]
pub struct PendingReply<S: EventSourced> {
    replied: Pin<Box<tokio::time::Timeout<Replied<S>>>>,
    entity: String,
    timeout: Duration,
}

impl<S: EventSourced> std::fmt::Debug for PendingReply<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReply")
            .field("entity", &self.entity)
            .finish_non_exhaustive()
    }
}

impl<S: EventSourced> Future for PendingReply<S> {
    type Output = std::result::Result<S::Reply, CommandError<S::Rejection>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match self.replied.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        let timeout = self.timeout;
        Poll::Ready(reply_outcome::<S>(
            outcome,
            || std::mem::take(&mut self.entity),
            timeout,
        ))
    }
}

/// What waiting for a reply came to: the reply, [`Error::Stopped`] when the actor took the
/// command and stopped before replying (its outcome is unknown), or [`Error::Timeout`].
fn reply_outcome<S: EventSourced>(
    outcome: Waited<S>,
    entity: impl FnOnce() -> String,
    timeout: Duration,
) -> Answer<S> {
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(_dropped)) => Err(Error::Stopped { entity: entity() }.into()),
        Err(_elapsed) => Err(Error::Timeout {
            entity: entity(),
            after: timeout,
        }
        .into()),
    }
}
