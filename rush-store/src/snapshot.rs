//! Snapshots of one entity: one record per snapshot at the sequence number it covers,
//! written with keep-the-last-K retention in the same atomic batch.

use crate::backend::{Backend, Guard, WriteBatch, WriteOp};
use crate::codec::{Codec, Encoded, MAX_SNAPSHOT_SIZE};
use crate::compression::CompressionStats;
use crate::error::Result;
use crate::journal::{append_guards, now_micros};
use crate::keys::{EntityKey, RecordKind};
use serde::{Serialize, de::DeserializeOwned};

/// A decoded snapshot: the state as of `sequence_number`.
pub(crate) struct LoadedSnapshot<S> {
    pub(crate) sequence_number: u64,
    pub(crate) state: S,
}

/// The newest snapshot with a sequence number `<= at_most`, if any. A snapshot that exists
/// but cannot be read is an error: never a silent replay from an older point.
pub(crate) fn latest<S: DeserializeOwned>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
    at_most: u64,
) -> Result<Option<LoadedSnapshot<S>>> {
    let (start, end) = key.seq_range(RecordKind::Snapshot, 0, at_most);
    let Some((record_key, bytes)) = backend.scan(&start, &end, 1, true)?.into_iter().next() else {
        return Ok(None);
    };
    let sequence_number = key.seq_of(RecordKind::Snapshot, &record_key).unwrap_or(0);
    let describe = || key.describe(RecordKind::Snapshot, sequence_number);
    let decoded = codec.decode(&record_key, &bytes, MAX_SNAPSHOT_SIZE, &describe)?;
    Ok(Some(LoadedSnapshot {
        sequence_number,
        state: decoded.value,
    }))
}

/// Sequence numbers of all stored snapshots, oldest first.
pub(crate) fn list(backend: &dyn Backend, key: &EntityKey) -> Result<Vec<u64>> {
    let (start, end) = key.seq_range(RecordKind::Snapshot, 0, u64::MAX);
    let mut seqs = Vec::new();
    let mut from = start;
    loop {
        let page = backend.scan(&from, &end, crate::journal::PAGE, false)?;
        let full = page.len() == crate::journal::PAGE;
        for (record_key, _) in &page {
            if let Some(seq) = key.seq_of(RecordKind::Snapshot, record_key) {
                seqs.push(seq);
            }
        }
        match page.last() {
            Some((last, _)) if full => {
                from = last.clone();
                from.push(0);
            }
            _ => return Ok(seqs),
        }
    }
}

/// The batch that stores `state` as of `seq` (guarded: the journal still ends at `seq`) and
/// removes snapshots beyond the newest `keep`.
pub(crate) fn prepare<S: Serialize>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
    seq: u64,
    deleted_to: u64,
    state: &S,
    keep: usize,
) -> Result<(WriteBatch, CompressionStats)> {
    let record_key = key.snapshot_key(seq);
    let encoded = codec.encode(&record_key, now_micros(), state, MAX_SNAPSHOT_SIZE)?;
    let mut stats = CompressionStats::default();
    encoded.count_in(&mut stats);
    let Encoded { bytes, .. } = encoded;
    let mut existing = list(backend, key)?;
    existing.retain(|s| *s != seq);
    let keep_older = keep.saturating_sub(1);
    let remove = existing.len().saturating_sub(keep_older);
    // The new snapshot goes first: an engine that tears a batch (applies a prefix of its
    // writes) then never removes the older snapshots without storing the new one.
    let mut ops = Vec::with_capacity(remove + 1);
    ops.push(WriteOp::Put {
        key: record_key,
        value: bytes,
    });
    ops.extend(existing.iter().take(remove).map(|s| WriteOp::Delete {
        key: key.snapshot_key(*s),
    }));
    let guards: Vec<Guard> = append_guards(key, seq, deleted_to);
    Ok((
        WriteBatch {
            guards,
            ops,
            ..Default::default()
        },
        stats,
    ))
}
