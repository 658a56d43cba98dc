//! The table of live entities of one persistence extension: which actor incarnation runs
//! each entity, how many commands wait for it, and whether it is backing off, passivating
//! or given up. Spawning, asking and passivating all decide under this one lock, so no
//! command is sent to an actor that is about to stop, and no entity runs twice.

use crate::metrics::MetricsCell;
use crate::supervision::{RestartHistory, SupervisorMsg};
use ractor::{ActorCell, SpawnErr};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Resolves when the actor's `pre_start` (recovery) is over.
pub(crate) type StartupHandle = JoinHandle<Result<JoinHandle<()>, SpawnErr>>;

/// Spawns one incarnation of an entity's actor (type-erased, so the table and the
/// supervisor serve every actor type).
pub(crate) trait Starter: Send + Sync {
    fn start(
        &self,
        incarnation: u64,
        mailbox: Arc<Mailbox>,
        supervisor: ActorCell,
    ) -> Result<(ActorCell, StartupHandle), SpawnErr>;

    /// The entity's counters, shared by all its incarnations.
    fn metrics(&self) -> Arc<MetricsCell>;
}

/// The mailbox of one incarnation, as the table sees it.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    /// Commands sent and not yet taken by the actor.
    pub(crate) pending: AtomicUsize,
    /// Set by the actor when it is about to fail: send nothing more to it.
    pub(crate) closed: AtomicBool,
}

impl Mailbox {
    /// Whether the incarnation behind `cell` takes commands.
    pub(crate) fn accepting(&self, cell: &ActorCell) -> bool {
        !self.closed.load(Ordering::SeqCst)
            && !matches!(
                cell.get_status(),
                ractor::ActorStatus::Draining
                    | ractor::ActorStatus::Stopping
                    | ractor::ActorStatus::Stopped
            )
    }
}

/// Where an entity's recovery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Startup {
    Recovering,
    Ready,
    Failed(String),
}

/// What an entity is doing.
pub(crate) enum Phase {
    /// An incarnation is recovering or running; its mailbox takes commands.
    Running {
        cell: ActorCell,
        mailbox: Arc<Mailbox>,
    },
    /// It failed and waits for its restart.
    BackingOff,
    /// It is stopping because it was idle; it starts again on the next command.
    Passivating,
    /// The restart policy gave up on it.
    GaveUp { reason: String },
}

pub(crate) struct Slot {
    pub(crate) phase: Phase,
    pub(crate) incarnation: u64,
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) history: RestartHistory,
    pub(crate) metrics: Arc<MetricsCell>,
    pub(crate) startup: watch::Sender<Startup>,
}

#[derive(Default)]
pub(crate) struct EntityTable {
    slots: Mutex<HashMap<String, Slot>>,
    /// Notified whenever a slot changes phase.
    pub(crate) changed: Notify,
}

impl EntityTable {
    /// Locks the table. No code panics while holding it, so a poisoned lock still holds
    /// consistent data.
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts the next incarnation of `slot`, and watches its startup.
pub(crate) fn launch(
    name: &str,
    slot: &mut Slot,
    supervisor: &ractor::ActorRef<SupervisorMsg>,
) -> Result<(), SpawnErr> {
    let incarnation = slot.incarnation + 1;
    let mailbox = Arc::new(Mailbox::default());
    let (cell, startup) =
        slot.starter
            .start(incarnation, Arc::clone(&mailbox), supervisor.get_cell())?;
    slot.incarnation = incarnation;
    slot.phase = Phase::Running { cell, mailbox };
    slot.startup.send_replace(Startup::Recovering);
    MetricsCell::add(&slot.metrics.incarnations, 1);
    let watch = slot.startup.clone();
    let supervisor = supervisor.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        let failure = match startup.await {
            Ok(Ok(_running)) => None,
            Ok(Err(SpawnErr::StartupFailed(err))) => Some(err.to_string()),
            Ok(Err(other)) => Some(other.to_string()),
            Err(join) => Some(join.to_string()),
        };
        match failure {
            None => {
                watch.send_replace(Startup::Ready);
            }
            Some(reason) => {
                watch.send_replace(Startup::Failed(reason.clone()));
                let _ = supervisor.send_message(SupervisorMsg::StartFailed {
                    name,
                    incarnation,
                    reason,
                });
            }
        }
    });
    Ok(())
}
