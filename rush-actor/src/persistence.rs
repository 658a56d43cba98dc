//! The persistence extension: opened once on a backend, it owns the group-commit writer,
//! the recovery throttle, the supervisor and the entity table, and spawns persistent
//! actors by entity id.

use crate::behavior::EventSourced;
use crate::config::PersistenceConfig;
use crate::entities::{EntityTable, Mailbox, Phase, Slot, Starter, Startup, StartupHandle, launch};
use crate::entity_ref::EntityRef;
use crate::error::{Error, Result};
use crate::host::{Host, HostArgs};
use crate::metrics::{EntityMetrics, MetricsCell};
use crate::supervision::{RestartHistory, Supervisor, SupervisorMsg, SupervisorState};
use ractor::{Actor, ActorCell, ActorRef, SpawnErr};
use rush_store::{Backend, Database, Keyring};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::{Semaphore, watch};

/// Everything the actors of one extension share.
pub(crate) struct Shared {
    pub(crate) id: u64,
    /// The database every actor, projection and saga of the extension reads and writes
    /// through: its writer is the one write path.
    pub(crate) db: Database,
    pub(crate) config: PersistenceConfig,
    pub(crate) recovery_permits: Semaphore,
    pub(crate) table: Arc<EntityTable>,
    pub(crate) supervisor: ActorRef<SupervisorMsg>,
    /// Projections spawned on this extension, stopped by `shutdown`.
    pub(crate) projections: std::sync::Mutex<Vec<crate::projection::ProjectionHandle>>,
}

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
    pub async fn open(backend: impl Backend, config: PersistenceConfig) -> Result<Self> {
        Self::open_shared(Arc::new(backend), config).await
    }

    /// [`Persistence::open`] on a shared backend handle.
    pub async fn open_shared(backend: Arc<dyn Backend>, config: PersistenceConfig) -> Result<Self> {
        let db = Database::open_shared(backend, config.database_config())?;
        Self::open_database(db, config).await
    }

    /// Opens the extension on a database that is already open (its keys, compression and
    /// durability are used; those of `config` are not).
    pub async fn open_database(db: Database, config: PersistenceConfig) -> Result<Self> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let table = Arc::new(EntityTable::default());
        let state = SupervisorState {
            table: Arc::clone(&table),
            policy: config.restart,
        };
        let (supervisor, _) =
            Actor::spawn(Some(format!("rush/{id}/supervisor")), Supervisor, state)
                .await
                .map_err(|e| Error::Spawn {
                    entity: "supervisor".into(),
                    reason: e.to_string(),
                })?;
        let recovery_permits = Semaphore::new(config.max_concurrent_recoveries.max(1));
        Ok(Self {
            shared: Arc::new(Shared {
                id,
                db,
                config,
                recovery_permits,
                table,
                supervisor,
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
        EntityRef::new(self.clone(), entity_id)
    }

    /// Starts entity `entity_id` if it is not running, waits for its recovery, and returns
    /// its handle. A recovery failure (corruption, wrong key) is [`Error::RecoveryFailed`].
    pub async fn get_or_spawn<S: EventSourced>(&self, entity_id: &str) -> Result<EntityRef<S>> {
        let entity = self.entity::<S>(entity_id);
        let mut startup = self.ensure_started::<S>(entity_id)?;
        let outcome = startup
            .wait_for(|s| *s != Startup::Recovering)
            .await
            .map(|s| s.clone());
        match outcome {
            Ok(Startup::Failed(reason)) => Err(Error::RecoveryFailed {
                entity: entity.describe(),
                reason,
            }),
            _ => Ok(entity),
        }
    }

    /// Starts entity `entity_id`; [`Error::Spawn`] if it is already running.
    pub async fn spawn<S: EventSourced>(&self, entity_id: &str) -> Result<EntityRef<S>> {
        let name = self.actor_name::<S>(entity_id);
        if self.shared.table.lock().contains_key(&name) {
            return Err(Error::Spawn {
                entity: format!("{}/{entity_id}", S::COLLECTION),
                reason: "already running".into(),
            });
        }
        self.get_or_spawn(entity_id).await
    }

    /// The running actor of an entity, found in ractor's registry by its name.
    pub fn lookup<S: EventSourced>(&self, entity_id: &str) -> Option<ActorRef<crate::HostMsg<S>>> {
        ractor::registry::where_is(self.actor_name::<S>(entity_id)).map(ActorRef::from)
    }

    /// Counters of one entity, if it was started since the extension opened.
    pub fn entity_metrics<S: EventSourced>(&self, entity_id: &str) -> Option<EntityMetrics> {
        self.shared
            .table
            .lock()
            .get(&self.actor_name::<S>(entity_id))
            .map(|slot| slot.metrics.read())
    }

    /// Entities currently running (recovering or handling commands).
    pub fn running_entities(&self) -> usize {
        self.shared
            .table
            .lock()
            .values()
            .filter(|s| matches!(s.phase, Phase::Running { .. }))
            .count()
    }

    /// Group commits so far: batches and the writes in them (of every kind: events,
    /// snapshots, table rows).
    pub fn group_commit_stats(&self) -> (u64, u64) {
        let stats = self.shared.db.writer_stats();
        (stats.groups, stats.writes)
    }

    /// Stops every projection (after its current page), every actor and the supervisor,
    /// then shuts the database down: the writes accepted so far are finished and flushed
    /// (under `Durability::Periodic` too), the writer is joined and the engine released,
    /// so the folder can be opened again at once. An error is that last flush failing.
    pub async fn shutdown(&self) -> Result<()> {
        let projections = self
            .shared
            .projections
            .lock()
            .map(|mut running| std::mem::take(&mut *running))
            .unwrap_or_default();
        for projection in projections {
            // An already stopped projection answers at once.
            let _ = projection.stop().await;
        }
        let cells: Vec<ActorCell> = self
            .shared
            .table
            .lock()
            .drain()
            .filter_map(|(_, slot)| match slot.phase {
                Phase::Running { cell, .. } => Some(cell),
                _ => None,
            })
            .collect();
        for cell in cells {
            cell.unlink(self.shared.supervisor.get_cell());
            let _ = cell.stop_and_wait(Some("shutdown".into()), None).await;
        }
        let _ = self
            .shared
            .supervisor
            .stop_and_wait(Some("shutdown".into()), None)
            .await;
        self.shared.db.shutdown().await?;
        Ok(())
    }

    /// The ractor name of an entity's actor: unique per extension, collection and id.
    pub(crate) fn actor_name<S: EventSourced>(&self, entity_id: &str) -> String {
        format!("rush/{}/{}/{}", self.shared.id, S::COLLECTION, entity_id)
    }

    /// Creates the entity's slot and starts its first incarnation if there is none.
    pub(crate) fn ensure_started<S: EventSourced>(
        &self,
        entity_id: &str,
    ) -> Result<watch::Receiver<Startup>> {
        let name = self.actor_name::<S>(entity_id);
        let mut slots = self.shared.table.lock();
        if let Some(slot) = slots.get(&name) {
            return match &slot.phase {
                Phase::GaveUp { reason } => Err(Error::Unavailable {
                    entity: format!("{}/{entity_id}", S::COLLECTION),
                    reason: reason.clone(),
                }),
                _ => Ok(slot.startup.subscribe()),
            };
        }
        let starter: Arc<dyn Starter> = Arc::new(HostStarter::<S> {
            shared: Arc::downgrade(&self.shared),
            entity_id: entity_id.to_owned(),
            name: name.clone(),
            metrics: Arc::new(MetricsCell::default()),
            _marker: PhantomData,
        });
        let (startup, receiver) = watch::channel(Startup::Recovering);
        let mut slot = Slot {
            phase: Phase::Passivating,
            incarnation: 0,
            metrics: starter.metrics(),
            starter,
            history: RestartHistory::default(),
            startup,
        };
        launch(&name, &mut slot, &self.shared.supervisor).map_err(|e| Error::Spawn {
            entity: format!("{}/{entity_id}", S::COLLECTION),
            reason: e.to_string(),
        })?;
        slots.insert(name, slot);
        Ok(receiver)
    }
}

/// Spawns incarnations of one entity of type `S`.
struct HostStarter<S> {
    shared: Weak<Shared>,
    entity_id: String,
    name: String,
    metrics: Arc<MetricsCell>,
    _marker: PhantomData<fn() -> S>,
}

impl<S: EventSourced> Starter for HostStarter<S> {
    fn start(
        &self,
        incarnation: u64,
        mailbox: Arc<Mailbox>,
        supervisor: ActorCell,
    ) -> Result<(ActorCell, StartupHandle), SpawnErr> {
        let shared = self
            .shared
            .upgrade()
            .ok_or_else(|| SpawnErr::StartupFailed("persistence is shut down".into()))?;
        let args = HostArgs {
            shared,
            entity_id: self.entity_id.clone(),
            name: self.name.clone(),
            incarnation,
            mailbox,
            metrics: Arc::clone(&self.metrics),
        };
        let (actor, startup) = ractor::ActorRuntime::<Host<S>>::spawn_linked_instant(
            Some(self.name.clone()),
            Host::<S>::new(),
            args,
            supervisor,
        )?;
        Ok((actor.get_cell(), startup))
    }

    fn metrics(&self) -> Arc<MetricsCell> {
        Arc::clone(&self.metrics)
    }
}
