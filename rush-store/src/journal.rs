//! The event journal of one entity: its end (highest sequence number), appends at an
//! expected sequence number, ordered range reads that notice gaps, and deletion of history.

use crate::backend::{Backend, Guard, Visitor, WriteBatch, WriteOp};
use crate::codec::{Codec, Decoded, Encoded, Scratch};
use crate::collection_log;
use crate::database::Core;
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind};
use crate::metadata::{EventMetadata, RecordMeta};
use crate::store::Durability;
use serde::{Serialize, de::DeserializeOwned};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    pub(crate) encoded: Vec<(usize, usize, bool)>,
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
    let mut encoded = Vec::with_capacity(events.len());
    for (seq, event) in (expected + 1..).zip(events) {
        let record_key = key.event_key(seq);
        let Encoded {
            bytes,
            serialized_len,
            payload_len,
            compressed,
        } = codec.encode_event(&record_key, timestamp_micros, &meta_of(event), event)?;
        encoded.push((serialized_len, payload_len, compressed));
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

/// Replays of at least this many events read ahead on a second thread.
const READ_AHEAD_MIN_EVENTS: u64 = 4096;
/// Records per read-ahead chunk; at most a few chunks are in flight.
const READ_AHEAD_CHUNK: usize = 256;

/// Streams the events `from..=to` in order and fails on a missing one. Nothing is copied
/// or allocated per record beyond what the decoded event owns. Long replays walk the
/// engine on a second thread while this one decrypts, decodes and applies.
pub(crate) fn for_each_event<E: DeserializeOwned>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
    from: u64,
    to: u64,
    visit: impl FnMut(u64, Decoded<E>) -> Result<()>,
) -> Result<()> {
    if from > to {
        return Ok(());
    }
    let mut replay = Replay {
        codec,
        key,
        next: from,
        to,
        reached_end: false,
        scratch: Scratch::default(),
        decode: |codec, record_key, bytes, describe, scratch| {
            codec.decode_event_with(record_key, bytes, describe, scratch)
        },
        visit,
    };
    let (start, end) = key.seq_range(RecordKind::Event, from, to);
    if to - from < READ_AHEAD_MIN_EVENTS {
        backend.visit_range(&start, &end, &mut |record_key, bytes| {
            replay.record(record_key, bytes)
        })?;
    } else {
        read_ahead(backend, &start, &end, &mut |record_key, bytes| {
            replay.record(record_key, bytes)
        })?;
    }
    replay.finish()
}

/// Streams the events `from..` to the end of the journal, however far it reaches, and
/// fails on a missing one; returns the last sequence number visited (`from - 1` when the
/// journal holds nothing from `from` on). One scan, no read of the end first: what
/// recovery does. The first [`READ_AHEAD_MIN_EVENTS`] records are read on this thread; a
/// journal longer than that is read on from there with a read-ahead thread, as
/// [`for_each_event`] does for long ranges. `visit` gets each event's value alone: of the
/// meta block only what upcasting needs is read ([`Codec::decode_event_value`]).
pub(crate) fn for_each_event_to_end<E: DeserializeOwned>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
    from: u64,
    visit: impl FnMut(u64, E) -> Result<()>,
) -> Result<u64> {
    let mut replay = Replay {
        codec,
        key,
        next: from,
        to: u64::MAX,
        reached_end: false,
        scratch: Scratch::default(),
        decode: |codec, record_key, bytes, describe, scratch| {
            codec.decode_event_value(record_key, bytes, describe, scratch)
        },
        visit,
    };
    let (start, end) = key.seq_range(RecordKind::Event, from, u64::MAX);
    let mut budget = READ_AHEAD_MIN_EVENTS;
    let mut more = false;
    backend.visit_range(&start, &end, &mut |record_key, bytes| {
        if budget == 0 {
            more = true;
            return Ok(false);
        }
        budget -= 1;
        replay.record(record_key, bytes)
    })?;
    if more {
        let (rest, end) = key.seq_range(RecordKind::Event, replay.next, u64::MAX);
        read_ahead(backend, &rest, &end, &mut |record_key, bytes| {
            replay.record(record_key, bytes)
        })?;
    }
    Ok(replay.next.saturating_sub(1))
}

/// Decodes one event record (its storage key, its bytes) as a replay needs it.
type DecodeEvent<T> = fn(&Codec, &[u8], &[u8], &dyn Fn() -> String, &mut Scratch) -> Result<T>;

/// The in-order checks and decoding of one replay: each record is decoded by `decode` and
/// handed to `visit`.
struct Replay<'a, T, V> {
    codec: &'a Codec,
    key: &'a EntityKey,
    next: u64,
    to: u64,
    reached_end: bool,
    scratch: Scratch,
    decode: DecodeEvent<T>,
    visit: V,
}

impl<T, V: FnMut(u64, T) -> Result<()>> Replay<'_, T, V> {
    /// Handles one record; `Ok(false)` once `to` is reached.
    fn record(&mut self, record_key: &[u8], bytes: &[u8]) -> Result<bool> {
        let key = self.key;
        let seq = key
            .seq_of(RecordKind::Event, record_key)
            .ok_or_else(|| Error::Corrupted {
                record: key.describe(RecordKind::Event, self.next),
                reason: "malformed key in the event range".into(),
            })?;
        if seq != self.next {
            return Err(missing(key, self.next));
        }
        let describe = || key.describe(RecordKind::Event, seq);
        let decoded = (self.decode)(self.codec, record_key, bytes, &describe, &mut self.scratch)?;
        (self.visit)(seq, decoded)?;
        self.reached_end = seq == self.to;
        self.next = seq.saturating_add(1);
        Ok(!self.reached_end)
    }

    fn finish(self) -> Result<()> {
        if self.reached_end {
            Ok(())
        } else {
            Err(missing(self.key, self.next))
        }
    }
}

/// Records copied out of the engine, back to back: `spans` holds (key start, value start,
/// value end) offsets into `bytes`.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize, usize)>,
}

/// `backend.visit_range`, with the engine walked by a scoped thread one chunk ahead of
/// `visit`. Chunk buffers are recycled, so memory stays at a few chunks.
fn read_ahead(
    backend: &dyn Backend,
    start: &[u8],
    end: &[u8],
    visit: &mut Visitor<'_>,
) -> Result<()> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Result<Chunk>>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Chunk>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut chunk = Chunk::default();
            let walked = backend.visit_range(start, end, &mut |key, value| {
                let key_at = chunk.bytes.len();
                chunk.bytes.extend_from_slice(key);
                let value_at = chunk.bytes.len();
                chunk.bytes.extend_from_slice(value);
                chunk.spans.push((key_at, value_at, chunk.bytes.len()));
                if chunk.spans.len() < READ_AHEAD_CHUNK {
                    return Ok(true);
                }
                let mut fresh = empty_rx.try_recv().unwrap_or_default();
                fresh.bytes.clear();
                fresh.spans.clear();
                // A closed channel means the reader stopped (done or failed): stop too.
                Ok(full_tx
                    .send(Ok(std::mem::replace(&mut chunk, fresh)))
                    .is_ok())
            });
            let last = match walked {
                Ok(()) => Ok(chunk),
                Err(error) => Err(error),
            };
            let _ = full_tx.send(last);
        });
        // Owning the receiver here drops it on any early return, which releases the walker.
        consume_chunks(full_rx, &empty_tx, visit)
    })
}

fn consume_chunks(
    chunks: mpsc::Receiver<Result<Chunk>>,
    recycle: &mpsc::Sender<Chunk>,
    visit: &mut Visitor<'_>,
) -> Result<()> {
    for chunk in chunks {
        let chunk = chunk?;
        for &(key_at, value_at, end) in &chunk.spans {
            let (Some(key), Some(value)) = (
                chunk.bytes.get(key_at..value_at),
                chunk.bytes.get(value_at..end),
            ) else {
                return Err(Error::storage("read ahead", "chunk offsets out of bounds"));
            };
            if !visit(key, value)? {
                return Ok(());
            }
        }
        let _ = recycle.send(chunk);
    }
    Ok(())
}

fn missing(key: &EntityKey, seq: u64) -> Error {
    Error::Corrupted {
        record: key.describe(RecordKind::Event, seq),
        reason: "event is missing from the journal (gap in sequence numbers)".into(),
    }
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
