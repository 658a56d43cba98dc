//! `Inspector::reindex`: the upgrade path of format-v1 databases. Events written before
//! format v2 have no collection-log entries, so `EventQuery`, subscriptions and
//! projections never see them. Reindexing appends an entry for every stored event that has
//! none, through ordinary commits: the backend numbers them after the log's current end,
//! gap-free and in commit order, exactly as it numbers new events.
//!
//! Per collection, the existing log is read once into a set of (entity, seq); then the
//! collection's events are walked, and those without an entry are merged across entities
//! by their header timestamp (ties: entity id, then seq) while each entity's events stay
//! in sequence order (a k-way merge of per-entity sequences by the timestamp of their next
//! event), so an old history reads in the order it happened even where an entity's clock
//! went backwards. The entries are committed in pages, each one batch followed by a flush;
//! an interrupted run is finished by running it again, as indexed events are skipped.

use super::record::{self, Opening};
use super::{Inspector, Progress};
use crate::backend::{WriteBatch, decode_block};
use crate::codec::envelope::{Header, Scratch};
use crate::collection_log::{self, decode_entry};
use crate::error::{Error, Result};
use crate::integrity::IntegrityError;
use crate::journal::{self, PAGE};
use crate::keys::{EntityKey, RecordKind, prefix_end, read_id};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// Events read between two progress reports of the reading phase.
const READ_PROGRESS_EVERY: u64 = 1024;

/// What [`Inspector::reindex`] did in one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionReindex {
    /// The collection.
    pub collection: String,
    /// Events that got a log entry in this run.
    pub indexed: u64,
    /// The first offset they got (0: none).
    pub first_offset: u64,
    /// The last offset they got (0: none).
    pub last_offset: u64,
}

/// The outcome of [`Inspector::reindex`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReindexReport {
    /// The collections in which events got log entries, in key order.
    pub collections: Vec<CollectionReindex>,
    /// Events that already had their log entry (written by format v2, or by an earlier run).
    pub already_indexed: u64,
    /// Events whose record could not be parsed or failed its checks: not indexed, so that
    /// queries do not fail on them (`verify` tells more). Running again retries them.
    pub unreadable: Vec<IntegrityError>,
    /// Stopped before the end: run it again to finish.
    pub interrupted: bool,
}

impl ReindexReport {
    /// Events that got a log entry in this run, over all collections.
    pub fn indexed(&self) -> u64 {
        self.collections.iter().map(|c| c.indexed).sum()
    }
}

/// One entity's events without a log entry, in sequence order: (timestamp, seq).
struct Pending {
    entity: EntityKey,
    events: Vec<(u64, u64)>,
}

impl Inspector {
    /// Gives every stored event that has no entry in its collection's log (events written
    /// by format v1, or a torn append) an entry, appended after the log's current end; see
    /// the module docs for the order. Events at or below their entity's deletion mark are
    /// skipped (they are deleted); events whose record cannot be parsed are reported in
    /// [`ReindexReport::unreadable`] and not indexed. Without a key, encrypted records are
    /// indexed on their checked header and length; with one, they are opened and checked.
    ///
    /// `progress` is called with the events read (every 1024) and with the entries of each
    /// committed page; returning `false` stops between pages. Entries are committed
    /// through [`Backend::commit`](crate::Backend::commit), so the database must not be
    /// written by another process meanwhile (sled locks it to one).
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] for a malformed event key or log block; [`Error::Decryption`],
    /// when this inspector holds a key, for an event sealed with another. Commits go
    /// through the database's writer: its failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`], [`Error::Panicked`]) stop the run after
    /// the pages already committed, and [`Error::Io`] is also when the writer's threads
    /// cannot start. Running it again resumes.
    pub fn reindex(&self, progress: &mut Progress<'_>) -> Result<ReindexReport> {
        let mut report = ReindexReport::default();
        let events_start = vec![RecordKind::Event as u8];
        let events_end = prefix_end(&events_start);
        let mut from = events_start;
        let mut stop = false;
        // Each collection's events are one key range: `[0x01][len][collection]`.
        while let Some((key, _)) = self.backend.scan(&from, &events_end, 1, false)?.first() {
            let (collection, after) = read_id(key, 1).ok_or_else(|| Error::Corrupted {
                record: format!("event key {key:?}"),
                reason: "malformed collection name".into(),
            })?;
            let collection = collection.to_owned();
            let prefix = key.get(..after).unwrap_or_default().to_vec();
            from = prefix_end(&prefix);
            if stop
                || !self.reindex_collection(
                    &collection,
                    &prefix,
                    &mut report,
                    progress,
                    &mut stop,
                )?
            {
                report.interrupted = true;
                return Ok(report);
            }
        }
        Ok(report)
    }

    /// Reindexes one collection; `Ok(false)` when `progress` asked to stop before it was
    /// done. `stop` is set when `progress` asked to stop after the collection's last page.
    fn reindex_collection(
        &self,
        collection: &str,
        events_prefix: &[u8],
        report: &mut ReindexReport,
        progress: &mut Progress<'_>,
        stop: &mut bool,
    ) -> Result<bool> {
        let log = collection_log::log_of(collection)?;
        let indexed = self.indexed_events(&log)?;
        let Some(pending) =
            self.unindexed_events(collection, events_prefix, &indexed, report, progress)?
        else {
            return Ok(false);
        };
        drop(indexed);
        if pending.is_empty() {
            return Ok(true);
        }

        // The k-way merge: one head per entity, smallest (timestamp, entity id, seq) first.
        let mut order: Vec<usize> = (0..pending.len()).collect();
        order.sort_by(|&a, &b| {
            let id = |i: usize| pending.get(i).map(|p| p.entity.entity_id());
            id(a).cmp(&id(b))
        });
        let mut rank = vec![0usize; pending.len()];
        for (position, &entity) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(entity) {
                *slot = position;
            }
        }
        let mut heap = BinaryHeap::with_capacity(pending.len());
        let mut next = vec![0usize; pending.len()];
        for (entity, events) in pending.iter().enumerate() {
            if let (Some(&(timestamp, seq)), Some(&rank)) =
                (events.events.first(), rank.get(entity))
            {
                heap.push(Reverse((timestamp, rank, seq, entity)));
            }
        }

        let mut outcome = CollectionReindex {
            collection: collection.to_owned(),
            ..CollectionReindex::default()
        };
        let mut first_page = true;
        while !heap.is_empty() {
            // Checked before each page, so a run that went through is not "interrupted".
            if *stop {
                if outcome.indexed > 0 {
                    report.collections.push(outcome);
                }
                return Ok(false);
            }
            let mut appends = Vec::with_capacity(PAGE);
            while appends.len() < PAGE {
                let Some(Reverse((timestamp, rank, seq, entity))) = heap.pop() else {
                    break;
                };
                let (Some(events), Some(position)) = (pending.get(entity), next.get_mut(entity))
                else {
                    break;
                };
                appends.push(collection_log::append(&events.entity, seq, timestamp));
                *position += 1;
                if let Some(&(timestamp, seq)) = events.events.get(*position) {
                    heap.push(Reverse((timestamp, rank, seq, entity)));
                }
            }
            if first_page {
                outcome.first_offset =
                    collection_log::highest_offset(self.backend.as_ref(), &log)?.saturating_add(1);
                first_page = false;
            }
            let count = appends.len() as u64;
            self.commit(
                &WriteBatch {
                    appends,
                    ..WriteBatch::default()
                },
                "reindex",
            )?;
            outcome.indexed += count;
            outcome.last_offset = outcome.first_offset + outcome.indexed - 1;
            *stop = !progress(count);
        }
        report.collections.push(outcome);
        Ok(true)
    }

    /// The (entity, seq) of every entry of `log`.
    fn indexed_events(&self, log: &[u8]) -> Result<HashMap<String, HashSet<u64>>> {
        let mut indexed: HashMap<String, HashSet<u64>> = HashMap::new();
        self.backend
            .visit_range(log, &prefix_end(log), &mut |key, block| {
                let entries = decode_block(key, block).ok_or_else(|| Error::Corrupted {
                    record: format!("log block {key:?}"),
                    reason: "malformed block".into(),
                })?;
                entries.visit(&mut |entry| {
                    let entry = decode_entry(key, 0, entry)?;
                    indexed
                        .entry(entry.entity_id)
                        .or_default()
                        .insert(entry.sequence_number);
                    Ok(true)
                })
            })?;
        Ok(indexed)
    }

    /// The events of the collection that have no entry in `indexed`, per entity in key
    /// order; `None` when `progress` asked to stop.
    fn unindexed_events(
        &self,
        collection: &str,
        events_prefix: &[u8],
        indexed: &HashMap<String, HashSet<u64>>,
        report: &mut ReindexReport,
        progress: &mut Progress<'_>,
    ) -> Result<Option<Vec<Pending>>> {
        let backend = self.backend.as_ref();
        let mut pending: Vec<Pending> = Vec::new();
        // The entity being walked: its deletion mark and its indexed sequence numbers.
        let mut current: Option<(EntityKey, u64)> = None;
        let mut scratch = Scratch::default();
        let mut read = 0u64;
        let mut stopped = false;
        backend.visit_range(
            events_prefix,
            &prefix_end(events_prefix),
            &mut |key, value| {
                read += 1;
                if read.is_multiple_of(READ_PROGRESS_EVERY) && !progress(READ_PROGRESS_EVERY) {
                    stopped = true;
                    return Ok(false);
                }
                let Some((entity_id, end)) = read_id(key, events_prefix.len()) else {
                    report.unreadable.push(IntegrityError {
                        record: format!("event key {key:?} of collection {collection:?}"),
                        reason: "malformed entity id".into(),
                    });
                    return Ok(true);
                };
                if current
                    .as_ref()
                    .is_none_or(|(entity, _)| entity.entity_id() != entity_id)
                {
                    let entity = EntityKey::new(collection, entity_id)?;
                    let deleted_to = journal::read_deleted_to(backend, &entity)?;
                    current = Some((entity, deleted_to));
                }
                let Some((entity, deleted_to)) = current.as_ref() else {
                    return Ok(true);
                };
                let Some(seq) = crate::keys::read_u64(key, end).filter(|_| key.len() == end + 8)
                else {
                    report.unreadable.push(IntegrityError {
                        record: entity.describe(RecordKind::Event, 0),
                        reason: "malformed sequence number in its key".into(),
                    });
                    return Ok(true);
                };
                if seq <= *deleted_to {
                    return Ok(true);
                }
                if indexed
                    .get(entity_id)
                    .is_some_and(|seqs| seqs.contains(&seq))
                {
                    report.already_indexed += 1;
                    return Ok(true);
                }
                match self.check_event(entity, seq, key, value, &mut scratch)? {
                    Ok(timestamp) => match pending.last_mut() {
                        Some(last) if last.entity == *entity => last.events.push((timestamp, seq)),
                        _ => pending.push(Pending {
                            entity: entity.clone(),
                            events: vec![(timestamp, seq)],
                        }),
                    },
                    Err(reason) => report.unreadable.push(IntegrityError {
                        record: entity.describe(RecordKind::Event, seq),
                        reason,
                    }),
                }
                Ok(true)
            },
        )?;
        Ok((!stopped).then_some(pending))
    }

    /// The header timestamp of an event whose record passes the checks a store makes
    /// (as far as the keys held allow), or why it does not. A record sealed with a key this
    /// inspector does not hold is an error: the key is wrong.
    fn check_event(
        &self,
        entity: &EntityKey,
        seq: u64,
        key: &[u8],
        value: &[u8],
        scratch: &mut Scratch,
    ) -> Result<std::result::Result<u64, String>> {
        let header = match Header::parse(value) {
            Ok(header) => header,
            Err(reason) => return Ok(Err(reason)),
        };
        let describe = || entity.describe(RecordKind::Event, seq);
        match record::open(
            &self.keyring,
            RecordKind::Event,
            key,
            value,
            &describe,
            scratch,
        ) {
            Ok(Opening::Sealed) => Ok(Ok(header.timestamp_micros)),
            Ok(Opening::Opened(header, body)) => {
                Ok(record::split(&header, body).map(|_| header.timestamp_micros))
            }
            Err(error @ Error::Decryption { .. }) => Err(error),
            Err(error) => Ok(Err(record::reason(&error))),
        }
    }
}
