//! Projections: read models kept up to date from the events of one actor type, by a
//! supervised runner that remembers how far it got (a checkpoint) and resumes from there.
//!
//! A [`Projection`] handles one [`StoredEvent`] at a time, in offset order (the order the
//! events committed, across every entity of the collection). The runner reads pages of the
//! collection's log from `checkpoint + 1`, hands each event to the handler, and commits the
//! handler's writes together with the new checkpoint. When it is caught up it sleeps until
//! the backend signals a commit that appended events (or polls, for a backend without that
//! signal).
//!
//! # Delivery
//!
//! - [`Delivery::AtLeastOnce`] (the default): the read model lives anywhere (memory, another
//!   system). The checkpoint is saved every `checkpoint_every` events and whenever the
//!   runner catches up. After a crash the runner resumes from the saved checkpoint, so the
//!   events handled after it are **handled again**: the handler must be idempotent or
//!   tolerate duplicates.
//! - [`Delivery::ExactlyOnce`]: the read model lives in [`Table`]s of the same database and
//!   the handler writes only through its [`ProjectionTx`]. After every page the runner
//!   commits the page's writes and the checkpoint as **one atomic batch**, then flushes. A
//!   crash (a failed commit, a panic in the handler) loses both or neither, so after the
//!   restart each event has changed the read model exactly once. Effects outside the
//!   transaction (a log line, an email) are still at-least-once.
//!
//! # Why one trait
//!
//! Both modes run the same loop: read a page, handle, commit writes + checkpoint. They differ
//! only in *when* the runner commits, so the mode is a value ([`Projection::delivery`]) and
//! every handler gets a [`ProjectionTx`]; an at-least-once handler that keeps its read model
//! in memory simply ignores it. One trait also means a projection can move its read model
//! into the database (and switch to exactly-once) without changing shape, and one runner,
//! supervisor and handle serve both.
//!
//! # Rebuild
//!
//! [`ProjectionHandle::rebuild`] stops the runner, marks the checkpoint "rebuilding", and
//! starts it again: the new runner clears the tables named by
//! [`Projection::read_model_tables`], calls [`Projection::reset`], sets the checkpoint to 0
//! and handles every event again. The mark makes a crash during the rebuild resume the
//! rebuild, never a half-cleared read model with an old checkpoint.
//!
//! ```
//! use rush_actor::{Delivery, Effect, EventSourced, Persistence, PersistenceConfig, Projection, ProjectionError, ProjectionTx};
//! use rush_store::{MemoryManager, PersistentActor, StoredEvent, Table};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Default, Clone, Serialize, Deserialize)]
//! struct Counter { value: u64 }
//! impl PersistentActor for Counter {
//!     type Event = u64;
//!     fn apply(&mut self, n: &u64) { self.value += n; }
//! }
//! impl EventSourced for Counter {
//!     const COLLECTION: &'static str = "counters";
//!     type Command = u64;
//!     type Reply = u64;
//!     type Rejection = String;
//!     fn decide(&self, n: u64) -> Result<Effect<Self>, String> {
//!         Ok(Effect::persist(n).then_reply(|s: &Counter| s.value))
//!     }
//! }
//!
//! /// Sum of every counter, per entity, in a table beside the journal.
//! struct Totals { table: Table<u64> }
//!
//! impl Projection for Totals {
//!     type Actor = Counter;
//!     fn name(&self) -> &str { "totals" }
//!     fn delivery(&self) -> Delivery { Delivery::ExactlyOnce }
//!     fn read_model_tables(&self) -> Vec<String> { vec![self.table.name().to_owned()] }
//!     async fn handle(&mut self, event: &StoredEvent<u64>, tx: &mut ProjectionTx) -> Result<(), ProjectionError> {
//!         let total = tx.get(&self.table, &event.entity_id).await?.unwrap_or(0);
//!         tx.put(&self.table, &event.entity_id, total + event.event)?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let persistence = Persistence::open(MemoryManager::default(), PersistenceConfig::default()).await?;
//! let table = persistence.table::<u64>("totals")?;
//! let totals = persistence.spawn_projection(Totals { table: table.clone() }).await?;
//! persistence.entity::<Counter>("a").ask(2).await?;
//! persistence.entity::<Counter>("a").ask(3).await?;
//! totals.wait_until_caught_up(Duration::from_secs(5)).await?;
//! assert_eq!(table.get("a")?, Some(5));
//! totals.stop().await?;
//! persistence.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod checkpoint;
mod handle;
mod runner;
mod supervisor;
mod tx;

pub use checkpoint::{CHECKPOINT_TABLE, Checkpoint};
pub use handle::{ProjectionHandle, ProjectionLag, ProjectionState};
pub use tx::ProjectionTx;

use crate::behavior::EventSourced;
use crate::error::{Error, Result};
use crate::persistence::Persistence;
use crate::supervision::RestartPolicy;
use rush_store::{EventFilter, PersistentActor, StoredEvent, Table};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;

/// What a projection handler returns when it fails: any error. The runner then fails, the
/// supervisor restarts it after a backoff, and it resumes from its checkpoint.
pub type ProjectionError = Box<dyn std::error::Error + Send + Sync>;

/// The event type a projection `P` handles.
pub type EventOf<P> = <<P as Projection>::Actor as PersistentActor>::Event;

/// When the runner saves the checkpoint, and so what a crash costs (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The read model lives outside the database: the checkpoint (with any writes of the
    /// [`ProjectionTx`]) is saved every `checkpoint_every` events and when the runner
    /// catches up; after a crash, the events since the last checkpoint are handled again.
    AtLeastOnce {
        /// Events handled between two checkpoints (at least 1).
        checkpoint_every: u64,
    },
    /// The read model lives in tables of the same database and is written only through the
    /// [`ProjectionTx`]: every page's writes and its checkpoint commit as one atomic batch.
    ExactlyOnce,
}

impl Default for Delivery {
    fn default() -> Self {
        Self::AtLeastOnce {
            checkpoint_every: 100,
        }
    }
}

/// A read model built from the events of every entity of type [`Projection::Actor`].
///
/// Its handlers are plain `async fn`s in the `impl` (no macro): the trait declares them
/// as returning a `Send` future, as ractor's `Actor` does, so they must not hold a
/// non-`Send` value (an `Rc`, a `std::sync::MutexGuard`) across an `.await`.
pub trait Projection: Send + 'static {
    /// The actor type whose events (its collection's log) are projected.
    type Actor: EventSourced;

    /// The projection's name: the row of its checkpoint, unique per database.
    fn name(&self) -> &str;

    /// How writes and the checkpoint are committed. Default: at-least-once, a checkpoint
    /// every 100 events.
    fn delivery(&self) -> Delivery {
        Delivery::default()
    }

    /// Which events are handled (the others still advance the checkpoint). Default: all.
    fn filter(&self) -> EventFilter {
        EventFilter::all()
    }

    /// Tables that hold this projection's read model: a rebuild clears them.
    fn read_model_tables(&self) -> Vec<String> {
        Vec::new()
    }

    /// Handles one event. Writes to tables of the same database go through `tx` and are
    /// committed with the checkpoint.
    ///
    /// # Errors
    ///
    /// Any [`ProjectionError`]: it (or a panic) fails the runner, which is restarted from
    /// its checkpoint under [`ProjectionSettings::restart`].
    fn handle(
        &mut self,
        event: &StoredEvent<EventOf<Self>>,
        tx: &mut ProjectionTx,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;

    /// Forgets a read model kept outside the declared tables (memory, another system), before
    /// a rebuild replays every event. Default: nothing to forget.
    ///
    /// # Errors
    ///
    /// Any [`ProjectionError`]: it fails the rebuilding runner, which is restarted (and
    /// calls `reset` again) under [`ProjectionSettings::restart`].
    fn reset(&mut self) -> impl Future<Output = Result<(), ProjectionError>> + Send {
        async { Ok(()) }
    }
}

/// How a projection runner reads and restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectionSettings {
    /// Log entries read (and, in exactly-once mode, committed) per page.
    pub batch_size: usize,
    /// Restarts after a handler error or panic, or a failed commit.
    pub restart: RestartPolicy,
    /// How often a caught-up runner looks for new events when the backend gives no commit
    /// signal (and, with a signal, how often it looks anyway).
    pub poll_interval: Duration,
}

impl Default for ProjectionSettings {
    fn default() -> Self {
        Self {
            batch_size: 256,
            restart: RestartPolicy::default(),
            poll_interval: Duration::from_millis(50),
        }
    }
}

impl Persistence {
    /// Opens table `name` in the extension's database, sealed with its keys: where an
    /// exactly-once read model lives, so its writes can commit with the checkpoint.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] with [`rush_store::Error::Shutdown`] after
    /// [`Persistence::shutdown`], or [`rush_store::Error::InvalidArgument`] for a `name`
    /// that is empty or too long.
    pub fn table<V: Serialize + DeserializeOwned>(&self, name: &str) -> Result<Table<V>> {
        Ok(self.database().table(name)?)
    }

    /// Starts `projection` under its own supervisor with the default settings; it resumes
    /// from its checkpoint. See [`Persistence::spawn_projection_with`].
    ///
    /// # Errors
    ///
    /// As [`Persistence::spawn_projection_with`].
    pub async fn spawn_projection<P: Projection>(&self, projection: P) -> Result<ProjectionHandle> {
        self.spawn_projection_with(projection, ProjectionSettings::default())
            .await
    }

    /// Starts `projection` with `settings`. Returns once the runner has loaded its
    /// checkpoint (or failed to, in which case it is already backing off). Dropping the
    /// handle leaves the projection running; [`Persistence::shutdown`] stops it (after the
    /// page it is handling).
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] for an empty name, or a projection of the same name already running
    /// in this extension; [`Error::Journal`] when `P::Actor`'s log cannot be queried (as
    /// [`Persistence::query`]); [`Error::Store`] with [`rush_store::Error::Shutdown`] when
    /// the checkpoint table cannot be opened after [`Persistence::shutdown`].
    pub async fn spawn_projection_with<P: Projection>(
        &self,
        projection: P,
        settings: ProjectionSettings,
    ) -> Result<ProjectionHandle> {
        if projection.name().is_empty() {
            return Err(Error::Spawn {
                entity: "projection".into(),
                reason: "a projection needs a non-empty name".into(),
            });
        }
        supervisor::start(self, projection, settings).await
    }
}

#[cfg(test)]
mod tests;
