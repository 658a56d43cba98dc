//! What is recorded with every event besides the event itself: who and what caused it
//! (spec 001's correlation and causation ids, user and tenant), its type name, schema
//! version and tags. Stored inside the sealed body (formats v2 and v3), returned by queries.

use serde::{Deserialize, Serialize};

/// Who and what caused an event. All fields are optional; a saga sets the correlation id
/// of every command it sends, so all events of one business transaction can be found.
///
/// ```
/// use rush_store::EventMetadata;
/// let metadata = EventMetadata::default()
///     .with_correlation_id("transfer-42")
///     .with_user_id("alice");
/// assert_eq!(metadata.correlation_id.as_deref(), Some("transfer-42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Groups the events of one business transaction (a saga's id, a request id).
    pub correlation_id: Option<String>,
    /// The message (command or event id) that directly caused this event.
    pub causation_id: Option<String>,
    /// The user on whose behalf the event was persisted.
    pub user_id: Option<String>,
    /// The tenant the event belongs to.
    pub tenant_id: Option<String>,
}

impl EventMetadata {
    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets the causation id.
    #[must_use]
    pub fn with_causation_id(mut self, id: impl Into<String>) -> Self {
        self.causation_id = Some(id.into());
        self
    }

    /// Sets the user id.
    #[must_use]
    pub fn with_user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// Sets the tenant id.
    #[must_use]
    pub fn with_tenant_id(mut self, id: impl Into<String>) -> Self {
        self.tenant_id = Some(id.into());
        self
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The meta block of a format-v2 or -v3 event record, in front of the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordMeta {
    /// The event's type name (an enum's variant name by default).
    pub(crate) event_type: String,
    /// The schema version the payload was written with.
    pub(crate) schema_version: u32,
    /// Tags the actor attached.
    pub(crate) tags: Vec<String>,
    /// Causes.
    pub(crate) metadata: EventMetadata,
}

impl RecordMeta {
    /// What a format-v1 event (written before meta existed) is read as.
    pub(crate) fn legacy() -> Self {
        Self {
            event_type: String::new(),
            schema_version: 1,
            tags: Vec::new(),
            metadata: EventMetadata::default(),
        }
    }
}
