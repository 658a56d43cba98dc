//! What one command did, as the test kit reports it.

use super::TestKitError;
use crate::behavior::EventSourced;
use crate::error::CommandError;
use std::fmt::Debug;

/// What [`EntityRef::ask`](crate::EntityRef::ask) returned for one command.
pub type Outcome<S> =
    Result<<S as EventSourced>::Reply, CommandError<<S as EventSourced>::Rejection>>;

/// What one command did: its outcome, the events it persisted and the state after it.
pub struct CommandResult<S: EventSourced> {
    pub(super) outcome: Outcome<S>,
    pub(super) events: Vec<S::Event>,
    pub(super) state: S,
}

impl<S: EventSourced + Debug> Debug for CommandResult<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcome = match &self.outcome {
            Ok(_) => "replied".to_owned(),
            Err(CommandError::Rejected(rejection)) => format!("rejected: {rejection}"),
            Err(CommandError::Failed(error)) => format!("failed: {error}"),
        };
        f.debug_struct("CommandResult")
            .field("outcome", &outcome)
            .field("events", &self.events)
            .field("state", &self.state)
            .finish()
    }
}

impl<S: EventSourced> CommandResult<S> {
    /// The reply.
    ///
    /// # Errors
    ///
    /// [`TestKitError::Rejected`] when the command was rejected, [`TestKitError::Failed`]
    /// when it failed.
    pub fn reply(&self) -> Result<&S::Reply, TestKitError> {
        match &self.outcome {
            Ok(reply) => Ok(reply),
            Err(CommandError::Rejected(rejection)) => {
                Err(TestKitError::Rejected(rejection.to_string()))
            }
            Err(CommandError::Failed(error)) => Err(TestKitError::Failed(error.to_string())),
        }
    }

    /// The rejection, if the command was rejected.
    pub fn rejection(&self) -> Option<&S::Rejection> {
        match &self.outcome {
            Err(CommandError::Rejected(rejection)) => Some(rejection),
            _ => None,
        }
    }

    /// The whole outcome, as [`EntityRef::ask`](crate::EntityRef::ask) returned it.
    pub fn outcome(&self) -> &Outcome<S> {
        &self.outcome
    }

    /// The events the command persisted, in order (none for a rejection or a failure).
    pub fn events(&self) -> &[S::Event] {
        &self.events
    }

    /// The state after the command (after a failure: the state the restarted actor
    /// recovered).
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The outcome, events and state, taken apart.
    pub fn into_parts(self) -> (Outcome<S>, Vec<S::Event>, S) {
        (self.outcome, self.events, self.state)
    }
}
