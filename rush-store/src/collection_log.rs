//! A collection's log: every event of every entity of a collection gets a global offset
//! (from 1, gap-free, in commit order) in the same atomic batch as the event itself. An
//! entry points at the event; it holds no payload, so the event stays the one sealed copy.
//! The backend stores the entries of one commit as one block (FORMAT.md; the block layer,
//! `backend/log_block.rs`, knows nothing of what an entry means):
//!
//! ```text
//! key       [0x05][len u16][collection][first offset u64]
//! entry v2  [0x02][timestamp u64 µs][entity id len u16][entity id UTF-8][seq u64]   written
//! entry v1  [0x01][timestamp u64 µs][seq u64][entity id UTF-8 ...]                  read
//! ```
//!
//! Version 2 puts the timestamp (one per commit) first and the entity next, so that in a
//! prefix-compressed block consecutive entries share the timestamp, the entity (or the
//! common start of the entity ids) and the high bytes of the sequence number: a few bytes
//! an entry for one entity's events, about 13 for a commit of 1,000 actors. Both versions
//! are read.

use crate::backend::{Backend, LogAppend, decode_block, offset_of};
use crate::error::{Error, Result};
use crate::keys::{EntityKey, MAX_ID_LEN, RecordKind, name_prefix, prefix_end, read_u64};

/// The entry version of `[timestamp][seq][entity id]` (read, no longer written).
const ENTRY_V1: u8 = 1;
/// The entry version of `[entity id len][entity id][timestamp][seq]` (written).
const ENTRY_V2: u8 = 2;
// An entity id's length always fits the v2 entry's u16.
const _: () = assert!(MAX_ID_LEN <= u16::MAX as usize);

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

/// The append that gives event `seq` of `key` its offset (an entry of version 2).
pub(crate) fn append(key: &EntityKey, seq: u64, timestamp_micros: u64) -> LogAppend {
    let entity = key.entity_id().as_bytes();
    // `EntityKey` holds ids of at most `MAX_ID_LEN` bytes, so the length always fits.
    let len = u16::try_from(entity.len()).unwrap_or(u16::MAX);
    let entity = entity.get(..usize::from(len)).unwrap_or(entity);
    let mut value = Vec::with_capacity(19 + entity.len());
    value.push(ENTRY_V2);
    value.extend_from_slice(&timestamp_micros.to_be_bytes());
    value.extend_from_slice(&len.to_be_bytes());
    value.extend_from_slice(entity);
    value.extend_from_slice(&seq.to_be_bytes());
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

/// Decodes the entry at `offset` (either version).
pub(crate) fn decode_entry(record_key: &[u8], offset: u64, value: &[u8]) -> Result<LogEntry> {
    let short = || corrupted(record_key, "entry shorter than its fields");
    let (timestamp_micros, sequence_number, entity_id) = match value.split_first() {
        Some((&ENTRY_V1, _)) => {
            let (Some(timestamp), Some(seq)) = (read_u64(value, 1), read_u64(value, 9)) else {
                return Err(short());
            };
            (timestamp, seq, value.get(17..).unwrap_or_default())
        }
        Some((&ENTRY_V2, rest)) => {
            let (timestamp, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(short)?;
            let (entity_id, rest) = rest
                .split_at_checked(usize::from(u16::from_be_bytes(*len)))
                .ok_or_else(short)?;
            let (seq, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            if !rest.is_empty() {
                return Err(corrupted(record_key, "bytes after the entry's fields"));
            }
            (
                u64::from_be_bytes(*timestamp),
                u64::from_be_bytes(*seq),
                entity_id,
            )
        }
        _ => return Err(corrupted(record_key, "unknown entry version")),
    };
    let entity_id = std::str::from_utf8(entity_id)
        .ok()
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
        let last = first
            .checked_add((entries.len() as u64).saturating_sub(1))
            .ok_or_else(|| corrupted(key, "offsets past u64::MAX"))?;
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
        let mut offset = first;
        entries.visit(&mut |entry| {
            let at = offset;
            offset = offset.saturating_add(1);
            if at < next {
                return Ok(true);
            }
            next = offset;
            visit(decode_entry(key, at, entry)?)
        })
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
mod tests;
