//! The ractor actor that runs one entity's behaviour: `pre_start` recovers the state
//! (snapshot + later events) before any command; `handle` decides, journals through the
//! group commit, applies, replies, and snapshots when the policy says so.

mod recovery;

use crate::behavior::EventSourced;
use crate::error::{CommandError, Error};
use crate::metrics::MetricsCell;
use crate::persistence::Shared;
use crate::snapshot_policy::SnapshotPolicy;
use crate::supervision::SupervisorMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rush_store::Store;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::oneshot;
use tracing::{Instrument, debug, debug_span, warn};

/// The reply channel of one command.
pub type ReplyTo<S> = oneshot::Sender<
    Result<<S as EventSourced>::Reply, CommandError<<S as EventSourced>::Rejection>>,
>;

/// Messages of a persistent actor. Send commands through [`EntityRef`](crate::EntityRef),
/// which bounds the mailbox and follows restarts.
pub enum HostMsg<S: EventSourced> {
    /// Handle a command and send its reply.
    Command {
        /// The command.
        command: S::Command,
        /// Where the reply goes, once its events are durable.
        reply: ReplyTo<S>,
    },
    /// Passivation timer: stop if idle.
    IdleCheck,
}

/// The actor (its `self` is configuration only; the state lives in [`HostState`]).
pub(crate) struct Host<S>(PhantomData<fn() -> S>);

impl<S> Host<S> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

/// Everything one incarnation starts with.
pub(crate) struct HostArgs {
    pub(crate) shared: Arc<Shared>,
    pub(crate) entity_id: String,
    pub(crate) name: String,
    pub(crate) incarnation: u64,
    pub(crate) pending: Arc<AtomicUsize>,
    pub(crate) metrics: Arc<MetricsCell>,
}

/// The running state of one incarnation.
pub(crate) struct HostState<S: EventSourced> {
    state: S,
    store: Store<S>,
    args: HostArgs,
    policy: SnapshotPolicy,
    last_snapshot: u64,
    last_activity: Instant,
    idle_timer: Option<tokio::task::JoinHandle<()>>,
}

impl<S: EventSourced> Actor for Host<S> {
    type Msg = HostMsg<S>;
    type State = HostState<S>;
    type Arguments = HostArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: HostArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        recovery::recover::<S>(myself, args).await
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(timer) = state.idle_timer.take() {
            timer.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        host: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HostMsg::Command { command, reply } => {
                host.args.pending.fetch_sub(1, Ordering::SeqCst);
                host.last_activity = Instant::now();
                let span = debug_span!("command", entity = %host.args.name, seq = host.store.highest_sequence_number());
                host.handle_command(command, reply).instrument(span).await
            }
            HostMsg::IdleCheck => {
                if let Some(idle) = host.args.shared.config.passivate_after {
                    if host.last_activity.elapsed() >= idle {
                        let _ =
                            host.args
                                .shared
                                .supervisor
                                .send_message(SupervisorMsg::Passivate {
                                    name: host.args.name.clone(),
                                    incarnation: host.args.incarnation,
                                });
                    }
                }
                Ok(())
            }
        }
    }
}

impl<S: EventSourced> HostState<S> {
    fn entity(&self) -> String {
        format!("{}/{}", S::COLLECTION, self.args.entity_id)
    }

    async fn handle_command(
        &mut self,
        command: S::Command,
        reply: ReplyTo<S>,
    ) -> Result<(), ActorProcessingErr> {
        let effect = match self.state.decide(command) {
            Ok(effect) => effect,
            Err(rejection) => {
                MetricsCell::add(&self.args.metrics.commands_rejected, 1);
                let _ = reply.send(Err(CommandError::Rejected(rejection)));
                return Ok(());
            }
        };
        if !effect.events.is_empty() {
            if let Err(failure) = self.persist(&effect.events).await {
                let fatal = failure.fatal;
                let _ = reply.send(Err(CommandError::Failed(Error::Journal {
                    entity: self.entity(),
                    source: failure.error,
                })));
                if let Some(fatal) = fatal {
                    // Memory may no longer match the journal: stop, and let the supervisor
                    // restart this entity from what is durable.
                    return Err(fatal.into());
                }
                return Ok(());
            }
            for event in &effect.events {
                self.state.apply(event);
            }
        }
        let _ = reply.send(Ok((effect.reply)(&self.state)));
        self.snapshot_if_due().await
    }

    /// Journals `events` through the group commit; on success they are durable.
    async fn persist(&mut self, events: &[S::Event]) -> Result<(), PersistFailure> {
        let expected = self.store.highest_sequence_number();
        // A serialization error (or an event too large) is the caller's: refuse and go on.
        let mut prepared = self
            .store
            .prepare_append(expected, events)
            .map_err(PersistFailure::recoverable)?;
        let batch = prepared.take_batch();
        let bytes = batch.payload_bytes();
        let started = Instant::now();
        let outcome = self.args.shared.writer.commit(batch).await;
        if let Err(error) = self.store.settle_commit(expected, outcome) {
            return Err(PersistFailure::fatal(error));
        }
        self.store
            .complete_append(&prepared, bytes, started.elapsed());
        MetricsCell::add(&self.args.metrics.events_persisted, events.len() as u64);
        debug!(last_seq = prepared.last_seq(), "persisted");
        Ok(())
    }

    async fn snapshot_if_due(&mut self) -> Result<(), ActorProcessingErr> {
        let seq = self.store.highest_sequence_number();
        if !self.policy.due(seq, self.last_snapshot) {
            return Ok(());
        }
        let mut prepared = match self.store.prepare_snapshot(&self.state) {
            Ok(prepared) => prepared,
            Err(error) => {
                warn!(entity = %self.entity(), %error, "snapshot skipped: state cannot be encoded");
                return Ok(());
            }
        };
        let outcome = self.args.shared.writer.commit(prepared.take_batch()).await;
        self.store.settle_commit(seq, outcome)?;
        self.store.complete_snapshot(&prepared);
        self.last_snapshot = seq;
        MetricsCell::add(&self.args.metrics.snapshots_taken, 1);
        debug!(entity = %self.entity(), seq, "snapshot taken");
        if self.policy.delete_covered_events {
            self.delete_covered_events().await?;
        }
        Ok(())
    }

    /// Deletes the events covered by the oldest kept snapshot, on the writer thread.
    async fn delete_covered_events(&mut self) -> Result<(), ActorProcessingErr> {
        let Some(&oldest) = self.store.snapshot_sequence_numbers()?.first() else {
            return Ok(());
        };
        let backend = Arc::clone(self.store.backend());
        let key = self.args.shared.config.encryption_key;
        let compression = self.args.shared.config.compression;
        let entity_id = self.args.entity_id.clone();
        let removed = self
            .args
            .shared
            .writer
            .run(move || {
                let mut store = Store::<S>::with_backend(
                    S::COLLECTION,
                    &entity_id,
                    backend,
                    key.as_ref().map(|k| &k[..]),
                    compression,
                )?;
                store.delete_events_to(oldest)
            })
            .await??;
        debug!(entity = %self.entity(), removed, up_to = oldest, "covered events deleted");
        Ok(())
    }
}

/// A persist that did not happen; `fatal` when the actor must stop.
struct PersistFailure {
    error: rush_store::Error,
    fatal: Option<rush_store::Error>,
}

impl PersistFailure {
    fn recoverable(error: rush_store::Error) -> Self {
        Self { error, fatal: None }
    }

    fn fatal(error: rush_store::Error) -> Self {
        let copy = rush_store::Error::Storage {
            operation: "persist",
            message: error.to_string(),
        };
        Self {
            error: copy,
            fatal: Some(error),
        }
    }
}
