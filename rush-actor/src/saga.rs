//! Sagas (process managers): a business transaction over several entities as a sequence
//! of steps, each an action and the compensation that undoes it.
//!
//! # Model
//!
//! - A saga is code registered by name ([`SagaDefinition`]) with a [`Sagas`] manager, so a
//!   saga interrupted by a crash is resumed by the next process from its journal
//!   ([`Sagas::resume_incomplete`]).
//! - Each saga journals its progress as events in its own journal (collection
//!   `rush.saga.<NAME>`, entity id = saga id), sealed and compressed like every journal of
//!   the extension. A step's completion is journaled only after its action succeeded: a
//!   crash in between runs the action again, with the same idempotency key
//!   ([`StepContext::idempotency_key`]), and the target answers the repeat without
//!   applying it twice ([`IdempotencyKeys`](crate::IdempotencyKeys)).
//! - Every command a step sends should carry [`StepContext::metadata`]: correlation id =
//!   saga id, causation id = `<saga id>/<step>/<action|compensation>`, so all events of
//!   one transaction can be found.
//! - A [`StepError::Retryable`] failure (or a panic in the step) is tried again under the
//!   definition's [`RetryPolicy`]. A [`StepError::Rejected`] action makes the saga
//!   compensate its completed steps in reverse order and end as
//!   [`SagaOutcome::Compensated`].
//!
//! # Park and resume
//!
//! A command that fails every try is not guessed about: the saga is parked (journaled as
//! suspended) and a [`DeadLetter`] is written to the `rush.dead-letters` table. Nothing
//! else happens to that saga until an operator, having fixed the cause, either replays
//! the letter ([`DeadLetters::replay`]: the same command again, same idempotency key; the
//! saga then runs to its end and the letter is removed) or discards it
//! ([`DeadLetters::discard`]: a parked action is treated as not applied and the saga
//! compensates; a parked compensation is skipped and compensation goes on). A rejected
//! compensation parks the saga at once: a compensation must not fail, so a person
//! decides. This is Akka's "stop and escalate" rather than "compensate on a guess": a
//! timed-out action may have been applied, and only someone who checked knows.
//!
//! ```rust,ignore
//! struct Transfer;
//! impl SagaDefinition for Transfer {
//!     type Data = TransferData;
//!     const NAME: &'static str = "transfer";
//!     fn steps(&self) -> Vec<SagaStep<TransferData>> {
//!         vec![
//!             SagaStep::new("debit", |ctx: StepContext<TransferData>| async move {
//!                 let account = ctx.persistence().entity::<Account>(&ctx.data().from);
//!                 let command = Cmd::Debit { amount: ctx.data().amount, key: ctx.idempotency_key() };
//!                 account.ask_with(command, ctx.metadata()).await?;
//!                 Ok(())
//!             })
//!             .with_compensation(|ctx| async move { /* credit back */ Ok(()) }),
//!             SagaStep::new("credit", |ctx| async move { /* credit */ Ok(()) }),
//!         ]
//!     }
//! }
//! let sagas = Sagas::open(&persistence)?;
//! sagas.register(Transfer);
//! let outcome = sagas.start::<Transfer>("transfer-1", data).await?;
//! ```

mod dead_letter;
mod journal;
mod manager;
mod retention;
mod retry_policy;
mod runner;
mod step;

pub use dead_letter::{DeadLetter, DeadLetters};
pub use manager::Sagas;
pub use retention::DEFAULT_SAGA_RETENTION;
pub use retry_policy::RetryPolicy;
pub use step::{SagaStep, StepContext, StepError, StepFuture, StepPhase};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// What a saga's data must be: journaled with the saga (serde), handed to every step
/// (cloned, shared between threads), printed in the saga's events (`Debug`, as every
/// journaled event is).
pub trait SagaData: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static> SagaData for T {}

/// A kind of saga: its steps, in order, and how their transient failures are retried.
/// Registered by name with [`Sagas::register`], so that a saga journaled by one process
/// is resumed by the next.
pub trait SagaDefinition: Send + Sync + 'static {
    /// What one saga of this kind works on (a transfer's accounts and amount).
    type Data: SagaData;
    /// The name its sagas are journaled under. Changing it orphans running sagas.
    const NAME: &'static str;

    /// The steps, in order. Resumed sagas find their place by index: append new steps at
    /// the end, and do not remove or reorder steps while sagas of the old shape run.
    fn steps(&self) -> Vec<SagaStep<Self::Data>>;

    /// How transient failures are retried (default: [`RetryPolicy::default`]).
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
}

/// How a saga run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SagaOutcome {
    /// Every step's action succeeded.
    Completed,
    /// An action was rejected (or its dead letter discarded), and the steps completed
    /// before it were compensated (or their compensations discarded).
    Compensated {
        /// The step whose action failed.
        failed_step: String,
        /// Why.
        reason: String,
    },
    /// A command failed every try: the saga waits on a dead letter (not an end: replay or
    /// discard the letter).
    Parked {
        /// The [`DeadLetter`]'s id.
        dead_letter: String,
        /// The step.
        step: String,
        /// Its action or its compensation.
        phase: StepPhase,
        /// The last failure.
        reason: String,
    },
}

impl SagaOutcome {
    /// Whether the saga ended (completed or compensated), as opposed to parked.
    pub fn is_final(&self) -> bool {
        !matches!(self, SagaOutcome::Parked { .. })
    }
}

/// Where a saga stands, from [`Sagas::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaStatus {
    /// Running its actions (or interrupted while doing so: resume it).
    Running {
        /// Steps whose action is journaled as completed.
        completed_steps: usize,
        /// The step whose action runs next.
        next_step: usize,
    },
    /// Compensating after a failed action.
    Compensating {
        /// The step whose action failed.
        failed_step: String,
        /// Completed steps not yet compensated.
        remaining: usize,
    },
    /// Waiting on a dead letter.
    Parked {
        /// The [`DeadLetter`]'s id.
        dead_letter: String,
        /// The step.
        step: String,
        /// Its action or its compensation.
        phase: StepPhase,
        /// The last failure.
        reason: String,
    },
    /// Ended.
    Finished(SagaOutcome),
}
