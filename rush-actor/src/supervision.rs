//! The supervisor: a ractor actor that is the parent of every persistent actor of one
//! extension. A child that panics or fails is restarted after a backoff, from the journal,
//! until the restart policy gives up; a child that passivates is removed.

pub(crate) mod backoff;
mod restart_policy;

pub(crate) use restart_policy::RestartHistory;
pub use restart_policy::RestartPolicy;

use crate::entities::{EntityTable, Phase, launch};
use crate::metrics::MetricsCell;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tracing::{error, info, info_span, warn};

/// Messages of the supervisor (internal).
#[derive(Debug)]
pub enum SupervisorMsg {
    /// Start the next incarnation after a backoff.
    Restart {
        /// Entity name.
        name: String,
        /// The incarnation that failed.
        incarnation: u64,
    },
    /// An incarnation failed during recovery.
    StartFailed {
        /// Entity name.
        name: String,
        /// The incarnation that failed.
        incarnation: u64,
        /// Why.
        reason: String,
    },
    /// An incarnation was idle: stop it if no command waits for it.
    Passivate {
        /// Entity name.
        name: String,
        /// The idle incarnation.
        incarnation: u64,
    },
}

pub(crate) struct Supervisor;

pub(crate) struct SupervisorState {
    pub(crate) table: Arc<EntityTable>,
    pub(crate) policy: RestartPolicy,
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorState;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: SupervisorState,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::Restart { name, incarnation } => {
                restart(&myself, state, &name, incarnation)
            }
            SupervisorMsg::StartFailed {
                name,
                incarnation,
                reason,
            } => {
                failed(
                    &myself,
                    state,
                    &name,
                    incarnation,
                    format!("recovery failed: {reason}"),
                );
            }
            SupervisorMsg::Passivate { name, incarnation } => passivate(state, &name, incarnation),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some((name, incarnation)) = running_incarnation(state, &cell) {
                    failed(&myself, state, &name, incarnation, err.to_string());
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(name) = cell.get_name() {
                    let mut slots = state.table.lock();
                    let ours = match slots.get(&name).map(|s| &s.phase) {
                        Some(Phase::Running { cell: running, .. }) => {
                            running.get_id() == cell.get_id()
                        }
                        Some(Phase::Passivating) => true,
                        _ => false,
                    };
                    if ours {
                        info!(entity = %name, ?reason, "persistent actor stopped");
                        slots.remove(&name);
                        drop(slots);
                        state.table.changed.notify_waiters();
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Sends `message` to `actor` after `delay` (a restart after its backoff). If the actor
/// is gone by then, the message is dropped: there is nothing left to restart.
pub(crate) fn send_after<M: ractor::Message>(actor: &ActorRef<M>, delay: Duration, message: M) {
    let actor = actor.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = actor.send_message(message);
    });
}

fn running_incarnation(state: &SupervisorState, cell: &ractor::ActorCell) -> Option<(String, u64)> {
    let name = cell.get_name()?;
    let slots = state.table.lock();
    let slot = slots.get(&name)?;
    match &slot.phase {
        Phase::Running { cell: running, .. } if running.get_id() == cell.get_id() => {
            Some((name, slot.incarnation))
        }
        _ => None,
    }
}

/// Counts a failure and schedules a restart, or gives up.
fn failed(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    name: &str,
    incarnation: u64,
    reason: String,
) {
    let mut slots = state.table.lock();
    let Some(slot) = slots.get_mut(name) else {
        return;
    };
    if slot.incarnation != incarnation {
        return;
    }
    match slot.history.record_failure(&state.policy) {
        Some(backoff) => {
            warn!(entity = name, %reason, ?backoff, restarts = slot.history.total, "persistent actor failed; restarting after backoff");
            slot.phase = Phase::BackingOff;
            MetricsCell::add(&slot.metrics.restarts, 1);
            let name = name.to_owned();
            send_after(
                myself,
                backoff,
                SupervisorMsg::Restart { name, incarnation },
            );
        }
        None => {
            error!(entity = name, %reason, "persistent actor failed too often; the supervisor gives up");
            slot.phase = Phase::GaveUp { reason };
        }
    }
    drop(slots);
    state.table.changed.notify_waiters();
}

fn restart(
    myself: &ActorRef<SupervisorMsg>,
    state: &mut SupervisorState,
    name: &str,
    incarnation: u64,
) {
    let _span = info_span!("restart", entity = name, incarnation = incarnation + 1).entered();
    let mut slots = state.table.lock();
    let Some(slot) = slots.get_mut(name) else {
        return;
    };
    if slot.incarnation != incarnation || !matches!(slot.phase, Phase::BackingOff) {
        return;
    }
    if let Err(err) = launch(name, slot, myself) {
        let reason = format!("restart failed: {err}");
        drop(slots);
        failed(myself, state, name, incarnation, reason);
        return;
    }
    info!(
        entity = name,
        incarnation = incarnation + 1,
        "persistent actor restarted"
    );
    drop(slots);
    state.table.changed.notify_waiters();
}

fn passivate(state: &mut SupervisorState, name: &str, incarnation: u64) {
    let mut slots = state.table.lock();
    let Some(slot) = slots.get_mut(name) else {
        return;
    };
    if slot.incarnation != incarnation {
        return;
    }
    if let Phase::Running { cell, mailbox } = &slot.phase
        && mailbox.pending.load(Ordering::SeqCst) == 0
    {
        info!(entity = name, "passivating idle persistent actor");
        cell.stop(Some("passivated".into()));
        slot.phase = Phase::Passivating;
    }
}
