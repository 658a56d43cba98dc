//! Writes to a whole database: re-encrypting every record with a new key, deleting an
//! entity's covered history, and compacting what interrupted operations left behind.
//! Every page is one atomic batch committed durably by the database's writer, so a run stopped anywhere (by the
//! progress callback, a crash, Ctrl-C) leaves a consistent database and resumes.

use super::scan::{self, Parsed};
use super::{Inspector, Progress};
use crate::backend::{WriteBatch, WriteOp};
use crate::codec::Codec;
use crate::crypto::EncryptionKey;
use crate::database::reseal_batch;
use crate::error::{Error, Result};
use crate::journal::{self, PAGE};
use crate::keys::{EntityKey, RecordKind, prefix_end};
use crate::store::Durability;

/// The outcome of [`Inspector::rotate_key`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Records sealed again with the new key.
    pub rewritten: u64,
    /// Records already sealed with it (by an earlier, interrupted run).
    pub already_done: u64,
    /// The new key's id, as stored in record headers.
    pub new_key_id: u32,
    /// Stopped before the end: run it again (with the old and the new key) to finish.
    pub interrupted: bool,
}

/// The outcome of [`Inspector::compact`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Entities that had events left below their deletion mark.
    pub entities_cleaned: u64,
    /// Those events, removed.
    pub events_removed: u64,
    /// Health-probe keys left by interrupted health checks, removed.
    pub probes_removed: u64,
    /// Stopped before the end: run it again to finish.
    pub interrupted: bool,
}

impl Inspector {
    /// Seals every event, snapshot and table row again with `new_key`, opening
    /// them with the keys this inspector holds (plain records are encrypted). Records
    /// already sealed with `new_key` are skipped, so an interrupted run resumes.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] or [`Error::Decryption`] for a record that cannot be opened
    /// (its page is not written); [`Error::Storage`] when a record changed between the read
    /// and the commit (another process writing). Commits go through the database's writer:
    /// its failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`], [`Error::Panicked`]) stop the run after the pages already
    /// committed, and [`Error::Io`] is also when the writer's threads cannot start. Running
    /// it again resumes.
    pub fn rotate_key(
        &self,
        new_key: &EncryptionKey,
        progress: &mut Progress<'_>,
    ) -> Result<RotateReport> {
        let mut report = RotateReport {
            new_key_id: new_key.id(),
            ..RotateReport::default()
        };
        let mut keyring = self.keyring.clone();
        keyring.promote(new_key.clone());
        let codec = Codec {
            keyring,
            ..Codec::default()
        };
        let mut stop = false;
        for kind in [
            RecordKind::Event,
            RecordKind::Snapshot,
            RecordKind::TableRow,
        ] {
            let prefix = vec![kind as u8];
            let end = prefix_end(&prefix);
            let mut from = prefix;
            loop {
                // Checked before each page, so a run that went through is not "interrupted".
                if stop {
                    report.interrupted = true;
                    return Ok(report);
                }
                let page = self.backend.scan(&from, &end, PAGE, false)?;
                let (batch, current) =
                    reseal_batch(&codec, &page, &|key| scan::describe(key, &scan::parse(key)))?;
                report.already_done += current;
                if !batch.ops.is_empty() {
                    self.commit(&batch, "rotate key")?;
                    report.rewritten += batch.ops.len() as u64;
                }
                stop = !progress(page.len() as u64);
                match page.last() {
                    Some((last, _)) if page.len() == PAGE => {
                        from = last.clone();
                        from.push(0);
                    }
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    /// Removes events `1..=seq` of `entity`, which a stored snapshot must cover (as
    /// [`Store::delete_events_to`](crate::Store::delete_events_to)). Returns how many were
    /// removed and whether it finished; the deletion mark is written with the first page,
    /// so a stopped run is complete for readers and `compact` (or a rerun) finishes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `seq` is past the entity's highest sequence number
    /// or no stored snapshot covers it; nothing is deleted. Commits go through the
    /// database's writer: its failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`], [`Error::Panicked`]) stop the run after
    /// the pages already committed, and [`Error::Io`] is also when the writer's threads
    /// cannot start.
    pub fn delete_to(
        &self,
        entity: &EntityKey,
        seq: u64,
        progress: &mut Progress<'_>,
    ) -> Result<(u64, bool)> {
        journal::check_deletable(self.backend.as_ref(), entity, seq)?;
        let db = self.database()?;
        journal::delete_events_to_with(&db.core, entity, seq, progress)
    }

    /// Removes what is safe to remove: events left below a deletion mark by an
    /// interrupted deletion, and health-probe keys left by an interrupted health check
    /// (no other process can be probing: the database is locked to this one).
    ///
    /// # Errors
    ///
    /// engine failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`]) reading; Commits go through the database's writer: its failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`],
    /// [`Error::Panicked`]) stop the run after the pages already committed, and
    /// [`Error::Io`] is also when the writer's threads cannot start.
    pub fn compact(&self, progress: &mut Progress<'_>) -> Result<CompactReport> {
        let backend = self.backend.as_ref();
        let mut report = CompactReport::default();
        let mut marks = Vec::new();
        let marks_range = vec![(
            vec![RecordKind::DeletedTo as u8],
            vec![RecordKind::DeletedTo as u8 + 1],
        )];
        scan::walk(
            backend,
            &marks_range,
            &mut |_| true,
            &mut |_, value, parsed| {
                if let (Parsed::DeletionMark(entity), Some(mark)) =
                    (parsed, journal::decode_u64(value))
                {
                    marks.push((entity, mark));
                }
                Ok(true)
            },
        )?;
        for (entity, mark) in marks {
            let (start, end) = entity.seq_range(RecordKind::Event, 0, mark);
            if backend.scan(&start, &end, 1, false)?.is_empty() {
                continue;
            }
            let db = self.database()?;
            let (removed, finished) =
                journal::delete_events_to_with(&db.core, &entity, mark, progress)?;
            report.entities_cleaned += 1;
            report.events_removed += removed;
            if !finished {
                report.interrupted = true;
                return Ok(report);
            }
        }
        let probe = vec![RecordKind::Probe as u8];
        let probes = backend.scan(&probe, &prefix_end(&probe), PAGE, false)?;
        if !probes.is_empty() {
            report.probes_removed = probes.len() as u64;
            let ops = probes
                .into_iter()
                .map(|(key, _)| WriteOp::Delete { key })
                .collect();
            self.commit(
                &WriteBatch {
                    ops,
                    ..WriteBatch::default()
                },
                "compact",
            )?;
        }
        Ok(report)
    }

    /// Commits one page through the database's writer, durably.
    pub(super) fn commit(&self, batch: &WriteBatch, operation: &'static str) -> Result<()> {
        let db = self.database()?;
        db.core
            .write(batch.clone(), Durability::Immediate)?
            .map_err(|failed| {
                Error::storage(
                    operation,
                    format!(
                        "a record changed meanwhile (guard {} failed): is another process writing?",
                        failed.index
                    ),
                )
            })
    }
}
