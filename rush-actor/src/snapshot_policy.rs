//! When a persistent actor snapshots its state, how many snapshots it keeps, and whether
//! events covered by the kept snapshots are deleted.

/// Snapshot every `every` events, keep the newest `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Events between two automatic snapshots; `None` disables them.
    pub every: Option<u64>,
    /// Snapshots kept (at least 1).
    pub keep: usize,
    /// After a snapshot, delete the events covered by the oldest kept snapshot.
    pub delete_covered_events: bool,
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            every: Some(100),
            keep: 2,
            delete_covered_events: false,
        }
    }
}

impl SnapshotPolicy {
    /// Snapshot every `n` events.
    pub fn every(n: u64) -> Self {
        Self {
            every: Some(n),
            ..Self::default()
        }
    }

    /// Whether a snapshot is due at `seq` when the last one was at `last`: when a multiple
    /// of `every` was reached since (a batch may cross it).
    pub(crate) fn due(&self, seq: u64, last: u64) -> bool {
        self.every.is_some_and(|n| n > 0 && seq / n > last / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_fall_due_every_n_events() {
        let p = SnapshotPolicy::every(10);
        assert!(!p.due(9, 0));
        assert!(p.due(10, 0));
        assert!(p.due(12, 0), "a batch that crosses the boundary");
        assert!(!p.due(19, 12));
        assert!(p.due(20, 12));
        assert!(p.due(22, 12));
        assert!(!p.due(25, 20));
        assert!(!SnapshotPolicy { every: None, ..p }.due(1000, 0));
    }
}
