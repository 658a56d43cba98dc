//! Which events a query or subscription returns: by entity, event type, tags and time.

use crate::metadata::RecordMeta;
use std::time::SystemTime;

/// A filter over a collection's events. Empty lists match everything; within a list any
/// entry may match (`entity("a").entity("b")`: events of a or b); across lists all must
/// match; tags require every listed tag.
///
/// ```
/// use rush_store::EventFilter;
/// let filter = EventFilter::all().event_type("Deposited").tag("vip");
/// assert!(!filter.is_all());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    entities: Vec<String>,
    event_types: Vec<String>,
    tags: Vec<String>,
    since_micros: Option<u64>,
    until_micros: Option<u64>,
}

fn micros(time: SystemTime) -> u64 {
    crate::journal::time_to_micros(time)
}

impl EventFilter {
    /// Every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// Also match events of entity `entity_id`.
    #[must_use]
    pub fn entity(mut self, entity_id: impl Into<String>) -> Self {
        self.entities.push(entity_id.into());
        self
    }

    /// Also match events of type `event_type` (see `PersistentActor::event_type`).
    #[must_use]
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Only events tagged `tag` (with every tag given).
    #[must_use]
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Only events persisted at or after `time`.
    #[must_use]
    pub fn since(mut self, time: SystemTime) -> Self {
        self.since_micros = Some(micros(time));
        self
    }

    /// Only events persisted at or before `time`.
    #[must_use]
    pub fn until(mut self, time: SystemTime) -> Self {
        self.until_micros = Some(micros(time));
        self
    }

    /// Whether the filter matches every event.
    pub fn is_all(&self) -> bool {
        *self == Self::default()
    }

    /// What the log entry alone decides: entity and time.
    pub(crate) fn matches_entry(&self, entity_id: &str, timestamp_micros: u64) -> bool {
        (self.entities.is_empty() || self.entities.iter().any(|e| e == entity_id))
            && self
                .since_micros
                .is_none_or(|since| timestamp_micros >= since)
            && self
                .until_micros
                .is_none_or(|until| timestamp_micros <= until)
    }

    /// Whether a decoded event matches (the entry's and the meta's tests together).
    pub(crate) fn matches_event<E>(&self, event: &super::StoredEvent<E>) -> bool {
        self.matches_entry(
            &event.entity_id,
            crate::journal::time_to_micros(event.timestamp),
        ) && self.matches_type_and_tags(&event.event_type, &event.tags)
    }

    /// What the event's meta decides: type and tags.
    pub(crate) fn matches_meta(&self, meta: &RecordMeta) -> bool {
        self.matches_type_and_tags(&meta.event_type, &meta.tags)
    }

    fn matches_type_and_tags(&self, event_type: &str, tags: &[String]) -> bool {
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == event_type))
            && self.tags.iter().all(|tag| tags.contains(tag))
    }
}
