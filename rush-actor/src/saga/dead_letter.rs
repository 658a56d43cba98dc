//! Dead letters: saga commands that failed every try. Each one parks its saga; an operator
//! lists them, fixes the cause, and replays (the same command again, with the same
//! idempotency key) or discards them (give up: an action's saga compensates, a
//! compensation is skipped).
//!
//! The saga's journal is the truth ("suspended on letter X"); the row in the
//! `rush.dead-letters` table is its index for operators, rewritten from the journal when a
//! crash fell between the two writes.

use super::SagaOutcome;
use super::manager::Sagas;
use super::step::StepPhase;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// The table the dead letters of every saga live in.
pub(crate) const TABLE: &str = "rush.dead-letters";

/// A saga command that failed all its tries, and the saga parked on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `<saga name>/<saga id>/<step index>/<action|compensation>`: one letter per parked
    /// command, so a replay that fails again updates the same letter.
    pub id: String,
    /// The saga definition's name.
    pub saga_name: String,
    /// The saga's id.
    pub saga_id: String,
    /// The step's position in the saga, from 0.
    pub step_index: usize,
    /// The step's name.
    pub step_name: String,
    /// The action or the compensation.
    pub phase: StepPhase,
    /// The last failure.
    pub reason: String,
    /// Tries so far, over the first run and every replay.
    pub attempts: u32,
    /// When the saga was parked (last).
    pub at: SystemTime,
}

impl DeadLetter {
    /// The id of the letter for one command.
    pub(crate) fn id_for(saga_name: &str, saga_id: &str, index: usize, phase: StepPhase) -> String {
        format!("{saga_name}/{saga_id}/{index}/{phase}")
    }
}

/// The operator's handle on dead letters, from [`Sagas::dead_letters`].
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pub(crate) sagas: Sagas,
}

impl DeadLetters {
    /// Every dead letter, ordered by id (so by saga).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the dead-letter table cannot be read, as
    /// [`Table::rows`](rush_store::Table::rows).
    pub fn list(&self) -> Result<Vec<DeadLetter>> {
        Ok(self
            .sagas
            .letters()
            .rows("")?
            .into_iter()
            .map(|(_, letter)| letter)
            .collect())
    }

    /// The dead letter `id`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the dead-letter table cannot be read, as
    /// [`Table::get`](rush_store::Table::get).
    pub fn get(&self, id: &str) -> Result<Option<DeadLetter>> {
        Ok(self.sagas.letters().get(id)?)
    }

    /// Resumes the saga parked on `id` by running the parked command again, with the same
    /// idempotency key and a fresh round of retries; the saga then goes on to its end.
    /// The letter is removed once the command succeeds; if it fails again, the saga parks
    /// again on the same letter (with the attempts added up).
    ///
    /// # Errors
    ///
    /// [`Error::DeadLetterNotFound`](crate::Error::DeadLetterNotFound) if there is no such
    /// letter; [`Error::Store`](crate::Error::Store) when the letter cannot be read;
    /// [`Error::UnknownSaga`](crate::Error::UnknownSaga) when its saga's definition is not
    /// registered; then as [`Sagas::start`].
    pub async fn replay(&self, id: &str) -> Result<SagaOutcome> {
        self.sagas.settle_letter(id, false).await
    }

    /// Gives up on the command parked on `id`: a parked action is treated as not applied
    /// and the saga compensates its completed steps; a parked compensation is skipped and
    /// compensation goes on with the step before. The letter is removed.
    ///
    /// # Errors
    ///
    /// As [`DeadLetters::replay`].
    pub async fn discard(&self, id: &str) -> Result<SagaOutcome> {
        self.sagas.settle_letter(id, true).await
    }
}
