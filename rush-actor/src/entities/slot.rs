//! An entity's slot in the table: its phase, its incarnations and restart history, its
//! stash and counters. The transitions between phases are in `entities`.

use super::key::Claims;
use super::{EntityKey, EntityTable, Stashed};
use crate::metrics::{EntityMetrics, MetricsCell};
use crate::supervision::RestartHistory;
use ractor::{ActorCell, ActorId, SpawnErr};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Resolves when the actor's `pre_start` (recovery) is over.
pub(crate) type StartupHandle = JoinHandle<Result<JoinHandle<()>, SpawnErr>>;

/// Spawns one incarnation of an entity's actor (type-erased, so the table serves every
/// actor type).
pub(crate) trait Starter: Send + Sync {
    fn start(
        &self,
        incarnation: u64,
        supervisor: ActorCell,
    ) -> Result<(ActorCell, StartupHandle), SpawnErr>;
}

/// The typed half of a new entity's slot.
pub(crate) struct NewSlot {
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) stash: Arc<dyn Stashed>,
    pub(crate) metrics: Arc<MetricsCell>,
}

/// Where an entity's recovery stands.
#[derive(Debug, Clone)]
pub(crate) enum Startup {
    Recovering,
    Ready,
    /// Why, and the store's error when recovery failed with one (its kind kept).
    Failed(String, Option<rush_store::Error>),
}

impl Startup {
    /// Where an incarnation's startup ended: `Ready`, or `Failed` with the store's error
    /// kept typed when recovery returned one.
    pub(crate) fn of(
        outcome: Result<Result<JoinHandle<()>, SpawnErr>, tokio::task::JoinError>,
    ) -> Self {
        match outcome {
            Ok(Ok(_running)) => Startup::Ready,
            Ok(Err(SpawnErr::StartupFailed(err))) => Startup::Failed(
                err.to_string(),
                err.downcast_ref::<rush_store::Error>().cloned(),
            ),
            Ok(Err(other)) => Startup::Failed(other.to_string(), None),
            Err(join) => Startup::Failed(join.to_string(), None),
        }
    }
}

/// What an entity is doing (absent entities have no slot).
pub(crate) enum Phase {
    /// An incarnation is recovering or running; its mailbox takes commands.
    Running { cell: ActorCell },
    /// It failed and waits for its restart; commands wait in the stash.
    BackingOff,
    /// It is stopping because it was idle; commands wait in the stash.
    Passivating { cell: ActorCell },
    /// The restart policy gave up on it until its cool-down ends or it is revived.
    GaveUp { reason: String },
}

impl Phase {
    pub(super) fn cell(&self) -> Option<&ActorCell> {
        match self {
            Self::Running { cell } | Self::Passivating { cell } => Some(cell),
            Self::BackingOff | Self::GaveUp { .. } => None,
        }
    }
}

pub(super) struct Slot {
    pub(super) phase: Phase,
    /// Tells this slot from an earlier one of the same entity (released, then started
    /// again), for timers and watchers that outlive a slot.
    pub(super) generation: u64,
    pub(super) incarnation: u64,
    pub(super) starter: Arc<dyn Starter>,
    pub(super) stash: Arc<dyn Stashed>,
    pub(super) history: RestartHistory,
    pub(super) metrics: Arc<MetricsCell>,
    pub(super) startup: watch::Sender<Startup>,
    /// Commands admitted and not yet taken by an actor (or refused).
    pub(super) waiting: Arc<AtomicUsize>,
    /// Commands admitted so far: the next one's place in the order.
    pub(super) admitted: u64,
}

impl Slot {
    /// The slot of an entity about to start its first incarnation.
    pub(super) fn new(new: NewSlot, generation: u64) -> Self {
        let NewSlot {
            starter,
            stash,
            metrics,
        } = new;
        Self {
            phase: Phase::BackingOff,
            generation,
            incarnation: 0,
            starter,
            stash,
            history: RestartHistory::default(),
            metrics,
            startup: watch::Sender::new(Startup::Recovering),
            waiting: Arc::default(),
            admitted: 0,
        }
    }
}

#[derive(Default)]
pub(super) struct Entities {
    pub(super) slots: HashMap<EntityKey, Slot>,
    /// The entity of each live incarnation (running or passivating).
    pub(super) by_actor: HashMap<ActorId, EntityKey>,
    pub(super) claims: Claims,
    pub(super) closed: bool,
    /// Slots created so far.
    pub(super) generations: u64,
}

impl Entities {
    /// Sets `key`'s phase, keeping `by_actor` in step.
    pub(super) fn set_phase(&mut self, key: &EntityKey, phase: Phase) {
        let Some(slot) = self.slots.get_mut(key) else {
            return;
        };
        // The old incarnation out first: a passivating one keeps its cell.
        if let Some(cell) = slot.phase.cell() {
            self.by_actor.remove(&cell.get_id());
        }
        if let Some(cell) = phase.cell() {
            self.by_actor.insert(cell.get_id(), key.clone());
        }
        slot.phase = phase;
    }

    pub(super) fn remove(&mut self, key: &EntityKey) -> Option<Slot> {
        let slot = self.slots.remove(key)?;
        if let Some(cell) = slot.phase.cell() {
            self.by_actor.remove(&cell.get_id());
        }
        Some(slot)
    }

    /// The entity of a live incarnation, and its incarnation number.
    pub(super) fn incarnation_of(&self, actor: ActorId) -> Option<(EntityKey, u64)> {
        let key = self.by_actor.get(&actor)?;
        let slot = self.slots.get(key)?;
        let live = slot.phase.cell().is_some_and(|cell| cell.get_id() == actor);
        live.then(|| (key.clone(), slot.incarnation))
    }
}

/// What callers may read of the table.
impl EntityTable {
    /// Whether the table is closed (shut down).
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The counters of entity `key`, while it has a slot.
    pub(crate) fn metrics(&self, key: &EntityKey) -> Option<EntityMetrics> {
        self.lock().slots.get(key).map(|slot| slot.metrics.read())
    }

    /// Entities whose incarnation is recovering or running.
    pub(crate) fn running(&self) -> usize {
        self.lock()
            .slots
            .values()
            .filter(|slot| matches!(slot.phase, Phase::Running { .. }))
            .count()
    }
}
