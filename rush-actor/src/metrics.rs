//! Per-entity counters, kept across restarts of the entity's actor. They live as long as
//! the entity is known to the extension: passivation forgets them, so that an extension
//! serving millions of entities over time holds counters only for the live ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// What one persistent entity's actors have done since it was last started (restarts
/// included; passivation starts afresh).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityMetrics {
    /// Events persisted.
    pub events_persisted: u64,
    /// Snapshots written.
    pub snapshots_taken: u64,
    /// Commands rejected by the behaviour.
    pub commands_rejected: u64,
    /// Duration of the latest recovery.
    pub last_recovery_time: Duration,
    /// Restarts by the supervisor.
    pub restarts: u64,
    /// Actor incarnations started (first start included).
    pub incarnations: u64,
    /// Serialized bytes of the events and snapshots written, before compression.
    pub serialized_bytes: u64,
    /// The same after adaptive compression (before encryption's fixed overhead).
    pub compressed_bytes: u64,
}

/// Shared, lock-free backing of [`EntityMetrics`].
#[derive(Debug, Default)]
pub(crate) struct MetricsCell {
    pub(crate) events_persisted: AtomicU64,
    pub(crate) snapshots_taken: AtomicU64,
    pub(crate) commands_rejected: AtomicU64,
    pub(crate) last_recovery_micros: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) incarnations: AtomicU64,
    pub(crate) serialized_bytes: AtomicU64,
    pub(crate) compressed_bytes: AtomicU64,
}

impl MetricsCell {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds what a store handle's compression counters grew by since `before`.
    pub(crate) fn add_compression(
        &self,
        before: rush_store::CompressionStats,
        after: rush_store::CompressionStats,
    ) {
        Self::add(
            &self.serialized_bytes,
            after.original_bytes.saturating_sub(before.original_bytes),
        );
        Self::add(
            &self.compressed_bytes,
            after
                .compressed_bytes
                .saturating_sub(before.compressed_bytes),
        );
    }

    pub(crate) fn read(&self) -> EntityMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EntityMetrics {
            events_persisted: get(&self.events_persisted),
            snapshots_taken: get(&self.snapshots_taken),
            commands_rejected: get(&self.commands_rejected),
            last_recovery_time: Duration::from_micros(get(&self.last_recovery_micros)),
            restarts: get(&self.restarts),
            incarnations: get(&self.incarnations),
            serialized_bytes: get(&self.serialized_bytes),
            compressed_bytes: get(&self.compressed_bytes),
        }
    }
}

/// One collection's instruments in the installed `metrics` recorder, looked up once per
/// actor incarnation. A labelled `counter!` or `histogram!` allocates its labels, hashes
/// its key and asks the recorder's registry on every call; a handle only records.
/// An incarnation started before a recorder was installed keeps recording nowhere until
/// its next start.
pub(crate) struct Instruments {
    pub(crate) persist_seconds: ::metrics::Histogram,
    pub(crate) events_persisted: ::metrics::Counter,
    pub(crate) commands_rejected: ::metrics::Counter,
    pub(crate) snapshots: ::metrics::Counter,
}

impl Instruments {
    /// The handles of `collection`'s instruments.
    pub(crate) fn register(collection: &'static str) -> Self {
        use rush_store::metric_names;
        Self {
            persist_seconds: ::metrics::histogram!(metric_names::PERSIST_SECONDS, "collection" => collection),
            events_persisted: ::metrics::counter!(metric_names::EVENTS_PERSISTED_TOTAL, "collection" => collection),
            commands_rejected: ::metrics::counter!(metric_names::COMMANDS_REJECTED_TOTAL, "collection" => collection),
            snapshots: ::metrics::counter!(metric_names::SNAPSHOTS_TOTAL, "collection" => collection),
        }
    }
}
