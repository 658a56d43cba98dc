//! Streaming an entity's events in order: a range (`for_each_event`) or from a sequence
//! number to wherever the journal ends (`for_each_event_to_end`, recovery), each record
//! checked for its place in the sequence, decoded and handed to a visitor. Long replays
//! walk the engine on a second thread, one chunk ahead.

use crate::backend::{Backend, Visitor};
use crate::codec::{Codec, Decoded, Scratch};
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind};
use serde::de::DeserializeOwned;
use std::sync::mpsc;

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
