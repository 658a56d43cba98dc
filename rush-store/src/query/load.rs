//! Loading the events that a page of log entries points at. Entries of one entity with
//! consecutive sequence numbers (the events of one commit: a batch, a command that emitted
//! several) are read with one range visit of the engine, not a point read each. An event
//! missing from a run is what a missing point read is: skipped when it lies at or below
//! its entity's deletion mark, damage otherwise.

use super::{EventFilter, EventQuery, StoredEvent};
use crate::backend::Backend;
use crate::codec::{Decoded, Scratch};
use crate::collection_log::LogEntry;
use crate::error::{Error, Result};
use crate::journal::{self, micros_to_time};
use crate::keys::{EntityKey, RecordKind};
use crate::metadata::RecordMeta;
use crate::persistent_actor::PersistentActor;

impl<A: PersistentActor> EventQuery<A> {
    /// The events `entries` point at that match `filter`, in the entries' order.
    pub(super) fn load_all(
        &self,
        engine: &dyn Backend,
        mut entries: Vec<LogEntry>,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent<A::Event>>> {
        let mut sink = Sink {
            filter,
            scratch: Scratch::default(),
            events: Vec::with_capacity(entries.len()),
        };
        let mut rest = entries.as_mut_slice();
        while !rest.is_empty() {
            let len = run_length(rest);
            let (run, after) = rest.split_at_mut(len);
            self.load_run(engine, run, &mut sink)?;
            rest = after;
        }
        Ok(sink.events)
    }

    /// Loads `run` (entries of one entity, consecutive sequence numbers) into `sink`.
    fn load_run(
        &self,
        engine: &dyn Backend,
        run: &mut [LogEntry],
        sink: &mut Sink<'_, A::Event>,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return Ok(());
        };
        let key = EntityKey::new(&self.collection, &first.entity_id)?;
        let (first_seq, last_seq) = (first.sequence_number, last.sequence_number);
        let mut missing = Vec::new();
        if first_seq == last_seq {
            let record_key = key.event_key(first_seq);
            match engine.get(&record_key)? {
                Some(bytes) => {
                    if let Some(entry) = run.first_mut() {
                        self.decode_into(&key, entry, &record_key, &bytes, sink)?;
                    }
                }
                None => missing.extend(
                    run.iter()
                        .map(|entry| (entry.sequence_number, entry.offset)),
                ),
            }
        } else {
            let (start, end) = key.seq_range(RecordKind::Event, first_seq, last_seq);
            let mut next = 0usize;
            engine.visit_range(&start, &end, &mut |record_key, bytes| {
                let seq =
                    key.seq_of(RecordKind::Event, record_key)
                        .ok_or_else(|| Error::Corrupted {
                            record: key.describe(RecordKind::Event, first_seq),
                            reason: "malformed key in the event range".into(),
                        })?;
                while let Some(entry) = run.get(next).filter(|entry| entry.sequence_number < seq) {
                    missing.push((entry.sequence_number, entry.offset));
                    next += 1;
                }
                if let Some(entry) = run
                    .get_mut(next)
                    .filter(|entry| entry.sequence_number == seq)
                {
                    self.decode_into(&key, entry, record_key, bytes, sink)?;
                    next += 1;
                }
                Ok(next < run.len())
            })?;
            missing.extend(
                run.iter()
                    .skip(next)
                    .map(|entry| (entry.sequence_number, entry.offset)),
            );
        }
        if !missing.is_empty() {
            // Only deletion removes events: every missing one must be at or below the mark.
            let deleted_to = journal::read_deleted_to(engine, &key)?;
            if let Some(&(seq, offset)) = missing.iter().find(|(seq, _)| *seq > deleted_to) {
                return Err(missing_event(&key, seq, offset));
            }
        }
        Ok(())
    }

    /// Decodes one record of `entry` and adds it to `sink` when it matches the filter.
    fn decode_into(
        &self,
        key: &EntityKey,
        entry: &mut LogEntry,
        record_key: &[u8],
        bytes: &[u8],
        sink: &mut Sink<'_, A::Event>,
    ) -> Result<()> {
        let filter = sink.filter;
        let describe = || key.describe(RecordKind::Event, entry.sequence_number);
        let decoded: Option<Decoded<A::Event>> = self.codec.decode_event_if(
            record_key,
            bytes,
            &describe,
            &mut sink.scratch,
            &mut |_, meta: &RecordMeta| filter.matches_meta(meta),
        )?;
        if let Some(decoded) = decoded {
            sink.events.push(StoredEvent {
                offset: entry.offset,
                entity_id: std::mem::take(&mut entry.entity_id),
                sequence_number: entry.sequence_number,
                timestamp: micros_to_time(decoded.timestamp_micros),
                event_type: decoded.meta.event_type,
                tags: decoded.meta.tags,
                metadata: decoded.meta.metadata,
                event: decoded.value,
            });
        }
        Ok(())
    }
}

/// Where loaded events go: the filter they must pass, the decoder's buffers, the events.
struct Sink<'f, E> {
    filter: &'f EventFilter,
    scratch: Scratch,
    events: Vec<StoredEvent<E>>,
}

/// How many entries at the start of `entries` are one run: the same entity, each
/// sequence number one more than the one before.
fn run_length(entries: &[LogEntry]) -> usize {
    let mut len = 1;
    while let (Some(before), Some(entry)) = (entries.get(len - 1), entries.get(len)) {
        if entry.entity_id != before.entity_id
            || Some(entry.sequence_number) != before.sequence_number.checked_add(1)
        {
            break;
        }
        len += 1;
    }
    len.min(entries.len())
}

fn missing_event(key: &EntityKey, seq: u64, offset: u64) -> Error {
    Error::Corrupted {
        record: key.describe(RecordKind::Event, seq),
        reason: format!(
            "offset {offset} of the collection's log points at an event that is missing"
        ),
    }
}
