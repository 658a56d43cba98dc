//! The persistence extension: opened once on a backend, it owns the group-commit writer,
//! the recovery throttle, the supervisor and the entity table, and hands out entity
//! handles. It starts standalone or linked under an application's own supervisor.

use crate::behavior::EventSourced;
use crate::config::{PersistenceConfig, deadline_after};
use crate::entities::{Claim, EntityKey, EntityTable, Supervisor};
use crate::entity_ref::EntityRef;
use crate::error::{Error, Result};
use crate::metrics::EntityMetrics;
use crate::shared::Shared;
use ractor::{Actor, ActorCell};
use rush_store::{Backend, Database, Keyring};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Semaphore;

/// The persistence extension of an actor system: spawn persistent actors with it.
///
/// ```
/// # use rush_actor::{Effect, EventSourced, Persistence, PersistenceConfig};
/// # use rush_store::{MemoryManager, PersistentActor};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Default, Clone, Serialize, Deserialize)]
/// # struct Counter { value: u64 }
/// # impl PersistentActor for Counter {
/// #     type Event = u64;
/// #     fn apply(&mut self, n: &u64) { self.value += n; }
/// # }
/// # impl EventSourced for Counter {
/// #     const COLLECTION: &'static str = "counters";
/// #     type Command = u64;
/// #     type Reply = u64;
/// #     type Rejection = String;
/// #     fn decide(&self, n: u64) -> Result<Effect<Self>, String> {
/// #         Ok(Effect::persist(n).then_reply(|s: &Counter| s.value))
/// #     }
/// # }
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let persistence = Persistence::open(MemoryManager::default(), PersistenceConfig::default()).await?;
/// let counter = persistence.get_or_spawn::<Counter>("c-1").await?;
/// assert_eq!(counter.ask(2).await?, 2);
/// assert_eq!(counter.ask(3).await?, 5); // replied only once the event is durable
/// persistence.shutdown().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Persistence {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("id", &self.shared.id)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Persistence {
    /// Opens the extension on `backend` ([`rush_store::SledManager`] for durable actors,
    /// [`rush_store::MemoryManager`] for tests): opens the [`Database`] on it with the
    /// configuration's keys, compression and durability. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database does not open (a compression threshold outside
    /// `[0, 1)`, or its threads cannot start: see [`Database::open`]); [`Error::Spawn`]
    /// when the extension's supervisor cannot be spawned.
    pub async fn open(backend: impl Backend, config: PersistenceConfig) -> Result<Self> {
        Self::open_shared(Arc::new(backend), config).await
    }

    /// [`Persistence::open`] on a shared backend handle.
    ///
    /// # Errors
    ///
    /// As [`Persistence::open`].
    pub async fn open_shared(backend: Arc<dyn Backend>, config: PersistenceConfig) -> Result<Self> {
        let db = Database::open_shared(backend, config.database_config())?;
        Self::start(db, config, None).await
    }

    /// Opens the extension on a database that is already open (its keys, compression and
    /// durability are used; those of `config` are not).
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when the extension's supervisor cannot be spawned.
    pub async fn open_database(db: Database, config: PersistenceConfig) -> Result<Self> {
        Self::start(db, config, None).await
    }

    /// [`Persistence::open`], with the extension's supervisor linked under `supervisor`,
    /// an actor of the application: it receives the supervisor's `ActorStarted`, and its
    /// `ActorTerminated` after [`Persistence::shutdown`]. If the application's supervisor
    /// stops without shutting the extension down, ractor stops the extension's
    /// supervisor and actors with it, and every later call is [`Error::Shutdown`].
    ///
    /// # Errors
    ///
    /// As [`Persistence::open`].
    pub async fn open_linked(
        backend: impl Backend,
        config: PersistenceConfig,
        supervisor: ActorCell,
    ) -> Result<Self> {
        let db = Database::open(backend, config.database_config())?;
        Self::start(db, config, Some(supervisor)).await
    }

    async fn start(
        db: Database,
        config: PersistenceConfig,
        parent: Option<ActorCell>,
    ) -> Result<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let table = EntityTable::new(config.restart, config.max_pending_commands);
        let name = Some(format!("rush/{id}/supervisor"));
        let spawned = match parent {
            Some(parent) => Actor::spawn_linked(name, Supervisor, Arc::clone(&table), parent).await,
            None => Actor::spawn(name, Supervisor, Arc::clone(&table)).await,
        };
        let (supervisor, _) = spawned.map_err(|e| Error::Spawn {
            entity: "supervisor".into(),
            reason: e.to_string(),
        })?;
        // Any count is accepted; the semaphore holds at most `MAX_PERMITS`.
        let recoveries = config
            .max_concurrent_recoveries
            .clamp(1, Semaphore::MAX_PERMITS);
        Ok(Self {
            shared: Arc::new(Shared {
                id,
                db,
                config,
                recovery_permits: Semaphore::new(recoveries),
                table,
                supervisor: supervisor.get_cell(),
                projections: std::sync::Mutex::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PersistenceConfig {
        &self.shared.config
    }

    /// The keys every store, query, table and saga of this extension opens records with:
    /// the configuration's encryption key and decryption keys, parsed once.
    pub fn keyring(&self) -> &Keyring {
        self.shared.db.keyring()
    }

    /// The database the actors journal to.
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    /// Queries and subscriptions over every entity of type `S` (its collection's log),
    /// opened with the extension's keys.
    ///
    /// # Errors
    ///
    /// [`Error::Journal`] with [`rush_store::Error::Shutdown`] after
    /// [`Persistence::shutdown`], or [`rush_store::Error::InvalidArgument`] when
    /// `S::COLLECTION` is empty or too long.
    pub fn query<S: EventSourced>(&self) -> Result<rush_store::EventQuery<S>> {
        self.shared
            .db
            .query::<S>(S::COLLECTION)
            .map_err(|source| Error::Journal {
                entity: S::COLLECTION.to_owned(),
                source,
            })
    }

    /// A handle on entity `entity_id` of type `S`. Nothing is started until the first
    /// command; then the actor recovers and handles the commands in the order sent.
    pub fn entity<S: EventSourced>(&self, entity_id: &str) -> EntityRef<S> {
        EntityRef::new(Arc::clone(&self.shared), entity_id)
    }

    /// Starts entity `entity_id` if it is not running, waits for its recovery (at most the
    /// ask timeout), and returns its handle.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when recovery outlasts the ask timeout; [`Error::RecoveryFailed`]
    /// when it fails (corruption, wrong key); [`Error::Unavailable`] for an entity the
    /// supervisor gave up on; [`Error::CollectionClaimed`] when another actor type owns
    /// `S::COLLECTION`; [`Error::Spawn`] when the actor cannot be spawned;
    /// [`Error::Shutdown`] after shutdown.
    pub async fn get_or_spawn<S: EventSourced>(&self, entity_id: &str) -> Result<EntityRef<S>> {
        let entity = self.entity::<S>(entity_id);
        entity.started(false).await?;
        Ok(entity)
    }

    /// Starts entity `entity_id`, which must not be known to the extension yet.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] if it is already known (running, restarting, passivating or given
    /// up); otherwise as [`Persistence::get_or_spawn`].
    pub async fn spawn<S: EventSourced>(&self, entity_id: &str) -> Result<EntityRef<S>> {
        let entity = self.entity::<S>(entity_id);
        entity.started(true).await?;
        Ok(entity)
    }

    /// Revives entity `entity_id` after the supervisor gave up on it: its slot is released
    /// now, and its next command starts it afresh, with a new restart budget. Returns
    /// whether it was given up (otherwise nothing changes). Without a revive, a given-up
    /// entity is released after [`RestartPolicy::cool_down`](crate::RestartPolicy).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after shutdown; [`Error::CollectionClaimed`] when another actor
    /// type owns `S::COLLECTION`.
    pub fn revive<S: EventSourced>(&self, entity_id: &str) -> Result<bool> {
        self.shared
            .table
            .revive(&EntityKey::of::<S>(entity_id), Claim::of::<S>())
    }

    /// Counters of one entity, while the extension knows it (from its start until it is
    /// passivated or released).
    pub fn entity_metrics<S: EventSourced>(&self, entity_id: &str) -> Option<EntityMetrics> {
        self.shared.table.metrics(&EntityKey::of::<S>(entity_id))
    }

    /// Entities currently running (recovering or handling commands).
    pub fn running_entities(&self) -> usize {
        self.shared.table.running()
    }

    /// Group commits so far: batches (`groups`) and the writes in them (`writes`, of every
    /// kind: events, snapshots, table rows).
    pub fn group_commit_stats(&self) -> rush_store::WriterStats {
        self.shared.db.writer_stats()
    }

    /// Stops accepting work, then finishes what was accepted: every later `ask`,
    /// `get_or_spawn` and `spawn` is [`Error::Shutdown`] at once, commands waiting for a
    /// restart are answered [`Error::Shutdown`], projections stop after their current page,
    /// and each running actor handles the commands already in its mailbox (for at most the
    /// ask timeout) before it stops; then the supervisor stops. Last, the database shuts
    /// down: accepted writes are finished and flushed (under `Durability::Periodic` too),
    /// its writer is joined and the engine released, so the folder can be opened again at
    /// once.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database's shutdown fails: its last flush (as
    /// [`Database::flush`]) or its writer thread panicked. Everything is stopped all the
    /// same.
    pub async fn shutdown(&self) -> Result<()> {
        let cells = self.shared.table.close();
        let projections = self
            .shared
            .projections
            .lock()
            .map(|mut running| std::mem::take(&mut *running))
            .unwrap_or_default();
        for projection in projections {
            projection.stop_boxed().await;
        }
        for cell in &cells {
            // Unlinked, so the supervisor's own stop cannot kill an actor still draining.
            cell.unlink(self.shared.supervisor.clone());
            let _ = cell.drain();
        }
        let deadline = deadline_after(self.shared.config.ask_timeout);
        for cell in cells {
            if tokio::time::timeout_at(deadline, cell.wait(None))
                .await
                .is_err()
            {
                cell.kill();
            }
        }
        let _ = self
            .shared
            .supervisor
            .stop_and_wait(Some("shutdown".into()), None)
            .await;
        self.shared.db.shutdown().await?;
        Ok(())
    }
}
