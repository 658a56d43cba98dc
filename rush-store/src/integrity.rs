//! `verify_integrity`: every record's checksum or tag, its decoding, the contiguity of
//! sequence numbers, and the entity's entries in its collection's log, collected into a
//! report instead of stopping at the first problem.

use crate::backend::Backend;
use crate::codec::envelope::{Header, VERSION_PLAIN};
use crate::codec::{Codec, MAX_SNAPSHOT_SIZE};
use crate::collection_log;
use crate::error::Result;
use crate::journal::{self, PAGE};
use crate::keys::{EntityKey, RecordKind, prefix_end};
use crate::persistent_actor::PersistentActor;
use std::collections::BTreeMap;

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
    // Offsets of this entity's events in the collection log, by sequence number.
    let mut logged = logged_sequence_numbers(backend, key, &mut report)?;
    for_each_record(backend, key, RecordKind::Event, |record_key, value| {
        let Some(seq) = key.seq_of(RecordKind::Event, record_key) else {
            report.error(key.describe(RecordKind::Event, 0), "malformed key");
            return;
        };
        report.events_checked += 1;
        let describe = || key.describe(RecordKind::Event, seq);
        // Every format-v2 or v3 event is written with its log entry in one batch (v1 events
        // predate collection logs). Only an engine that tore a batch leaves one without.
        let offsets = logged.remove(&seq).unwrap_or_default();
        if seq > deleted_to
            && offsets.is_empty()
            && Header::parse(value).is_ok_and(|h| h.version != VERSION_PLAIN)
        {
            report.error(
                describe(),
                "has no offset in the collection log (a torn write): queries and subscriptions miss it",
            );
        }
        if offsets.len() > 1 {
            report.error(
                describe(),
                format!("has several offsets in the collection log: {offsets:?}"),
            );
        }
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
    // Entries left over point at events that are not stored. Below the journal's end
    // such an event is already reported as missing; deleted history is expected.
    for (seq, offsets) in logged.range(deleted_to.max(head).saturating_add(1)..) {
        report.error(
            key.describe(RecordKind::Event, *seq),
            format!(
                "the collection log points at it (offsets {offsets:?}) beyond the journal's end {head}"
            ),
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

/// The offsets of the entity's events in its collection's log, by sequence number. Reads
/// the whole log (entries only, no event records): proportional to the collection's size.
fn logged_sequence_numbers(
    backend: &dyn Backend,
    key: &EntityKey,
    report: &mut IntegrityReport,
) -> Result<BTreeMap<u64, Vec<u64>>> {
    let mut logged: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let log = collection_log::log_of(key.collection())?;
    let walked = collection_log::for_each_entry(backend, &log, 1, &mut |entry| {
        if entry.entity_id == key.entity_id() {
            logged
                .entry(entry.sequence_number)
                .or_default()
                .push(entry.offset);
        }
        Ok(true)
    });
    if let Err(e) = walked {
        report.error(
            format!("collection log of {:?}", key.collection()),
            e.to_string(),
        );
    }
    Ok(logged)
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
