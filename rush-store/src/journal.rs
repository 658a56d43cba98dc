//! The event journal of one entity: its end (highest sequence number), appends at an
//! expected sequence number, ordered range reads that notice gaps, and deletion of history.

use crate::backend::{Backend, Guard, WriteBatch, WriteOp};
use crate::codec::{Codec, Decoded, Encoded};
use crate::collection_log;
use crate::compression::CompressionStats;
use crate::database::Core;
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind};
use crate::metadata::{EventMetadata, RecordMeta};
use crate::store::Durability;
use serde::Serialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod replay;
pub(crate) use replay::{for_each_event, for_each_event_to_end};

/// Records read per backend call when streaming: memory stays bounded by this, whatever
/// the length of the history.
pub(crate) const PAGE: usize = 512;

/// A stored event with its sequence number, the time it was persisted, and what was
/// recorded with it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEnvelope<E> {
    /// Position of the event in its entity's journal, from 1, contiguous.
    pub sequence_number: u64,
    /// When it was persisted (microsecond precision).
    pub timestamp: SystemTime,
    /// The event's type name (empty for events written before format v2).
    pub event_type: String,
    /// Tags the actor attached.
    pub tags: Vec<String>,
    /// Correlation, causation, user and tenant.
    pub metadata: EventMetadata,
    /// The event (upcast to the current schema version).
    pub event: E,
}

impl<E> EventEnvelope<E> {
    pub(crate) fn from_decoded(sequence_number: u64, decoded: Decoded<E>) -> Self {
        let RecordMeta {
            event_type,
            tags,
            metadata,
            ..
        } = decoded.meta;
        Self {
            sequence_number,
            timestamp: micros_to_time(decoded.timestamp_micros),
            event_type,
            tags,
            metadata,
            event: decoded.value,
        }
    }
}

pub(crate) fn now_micros() -> u64 {
    time_to_micros(SystemTime::now())
}

/// `time` in whole microseconds since the epoch, rounded down: the precision events are
/// stamped with, so windows compare at it (0 before the epoch, `u64::MAX` past its range).
pub(crate) fn time_to_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

pub(crate) fn micros_to_time(micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(micros)
}

fn read_u64_value(backend: &dyn Backend, key: &[u8], what: &dyn Fn() -> String) -> Result<u64> {
    match backend.get(key)? {
        None => Ok(0),
        Some(bytes) => decode_u64(&bytes).ok_or_else(|| Error::Corrupted {
            record: what(),
            reason: format!("expected 8 bytes, found {}", bytes.len()),
        }),
    }
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The highest sequence number ever persisted for the entity (0: none): the newest event
/// stored, or the deletion mark when every event up to it was deleted. The journal itself
/// is the truth; there is no separate head record that could disagree with it.
pub(crate) fn read_head(backend: &dyn Backend, key: &EntityKey) -> Result<u64> {
    read_end(backend, key).map(|(head, _)| head)
}

/// The journal's end ([`read_head`]) and its deletion mark ([`read_deleted_to`]), the mark
/// read once for both.
pub(crate) fn read_end(backend: &dyn Backend, key: &EntityKey) -> Result<(u64, u64)> {
    let (start, end) = key.seq_range(RecordKind::Event, 0, u64::MAX);
    let newest = match backend.scan(&start, &end, 1, true)?.first() {
        Some((record_key, _)) => {
            key.seq_of(RecordKind::Event, record_key)
                .ok_or_else(|| Error::Corrupted {
                    record: key.describe(RecordKind::Event, 0),
                    reason: "malformed key in the event range".into(),
                })?
        }
        None => 0,
    };
    let deleted_to = read_deleted_to(backend, key)?;
    Ok((newest.max(deleted_to), deleted_to))
}

/// Events up to this sequence number were deleted on purpose (0: none).
pub(crate) fn read_deleted_to(backend: &dyn Backend, key: &EntityKey) -> Result<u64> {
    read_u64_value(backend, &key.deleted_to_key(), &|| {
        key.describe(RecordKind::DeletedTo, 0)
    })
}

/// The guards of a write that expects the journal to end at `expected`, with history
/// deleted up to `deleted_to`: event `expected + 1` must not exist (a stale writer finds it
/// taken, and no event can ever be overwritten), and the deletion mark must be unchanged
/// (a writer whose events would fall below a newer mark is stale too).
pub(crate) fn append_guards(key: &EntityKey, expected: u64, deleted_to: u64) -> Vec<Guard> {
    vec![
        Guard {
            key: key.event_key(expected.saturating_add(1)),
            expected: None,
        },
        Guard {
            key: key.deleted_to_key(),
            expected: (deleted_to > 0).then(|| deleted_to.to_be_bytes().to_vec()),
        },
    ]
}

/// Encoded events at `expected + 1 ..`, ready to commit together with other entities'.
#[derive(Debug)]
pub(crate) struct PreparedAppend {
    pub(crate) batch: WriteBatch,
    pub(crate) expected: u64,
    pub(crate) last_seq: u64,
    pub(crate) timestamp_micros: u64,
    /// What compression did to the events.
    pub(crate) encoded: CompressionStats,
}

/// Encodes `events` as the entries `expected + 1 ..` of the journal, each with its meta
/// block and its offset in the collection's log, guarded by [`append_guards`].
pub(crate) fn prepare_append<E: Serialize>(
    codec: &Codec,
    key: &EntityKey,
    expected: u64,
    deleted_to: u64,
    events: &[E],
    meta_of: &dyn Fn(&E) -> RecordMeta,
) -> Result<PreparedAppend> {
    let count = u64::try_from(events.len())
        .map_err(|_| Error::InvalidArgument("too many events".into()))?;
    let last_seq = expected
        .checked_add(count)
        .ok_or_else(|| Error::InvalidArgument("sequence numbers exhausted".into()))?;
    let timestamp_micros = now_micros();
    let mut ops = Vec::with_capacity(events.len());
    let mut appends = Vec::with_capacity(events.len());
    let mut encoded = CompressionStats::default();
    for (seq, event) in (expected + 1..).zip(events) {
        let record_key = key.event_key(seq);
        let Encoded {
            bytes,
            serialized_len,
            payload_len,
            compressed,
        } = codec.encode_event(&record_key, timestamp_micros, &meta_of(event), event)?;
        encoded.record(serialized_len, payload_len, compressed);
        ops.push(WriteOp::Put {
            key: record_key,
            value: bytes,
        });
        appends.push(collection_log::append(key, seq, timestamp_micros));
    }
    let guards = append_guards(key, expected, deleted_to);
    Ok(PreparedAppend {
        batch: WriteBatch {
            guards,
            ops,
            appends,
        },
        expected,
        last_seq,
        timestamp_micros,
        encoded,
    })
}

/// The keys of events `1..=to` still stored, page by page, deleted with the mark set to
/// `to` in the first batch, so that an interrupted deletion is complete for readers and
/// is finished by running it again.
pub(crate) fn delete_events_to(core: &Core, key: &EntityKey, to: u64) -> Result<u64> {
    check_deletable(core.engine()?.as_ref(), key, to)?;
    delete_events_to_with(core, key, to, &mut |_| true).map(|(deleted, _)| deleted)
}

/// [`delete_events_to`] that calls `progress` with the keys removed after each page (one
/// atomic batch) and stops when it returns `false`: the deletion is then complete for
/// readers and finished by running it again. Returns the count and whether it finished.
pub(crate) fn delete_events_to_with(
    core: &Core,
    key: &EntityKey,
    to: u64,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<(u64, bool)> {
    let engine = core.engine()?;
    let backend = engine.as_ref();
    let mut deleted = 0u64;
    // The mark only moves up: a smaller request only cleans what an interrupted deletion
    // left below the mark, and "nothing deleted" stays without a mark.
    let current = read_deleted_to(backend, key)?;
    let mut mark_written = to <= current;
    loop {
        let (start, end) = key.seq_range(RecordKind::Event, 0, to);
        let page = backend.scan(&start, &end, PAGE, false)?;
        let done = page.len() < PAGE;
        deleted += page.len() as u64;
        let mut ops = Vec::with_capacity(page.len() + 1);
        // The mark goes first: an engine that tears a batch (applies a prefix of its
        // writes) then never removes an event that readers would miss as a gap.
        if !mark_written {
            ops.push(WriteOp::Put {
                key: key.deleted_to_key(),
                value: to.to_be_bytes().to_vec(),
            });
            mark_written = true;
        }
        ops.extend(page.into_iter().map(|(k, _)| WriteOp::Delete { key: k }));
        if ops.is_empty() {
            return Ok((deleted, true));
        }
        let removed = ops.len() as u64;
        let batch = WriteBatch {
            guards: Vec::new(),
            ops,
            ..Default::default()
        };
        if let Err(failed) = core.write(batch, Durability::Immediate)? {
            return Err(Error::storage(
                "delete events",
                format!("unexpected guard failure {failed:?}"),
            ));
        }
        if done {
            return Ok((deleted, true));
        }
        if !progress(removed) {
            return Ok((deleted, false));
        }
    }
}

/// Refuses to delete events `1..=seq` unless they exist and a stored snapshot covers
/// them: without one, recovery could not rebuild the state.
pub(crate) fn check_deletable(backend: &dyn Backend, key: &EntityKey, seq: u64) -> Result<()> {
    let head = read_head(backend, key)?;
    if seq > head {
        return Err(Error::InvalidArgument(format!(
            "cannot delete to {seq}: the highest sequence number is {head}"
        )));
    }
    let covered = crate::snapshot::list(backend, key)?
        .last()
        .copied()
        .unwrap_or(0);
    if seq > covered {
        return Err(Error::InvalidArgument(format!(
            "cannot delete to {seq}: the newest snapshot covers only up to {covered}"
        )));
    }
    Ok(())
}
