//! Drives one saga from its journal: run the next command (with retries), journal what
//! happened, repeat until the saga ends or parks. The journal write comes after the
//! command, so a crash in between repeats the command, never skips it.

use super::dead_letter::DeadLetter;
use super::journal::{self, Next, Parked, SagaEvent, SagaState};
use super::manager::{Driver, IndexRow, Sagas};
use super::step::{SagaStep, StepContext, StepError, StepPhase};
use super::{RetryPolicy, SagaData, SagaOutcome, SagaStatus};
use crate::error::{Error, Result};
use crate::supervision::backoff::jitter_unit;
use rush_store::{EventMetadata, PersistentActor, Store};
use std::sync::Arc;
use std::time::SystemTime;
use tracing::{error, warn};

/// A registered definition: its steps and retry policy, taken once at registration.
pub(crate) struct Definition<D> {
    pub(crate) name: &'static str,
    pub(crate) steps: Vec<SagaStep<D>>,
    pub(crate) retry: RetryPolicy,
}

/// The type-erased driver of a definition's sagas.
pub(crate) fn driver<D: SagaData>(definition: Arc<Definition<D>>) -> Arc<dyn Driver> {
    Arc::new(TypedDriver(definition))
}

struct TypedDriver<D>(Arc<Definition<D>>);

#[async_trait::async_trait]
impl<D: SagaData> Driver for TypedDriver<D> {
    async fn resume(&self, sagas: Sagas, saga_id: String) -> Result<Option<SagaOutcome>> {
        let mut runner = Runner::open(sagas, Arc::clone(&self.0), saga_id).await?;
        if runner.state.next() == Next::NotStarted {
            // The start crashed between its index row and its first event: its caller
            // never had an answer, so there is nothing to resume.
            let (index, key) = (runner.sagas.index().clone(), runner.index_key());
            blocking(&runner.sagas, &runner.entity, move || index.delete(&key)).await?;
            return Ok(None);
        }
        runner.drive().await.map(Some)
    }

    async fn settle(
        &self,
        sagas: Sagas,
        saga_id: String,
        letter: String,
        discard: bool,
    ) -> Result<SagaOutcome> {
        let mut runner = Runner::open(sagas, Arc::clone(&self.0), saga_id).await?;
        runner.settle(letter, discard).await
    }
}

/// How the tries of one command ended.
enum Tried {
    Done,
    Rejected(String),
    Exhausted { reason: String, attempts: u32 },
}

/// One saga, its journal and where it stands.
pub(crate) struct Runner<D: SagaData> {
    sagas: Sagas,
    definition: Arc<Definition<D>>,
    saga_id: String,
    /// `rush.saga.<name>/<saga id>`, for errors.
    entity: String,
    store: Store<SagaState<D>>,
    state: SagaState<D>,
    data: Option<Arc<D>>,
    /// Set by a replay: the command's earlier tries, added to a new park's.
    replayed: Option<Parked>,
}

/// Runs table I/O (reads, and writes that wait for the writer) on the database's threads,
/// off the async workers.
async fn blocking<T: Send + 'static>(
    sagas: &Sagas,
    entity: &str,
    io: impl FnOnce() -> rush_store::Result<T> + Send + 'static,
) -> Result<T> {
    sagas
        .persistence()
        .database()
        .run_blocking("saga tables", io)
        .await
        .map_err(|source| Error::Journal {
            entity: entity.to_owned(),
            source,
        })
}

/// What a panic carried, for the dead letter.
fn panic_reason(join: &tokio::task::JoinError) -> String {
    format!("step panicked: {join}")
}

impl<D: SagaData> Runner<D> {
    /// Opens the saga's journal and recovers where it stands.
    pub(crate) async fn open(
        sagas: Sagas,
        definition: Arc<Definition<D>>,
        saga_id: String,
    ) -> Result<Self> {
        let collection = journal::collection(definition.name);
        let entity = format!("{collection}/{saga_id}");
        let journal_error = |source| Error::Journal {
            entity: entity.clone(),
            source,
        };
        let mut store = sagas
            .persistence()
            .database()
            .store_async::<SagaState<D>>(&collection, &saga_id)
            .await
            .map_err(journal_error)?;
        let state = store
            .recover_async()
            .await
            .map_err(journal_error)?
            .unwrap_or_default();
        let data = state.data.clone().map(Arc::new);
        Ok(Self {
            sagas,
            definition,
            saga_id,
            entity,
            store,
            state,
            data,
            replayed: None,
        })
    }

    /// Where the saga stands (`None`: never started).
    pub(crate) fn status(&self) -> Option<SagaStatus> {
        self.state.status(|index| self.step_name(index))
    }

    /// Starts the saga with `data` unless it exists, then drives it.
    pub(crate) async fn start(mut self, data: D) -> Result<SagaOutcome> {
        if self.state.next() == Next::NotStarted {
            // The index row first: a saga with events is always found by a resume.
            let row = IndexRow {
                name: self.definition.name.to_owned(),
                saga_id: self.saga_id.clone(),
                finished: false,
            };
            let (index, key) = (self.sagas.index().clone(), self.index_key());
            blocking(&self.sagas, &self.entity, move || index.put(&key, &row)).await?;
            self.data = Some(Arc::new(data.clone()));
            self.persist(vec![SagaEvent::Started { data }]).await?;
        }
        self.drive().await
    }

    /// Replays or discards dead letter `letter`, then drives the saga on.
    async fn settle(&mut self, letter: String, discard: bool) -> Result<SagaOutcome> {
        let parked = match self.state.next() {
            Next::Parked(parked) if parked.dead_letter == letter => parked,
            // A stale letter (a crash fell between a resume and its removal): the saga is
            // not waiting on it; drive it, which removes the letter.
            _ => return self.drive().await,
        };
        let resumed = SagaEvent::Resumed {
            dead_letter: letter,
        };
        if discard {
            let reason = format!("dead letter discarded; last failure: {}", parked.reason);
            let index = parked.index;
            let given_up = match parked.phase {
                StepPhase::Action => SagaEvent::StepFailed { index, reason },
                StepPhase::Compensation => SagaEvent::CompensationSkipped { index, reason },
            };
            self.persist(vec![resumed, given_up]).await?;
        } else {
            self.persist(vec![resumed]).await?;
            self.replayed = Some(parked);
        }
        self.drive().await
    }

    /// Runs the saga until it ends or parks, then brings its dead letter and index row in
    /// line with the journal.
    pub(crate) async fn drive(&mut self) -> Result<SagaOutcome> {
        let outcome = self.run().await?;
        self.reconcile().await?;
        Ok(outcome)
    }

    async fn run(&mut self) -> Result<SagaOutcome> {
        loop {
            match self.state.next() {
                Next::NotStarted => {
                    return Err(Error::SagaFailed {
                        saga: self.entity.clone(),
                        reason: "the saga was never started".into(),
                    });
                }
                Next::Finished(outcome) => return Ok(outcome),
                Next::Parked(parked) => {
                    return Ok(SagaOutcome::Parked {
                        step: self.step_name(parked.index),
                        dead_letter: parked.dead_letter,
                        phase: parked.phase,
                        reason: parked.reason,
                    });
                }
                Next::Action(index) if index >= self.definition.steps.len() => {
                    let outcome = SagaOutcome::Completed;
                    self.persist(vec![SagaEvent::Finished { outcome }]).await?;
                }
                Next::Action(index) => {
                    let event = match self.try_command(index, StepPhase::Action).await? {
                        Tried::Done => SagaEvent::StepCompleted { index },
                        Tried::Rejected(reason) => SagaEvent::StepFailed { index, reason },
                        Tried::Exhausted { reason, attempts } => {
                            self.park(index, StepPhase::Action, reason, attempts)
                        }
                    };
                    self.persist(vec![event]).await?;
                }
                Next::Compensate(index) => {
                    let phase = StepPhase::Compensation;
                    let event = match self.try_command(index, phase).await? {
                        Tried::Done => SagaEvent::Compensated { index },
                        // A compensation must not be refused: a person decides.
                        Tried::Rejected(reason) => {
                            self.park(index, phase, format!("rejected: {reason}"), 1)
                        }
                        Tried::Exhausted { reason, attempts } => {
                            self.park(index, phase, reason, attempts)
                        }
                    };
                    self.persist(vec![event]).await?;
                }
                Next::FinishCompensated => {
                    let (failed_step, reason) = self.state.failure.as_ref().map_or_else(
                        || (String::new(), String::new()),
                        |f| (self.step_name(f.index), f.reason.clone()),
                    );
                    let outcome = SagaOutcome::Compensated {
                        failed_step,
                        reason,
                    };
                    self.persist(vec![SagaEvent::Finished { outcome }]).await?;
                }
            }
        }
    }

    /// Tries step `index`'s action or compensation under the retry policy. Each try runs
    /// in its own task, so a panicking step is a failed try, not a dead process.
    async fn try_command(&self, index: usize, phase: StepPhase) -> Result<Tried> {
        let (Some(step), Some(data)) = (self.definition.steps.get(index), self.data.as_ref())
        else {
            return Err(Error::SagaFailed {
                saga: self.entity.clone(),
                reason: format!(
                    "the journal is at step {index} but {} has {} steps",
                    self.definition.name,
                    self.definition.steps.len()
                ),
            });
        };
        let command = match phase {
            StepPhase::Action => Arc::clone(&step.action),
            StepPhase::Compensation => Arc::clone(&step.compensation),
        };
        let policy = self.definition.retry;
        let mut attempt = 0u32;
        loop {
            let context = StepContext {
                saga_name: self.definition.name,
                saga_id: Arc::from(self.saga_id.as_str()),
                step: Arc::clone(&step.name),
                index,
                phase,
                attempt,
                data: Arc::clone(data),
                persistence: self.sagas.persistence().clone(),
            };
            let command = Arc::clone(&command);
            let result = tokio::spawn(async move { command(context).await })
                .await
                .unwrap_or_else(|join| Err(StepError::Retryable(panic_reason(&join))));
            match result {
                Ok(()) => return Ok(Tried::Done),
                Err(StepError::Rejected(reason)) => return Ok(Tried::Rejected(reason)),
                Err(StepError::Retryable(reason)) if attempt >= policy.max_retries => {
                    return Ok(Tried::Exhausted {
                        reason,
                        attempts: attempt.saturating_add(1),
                    });
                }
                Err(StepError::Retryable(reason)) => {
                    let delay = policy.delay(attempt, jitter_unit());
                    warn!(saga = %self.entity, step = %step.name, %phase, attempt, %reason, ?delay, "saga command failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// The event that parks the saga on `index`'s `phase`.
    fn park(&self, index: usize, phase: StepPhase, reason: String, attempts: u32) -> SagaEvent<D> {
        let earlier = self
            .replayed
            .as_ref()
            .filter(|p| p.index == index && p.phase == phase)
            .map_or(0, |p| p.attempts);
        let attempts = attempts.saturating_add(earlier);
        error!(saga = %self.entity, step = %self.step_name(index), %phase, attempts, %reason, "saga command failed every try; parking the saga on a dead letter");
        SagaEvent::Suspended {
            index,
            phase,
            reason,
            attempts,
            at: SystemTime::now(),
            dead_letter: DeadLetter::id_for(self.definition.name, &self.saga_id, index, phase),
        }
    }

    /// Journals `events` atomically (correlated with the saga), then applies them.
    async fn persist(&mut self, events: Vec<SagaEvent<D>>) -> Result<()> {
        let metadata = EventMetadata::default().with_correlation_id(self.saga_id.as_str());
        self.store
            .persist_async(&events, &metadata)
            .await
            .map_err(|source| Error::Journal {
                entity: self.entity.clone(),
                source,
            })?;
        for event in &events {
            self.state.apply(event);
        }
        Ok(())
    }

    /// Makes the dead-letter table and the index agree with the journal: the letter of
    /// the command the saga is parked on exists, its other letters do not, and an ended
    /// saga is marked finished (or its row removed, with a zero retention), along with a
    /// sweep of a few rows past retention. Cheap when nothing is off: one prefix scan.
    async fn reconcile(&self) -> Result<()> {
        let letters = self.sagas.letters().clone();
        let index = self.sagas.index().clone();
        let wanted = self.state.parked.as_ref().map(|parked| DeadLetter {
            id: parked.dead_letter.clone(),
            saga_name: self.definition.name.to_owned(),
            saga_id: self.saga_id.clone(),
            step_index: parked.index,
            step_name: self.step_name(parked.index),
            phase: parked.phase,
            reason: parked.reason.clone(),
            attempts: parked.attempts,
            at: parked.at,
        });
        let finished = self.state.finished.is_some().then(|| IndexRow {
            name: self.definition.name.to_owned(),
            saga_id: self.saga_id.clone(),
            finished: true,
        });
        let (name, saga_id, key) = (self.definition.name, self.saga_id.clone(), self.index_key());
        let sagas = self.sagas.clone();
        blocking(&self.sagas, &self.entity, move || {
            let mut ops = Vec::new();
            let mut present = false;
            for (id, letter) in letters.rows(&format!("{name}/{saga_id}/"))? {
                if letter.saga_name != name || letter.saga_id != saga_id {
                    continue;
                }
                match &wanted {
                    Some(w) if *w == letter => present = true,
                    Some(w) if w.id == id => {}
                    _ => ops.push(letters.delete_op(&id)),
                }
            }
            if let Some(w) = wanted.filter(|_| !present) {
                ops.push(letters.put_op(&w.id, &w)?);
            }
            if let Some(row) = finished {
                // A missing row was removed after the retention: it is not written back.
                match index.get(&key)? {
                    Some(_) if sagas.finished_retention().is_zero() => {
                        ops.push(index.delete_op(&key));
                    }
                    Some(old) if !old.finished => ops.push(index.put_op(&key, &row)?),
                    _ => {}
                }
                // Each finish also sweeps a few rows, so the index stays bounded without
                // a resume.
                ops.extend(sagas.retention().sweep(&index, SystemTime::now())?);
            }
            if ops.is_empty() {
                return Ok(());
            }
            letters.write(ops)
        })
        .await
    }

    fn index_key(&self) -> String {
        format!("{}/{}", self.definition.name, self.saga_id)
    }

    fn step_name(&self, index: usize) -> String {
        self.definition
            .steps
            .get(index)
            .map_or_else(|| format!("#{index}"), |step| step.name.to_string())
    }
}
