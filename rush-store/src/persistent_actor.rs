//! The state of an event-sourced entity.

use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// A state rebuilt by applying events in order.
///
/// `apply` must be deterministic and infallible: it is run on recovery for every stored
/// event, so validation belongs where events are decided, not here.
pub trait PersistentActor: Default + Clone + Serialize + DeserializeOwned + Send + 'static {
    /// The events that change this state.
    type Event: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// Applies one event to the state.
    fn apply(&mut self, event: &Self::Event);
}
