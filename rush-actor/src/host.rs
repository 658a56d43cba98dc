//! The ractor actor that runs one entity's behaviour: `pre_start` recovers the state
//! (snapshot + later events) before any command; `handle` decides, journals through the
//! group commit, applies, replies, and snapshots when the policy says so.

mod recovery;
mod starter;

pub(crate) use starter::new_slot;

use crate::behavior::EventSourced;
use crate::entities::{EntityKey, HostMsg, Reload, ReplyTo, Work};
use crate::error::{CommandError, Error};
use crate::metrics::{Instruments, MetricsCell};
use crate::shared::Shared;
use crate::snapshot_policy::SnapshotPolicy;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rush_store::{EventMetadata, Store};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;
use tracing::{Instrument, debug, debug_span, warn};

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
    pub(crate) key: EntityKey,
    pub(crate) incarnation: u64,
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
    instruments: Instruments,
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
            HostMsg::Command(mut ticket) => {
                // Taking the command stops counting it as waiting.
                let Some((work, metadata)) = ticket.take() else {
                    return Ok(());
                };
                host.last_activity = Instant::now();
                match work {
                    Work::Command(command, reply) => {
                        let span = debug_span!("command", entity = %host.args.name, seq = host.store.highest_sequence_number());
                        host.handle_command(command, reply, &metadata)
                            .instrument(span)
                            .await
                    }
                    Work::Read(read) => {
                        // The reader's own code: a panic there is not this entity's fault.
                        let state = &host.state;
                        if std::panic::catch_unwind(AssertUnwindSafe(|| read(Ok(state)))).is_err() {
                            warn!(entity = %host.entity(), "a read of the state panicked");
                        }
                        Ok(())
                    }
                }
            }
            HostMsg::IdleCheck => {
                if let Some(idle) = host.args.shared.config.passivate_after
                    && host.last_activity.elapsed() >= idle
                {
                    host.args
                        .shared
                        .table
                        .idle(&host.args.key, host.args.incarnation);
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
        metadata: &EventMetadata,
    ) -> Result<(), ActorProcessingErr> {
        // A panic stops this incarnation; the commands behind it go to the next one, in order.
        let decided = std::panic::catch_unwind(AssertUnwindSafe(|| self.state.decide(command)));
        let decided = match decided {
            Ok(decided) => decided,
            Err(panic) => {
                return Err(self.fail(format!(
                    "command handler panicked: {}",
                    panic_message(&*panic)
                )));
            }
        };
        let effect = match decided {
            Ok(effect) => effect,
            Err(rejection) => {
                MetricsCell::add(&self.args.metrics.commands_rejected, 1);
                self.instruments.commands_rejected.increment(1);
                let _ = reply.send(Err(CommandError::Rejected(rejection)));
                return Ok(());
            }
        };
        if !effect.events.is_empty() {
            if let Err(failure) = self.persist(&effect.events, metadata).await {
                let fatal = stops_actor(&failure);
                let conflict = matches!(failure, rush_store::Error::Conflict { .. });
                let reason = failure.to_string();
                // The caller gets the store's error as it is: `Conflict` (nothing was
                // written), `DiskFull`, `Shutdown`, an engine failure (outcome unknown)...
                let _ = reply.send(Err(CommandError::Failed(Error::Journal {
                    entity: self.entity(),
                    source: failure,
                })));
                if fatal {
                    // Memory may no longer match the journal: stop, and let the supervisor
                    // restart this entity from what is durable. A conflict (another writer
                    // moved the entity on) is no fault of this one: it reloads at once,
                    // without spending the restart budget.
                    if conflict {
                        warn!(entity = %self.entity(), %reason, "persistent actor reloads");
                        return Err(Box::new(Reload(reason)));
                    }
                    return Err(self.fail(reason));
                }
                return Ok(());
            }
            let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
                for event in &effect.events {
                    self.state.apply(event);
                }
            }));
            if let Err(panic) = applied {
                return Err(self.fail(format!(
                    "event handler panicked: {}",
                    panic_message(&*panic)
                )));
            }
        }
        let after = effect.after;
        let mut side_effect_panic = None;
        for side_effect in after.side_effects {
            let state = &self.state;
            if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| side_effect(state))) {
                side_effect_panic = Some(panic_message(&*panic).to_owned());
                break;
            }
        }
        if after.stop {
            // Before the reply: whatever the caller sends once it has the reply waits for
            // the next incarnation.
            self.args
                .shared
                .table
                .passivate(&self.args.key, Some(self.args.incarnation));
        }
        let replied = std::panic::catch_unwind(AssertUnwindSafe(|| (effect.reply)(&self.state)));
        match replied {
            Ok(value) => {
                let _ = reply.send(Ok(value));
            }
            Err(panic) => {
                // The events are durable: the caller learns the outcome is unknown to it.
                return Err(self.fail(format!(
                    "reply function panicked: {}",
                    panic_message(&*panic)
                )));
            }
        }
        if let Some(message) = side_effect_panic {
            return Err(self.fail(format!("side effect panicked: {message}")));
        }
        self.snapshot_if_due().await
    }

    /// Returns the error that stops this incarnation.
    fn fail(&self, reason: String) -> ActorProcessingErr {
        warn!(entity = %self.entity(), %reason, "persistent actor fails");
        reason.into()
    }

    /// Journals `events` through the database's writer; on success they are durable
    /// (under `Immediate`).
    async fn persist(
        &mut self,
        events: &[S::Event],
        metadata: &EventMetadata,
    ) -> Result<(), rush_store::Error> {
        let before = self.store.compression_stats();
        let expected = self.store.highest_sequence_number();
        let started = Instant::now();
        let last_seq = self
            .store
            .persist_async(events, metadata)
            .instrument(debug_span!("persist", events = events.len(), expected))
            .await?;
        self.args
            .metrics
            .add_compression(before, self.store.compression_stats());
        MetricsCell::add(&self.args.metrics.events_persisted, events.len() as u64);
        self.instruments
            .persist_seconds
            .record(started.elapsed().as_secs_f64());
        self.instruments
            .events_persisted
            .increment(events.len() as u64);
        debug!(last_seq, "persisted");
        Ok(())
    }

    async fn snapshot_if_due(&mut self) -> Result<(), ActorProcessingErr> {
        let seq = self.store.highest_sequence_number();
        if !self.policy.due(seq, self.last_snapshot) {
            return Ok(());
        }
        // Boxed: a snapshot is one command in many, and its future would otherwise
        // enlarge every command's (ractor moves each message's future once).
        Box::pin(self.snapshot(seq)).await
    }

    async fn snapshot(&mut self, seq: u64) -> Result<(), ActorProcessingErr> {
        let before = self.store.compression_stats();
        // Encoded (up to 256 MiB) on the database's threads, committed by its writer.
        match self
            .store
            .snapshot_async(&self.state)
            .instrument(debug_span!("snapshot", seq))
            .await
        {
            Ok(()) => {}
            Err(
                error @ (rush_store::Error::Serialization(_)
                | rush_store::Error::InvalidArgument(_)),
            ) => {
                warn!(entity = %self.entity(), %error, "snapshot skipped: state cannot be encoded");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        }
        self.args
            .metrics
            .add_compression(before, self.store.compression_stats());
        self.last_snapshot = seq;
        MetricsCell::add(&self.args.metrics.snapshots_taken, 1);
        self.instruments.snapshots.increment(1);
        debug!(entity = %self.entity(), seq, "snapshot taken");
        if self.policy.delete_covered_events {
            self.delete_covered_events().await?;
        }
        Ok(())
    }

    /// Deletes the events covered by the oldest kept snapshot: pages read on the
    /// database's threads, each committed by its writer. No user code runs there.
    async fn delete_covered_events(&mut self) -> Result<(), ActorProcessingErr> {
        let Some(&oldest) = self.store.snapshot_sequence_numbers_async().await?.first() else {
            return Ok(());
        };
        let removed = self.store.delete_events_to_async(oldest).await?;
        debug!(entity = %self.entity(), removed, up_to = oldest, "covered events deleted");
        Ok(())
    }
}

/// Whether a failed persist leaves the actor's memory possibly out of step with the
/// journal: everything but a refusal that wrote nothing for a reason of the command's own
/// (an event that cannot be serialized, or is too large). A conflict stops it too: another
/// writer moved the entity on, so the actor must reload.
fn stops_actor(failure: &rush_store::Error) -> bool {
    !matches!(
        failure,
        rush_store::Error::Serialization(_) | rush_store::Error::InvalidArgument(_)
    )
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic")
}
