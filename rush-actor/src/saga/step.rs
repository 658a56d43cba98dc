//! One step of a saga: an action, and the compensation that undoes it. Both are async
//! closures over a [`StepContext`], which carries what a command needs to be traceable
//! (correlation and causation ids) and safe to repeat (an idempotency key).

use crate::error::{CommandError, Error};
use crate::persistence::Persistence;
use rush_store::EventMetadata;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a step's action or compensation returns.
pub type StepFuture = Pin<Box<dyn Future<Output = Result<(), StepError>> + Send>>;

/// An action or a compensation: called once per try.
pub(crate) type StepFn<D> = Arc<dyn Fn(StepContext<D>) -> StepFuture + Send + Sync>;

/// Which half of a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepPhase {
    /// The step's forward command.
    Action,
    /// The command that undoes a completed action.
    Compensation,
}

impl StepPhase {
    /// `action` or `compensation`, as used in ids.
    pub fn as_str(self) -> &'static str {
        match self {
            StepPhase::Action => "action",
            StepPhase::Compensation => "compensation",
        }
    }
}

impl std::fmt::Display for StepPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action or a compensation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A transient failure (timeout, an unavailable or overloaded entity, a storage
    /// error): tried again under the saga's [`RetryPolicy`](crate::RetryPolicy), then
    /// parked on a dead letter. Safe because the command is repeated with the same
    /// idempotency key.
    #[error("retryable: {0}")]
    Retryable(String),
    /// A business refusal (insufficient funds, closed account): never retried. A rejected
    /// action makes the saga compensate its completed steps; a rejected compensation
    /// parks the saga on a dead letter for an operator.
    #[error("rejected: {0}")]
    Rejected(String),
}

impl<R: std::fmt::Display> From<CommandError<R>> for StepError {
    /// A behaviour's rejection is [`StepError::Rejected`]; every runtime failure is
    /// [`StepError::Retryable`]: even [`Error::Stopped`] (outcome unknown) is safe to
    /// repeat when the command carries the step's idempotency key.
    fn from(error: CommandError<R>) -> Self {
        match error {
            CommandError::Rejected(rejection) => StepError::Rejected(rejection.to_string()),
            CommandError::Failed(failure) => StepError::from(failure),
        }
    }
}

impl From<Error> for StepError {
    /// Runtime failures are transient from a saga's point of view.
    fn from(error: Error) -> Self {
        StepError::Retryable(error.to_string())
    }
}

/// What an action or a compensation is called with.
#[derive(Clone)]
pub struct StepContext<D> {
    pub(crate) saga_name: &'static str,
    pub(crate) saga_id: Arc<str>,
    pub(crate) step: Arc<str>,
    pub(crate) index: usize,
    pub(crate) phase: StepPhase,
    pub(crate) attempt: u32,
    pub(crate) data: Arc<D>,
    pub(crate) persistence: Persistence,
}

impl<D> std::fmt::Debug for StepContext<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("saga", &self.saga_name)
            .field("saga_id", &self.saga_id)
            .field("step", &self.step)
            .field("phase", &self.phase)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<D> StepContext<D> {
    /// The saga's id (also the correlation id of its commands).
    pub fn saga_id(&self) -> &str {
        &self.saga_id
    }

    /// The saga definition's name.
    pub fn saga_name(&self) -> &'static str {
        self.saga_name
    }

    /// The step's name.
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The step's position in the saga, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether this is the action or the compensation.
    pub fn phase(&self) -> StepPhase {
        self.phase
    }

    /// Tries of this command so far in this run, from 0 (a resume after a crash or a
    /// dead-letter replay counts from 0 again).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The saga's data, as given to `start`.
    pub fn data(&self) -> &D {
        &self.data
    }

    /// The persistence extension, to reach the entities the step commands.
    pub fn persistence(&self) -> &Persistence {
        &self.persistence
    }

    /// `<saga name>/<saga id>/<step>/<action|compensation>`: the same for every try, every
    /// resume after a crash and every dead-letter replay of this command, and different
    /// for every other command. A target that remembers it (see
    /// [`IdempotencyKeys`](crate::IdempotencyKeys)) applies the command once.
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.saga_name, self.saga_id, self.step, self.phase
        )
    }

    /// The causation id of this command: `<saga id>/<step>/<action|compensation>`.
    pub fn causation_id(&self) -> String {
        format!("{}/{}/{}", self.saga_id, self.step, self.phase)
    }

    /// Metadata for [`EntityRef::ask_with`](crate::EntityRef::ask_with): correlation id =
    /// saga id, causation id = [`StepContext::causation_id`].
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata::default()
            .with_correlation_id(self.saga_id.as_ref())
            .with_causation_id(self.causation_id())
    }
}

/// One step of a saga: a named action and the compensation that undoes it.
pub struct SagaStep<D> {
    pub(crate) name: Arc<str>,
    pub(crate) action: StepFn<D>,
    pub(crate) compensation: StepFn<D>,
}

impl<D> Clone for SagaStep<D> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            action: Arc::clone(&self.action),
            compensation: Arc::clone(&self.compensation),
        }
    }
}

impl<D> std::fmt::Debug for SagaStep<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaStep")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<D: Send + Sync + 'static> SagaStep<D> {
    /// A step named `name` (unique within its saga: it is part of the idempotency key)
    /// whose action is `action` and which has nothing to undo until
    /// [`SagaStep::with_compensation`] says otherwise.
    pub fn new<A, F>(name: impl Into<String>, action: A) -> Self
    where
        A: Fn(StepContext<D>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        let name: String = name.into();
        Self {
            name: Arc::from(name),
            action: Arc::new(move |ctx| Box::pin(action(ctx)) as StepFuture),
            compensation: Arc::new(|_| Box::pin(async { Ok(()) }) as StepFuture),
        }
    }

    /// Sets the compensation: run, in reverse order of the steps, when a later action is
    /// rejected. It must tolerate running twice (it is repeated after a crash); its
    /// idempotency key makes that easy.
    #[must_use]
    pub fn with_compensation<C, F>(mut self, compensation: C) -> Self
    where
        C: Fn(StepContext<D>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<(), StepError>> + Send + 'static,
    {
        self.compensation = Arc::new(move |ctx| Box::pin(compensation(ctx)) as StepFuture);
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}
