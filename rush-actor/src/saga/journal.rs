//! A saga's own journal: the events that record its progress, and the state they rebuild.
//! The state says where the saga stands, so a saga resumed after a crash runs exactly the
//! command it had not yet journaled.

use super::step::StepPhase;
use super::{SagaOutcome, SagaStatus};
use rush_store::PersistentActor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;
use std::time::SystemTime;

/// The collection of the journals of saga definition `name`: one journal per saga id.
pub(crate) fn collection(name: &str) -> String {
    format!("rush.saga.{name}")
}

/// What happened to a saga. A step's completion is journaled only after its action
/// succeeded, so a crash in between repeats the action (with the same idempotency key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "D: Serialize + DeserializeOwned")]
pub(crate) enum SagaEvent<D> {
    /// The saga began with this data.
    Started { data: D },
    /// Step `index`'s action succeeded.
    StepCompleted { index: usize },
    /// Step `index`'s action was rejected (or its dead letter discarded): compensate the
    /// completed steps.
    StepFailed { index: usize, reason: String },
    /// Step `index`'s compensation succeeded.
    Compensated { index: usize },
    /// Step `index`'s compensation was given up on (its dead letter discarded).
    CompensationSkipped { index: usize, reason: String },
    /// A command failed all its tries: the saga waits on dead letter `dead_letter`.
    Suspended {
        index: usize,
        phase: StepPhase,
        reason: String,
        attempts: u32,
        at: SystemTime,
        dead_letter: String,
    },
    /// An operator replayed or discarded the dead letter: the saga goes on.
    Resumed { dead_letter: String },
    /// The saga ended.
    Finished { outcome: SagaOutcome },
}

/// Where a saga stands, rebuilt from its journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "D: Serialize + DeserializeOwned")]
pub(crate) struct SagaState<D> {
    pub(crate) data: Option<D>,
    /// Steps `0..completed` have had their action succeed.
    pub(crate) completed: usize,
    /// Set once an action failed: compensation is under way.
    pub(crate) failure: Option<Failure>,
    /// Steps still to compensate, the highest first: `0..remaining`.
    pub(crate) remaining: usize,
    pub(crate) parked: Option<Parked>,
    pub(crate) finished: Option<SagaOutcome>,
}

/// The action failure that made a saga compensate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub(crate) index: usize,
    pub(crate) reason: String,
}

/// The command a saga is parked on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Parked {
    pub(crate) index: usize,
    pub(crate) phase: StepPhase,
    pub(crate) reason: String,
    /// Tries so far, over the first run and every replay.
    pub(crate) attempts: u32,
    /// When it was parked (last).
    pub(crate) at: SystemTime,
    pub(crate) dead_letter: String,
}

/// The next thing a saga does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Run step `index`'s action (or finish as completed when there is no such step).
    Action(usize),
    /// Run step `index`'s compensation.
    Compensate(usize),
    /// Every completed step is compensated: finish.
    FinishCompensated,
    /// Wait for an operator.
    Parked(Parked),
    /// Nothing: it ended.
    Finished(SagaOutcome),
    /// No `Started` event: the saga does not exist.
    NotStarted,
}

impl<D> Default for SagaState<D> {
    fn default() -> Self {
        Self {
            data: None,
            completed: 0,
            failure: None,
            remaining: 0,
            parked: None,
            finished: None,
        }
    }
}

impl<D> PersistentActor for SagaState<D>
where
    D: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static,
{
    type Event = SagaEvent<D>;

    fn apply(&mut self, event: &SagaEvent<D>) {
        match event {
            SagaEvent::Started { data } => self.data = Some(data.clone()),
            SagaEvent::StepCompleted { index } => self.completed = index.saturating_add(1),
            SagaEvent::StepFailed { index, reason } => {
                self.failure = Some(Failure {
                    index: *index,
                    reason: reason.clone(),
                });
                self.remaining = self.completed;
            }
            SagaEvent::Compensated { index } | SagaEvent::CompensationSkipped { index, .. } => {
                self.remaining = *index;
            }
            SagaEvent::Suspended {
                index,
                phase,
                reason,
                attempts,
                at,
                dead_letter,
            } => {
                self.parked = Some(Parked {
                    index: *index,
                    phase: *phase,
                    reason: reason.clone(),
                    attempts: *attempts,
                    at: *at,
                    dead_letter: dead_letter.clone(),
                });
            }
            SagaEvent::Resumed { .. } => self.parked = None,
            SagaEvent::Finished { outcome } => self.finished = Some(outcome.clone()),
        }
    }
}

impl<D> SagaState<D> {
    /// What the saga does next.
    pub(crate) fn next(&self) -> Next {
        if self.data.is_none() {
            return Next::NotStarted;
        }
        if let Some(outcome) = &self.finished {
            return Next::Finished(outcome.clone());
        }
        if let Some(parked) = &self.parked {
            return Next::Parked(parked.clone());
        }
        match (&self.failure, self.remaining.checked_sub(1)) {
            (None, _) => Next::Action(self.completed),
            (Some(_), Some(index)) => Next::Compensate(index),
            (Some(_), None) => Next::FinishCompensated,
        }
    }

    /// The public view of where the saga stands.
    pub(crate) fn status(&self, step_name: impl Fn(usize) -> String) -> Option<SagaStatus> {
        Some(match self.next() {
            Next::NotStarted => return None,
            Next::Action(index) => SagaStatus::Running {
                completed_steps: self.completed,
                next_step: index,
            },
            Next::Compensate(_) | Next::FinishCompensated => SagaStatus::Compensating {
                failed_step: self
                    .failure
                    .as_ref()
                    .map_or_else(String::new, |f| step_name(f.index)),
                remaining: self.remaining,
            },
            Next::Parked(parked) => SagaStatus::Parked {
                dead_letter: parked.dead_letter,
                step: step_name(parked.index),
                phase: parked.phase,
                reason: parked.reason,
            },
            Next::Finished(outcome) => SagaStatus::Finished(outcome),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(events: &[SagaEvent<u8>]) -> SagaState<u8> {
        let mut state = SagaState::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    #[test]
    fn a_saga_without_a_start_event_does_not_exist() {
        assert_eq!(replay(&[]).next(), Next::NotStarted);
    }

    #[test]
    fn the_next_action_follows_the_last_completed_step() {
        let state = replay(&[
            SagaEvent::Started { data: 1 },
            SagaEvent::StepCompleted { index: 0 },
            SagaEvent::StepCompleted { index: 1 },
        ]);
        assert_eq!(state.next(), Next::Action(2));
    }

    #[test]
    fn a_failure_compensates_the_completed_steps_highest_first() {
        let mut state = replay(&[
            SagaEvent::Started { data: 1 },
            SagaEvent::StepCompleted { index: 0 },
            SagaEvent::StepCompleted { index: 1 },
            SagaEvent::StepFailed {
                index: 2,
                reason: "no".into(),
            },
        ]);
        assert_eq!(state.next(), Next::Compensate(1));
        state.apply(&SagaEvent::Compensated { index: 1 });
        assert_eq!(state.next(), Next::Compensate(0));
        state.apply(&SagaEvent::CompensationSkipped {
            index: 0,
            reason: "discarded".into(),
        });
        assert_eq!(state.next(), Next::FinishCompensated);
    }

    #[test]
    fn a_parked_saga_waits_until_resumed() {
        let mut state = replay(&[
            SagaEvent::Started { data: 1 },
            SagaEvent::Suspended {
                index: 0,
                phase: StepPhase::Action,
                reason: "down".into(),
                attempts: 4,
                at: SystemTime::UNIX_EPOCH,
                dead_letter: "d".into(),
            },
        ]);
        assert!(matches!(state.next(), Next::Parked(p) if p.dead_letter == "d"));
        state.apply(&SagaEvent::Resumed {
            dead_letter: "d".into(),
        });
        assert_eq!(state.next(), Next::Action(0));
    }
}
