//! The state of an event-sourced entity, and what its events carry besides their payload.

use crate::upcast::Upcasters;
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// A state rebuilt by applying events in order.
///
/// `apply` must be deterministic and infallible: it is run on recovery for every stored
/// event, so validation belongs where events are decided, not here.
///
/// The other items have defaults: an event's type name is its enum variant's name, it has
/// no tags, and the schema is version 1 with no upcasters.
pub trait PersistentActor: Default + Clone + Serialize + DeserializeOwned + Send + 'static {
    /// The events that change this state.
    type Event: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// The schema version of [`Self::Event`] this build writes. Raise it when the event
    /// type changes incompatibly, and register the step from the old version in
    /// [`PersistentActor::upcasters`].
    const EVENT_SCHEMA_VERSION: u32 = 1;

    /// Applies one event to the state.
    fn apply(&mut self, event: &Self::Event);

    /// The type name recorded with an event, used by queries and upcasters. Default: the
    /// serde name of an enum's variant, else the short Rust type name.
    fn event_type(event: &Self::Event) -> String {
        default_event_type(event)
    }

    /// Tags recorded with an event, for queries across entities (`EventFilter::tag`).
    fn event_tags(_event: &Self::Event) -> Vec<String> {
        Vec::new()
    }

    /// Registers the upcasters that read events of older schema versions.
    fn upcasters(_upcasters: &mut Upcasters) {}
}

/// The serde variant name of an enum value, else the last segment of its Rust type name.
pub fn default_event_type<E: Serialize>(event: &E) -> String {
    serde_variant::to_variant_name(event).map_or_else(
        |_| {
            let full = std::any::type_name::<E>();
            let without_generics = full.split('<').next().unwrap_or(full);
            without_generics
                .rsplit("::")
                .next()
                .unwrap_or(without_generics)
                .to_owned()
        },
        str::to_owned,
    )
}
