//! Key layout: every record key is `[kind][u16 len][collection][u16 len][entity][...]`,
//! big-endian, so that ranges are ordered scans and no two (collection, entity) pairs collide.

use crate::error::{Error, Result};

/// Longest collection or entity id, in bytes.
pub const MAX_ID_LEN: usize = 512;

/// What a key points at. The byte is the first byte of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RecordKind {
    /// One journaled event: `prefix + seq`.
    Event = 1,
    /// One snapshot: `prefix + seq`.
    Snapshot = 2,
    /// Events up to this sequence number were deleted on purpose.
    DeletedTo = 4,
    /// One entry of a collection's log: `[len][collection] + offset` -> (entity, seq).
    Offset = 5,
    /// One row of a named table: `[len][table] + row key`.
    TableRow = 6,
    /// Health-check probes.
    Probe = 0x7f,
}

impl RecordKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RecordKind::Event => "event",
            RecordKind::Snapshot => "snapshot",
            RecordKind::DeletedTo => "deletion mark",
            RecordKind::Offset => "log entry",
            RecordKind::TableRow => "table row",
            RecordKind::Probe => "probe",
        }
    }
}

/// The validated identity of one entity: a collection and an entity id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityKey {
    collection: String,
    entity_id: String,
    /// `[u16 len][collection][u16 len][entity]`, computed once.
    encoded: Vec<u8>,
}

impl EntityKey {
    /// Validates both ids: non-empty and at most [`MAX_ID_LEN`] bytes each.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when an id is empty or longer than [`MAX_ID_LEN`] bytes.
    pub fn new(collection: &str, entity_id: &str) -> Result<Self> {
        let mut encoded = Vec::with_capacity(4 + collection.len() + entity_id.len());
        for (what, id) in [("collection", collection), ("entity id", entity_id)] {
            validate_id(what, id)?;
            let len = u16::try_from(id.len())
                .map_err(|_| Error::InvalidArgument(format!("{what} is too long")))?;
            encoded.extend_from_slice(&len.to_be_bytes());
            encoded.extend_from_slice(id.as_bytes());
        }
        Ok(Self {
            collection: collection.to_owned(),
            entity_id: entity_id.to_owned(),
            encoded,
        })
    }

    /// The collection name.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The entity id.
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    /// `[kind][ids]`: every key of this kind for this entity starts with it.
    pub(crate) fn prefix(&self, kind: RecordKind) -> Vec<u8> {
        let mut key = Vec::with_capacity(1 + self.encoded.len() + 12);
        key.push(kind as u8);
        key.extend_from_slice(&self.encoded);
        key
    }

    /// Key of the event with sequence number `seq`.
    pub(crate) fn event_key(&self, seq: u64) -> Vec<u8> {
        let mut key = self.prefix(RecordKind::Event);
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// Key of the snapshot taken at `seq`.
    pub(crate) fn snapshot_key(&self, seq: u64) -> Vec<u8> {
        let mut key = self.prefix(RecordKind::Snapshot);
        key.extend_from_slice(&seq.to_be_bytes());
        key
    }

    /// Key of the entity's deletion mark.
    pub(crate) fn deleted_to_key(&self) -> Vec<u8> {
        self.prefix(RecordKind::DeletedTo)
    }

    /// `[kind][len][collection]`: the start of every key of `kind` in this entity's
    /// collection (its log, when `kind` is [`RecordKind::Offset`]).
    pub(crate) fn collection_prefix(&self, kind: RecordKind) -> Vec<u8> {
        let collection_part = self
            .encoded
            .get(..2 + self.collection.len())
            .unwrap_or_default();
        let mut key = Vec::with_capacity(1 + collection_part.len() + 8);
        key.push(kind as u8);
        key.extend_from_slice(collection_part);
        key
    }

    /// Key of this entity's health probe.
    pub(crate) fn probe_key(&self) -> Vec<u8> {
        self.prefix(RecordKind::Probe)
    }

    /// `[start, end)` of the keys of `kind` with sequence numbers `from..=to`.
    pub(crate) fn seq_range(&self, kind: RecordKind, from: u64, to: u64) -> (Vec<u8>, Vec<u8>) {
        let prefix = self.prefix(kind);
        let mut start = prefix.clone();
        start.extend_from_slice(&from.to_be_bytes());
        let end = match to.checked_add(1) {
            Some(next) => {
                let mut end = prefix;
                end.extend_from_slice(&next.to_be_bytes());
                end
            }
            None => prefix_end(&prefix),
        };
        (start, end)
    }

    /// The sequence number at the end of a key of `kind` of this entity.
    pub(crate) fn seq_of(&self, kind: RecordKind, key: &[u8]) -> Option<u64> {
        let prefix_len = 1 + self.encoded.len();
        if key.len() != prefix_len + 8 || key.first() != Some(&(kind as u8)) {
            return None;
        }
        read_u64(key, prefix_len)
    }

    /// A readable name of one record, for errors.
    pub(crate) fn describe(&self, kind: RecordKind, seq: u64) -> String {
        format!(
            "{} {} of {:?}/{:?}",
            kind.name(),
            seq,
            self.collection,
            self.entity_id
        )
    }
}

/// `[kind][len u16][name]` for a validated collection or table name.
pub(crate) fn name_prefix(kind: RecordKind, what: &str, name: &str) -> Result<Vec<u8>> {
    validate_id(what, name)?;
    let len = u16::try_from(name.len())
        .map_err(|_| Error::InvalidArgument(format!("{what} is too long")))?;
    let mut key = Vec::with_capacity(3 + name.len() + 8);
    key.push(kind as u8);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(name.as_bytes());
    Ok(key)
}

/// Non-empty and at most [`MAX_ID_LEN`] bytes.
pub(crate) fn validate_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is {} bytes, the limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    Ok(())
}

/// The length-prefixed id at `at` of `key` and the position after it.
pub(crate) fn read_id(key: &[u8], at: usize) -> Option<(&str, usize)> {
    let len = u16::from_be_bytes(key.get(at..at + 2)?.try_into().ok()?) as usize;
    let id = key.get(at + 2..at + 2 + len)?;
    Some((std::str::from_utf8(id).ok()?, at + 2 + len))
}

/// Reads the big-endian u64 at `at` of `key`.
pub(crate) fn read_u64(key: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = key.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The smallest key greater than every key that starts with `prefix`, if any.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF (never the case for our prefixes, which start with a kind byte < 0xFF):
    // no finite upper bound, so use a key longer than any we write.
    vec![u8::MAX; prefix.len() + 1 + 2 * (MAX_ID_LEN + 2) + 12]
}

#[cfg(test)]
mod tests;
