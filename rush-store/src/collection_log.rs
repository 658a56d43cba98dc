//! A collection's log: every event of every entity of a collection gets a global offset
//! (from 1, gap-free, in commit order) in the same atomic batch as the event itself. An
//! entry points at the event; it holds no payload, so the event stays the one sealed copy.
//! The backend stores the entries of one commit as one block (FORMAT.md):
//!
//! ```text
//! key    [0x05][len u16][collection][first offset u64]
//! block  [version u8 = 1][count u32]([len u32][entry])*
//! entry  [version u8 = 1][timestamp u64 µs][seq u64][entity id UTF-8 ...]
//! ```

use crate::backend::{Backend, LogAppend, decode_block, offset_of};
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind, name_prefix, prefix_end, read_u64};

const ENTRY_VERSION: u8 = 1;

/// Where one offset points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntry {
    pub(crate) offset: u64,
    pub(crate) timestamp_micros: u64,
    pub(crate) sequence_number: u64,
    pub(crate) entity_id: String,
}

/// The log of `collection`: the prefix of its keys.
pub(crate) fn log_of(collection: &str) -> Result<Vec<u8>> {
    name_prefix(RecordKind::Offset, "collection", collection)
}

/// The append that gives event `seq` of `key` its offset.
pub(crate) fn append(key: &EntityKey, seq: u64, timestamp_micros: u64) -> LogAppend {
    let entity = key.entity_id().as_bytes();
    let mut value = Vec::with_capacity(17 + entity.len());
    value.push(ENTRY_VERSION);
    value.extend_from_slice(&timestamp_micros.to_be_bytes());
    value.extend_from_slice(&seq.to_be_bytes());
    value.extend_from_slice(entity);
    LogAppend {
        log: key.collection_prefix(RecordKind::Offset),
        value,
    }
}

fn corrupted(record_key: &[u8], reason: &str) -> Error {
    Error::Corrupted {
        record: format!("log block {record_key:?}"),
        reason: reason.to_owned(),
    }
}

/// Decodes the entry at `offset`.
pub(crate) fn decode_entry(record_key: &[u8], offset: u64, value: &[u8]) -> Result<LogEntry> {
    if value.first() != Some(&ENTRY_VERSION) {
        return Err(corrupted(record_key, "unknown entry version"));
    }
    let (Some(timestamp_micros), Some(sequence_number)) = (read_u64(value, 1), read_u64(value, 9))
    else {
        return Err(corrupted(record_key, "entry shorter than its fields"));
    };
    let entity_id = value
        .get(17..)
        .and_then(|id| std::str::from_utf8(id).ok())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| corrupted(record_key, "entity id missing or not UTF-8"))?;
    Ok(LogEntry {
        offset,
        timestamp_micros,
        sequence_number,
        entity_id: entity_id.to_owned(),
    })
}

/// The key of the block whose first offset is `offset`.
pub(crate) fn key_at(log: &[u8], offset: u64) -> Vec<u8> {
    let mut key = log.to_vec();
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// The highest offset of `log` (0 when empty).
pub(crate) fn highest_offset(backend: &dyn Backend, log: &[u8]) -> Result<u64> {
    let end = prefix_end(log);
    match backend.scan(log, &end, 1, true)?.first() {
        None => Ok(0),
        Some((key, block)) => crate::backend::block_end(log, key, block),
    }
}

/// Calls `visit` with the entries of `log` from offset `from` on, in order, until it
/// returns `Ok(false)`. A missing offset is [`Error::Corrupted`].
pub(crate) fn for_each_entry(
    backend: &dyn Backend,
    log: &[u8],
    from: u64,
    visit: &mut dyn FnMut(LogEntry) -> Result<bool>,
) -> Result<()> {
    let from = from.max(1);
    let mut next = from;
    let mut on_block = |key: &[u8], block: &[u8]| -> Result<bool> {
        let first = offset_of(log, key).ok_or_else(|| corrupted(key, "malformed key"))?;
        let entries = decode_block(key, block).ok_or_else(|| corrupted(key, "malformed block"))?;
        let last = first + entries.len() as u64 - 1;
        if last < next {
            // The block before `from` found by the backward look-up: nothing to read.
            return Ok(true);
        }
        if first > next {
            return Err(Error::Corrupted {
                record: format!("log block {key:?}"),
                reason: format!("offset {next} is missing (the next block starts at {first})"),
            });
        }
        for (offset, entry) in (first..).zip(entries) {
            if offset < next {
                continue;
            }
            next = offset + 1;
            if !visit(decode_entry(key, offset, entry)?)? {
                return Ok(false);
            }
        }
        Ok(true)
    };
    // The block holding `next` may start before it: the last block whose key is <= it.
    let start = key_at(log, from);
    let holding = backend.scan(log, &key_at(log, from.saturating_add(1)), 1, true)?;
    let after = match holding.first() {
        Some((key, block)) => {
            if !on_block(key, block)? {
                return Ok(());
            }
            let mut after = key.clone();
            after.push(0);
            after
        }
        None => start,
    };
    backend.visit_range(&after, &prefix_end(log), &mut on_block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{MemoryManager, WriteBatch};

    fn entries(backend: &MemoryManager, log: &[u8], from: u64) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for_each_entry(backend, log, from, &mut |entry| {
            out.push((entry.offset, entry.sequence_number));
            Ok(true)
        })?;
        Ok(out)
    }

    #[test]
    fn entries_are_read_from_any_offset_across_blocks() -> Result<()> {
        let backend = MemoryManager::default();
        let key = EntityKey::new("accounts", "alice")?;
        for block in [1..=3u64, 4..=4, 5..=6] {
            let batch = WriteBatch {
                appends: block.map(|seq| append(&key, seq, 1)).collect(),
                ..WriteBatch::default()
            };
            backend
                .commit(&batch)?
                .map_err(|e| Error::storage("test", format!("{e:?}")))?;
        }
        let log = log_of("accounts")?;
        assert_eq!(highest_offset(&backend, &log)?, 6);
        assert_eq!(entries(&backend, &log, 0)?.len(), 6);
        assert_eq!(
            entries(&backend, &log, 2)?,
            vec![(2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
        );
        assert_eq!(entries(&backend, &log, 4)?, vec![(4, 4), (5, 5), (6, 6)]);
        assert_eq!(entries(&backend, &log, 6)?, vec![(6, 6)]);
        assert!(entries(&backend, &log, 7)?.is_empty());
        Ok(())
    }
}
