//! `Inspector::verify`: every record of a scope checked as a store would read it (header
//! and length, CRC or AEAD tag, bounded inflate, meta block), and the structure around
//! the records: contiguous sequence numbers, deletion marks that a snapshot covers,
//! snapshots within the journal, collection-log blocks that are gap-free and point at
//! stored events. Problems are collected, not raised.

use super::record::{self, Opening};
use super::scan::{self, Parsed};
use super::{Inspector, Progress, Scope};
use crate::backend::decode_block;
use crate::codec::envelope::{Scratch, VERSION_PLAIN};
use crate::collection_log::decode_entry;
use crate::error::Result;
use crate::integrity::IntegrityError;
use crate::journal::{decode_u64, read_deleted_to, read_head};
use crate::keys::{EntityKey, RecordKind};
use std::collections::HashMap;

/// The outcome of [`Inspector::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Event records checked.
    pub events_checked: u64,
    /// Snapshot records checked.
    pub snapshots_checked: u64,
    /// Deletion marks checked.
    pub deletion_marks_checked: u64,
    /// Collection-log entries checked (each must point at a stored or deleted event).
    pub log_entries_checked: u64,
    /// Table rows checked.
    pub table_rows_checked: u64,
    /// Encrypted records whose tag could not be checked: no key was given.
    pub sealed_unchecked: u64,
    /// Problems that make a read fail or lose data.
    pub errors: Vec<IntegrityError>,
    /// Findings that are harmless for readers (events left below a deletion mark by an
    /// interrupted deletion, leftover health probes, plain records beside a key).
    pub warnings: Vec<IntegrityError>,
    /// The walk was stopped before the end: what was not reached is unchecked.
    pub interrupted: bool,
}

impl VerifyReport {
    /// Whether no error was found (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `"<n> errors, the first: <error>"`, for a message about a failed verification.
    pub fn error_summary(&self) -> String {
        format!(
            "{} errors, the first: {}",
            self.errors.len(),
            self.errors
                .first()
                .map_or_else(String::new, ToString::to_string)
        )
    }

    fn error(&mut self, record: String, reason: impl Into<String>) {
        self.errors.push(IntegrityError {
            record,
            reason: reason.into(),
        });
    }

    fn warning(&mut self, record: String, reason: impl Into<String>) {
        self.warnings.push(IntegrityError {
            record,
            reason: reason.into(),
        });
    }
}

/// The journal of the entity whose events are being walked.
struct Journal {
    key: EntityKey,
    deleted_to: u64,
    next: u64,
}

/// The log of the collection whose blocks are being walked.
struct Log {
    collection: String,
    /// The offset the next block must start at (`None` after a malformed block).
    next: Option<u64>,
}

struct Verifier<'a> {
    inspector: &'a Inspector,
    report: VerifyReport,
    scratch: Scratch,
    journal: Option<Journal>,
    /// (collection, entity) -> (newest stored event, deletion mark).
    ends: HashMap<(String, String), (u64, u64)>,
    /// (collection, entity) -> newest snapshot.
    snapshots: HashMap<(String, String), u64>,
    log: Option<Log>,
}

impl Inspector {
    /// Checks every record in `scope` and the structure around them; see [`VerifyReport`].
    /// With a key, tags are verified and bodies inflated and parsed; without one, the
    /// envelopes of encrypted records only (counted in `sealed_unchecked`).
    ///
    /// # Errors
    ///
    /// Damage is reported in the [`VerifyReport`], not as an error. Errors are
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a
    /// [`Scope::Collection`] name that is empty or longer than
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes, and engine failures
    /// ([`Error::Io`](crate::Error::Io), [`Error::DiskFull`](crate::Error::DiskFull),
    /// [`Error::Corrupted`](crate::Error::Corrupted),
    /// [`Error::Storage`](crate::Error::Storage)) that stop the walk.
    pub fn verify(&self, scope: &Scope, progress: &mut Progress<'_>) -> Result<VerifyReport> {
        let ranges = match scope {
            Scope::All => scan::everything(),
            _ => scope.ranges(&[
                RecordKind::Event,
                RecordKind::Snapshot,
                RecordKind::DeletedTo,
                RecordKind::Offset,
            ])?,
        };
        let mut verifier = Verifier {
            inspector: self,
            report: VerifyReport::default(),
            scratch: Scratch::default(),
            journal: None,
            ends: HashMap::new(),
            snapshots: HashMap::new(),
            log: None,
        };
        let completed = scan::walk(
            self.backend.as_ref(),
            &ranges,
            progress,
            &mut |key, value, parsed| {
                verifier.record(key, value, parsed)?;
                Ok(true)
            },
        )?;
        verifier.end_journal();
        verifier.report.interrupted = !completed;
        Ok(verifier.report)
    }
}

fn id(key: &EntityKey) -> (String, String) {
    (key.collection().to_owned(), key.entity_id().to_owned())
}

impl Verifier<'_> {
    fn record(&mut self, key: &[u8], value: &[u8], parsed: Parsed) -> Result<()> {
        let describe = scan::describe(key, &parsed);
        match parsed {
            Parsed::Event(entity, seq) => {
                self.event(&entity, seq, &describe);
                self.contents(RecordKind::Event, key, value, &describe);
            }
            Parsed::Snapshot(entity, seq) => {
                self.end_journal();
                self.snapshot(&entity, seq, &describe)?;
                self.contents(RecordKind::Snapshot, key, value, &describe);
            }
            Parsed::DeletionMark(entity) => {
                self.end_journal();
                self.deletion_mark(&entity, value, &describe);
            }
            Parsed::LogBlock { collection, first } => {
                self.log_block(&collection, first, key, value, &describe)?;
            }
            Parsed::TableRow { .. } => {
                self.report.table_rows_checked += 1;
                self.contents(RecordKind::TableRow, key, value, &describe);
            }
            Parsed::Probe(_) => self.report.warning(
                describe,
                "left by an interrupted health check (`compact` removes it)",
            ),
            Parsed::Foreign => self.report.error(describe, "not a key Rush writes"),
        }
        Ok(())
    }

    /// Contiguity: events `deleted_to + 1 ..= newest` are all stored.
    fn event(&mut self, entity: &EntityKey, seq: u64, describe: &str) {
        self.report.events_checked += 1;
        if self.journal.as_ref().is_none_or(|j| j.key != *entity) {
            self.end_journal();
            // A malformed mark is reported when the walk reaches it.
            let deleted_to = read_deleted_to(self.inspector.backend.as_ref(), entity).unwrap_or(0);
            self.journal = Some(Journal {
                key: entity.clone(),
                deleted_to,
                next: deleted_to + 1,
            });
        }
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        if seq <= journal.deleted_to {
            let mark = journal.deleted_to;
            self.report.warning(
                describe.to_owned(),
                format!("still stored below the deletion mark {mark} (an interrupted deletion; `compact` removes it)"),
            );
            return;
        }
        if seq != journal.next {
            let missing = entity.describe(RecordKind::Event, journal.next);
            let reason = format!("missing: events {}..={} are absent", journal.next, seq - 1);
            journal.next = seq + 1;
            self.report.error(missing, reason);
        } else {
            journal.next = seq + 1;
        }
    }

    fn end_journal(&mut self) {
        if let Some(journal) = self.journal.take() {
            let newest = journal.next - 1;
            self.ends
                .insert(id(&journal.key), (newest, journal.deleted_to));
        }
    }

    /// A snapshot must not be beyond the journal's end.
    fn snapshot(&mut self, entity: &EntityKey, seq: u64, describe: &str) -> Result<()> {
        self.report.snapshots_checked += 1;
        let head = match self.ends.get(&id(entity)) {
            Some(&(newest, deleted_to)) => newest.max(deleted_to),
            None => read_head(self.inspector.backend.as_ref(), entity).unwrap_or(0),
        };
        if seq > head {
            self.report.error(
                describe.to_owned(),
                format!("beyond the highest sequence number {head}"),
            );
        }
        let newest = self.snapshots.entry(id(entity)).or_insert(0);
        *newest = (*newest).max(seq);
        Ok(())
    }

    /// A mark is 8 bytes, and a snapshot at or above it keeps the entity recoverable.
    fn deletion_mark(&mut self, entity: &EntityKey, value: &[u8], describe: &str) {
        self.report.deletion_marks_checked += 1;
        let Some(mark) = decode_u64(value) else {
            self.report.error(
                describe.to_owned(),
                format!("expected 8 bytes, found {}", value.len()),
            );
            return;
        };
        let newest = self.snapshots.get(&id(entity)).copied().unwrap_or(0);
        if mark > newest {
            self.report.error(
                describe.to_owned(),
                format!("events 1..={mark} were deleted but the newest snapshot is at {newest}: recovery cannot rebuild the state"),
            );
        }
        let end = self.ends.entry(id(entity)).or_insert((0, 0));
        end.1 = mark;
    }

    /// Blocks are gap-free from offset 1, and each entry points at a stored event (or one
    /// below its entity's deletion mark).
    fn log_block(
        &mut self,
        collection: &str,
        first: u64,
        key: &[u8],
        value: &[u8],
        describe: &str,
    ) -> Result<()> {
        if self
            .log
            .as_ref()
            .is_none_or(|log| log.collection != collection)
        {
            self.log = Some(Log {
                collection: collection.to_owned(),
                next: Some(1),
            });
        }
        let expected = self.log.as_ref().and_then(|log| log.next);
        match expected {
            Some(next) if first > next => self.report.error(
                describe.to_owned(),
                format!("offsets {next}..={} are missing from the log", first - 1),
            ),
            Some(next) if first < next => self.report.error(
                describe.to_owned(),
                format!(
                    "overlaps the previous block, which ends at offset {}",
                    next - 1
                ),
            ),
            _ => {}
        }
        let Some(entries) = decode_block(key, value) else {
            self.report
                .error(describe.to_owned(), "malformed block or checksum mismatch");
            if let Some(log) = self.log.as_mut() {
                log.next = None;
            }
            return Ok(());
        };
        let count = entries.len() as u64;
        let mut offset = first;
        entries.visit(&mut |entry| {
            self.report.log_entries_checked += 1;
            self.log_entry(collection, offset, entry, describe)?;
            offset = offset.saturating_add(1);
            Ok(true)
        })?;
        if let Some(log) = self.log.as_mut() {
            log.next = Some(first.saturating_add(count));
        }
        Ok(())
    }

    fn log_entry(
        &mut self,
        collection: &str,
        offset: u64,
        entry: &[u8],
        describe: &str,
    ) -> Result<()> {
        let entry = match decode_entry(&[], offset, entry) {
            Ok(entry) => entry,
            Err(e) => {
                self.report.error(
                    describe.to_owned(),
                    format!("offset {offset}: {}", record::reason(&e)),
                );
                return Ok(());
            }
        };
        let Ok(entity) = EntityKey::new(collection, &entry.entity_id) else {
            self.report.error(
                describe.to_owned(),
                format!("offset {offset}: invalid entity id {:?}", entry.entity_id),
            );
            return Ok(());
        };
        let backend = self.inspector.backend.as_ref();
        if backend
            .get(&entity.event_key(entry.sequence_number))?
            .is_some()
        {
            return Ok(());
        }
        let deleted_to = match self.ends.get(&id(&entity)) {
            Some(&(_, deleted_to)) => deleted_to,
            None => read_deleted_to(backend, &entity).unwrap_or(0),
        };
        if entry.sequence_number > deleted_to {
            self.report.error(
                describe.to_owned(),
                format!(
                    "offset {offset} points at {}, which is not stored",
                    entity.describe(RecordKind::Event, entry.sequence_number)
                ),
            );
        }
        Ok(())
    }

    /// The record itself: header and length, CRC or tag, inflate, format version, meta.
    fn contents(&mut self, kind: RecordKind, key: &[u8], value: &[u8], describe: &str) {
        let keyring = &self.inspector.keyring;
        let name = || describe.to_owned();
        match record::open(keyring, kind, key, value, &name, &mut self.scratch) {
            Ok(Opening::Sealed) => self.report.sealed_unchecked += 1,
            Ok(Opening::Opened(header, body)) => {
                if !header.encrypted() && keyring.current().is_some() {
                    self.report.warning(
                        name(),
                        "not encrypted although a key was given: a store with the key refuses it (`rotate-key` encrypts it)",
                    );
                }
                if kind != RecordKind::Event && header.version != VERSION_PLAIN {
                    self.report.error(
                        name(),
                        format!(
                            "format version {} where version 1 is expected",
                            header.version
                        ),
                    );
                } else if let Err(reason) = record::split(&header, body) {
                    self.report.error(name(), reason);
                }
            }
            Err(e) => self.report.error(name(), record::reason(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_summary_counts_the_errors_and_names_the_first() {
        let mut report = VerifyReport::default();
        report.error("event 7 of \"accounts\"/\"a-1\"".into(), "bad tag");
        report.error("event 8 of \"accounts\"/\"a-1\"".into(), "missing");
        assert_eq!(
            report.error_summary(),
            "2 errors, the first: event 7 of \"accounts\"/\"a-1\": bad tag"
        );
    }
}
