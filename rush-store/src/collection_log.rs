//! A collection's log: every event of every entity of a collection gets a global offset
//! (from 1, gap-free, in commit order) in the same atomic batch as the event itself. The
//! entry points at the event; it holds no payload, so the event stays the one sealed copy.
//!
//! ```text
//! key   [0x05][len u16][collection][offset u64]
//! value [version u8 = 1][timestamp u64 µs][seq u64][entity id UTF-8 ...]
//! ```

use crate::backend::LogAppend;
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind, name_prefix, read_u64};

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

/// Decodes the entry stored at `record_key` of `log`.
pub(crate) fn decode(log: &[u8], record_key: &[u8], value: &[u8]) -> Result<LogEntry> {
    let corrupted = |reason: &str| Error::Corrupted {
        record: format!("log entry {record_key:?}"),
        reason: reason.to_owned(),
    };
    let offset = (record_key.len() == log.len() + 8)
        .then(|| read_u64(record_key, log.len()))
        .flatten()
        .ok_or_else(|| corrupted("malformed key"))?;
    if value.first() != Some(&ENTRY_VERSION) {
        return Err(corrupted("unknown entry version"));
    }
    let (Some(timestamp_micros), Some(sequence_number)) = (read_u64(value, 1), read_u64(value, 9))
    else {
        return Err(corrupted("entry shorter than its fields"));
    };
    let entity_id = value
        .get(17..)
        .and_then(|id| std::str::from_utf8(id).ok())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| corrupted("entity id missing or not UTF-8"))?;
    Ok(LogEntry {
        offset,
        timestamp_micros,
        sequence_number,
        entity_id: entity_id.to_owned(),
    })
}

/// The key of `offset` in `log`.
pub(crate) fn key_at(log: &[u8], offset: u64) -> Vec<u8> {
    let mut key = log.to_vec();
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_its_log_is_the_collection_prefix() -> Result<()> {
        let key = EntityKey::new("accounts", "alice")?;
        let appended = append(&key, 7, 1234);
        assert_eq!(appended.log, log_of("accounts")?);
        let stored_key = key_at(&appended.log, 42);
        let entry = decode(&appended.log, &stored_key, &appended.value)?;
        assert_eq!(
            entry,
            LogEntry {
                offset: 42,
                timestamp_micros: 1234,
                sequence_number: 7,
                entity_id: "alice".into()
            }
        );
        assert!(decode(&appended.log, &stored_key, &appended.value[..10]).is_err());
        Ok(())
    }
}
