//! Writes of one store: appends at an expected sequence number, snapshots, deletion of
//! covered history. Each is encoded here, committed by the database's writer, then
//! settled: only a committed write moves this handle's view of the journal.

use super::Store;
use crate::backend::{GuardFailed, WriteBatch};
use crate::compression::CompressionStats;
use crate::database::CommitOutcome;
use crate::error::{Error, Result};
use crate::journal::{self, PreparedAppend};
use crate::metadata::{EventMetadata, RecordMeta};
use crate::persistent_actor::PersistentActor;
use crate::snapshot;
use std::time::{Duration, Instant};
use tracing::{debug, debug_span};

/// A snapshot encoded with its retention deletes, ready to commit.
pub(crate) struct PreparedSnapshot {
    pub(crate) batch: WriteBatch,
    pub(crate) sequence_number: u64,
    pub(crate) stats: CompressionStats,
}

impl<A: PersistentActor> Store<A> {
    /// Persists one event and returns its sequence number.
    ///
    /// # Errors
    ///
    /// As [`Store::persist_expected_with`] at this handle's highest sequence number:
    /// [`Error::Conflict`] when another writer appended since.
    pub fn persist(&mut self, event: &A::Event) -> Result<u64> {
        self.persist_batch(std::slice::from_ref(event))
    }

    /// Persists `events` atomically (all or none) and returns the highest sequence number.
    ///
    /// # Errors
    ///
    /// As [`Store::persist`].
    pub fn persist_batch(&mut self, events: &[A::Event]) -> Result<u64> {
        self.persist_expected(self.highest, events)
    }

    /// Persists `events` atomically with `metadata` (correlation, causation, user, tenant)
    /// recorded on each; returns the highest sequence number.
    ///
    /// # Errors
    ///
    /// As [`Store::persist`].
    pub fn persist_with_metadata(
        &mut self,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<u64> {
        self.persist_expected_with(self.highest, events, metadata)
    }

    /// Persists `events` only if the journal's highest sequence number is `expected_seq`;
    /// otherwise [`Error::Conflict`] and nothing is written.
    ///
    /// # Errors
    ///
    /// As [`Store::persist_expected_with`].
    pub fn persist_expected(&mut self, expected_seq: u64, events: &[A::Event]) -> Result<u64> {
        self.persist_expected_with(expected_seq, events, &EventMetadata::default())
    }

    /// [`Store::persist_expected`] with `metadata` recorded on each event.
    ///
    /// # Errors
    ///
    /// - [`Error::Conflict`]: the journal does not end at `expected_seq`, or another writer
    ///   appended or deleted history first; nothing was written.
    /// - [`Error::InvalidArgument`]: an event is larger than
    ///   [`MAX_EVENT_SIZE`](crate::MAX_EVENT_SIZE), or its type, tags and metadata are too
    ///   large; [`Error::Serialization`]: an event cannot be serialized. Nothing was
    ///   written.
    /// - [`Error::Poisoned`] when an earlier write of this handle failed with its outcome
    ///   unknown; [`Error::Shutdown`] after
    ///   [`Database::shutdown`](crate::Database::shutdown). Engine failures ([`Error::Io`],
    ///   [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`],
    ///   [`Error::Panicked`]): one during the commit may have written or not, and poisons
    ///   this handle.
    pub fn persist_expected_with(
        &mut self,
        expected_seq: u64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<u64> {
        let _span = debug_span!(
            "persist",
            collection = self.key.collection(),
            entity = self.key.entity_id(),
            count = events.len()
        )
        .entered();
        self.check_writable()?;
        if events.is_empty() {
            return Ok(self.highest);
        }
        if expected_seq != self.highest {
            // The caller read the state elsewhere: compare with the journal itself, since a
            // larger expectation than the journal's end would leave a gap.
            let engine = self.engine()?;
            let actual = journal::read_head(engine.as_ref(), &self.key)?;
            if expected_seq != actual {
                return Err(Error::Conflict {
                    expected: expected_seq,
                    actual,
                });
            }
            self.deleted_to = journal::read_deleted_to(engine.as_ref(), &self.key)?;
        }
        let started = Instant::now();
        let mut prepared = self.prepare_append(expected_seq, events, metadata)?;
        let batch = std::mem::take(&mut prepared.batch);
        let bytes = batch.payload_bytes();
        let outcome = self.db.core.write(batch, self.durability);
        let conflict = self.settle(expected_seq, outcome)?;
        self.finish_append(conflict, &prepared, bytes, started.elapsed())
    }

    /// Encodes `events` to follow `expected_seq`, with their meta blocks, without writing.
    pub(crate) fn prepare_append(
        &self,
        expected_seq: u64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<PreparedAppend> {
        journal::prepare_append(
            &self.codec,
            &self.key,
            expected_seq,
            self.deleted_to,
            events,
            &|event| RecordMeta {
                event_type: A::event_type(event),
                schema_version: A::EVENT_SCHEMA_VERSION,
                tags: A::event_tags(event),
                metadata: metadata.clone(),
            },
        )
    }

    /// Interprets a commit's outcome: `Ok(None)` committed; `Ok(Some(expected))` a guard
    /// failed (another writer moved the entity on, nothing was written: the caller reads
    /// the actual end and reports a conflict); an engine error poisons this handle.
    pub(crate) fn settle(&mut self, expected: u64, outcome: CommitOutcome) -> Result<Option<u64>> {
        match outcome {
            Ok(Ok(())) => Ok(None),
            Ok(Err(GuardFailed { .. })) => Ok(Some(expected)),
            Err(e) if e.nothing_written() => Err(e),
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// After [`Store::settle`] of an append: a conflict becomes [`Error::Conflict`] with the
    /// journal's actual end; a commit moves this handle's view on.
    pub(crate) fn finish_append(
        &mut self,
        conflict: Option<u64>,
        prepared: &PreparedAppend,
        bytes_written: usize,
        took: Duration,
    ) -> Result<u64> {
        if let Some(expected) = conflict {
            let actual = journal::read_head(self.engine()?.as_ref(), &self.key)?;
            return Err(Error::Conflict { expected, actual });
        }
        self.complete_append(prepared, bytes_written, took);
        debug!(last_seq = prepared.last_seq, "persisted");
        Ok(prepared.last_seq)
    }

    /// Records that `prepared` was committed.
    fn complete_append(&mut self, prepared: &PreparedAppend, bytes_written: usize, took: Duration) {
        self.highest = prepared.last_seq;
        self.stats.add(&prepared.encoded);
        let m = &mut self.metrics;
        m.events_persisted += prepared.last_seq.saturating_sub(prepared.expected);
        m.persist_calls = m.persist_calls.saturating_add(1);
        m.persist_time += took;
        m.bytes_written += bytes_written as u64;
        m.last_event_timestamp = Some(journal::micros_to_time(prepared.timestamp_micros));
    }

    /// Stores `state` as the snapshot at the current highest sequence number, and removes
    /// snapshots beyond the newest [`set_snapshots_to_keep`](Store::set_snapshots_to_keep).
    ///
    /// # Errors
    ///
    /// - [`Error::Conflict`]: another writer appended or deleted history since this handle
    ///   last saw the journal; nothing was written.
    /// - [`Error::InvalidArgument`]: the state is larger than
    ///   [`MAX_SNAPSHOT_SIZE`](crate::MAX_SNAPSHOT_SIZE); [`Error::Serialization`]: it
    ///   cannot be serialized.
    /// - [`Error::Poisoned`] when an earlier write of this handle failed with its outcome
    ///   unknown; [`Error::Shutdown`] after
    ///   [`Database::shutdown`](crate::Database::shutdown). Engine failures ([`Error::Io`],
    ///   [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`],
    ///   [`Error::Panicked`]): one during the commit may have written or not, and poisons
    ///   this handle.
    pub fn snapshot(&mut self, state: &A) -> Result<()> {
        let _span = debug_span!(
            "snapshot",
            collection = self.key.collection(),
            entity = self.key.entity_id(),
            seq = self.highest
        )
        .entered();
        self.check_writable()?;
        let mut prepared = snapshot_batch(
            self.engine()?.as_ref(),
            &self.codec,
            &self.key,
            (self.highest, self.deleted_to, self.snapshots_to_keep),
            state,
        )?;
        let batch = std::mem::take(&mut prepared.batch);
        let bytes = batch.payload_bytes();
        let outcome = self.db.core.write(batch, self.durability);
        let conflict = self.settle(prepared.sequence_number, outcome)?;
        self.finish_snapshot(conflict, &prepared, bytes)
    }

    /// After [`Store::settle`] of a snapshot.
    pub(crate) fn finish_snapshot(
        &mut self,
        conflict: Option<u64>,
        prepared: &PreparedSnapshot,
        bytes: usize,
    ) -> Result<()> {
        if let Some(expected) = conflict {
            let actual = journal::read_head(self.engine()?.as_ref(), &self.key)?;
            return Err(Error::Conflict { expected, actual });
        }
        self.stats.add(&prepared.stats);
        self.metrics.snapshots_created += 1;
        self.metrics.bytes_written += bytes as u64;
        debug!("snapshot written");
        Ok(())
    }

    /// Removes events `1..=seq`, which must be covered by a stored snapshot. The highest
    /// sequence number does not change and recovery still works. Returns how many were removed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `seq` is past the highest sequence number or no
    /// stored snapshot covers it; nothing was deleted. [`Error::Poisoned`] when an earlier
    /// write of this handle failed with its outcome unknown; [`Error::Shutdown`] after
    /// [`Database::shutdown`](crate::Database::shutdown). Engine failures ([`Error::Io`],
    /// [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`], [`Error::Panicked`]):
    /// one during the commit may have written or not, and poisons this handle. A deletion
    /// cut short is finished by calling it again.
    pub fn delete_events_to(&mut self, seq: u64) -> Result<u64> {
        self.check_writable()?;
        let removed =
            journal::delete_events_to(&self.db.core, &self.key, seq).inspect_err(|e| {
                if !e.nothing_written() {
                    self.poison(e);
                }
            })?;
        self.deleted_to = self.deleted_to.max(seq);
        Ok(removed)
    }

    /// Re-reads the deletion mark, after history was deleted through another handle (writes
    /// are guarded on the mark this handle saw).
    ///
    /// # Errors
    ///
    /// As [`Store::deleted_to`].
    pub fn refresh_deletion_mark(&mut self) -> Result<()> {
        self.deleted_to = journal::read_deleted_to(self.engine()?.as_ref(), &self.key)?;
        Ok(())
    }
}

/// Encodes `state` as the snapshot at `seq` (guarded on the journal still ending there and
/// the deletion mark `deleted_to`), with the deletes that keep the newest `keep`.
pub(crate) fn snapshot_batch<A: PersistentActor>(
    engine: &dyn crate::backend::Backend,
    codec: &crate::codec::Codec,
    key: &crate::keys::EntityKey,
    (seq, deleted_to, keep): (u64, u64, usize),
    state: &A,
) -> Result<PreparedSnapshot> {
    let (batch, stats) = snapshot::prepare(engine, codec, key, seq, deleted_to, state, keep)?;
    Ok(PreparedSnapshot {
        batch,
        sequence_number: seq,
        stats,
    })
}
