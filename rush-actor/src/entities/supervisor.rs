//! The supervisor: a ractor actor that is the parent of every incarnation of one
//! extension. It reports each incarnation's failure or stop to the entity table, which
//! decides what follows (see the lifecycle table in `entities`). When it ends, however it
//! ends, the table closes.

use super::EntityTable;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::sync::Arc;

/// The failure of an incarnation that must reload from the journal but did nothing wrong:
/// a write conflict (another writer moved the entity on). It restarts at once and does
/// not count against the restart budget.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reload(pub(crate) String);

/// The supervisor takes no messages: it only hears its children.
pub(crate) enum Never {}

pub(crate) struct Supervisor;

/// The supervisor's state: the table it reports to.
pub(crate) struct Watching(Arc<EntityTable>);

impl Drop for Watching {
    /// Runs also when the supervisor is killed (its own supervisor died): nothing can
    /// restart an entity any more, so every caller is told at once.
    fn drop(&mut self) {
        for cell in self.0.close() {
            cell.kill();
        }
    }
}

impl Actor for Supervisor {
    type Msg = Never;
    type State = Watching;
    type Arguments = Arc<EntityTable>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        table: Arc<EntityTable>,
    ) -> Result<Self::State, ActorProcessingErr> {
        table.attach(myself.get_cell());
        Ok(Watching(table))
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {}
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                let counted = !error.is::<Reload>();
                state
                    .0
                    .actor_failed(cell.get_id(), error.to_string(), counted);
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => state.0.actor_stopped(cell.get_id()),
            _ => {}
        }
        Ok(())
    }
}
