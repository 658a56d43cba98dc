//! The runner: a ractor actor that moves one projection along its collection's log.
//! `pre_start` loads the checkpoint (finishing a rebuild first if one is marked); each
//! `Poll` reads one page from the checkpoint on, hands its events to the handler, and
//! commits the handler's writes with the new checkpoint; a caught-up runner sleeps until
//! the database signals that new events became durable. Reads and writes run on the
//! database's threads and writer, never on a tokio worker. One page per message, so a stop waits for one page at most.
//! Any error or panic fails the actor; its supervisor starts the next one from the checkpoint.

use super::checkpoint::{Checkpoint, Checkpoints};
use super::handle::{Progress, ProjectionState};
use super::{Delivery, Projection, ProjectionSettings, ProjectionTx};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rush_store::metric_names;
use rush_store::{Database, EventFilter, EventQuery};
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info};

/// What every incarnation of one projection's runner shares. The projection itself sits
/// behind a mutex here, not in the runner's state, so that it outlives a crashed runner.
pub(crate) struct RunnerShared<P: Projection> {
    pub(crate) name: String,
    pub(crate) projection: Arc<Mutex<P>>,
    pub(crate) delivery: Delivery,
    pub(crate) filter: EventFilter,
    pub(crate) tables: Vec<String>,
    pub(crate) query: EventQuery<P::Actor>,
    pub(crate) checkpoints: Checkpoints,
    pub(crate) db: Database,
    pub(crate) settings: ProjectionSettings,
    pub(crate) progress: watch::Sender<Progress>,
}

/// Messages of the runner (internal).
#[derive(Debug)]
pub(crate) enum RunnerMsg {
    /// Read and handle the next page.
    Poll,
}

pub(crate) struct Runner<P>(PhantomData<fn() -> P>);

impl<P> Runner<P> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

pub(crate) struct RunnerState<P: Projection> {
    shared: Arc<RunnerShared<P>>,
    tx: ProjectionTx,
    /// The next log entry to read.
    next_offset: u64,
    /// The durable checkpoint.
    checkpoint: u64,
    /// Events handled since the durable checkpoint.
    since_checkpoint: u64,
    appended: watch::Receiver<u64>,
    waiter: Option<JoinHandle<()>>,
}

impl<P: Projection> Actor for Runner<P> {
    type Msg = RunnerMsg;
    type State = RunnerState<P>;
    type Arguments = Arc<RunnerShared<P>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        shared: Arc<RunnerShared<P>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut checkpoint = shared.checkpoints.load(&shared.name).await?;
        if checkpoint.rebuilding {
            checkpoint = finish_rebuild(&shared).await?;
        }
        info!(projection = %shared.name, checkpoint = checkpoint.offset, "projection runner started");
        shared.progress.send_modify(|p| {
            p.checkpoint = checkpoint.offset;
            p.state = ProjectionState::Running;
        });
        Ok(RunnerState {
            tx: ProjectionTx::new(shared.db.clone()),
            next_offset: checkpoint.offset.saturating_add(1),
            checkpoint: checkpoint.offset,
            since_checkpoint: 0,
            appended: shared.db.log_appended(),
            waiter: None,
            shared,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_message(RunnerMsg::Poll)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        RunnerMsg::Poll: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if step(state).await? {
            wait_for_commit(myself, state);
        } else {
            myself.send_message(RunnerMsg::Poll)?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(waiter) = state.waiter.take() {
            waiter.abort();
        }
        Ok(())
    }
}

/// Clears the read model and sets the checkpoint to 0: the second half of a rebuild,
/// repeated by every runner until it succeeds once.
async fn finish_rebuild<P: Projection>(
    shared: &Arc<RunnerShared<P>>,
) -> Result<Checkpoint, ActorProcessingErr> {
    let clearer = Arc::clone(shared);
    let cleared = shared
        .db
        .run_blocking("clear read model", move || {
            let mut rows = 0;
            for name in &clearer.tables {
                rows += clearer.db.table::<()>(name)?.clear()?;
            }
            Ok(rows)
        })
        .await?;
    shared.projection.lock().await.reset().await.map_err(|e| {
        format!(
            "projection {} could not reset its read model: {e}",
            shared.name
        )
    })?;
    let fresh = Checkpoint::default();
    shared.checkpoints.save(&shared.name, fresh).await?;
    info!(projection = %shared.name, rows = cleared, "projection read model cleared for a rebuild");
    Ok(fresh)
}

/// Handles one page. `Ok(true)` when the runner is caught up with the log.
async fn step<P: Projection>(state: &mut RunnerState<P>) -> Result<bool, ActorProcessingErr> {
    let shared = Arc::clone(&state.shared);
    // Marked seen before reading: a commit after this point changes the value again, so
    // the wait that follows a caught-up read cannot miss it.
    state.appended.borrow_and_update();
    let from = state.next_offset;
    let limit = shared.settings.batch_size.max(1);
    let (page, backlog) = shared
        .query
        .read_with_backlog_async(from, &shared.filter, limit)
        .await?;
    ::metrics::gauge!(metric_names::PROJECTION_LAG_OFFSETS, "projection" => shared.name.clone())
        .set(backlog as f64);
    let examined = page.next_offset.saturating_sub(from);
    let caught_up = examined < limit as u64;
    if examined > 0 {
        let mut projection = shared.projection.lock().await;
        for event in &page.events {
            projection.handle(event, &mut state.tx).await.map_err(|e| {
                format!(
                    "projection {} failed on offset {} ({}/{} #{}): {e}",
                    shared.name,
                    event.offset,
                    shared.query.collection(),
                    event.entity_id,
                    event.sequence_number
                )
            })?;
            state.since_checkpoint += 1;
            if let Delivery::AtLeastOnce { checkpoint_every } = shared.delivery
                && state.since_checkpoint >= checkpoint_every.max(1)
            {
                commit(state, event.offset).await?;
            }
        }
        drop(projection);
        state.next_offset = page.next_offset;
        debug!(projection = %shared.name, handled = page.events.len(), next = page.next_offset, "projection page");
    }
    let position = state.next_offset.saturating_sub(1);
    let due = position > state.checkpoint
        && (caught_up || matches!(shared.delivery, Delivery::ExactlyOnce));
    if due {
        commit(state, position).await?;
    }
    Ok(caught_up)
}

/// Commits the handler's pending writes and the checkpoint `offset` as one atomic batch,
/// then flushes: both survive a crash after this returns, neither before.
async fn commit<P: Projection>(
    state: &mut RunnerState<P>,
    offset: u64,
) -> Result<(), ActorProcessingErr> {
    let shared = Arc::clone(&state.shared);
    let mut ops = state.tx.take_ops();
    ops.push(shared.checkpoints.put_op(
        &shared.name,
        Checkpoint {
            offset,
            rebuilding: false,
        },
    )?);
    // The read-model rows and the checkpoint row live in the same database: the
    // checkpoint table's durable write commits them as one batch.
    shared.checkpoints.write(ops).await?;
    state.checkpoint = offset;
    state.since_checkpoint = 0;
    shared.progress.send_modify(|p| p.checkpoint = offset);
    Ok(())
}

/// Sends the next `Poll` once the database signals that new events became durable, or
/// after ten poll intervals (another process may write the same database).
fn wait_for_commit<P: Projection>(myself: ActorRef<RunnerMsg>, state: &mut RunnerState<P>) {
    let interval = state.shared.settings.poll_interval;
    let appended = state.appended.clone();
    state.waiter = Some(tokio::spawn(async move {
        let mut appended = appended;
        let wake = async {
            if appended.changed().await.is_err() {
                tokio::time::sleep(interval).await;
            }
        };
        let _ = tokio::time::timeout(interval.saturating_mul(10), wake).await;
        let _ = myself.send_message(RunnerMsg::Poll);
    }));
}
