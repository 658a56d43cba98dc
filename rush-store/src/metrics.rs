//! Counters of one store handle.

use std::time::{Duration, SystemTime};

/// What one store handle has done since it was opened.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    /// Events this handle persisted.
    pub events_persisted: u64,
    /// Snapshots this handle wrote.
    pub snapshots_created: u64,
    /// Mean wall time of a persist call (encode, commit and, when durable, flush).
    pub avg_persist_time: Duration,
    /// Bytes of keys and records this handle wrote.
    pub total_storage_bytes: u64,
    /// When the newest event of this handle was persisted.
    pub last_event_timestamp: Option<SystemTime>,
}

/// Running totals behind [`StoreMetrics`].
#[derive(Debug, Clone, Default)]
pub(crate) struct MetricsState {
    pub(crate) events_persisted: u64,
    pub(crate) snapshots_created: u64,
    pub(crate) persist_calls: u32,
    pub(crate) persist_time: Duration,
    pub(crate) bytes_written: u64,
    pub(crate) last_event_timestamp: Option<SystemTime>,
}

impl MetricsState {
    pub(crate) fn snapshot(&self) -> StoreMetrics {
        StoreMetrics {
            events_persisted: self.events_persisted,
            snapshots_created: self.snapshots_created,
            avg_persist_time: self
                .persist_time
                .checked_div(self.persist_calls)
                .unwrap_or_default(),
            total_storage_bytes: self.bytes_written,
            last_event_timestamp: self.last_event_timestamp,
        }
    }
}
