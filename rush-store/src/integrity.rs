//! `verify_integrity`: every record's checksum or tag, its decoding, and the contiguity of
//! sequence numbers, collected into a report instead of stopping at the first problem.

use crate::backend::Backend;
use crate::codec::{Codec, MAX_SNAPSHOT_SIZE};
use crate::error::Result;
use crate::journal::{self, PAGE};
use crate::keys::{EntityKey, RecordKind, prefix_end};
use crate::persistent_actor::PersistentActor;

/// One problem found by [`verify_integrity`](crate::Store::verify_integrity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityError {
    /// Which record, e.g. `event 7 of "accounts"/"a-1"`.
    pub record: String,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.record, self.reason)
    }
}

/// The outcome of an integrity check of one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Event records read.
    pub events_checked: u64,
    /// Snapshot records read.
    pub snapshots_checked: u64,
    /// Every problem found; empty means the entity is intact.
    pub integrity_errors: Vec<IntegrityError>,
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.integrity_errors.is_empty()
    }

    fn error(&mut self, record: String, reason: impl Into<String>) {
        self.integrity_errors.push(IntegrityError {
            record,
            reason: reason.into(),
        });
    }
}

/// Reads every record of one entity and reports what is wrong.
pub(crate) fn verify<A: PersistentActor>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
) -> Result<IntegrityReport> {
    let mut report = IntegrityReport::default();
    let head = match journal::read_head(backend, key) {
        Ok(head) => head,
        Err(e) => {
            report.error(key.describe(RecordKind::Event, 0), e.to_string());
            u64::MAX
        }
    };
    let deleted_to = journal::read_deleted_to(backend, key).unwrap_or_else(|e| {
        report.error(key.describe(RecordKind::DeletedTo, 0), e.to_string());
        0
    });
    let mut expected = deleted_to + 1;
    for_each_record(backend, key, RecordKind::Event, |record_key, value| {
        let Some(seq) = key.seq_of(RecordKind::Event, record_key) else {
            report.error(key.describe(RecordKind::Event, 0), "malformed key");
            return;
        };
        report.events_checked += 1;
        let describe = || key.describe(RecordKind::Event, seq);
        if seq <= deleted_to {
            // Left over by an interrupted delete_events_to; harmless but reported.
            report.error(
                describe(),
                format!("still stored below the deletion mark {deleted_to}"),
            );
        } else if seq > head {
            report.error(
                describe(),
                format!("beyond the highest sequence number {head}"),
            );
        } else {
            if seq != expected {
                report.error(
                    key.describe(RecordKind::Event, expected),
                    format!("missing: events {expected}..{} are absent", seq - 1),
                );
            }
            expected = seq + 1;
        }
        let mut scratch = crate::codec::Scratch::default();
        if let Err(e) =
            codec.decode_event_with::<A::Event>(record_key, value, &describe, &mut scratch)
        {
            report.error(describe(), e.to_string());
        }
    })?;
    if head != u64::MAX && expected <= head {
        report.error(
            key.describe(RecordKind::Event, expected),
            format!("missing: events {expected}..={head} are absent"),
        );
    }
    for_each_record(backend, key, RecordKind::Snapshot, |record_key, value| {
        let seq = key.seq_of(RecordKind::Snapshot, record_key).unwrap_or(0);
        report.snapshots_checked += 1;
        let describe = || key.describe(RecordKind::Snapshot, seq);
        if seq > head {
            report.error(
                describe(),
                format!("beyond the highest sequence number {head}"),
            );
        }
        if let Err(e) = codec.decode::<A>(record_key, value, MAX_SNAPSHOT_SIZE, &describe) {
            report.error(describe(), e.to_string());
        }
    })?;
    Ok(report)
}

/// Streams all records of `kind` of the entity, page by page.
fn for_each_record(
    backend: &dyn Backend,
    key: &EntityKey,
    kind: RecordKind,
    mut visit: impl FnMut(&[u8], &[u8]),
) -> Result<()> {
    let prefix = key.prefix(kind);
    let end = prefix_end(&prefix);
    let mut from = prefix;
    loop {
        let page = backend.scan(&from, &end, PAGE, false)?;
        for (k, v) in &page {
            visit(k, v);
        }
        match page.last() {
            Some((last, _)) if page.len() == PAGE => {
                from = last.clone();
                from.push(0);
            }
            _ => return Ok(()),
        }
    }
}
