//! One small supervisor per projection: it starts the runner linked to itself, restarts it
//! after a failure with the extension's restart policy (exponential backoff with jitter, at
//! most `max_restarts` within a window, then it gives up), and carries out the handle's
//! rebuild and stop requests.

use super::checkpoint::{Checkpoint, Checkpoints};
use super::handle::{Progress, ProjectionHandle, ProjectionState};
use super::runner::{Runner, RunnerShared};
use super::{Projection, ProjectionSettings};
use crate::error::{Error, Result};
use crate::persistence::Persistence;
use crate::supervision::{RestartHistory, send_after};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::sync::{Mutex, oneshot, watch};
use tracing::{error, info, warn};

/// Requests to a projection's supervisor (internal).
#[derive(Debug)]
pub(crate) enum ControlMsg {
    /// Start the next runner after a backoff.
    Restart {
        /// The incarnation that failed: a stale restart is ignored.
        incarnation: u64,
    },
    /// Stop the runner, mark the checkpoint "rebuilding", start a runner.
    Rebuild(oneshot::Sender<Result<()>>),
    /// Stop the runner and the supervisor.
    Stop(oneshot::Sender<()>),
}

pub(crate) struct ProjectionSupervisor<P>(PhantomData<fn() -> P>);

pub(crate) struct SupervisorState<P: Projection> {
    shared: Arc<RunnerShared<P>>,
    runner: Option<ActorCell>,
    incarnation: u64,
    history: RestartHistory,
}

/// Spawns the supervisor of `projection`, which starts its first runner.
pub(crate) async fn start<P: Projection>(
    persistence: &Persistence,
    projection: P,
    settings: ProjectionSettings,
) -> Result<ProjectionHandle> {
    let db = persistence.database().clone();
    let query = persistence.query::<P::Actor>()?;
    let checkpoints = Checkpoints::open(&db)?;
    let name = projection.name().to_owned();
    let (progress, receiver) = watch::channel(Progress {
        checkpoint: 0,
        state: ProjectionState::Starting,
        restarts: 0,
    });
    let shared = Arc::new(RunnerShared {
        name: name.clone(),
        delivery: projection.delivery(),
        filter: projection.filter(),
        tables: projection.read_model_tables(),
        projection: Arc::new(Mutex::new(projection)),
        query: query.clone(),
        checkpoints,
        db,
        settings,
        progress,
    });
    let actor_name = format!("rush/{}/projection/{name}", persistence.shared.id);
    let (control, _) = Actor::spawn(
        Some(actor_name),
        ProjectionSupervisor::<P>(PhantomData),
        shared,
    )
    .await
    .map_err(|e| Error::Spawn {
        entity: format!("projection {name}"),
        reason: e.to_string(),
    })?;
    let handle = ProjectionHandle {
        name,
        control,
        progress: receiver,
        probe: Arc::new(query),
        db: persistence.database().clone(),
    };
    // Remembered so that `Persistence::shutdown` stops it too.
    if let Ok(mut running) = persistence.shared.projections.lock() {
        running.push(Box::new(handle.clone()));
    }
    Ok(handle)
}

impl<P: Projection> Actor for ProjectionSupervisor<P> {
    type Msg = ControlMsg;
    type State = SupervisorState<P>;
    type Arguments = Arc<RunnerShared<P>>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        shared: Arc<RunnerShared<P>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = SupervisorState {
            shared,
            runner: None,
            incarnation: 0,
            history: RestartHistory::default(),
        };
        launch(&myself, &mut state).await;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ControlMsg::Restart { incarnation } => {
                if incarnation == state.incarnation && state.runner.is_none() {
                    launch(&myself, state).await;
                }
            }
            ControlMsg::Rebuild(reply) => {
                stop_runner(&myself, state).await;
                let marked = state
                    .shared
                    .checkpoints
                    .save(
                        &state.shared.name,
                        Checkpoint {
                            offset: 0,
                            rebuilding: true,
                        },
                    )
                    .await;
                let outcome = match marked {
                    Ok(()) => {
                        info!(projection = %state.shared.name, "projection rebuild from zero");
                        state.history = RestartHistory::default();
                        launch(&myself, state).await;
                        Ok(())
                    }
                    Err(store) => Err(Error::Store(store)),
                };
                if outcome.is_err() {
                    // Nothing was marked: go on from the checkpoint as before.
                    launch(&myself, state).await;
                }
                let _ = reply.send(outcome);
            }
            ControlMsg::Stop(reply) => {
                stop_runner(&myself, state).await;
                state
                    .shared
                    .progress
                    .send_modify(|p| p.state = ProjectionState::Stopped);
                myself.stop(Some("stopped by its handle".into()));
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!(
                    "runner stopped unexpectedly: {}",
                    reason.unwrap_or_default()
                ),
            ),
            _ => return Ok(()),
        };
        let current = state
            .runner
            .as_ref()
            .is_some_and(|runner| runner.get_id() == cell.get_id());
        if current {
            state.runner = None;
            failed(&myself, state, reason);
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        stop_runner(&myself, state).await;
        Ok(())
    }
}

/// Starts the next runner; a failed start counts as a failure.
async fn launch<P: Projection>(myself: &ActorRef<ControlMsg>, state: &mut SupervisorState<P>) {
    state.incarnation += 1;
    state
        .shared
        .progress
        .send_modify(|p| p.state = ProjectionState::Starting);
    match Actor::spawn_linked(
        None,
        Runner::<P>::new(),
        Arc::clone(&state.shared),
        myself.get_cell(),
    )
    .await
    {
        Ok((runner, _)) => state.runner = Some(runner.get_cell()),
        Err(err) => failed(myself, state, format!("runner failed to start: {err}")),
    }
}

/// Stops the current runner after the page it is handling, without counting a failure.
async fn stop_runner<P: Projection>(myself: &ActorRef<ControlMsg>, state: &mut SupervisorState<P>) {
    if let Some(runner) = state.runner.take() {
        runner.unlink(myself.get_cell());
        let _ = runner
            .stop_and_wait(Some("stopped by its supervisor".into()), None)
            .await;
    }
}

/// Counts a failure: restart after a backoff, or give up past the policy's limit.
fn failed<P: Projection>(
    myself: &ActorRef<ControlMsg>,
    state: &mut SupervisorState<P>,
    reason: String,
) {
    let name = &state.shared.name;
    match state.history.record_failure(&state.shared.settings.restart) {
        Some(backoff) => {
            warn!(projection = %name, %reason, ?backoff, "projection failed; restarting from its checkpoint after backoff");
            state.shared.progress.send_modify(|p| {
                p.state = ProjectionState::BackingOff {
                    reason: reason.clone(),
                };
                p.restarts += 1;
            });
            send_after(
                myself,
                backoff,
                ControlMsg::Restart {
                    incarnation: state.incarnation,
                },
            );
        }
        None => {
            error!(projection = %name, %reason, "projection failed too often; its supervisor gives up");
            state
                .shared
                .progress
                .send_modify(|p| p.state = ProjectionState::GaveUp { reason });
        }
    }
}
