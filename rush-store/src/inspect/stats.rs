//! `Inspector::stats`: what the database holds, per kind of record, what compression did,
//! and how much of each journal a recovery would replay.

use super::record::{self, Opening};
use super::scan::{self, Parsed};
use super::{Inspector, Progress};
use crate::backend::decode_block;
use crate::codec::envelope::{Header, Scratch};
use crate::error::Result;
use crate::keys::RecordKind;
use std::collections::{BTreeSet, HashMap};

/// Counts of one kind of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Records.
    pub records: u64,
    /// Bytes of their keys.
    pub key_bytes: u64,
    /// Bytes of their values.
    pub value_bytes: u64,
    /// Records whose body is gzip.
    pub compressed: u64,
    /// Records sealed with XChaCha20-Poly1305.
    pub encrypted: u64,
    /// Compressed records that could be opened (plain, or with the key) and inflated.
    pub inflated_records: u64,
    /// Their gzip bytes.
    pub gzip_bytes: u64,
    /// Their bytes once inflated.
    pub inflated_bytes: u64,
}

impl KindStats {
    /// Inflated bytes per stored gzip byte, over the records that could be inflated.
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    pub fn compression_ratio(&self) -> Option<f64> {
        (self.gzip_bytes > 0).then(|| self.inflated_bytes as f64 / self.gzip_bytes as f64)
    }

    fn count(&mut self, key: &[u8], value: &[u8]) {
        self.records += 1;
        self.key_bytes += key.len() as u64;
        self.value_bytes += value.len() as u64;
    }
}

/// The outcome of [`Inspector::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Bytes the database takes on disk, as the engine reports it.
    pub size_on_disk: u64,
    /// Event records.
    pub events: KindStats,
    /// Snapshot records.
    pub snapshots: KindStats,
    /// Table rows.
    pub table_rows: KindStats,
    /// Collection-log blocks (one per commit and collection).
    pub log_blocks: KindStats,
    /// Entries in those blocks (one per event ever appended).
    pub log_entries: u64,
    /// Deletion marks.
    pub deletion_marks: u64,
    /// Keys of no record kind: health probes left behind, foreign keys.
    pub other_keys: u64,
    /// Collections with events, snapshots or a deletion mark.
    pub collections: u64,
    /// Entities with events, snapshots or a deletion mark.
    pub entities: u64,
    /// Entities with at least one snapshot.
    pub entities_with_snapshot: u64,
    /// Events stored after the newest snapshot of their entity: what recovering every
    /// entity with a snapshot replays.
    pub events_since_snapshot: u64,
    /// Events of entities without a snapshot: recovered by a replay from the start.
    pub events_without_snapshot: u64,
    /// The walk was stopped before the end: the counts are partial.
    pub interrupted: bool,
}

/// Per entity: events stored, newest event, newest snapshot.
type Coverage = HashMap<(String, String), (u64, u64, Option<u64>)>;

impl Inspector {
    /// Counts every record. Compressed records are inflated (those that are not
    /// encrypted, and with a key the encrypted ones too) to measure compression.
    ///
    /// # Errors
    ///
    /// engine failures ([`Error::Io`](crate::Error::Io),
    /// [`Error::DiskFull`](crate::Error::DiskFull),
    /// [`Error::Corrupted`](crate::Error::Corrupted),
    /// [`Error::Storage`](crate::Error::Storage)). Damaged records are counted, not errors.
    pub fn stats(&self, progress: &mut Progress<'_>) -> Result<Stats> {
        let mut stats = Stats {
            size_on_disk: self.backend.size_on_disk()?,
            ..Stats::default()
        };
        let mut coverage = Coverage::new();
        let mut collections = BTreeSet::new();
        let mut scratch = Scratch::default();
        let completed = scan::walk(
            self.backend.as_ref(),
            &scan::everything(),
            progress,
            &mut |key, value, parsed| {
                let kind_stats = match &parsed {
                    Parsed::Event(entity, seq) => {
                        let entry = coverage
                            .entry((
                                entity.collection().to_owned(),
                                entity.entity_id().to_owned(),
                            ))
                            .or_default();
                        entry.0 += 1;
                        entry.1 = *seq;
                        Some((RecordKind::Event, &mut stats.events))
                    }
                    Parsed::Snapshot(entity, seq) => {
                        let entry = coverage
                            .entry((
                                entity.collection().to_owned(),
                                entity.entity_id().to_owned(),
                            ))
                            .or_default();
                        entry.2 = Some(entry.2.unwrap_or(0).max(*seq));
                        Some((RecordKind::Snapshot, &mut stats.snapshots))
                    }
                    Parsed::TableRow { .. } => Some((RecordKind::TableRow, &mut stats.table_rows)),
                    Parsed::DeletionMark(entity) => {
                        coverage
                            .entry((
                                entity.collection().to_owned(),
                                entity.entity_id().to_owned(),
                            ))
                            .or_default();
                        stats.deletion_marks += 1;
                        None
                    }
                    Parsed::LogBlock { .. } => {
                        stats.log_blocks.count(key, value);
                        stats.log_entries += decode_block(key, value).map_or(0, |b| b.len() as u64);
                        None
                    }
                    Parsed::Probe(_) | Parsed::Foreign => {
                        stats.other_keys += 1;
                        None
                    }
                };
                if let Some((kind, kind_stats)) = kind_stats {
                    kind_stats.count(key, value);
                    self.measure(kind, key, value, kind_stats, &mut scratch);
                }
                Ok(true)
            },
        )?;
        stats.interrupted = !completed;
        for ((collection, _), (events, newest, snapshot)) in &coverage {
            collections.insert(collection.clone());
            match snapshot {
                Some(at) => {
                    stats.entities_with_snapshot += 1;
                    stats.events_since_snapshot += newest.saturating_sub(*at).min(*events);
                }
                None => stats.events_without_snapshot += events,
            }
        }
        stats.entities = coverage.len() as u64;
        stats.collections = collections.len() as u64;
        Ok(stats)
    }

    /// Flags of one record, and its inflated size when it can be opened.
    fn measure(
        &self,
        kind: RecordKind,
        key: &[u8],
        value: &[u8],
        stats: &mut KindStats,
        scratch: &mut Scratch,
    ) {
        let Ok(header) = Header::parse(value) else {
            return;
        };
        stats.encrypted += u64::from(header.encrypted());
        if !header.compressed() {
            return;
        }
        stats.compressed += 1;
        let describe = String::new;
        // A record that does not open is for `verify` to report; here it is not measured.
        if let Ok(Opening::Opened(_, inflated)) =
            record::open(&self.keyring, kind, key, value, &describe, scratch)
        {
            let sealed_overhead = if header.encrypted() {
                crate::crypto::NONCE_LEN + crate::crypto::TAG_LEN
            } else {
                0
            };
            stats.inflated_records += 1;
            stats.gzip_bytes += (header.body_len as usize).saturating_sub(sealed_overhead) as u64;
            stats.inflated_bytes += inflated.len() as u64;
        }
    }
}
