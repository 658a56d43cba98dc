//! # Rush
//!
//! Event-sourced persistent actors for Rust, in the spirit of Akka Persistence: actors run
//! supervised on [ractor](https://docs.rs/ractor); their command handlers emit events; a
//! persistence extension journals the events (encrypted, compressed, integrity-checked) to
//! sled, redb or PostgreSQL, snapshots every N events, and replays snapshot + later events
//! when the supervisor restarts an actor.
//!
//! ```
//! use rush::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Event { Deposited(u64) }
//!
//! #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
//! struct Account { balance: u64 }
//!
//! impl PersistentActor for Account {           // how events change the state
//!     type Event = Event;
//!     fn apply(&mut self, Event::Deposited(n): &Event) { self.balance += n; }
//! }
//!
//! impl EventSourced for Account {              // how commands become events
//!     const COLLECTION: &'static str = "accounts";
//!     type Command = u64;
//!     type Reply = u64;
//!     type Rejection = String;
//!     fn decide(&self, cents: u64) -> std::result::Result<Effect<Self>, String> {
//!         if cents == 0 {
//!             return Err("nothing to deposit".into());
//!         }
//!         Ok(Effect::persist(Event::Deposited(cents)).then_reply(|s: &Account| s.balance))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let folder = tempfile::tempdir()?;
//!     let persistence =
//!         Persistence::open(SledManager::new(folder.path())?, PersistenceConfig::default()).await?;
//!     let alice = persistence.entity::<Account>("alice");
//!     assert_eq!(alice.ask(100).await?, 100);   // replied once the event is durable
//!     assert!(alice.ask(0).await.is_err());     // rejected: nothing persisted
//!     persistence.shutdown().await?;            // flushes and releases the folder
//!     Ok(())
//! }
//! ```
//!
//! ## Where to go next
//!
//! | You want to... | Read |
//! |---|---|
//! | write a persistent actor | [`EventSourced`], [`Effect`], [`PersistentActor`] |
//! | start, address and stop actors | [`Persistence`], [`EntityRef`] (`ask`, `send`, `tell`, `state`) |
//! | test one | [`testkit`]: commands to events, state and reply; restarts; round trips |
//! | choose where the journal lives | [`SledManager`] (default), [`RedbManager`], [`PostgresManager`], [`MemoryManager`] |
//! | encrypt, snapshot, restart | [`PersistenceConfig`], [`EncryptionKey`], [`SnapshotPolicy`], [`RestartPolicy`] |
//! | build read models | [`Projection`], [`ProjectionTx`], [`Table`], [`EventQuery`] |
//! | run multi-step workflows | [`Sagas`], [`SagaDefinition`], [`SagaStep`] |
//! | export metrics | [`metrics`] (names of every metric Rush records) |
//! | handle errors | [`Error`] (actors), [`CommandError`] (one command), [`StoreError`] (journal) |
//! | use the journal without actors | [`Store`], [`Database`] (in [`store`]) |
//!
//! The `rush` inspector (list, read, verify, back up, rotate keys, migrate) is the crate's
//! binary, behind the `cli` feature so that applications do not compile it:
//! `cargo install --path . --features cli`, or `cargo run --features cli -- --help` in the
//! repository. The repository's `README.md` tours everything above, `ARCHITECTURE.md` says
//! how a command becomes a durable event and how recovery runs, and
//! `rush-store/FORMAT.md` documents every on-disk and in-database format.
//!
//! ## Features
//!
//! - `sled` (default): the sled engine, [`SledManager`].
//! - `redb` (default): the redb engine, [`RedbManager`].
//! - `postgres` (default): the PostgreSQL engine, [`PostgresManager`].
//! - `postgres-tls`: TLS to the server (rustls on ring).
//! - `cli`: the `rush` binary and [`cli`] (clap, indicatif and friends).
//!
//! ## Errors
//!
//! Glob-importing [`prelude`] brings every name an application uses and no two of the same
//! name: [`Error`] and [`Result`] are the actors' ([`rush_actor::Error`]), whose
//! `Journal` variant carries the journal's [`StoreError`]. The two crates stay reachable
//! as [`actor`] and [`store`].
// Every fallible public function says which error variants it returns and when (issue 12).
#![warn(clippy::missing_errors_doc)]

#[cfg(feature = "cli")]
pub mod cli;

pub use rush_actor as actor;
pub use rush_store as store;

pub use rush_actor::testkit;
pub use rush_actor::{
    CHECKPOINT_TABLE, Checkpoint, CommandError, DeadLetter, DeadLetters, Delivery, Effect,
    EntityMetrics, EntityRef, Error, EventOf, EventSourced, IdempotencyKeys, PendingEffect,
    PendingReply, Persistence, PersistenceConfig, Projection, ProjectionError, ProjectionHandle,
    ProjectionLag, ProjectionSettings, ProjectionState, ProjectionTx, RecoveryInfo, RestartPolicy,
    Result, RetryPolicy, SagaData, SagaDefinition, SagaOutcome, SagaStatus, SagaStep, Sagas,
    SnapshotPolicy, StepContext, StepError, StepFuture, StepPhase,
};
pub use rush_store::{
    CompressionConfig, CompressionLevel, Database, DatabaseConfig, Durability, EncryptionKey,
    EventEnvelope, EventFilter, EventMetadata, EventPage, EventQuery, HealthReport, HealthStatus,
    IntegrityReport, Keyring, MemoryManager, PersistentActor, Store, StoredEvent, Subscription,
    Table, TableRow, Upcasters, WriterStats,
};
#[cfg(feature = "postgres")]
pub use rush_store::{PostgresConfig, PostgresManager, PostgresTls};
#[cfg(feature = "redb")]
pub use rush_store::{RedbConfig, RedbManager};
#[cfg(feature = "sled")]
pub use rush_store::{SledConfig, SledManager};

/// The journal's error: what [`Store`], [`Database`], [`Table`] and [`EventQuery`] return,
/// and what [`Error::Journal`] carries.
pub type StoreError = rush_store::Error;

/// Names of the metrics Rush records through the `metrics` facade.
pub use rush_actor::metric_names as metrics;

/// Everything an application names, for `use rush::prelude::*;`: the traits to implement,
/// the types to configure and address actors, and one [`Error`]/[`Result`] pair.
///
/// Glob imports of the prelude and of the crate's root together stay unambiguous: both
/// name the same items.
///
/// ```
/// use rush::prelude::*;
/// use rush::*;
///
/// fn journal_failed(error: StoreError) -> Error {
///     Error::from(error) // the actors' error carries the journal's
/// }
///
/// fn open_in_memory() -> Result<()> {
///     let _config = PersistenceConfig::default();
///     let _engine = MemoryManager::default();
///     Ok(())
/// }
/// # assert!(open_in_memory().is_ok());
/// # let _ = journal_failed(StoreError::Shutdown);
/// ```
pub mod prelude {
    pub use crate::{
        CommandError, Delivery, Durability, Effect, EncryptionKey, EntityRef, Error, EventFilter,
        EventMetadata, EventQuery, EventSourced, MemoryManager, PersistenceConfig, PersistentActor,
        Projection, ProjectionError, ProjectionTx, Result, SnapshotPolicy, StoreError, StoredEvent,
        Table,
    };
    pub use crate::{Persistence, RestartPolicy};
    #[cfg(feature = "postgres")]
    pub use crate::{PostgresConfig, PostgresManager};
    #[cfg(feature = "redb")]
    pub use crate::{RedbConfig, RedbManager};
    #[cfg(feature = "sled")]
    pub use crate::{SledConfig, SledManager};
}

/// The README's examples, compiled and run as doc tests so the tour stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
