//! Streaming reads of one journal: a range of events with their envelopes, read from the
//! engine one page at a time, so memory is bounded by a page whatever the range.

use super::Store;
use crate::codec::{Codec, Scratch};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::journal::{self, EventEnvelope};
use crate::keys::{EntityKey, RecordKind};
use crate::persistent_actor::PersistentActor;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

impl<A: PersistentActor> Store<A> {
    /// The events `from..=to` (clamped to what exists; deleted history is skipped) with
    /// their envelopes, read a page at a time: memory stays bounded by one page however
    /// long the range, where [`Store::events_with_metadata`] collects the whole range.
    /// The iterator owns what it needs (it may outlive `self`, or move to another thread);
    /// it ends after yielding an error.
    ///
    /// ```
    /// # use rush_store::{MemoryManager, PersistentActor, Store};
    /// # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
    /// # struct Counter { value: i64 }
    /// # impl PersistentActor for Counter {
    /// #     type Event = i64;
    /// #     fn apply(&mut self, delta: &i64) { self.value += delta; }
    /// # }
    /// let mut store = Store::<Counter>::new("counters", "c-1", MemoryManager::default(), None, false)?;
    /// store.persist_batch(&[5, -2, 7])?;
    /// let mut total = 0;
    /// for envelope in store.iter_events(2, u64::MAX) {
    ///     total += envelope?.event;
    /// }
    /// assert_eq!(total, 5);
    /// # Ok::<_, rush_store::Error>(())
    /// ```
    pub fn iter_events(&self, from: u64, to: u64) -> JournalIter<A::Event> {
        JournalIter {
            db: self.db.clone(),
            codec: self.codec.clone(),
            key: self.key.clone(),
            next: from,
            to,
            clamped: false,
            page: Vec::new().into_iter(),
            scratch: Scratch::default(),
            finished: false,
            _event: PhantomData,
        }
    }
}

/// The events of a range of one journal, oldest first, read a page at a time: from
/// [`Store::iter_events`]. A missing event inside the range (a gap) is
/// [`Error::Corrupted`], as in every read of the journal.
pub struct JournalIter<E> {
    db: Database,
    codec: Codec,
    key: EntityKey,
    /// The sequence number the next record must carry.
    next: u64,
    to: u64,
    /// Whether `next..=to` was clamped to the journal (done on the first read).
    clamped: bool,
    /// Records read from the engine and not yet decoded: at most one page.
    page: std::vec::IntoIter<(Vec<u8>, Vec<u8>)>,
    scratch: Scratch,
    finished: bool,
    _event: PhantomData<fn() -> E>,
}

impl<E> std::fmt::Debug for JournalIter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalIter")
            .field("collection", &self.key.collection())
            .field("entity_id", &self.key.entity_id())
            .field("next", &self.next)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl<E: DeserializeOwned> JournalIter<E> {
    /// The next event, `None` past the end of the range.
    fn step(&mut self) -> Result<Option<EventEnvelope<E>>> {
        if !self.clamped {
            // As `Store::events`: from what is still stored to the journal's end as of now.
            let engine = self.db.engine()?;
            let head = journal::read_head(engine.as_ref(), &self.key)?;
            let deleted_to = journal::read_deleted_to(engine.as_ref(), &self.key)?;
            self.next = self.next.max(deleted_to.saturating_add(1)).max(1);
            self.to = self.to.min(head);
            self.clamped = true;
        }
        if self.next > self.to {
            return Ok(None);
        }
        let (record_key, bytes) = match self.page.next() {
            Some(record) => record,
            None => {
                let (start, end) = self.key.seq_range(RecordKind::Event, self.next, self.to);
                let page = self.db.engine()?.scan(&start, &end, journal::PAGE, false)?;
                self.page = page.into_iter();
                self.page.next().ok_or_else(|| self.missing())?
            }
        };
        let key = &self.key;
        if key.seq_of(RecordKind::Event, &record_key) != Some(self.next) {
            return Err(self.missing());
        }
        let seq = self.next;
        let describe = || key.describe(RecordKind::Event, seq);
        let decoded =
            self.codec
                .decode_event_with(&record_key, &bytes, &describe, &mut self.scratch)?;
        // `seq == u64::MAX` ends the range: nothing can follow it.
        self.next = seq.saturating_add(1);
        if seq == u64::MAX {
            self.to = 0;
        }
        Ok(Some(EventEnvelope::from_decoded(seq, decoded)))
    }

    fn missing(&self) -> Error {
        Error::Corrupted {
            record: self.key.describe(RecordKind::Event, self.next),
            reason: "event is missing from the journal (gap in sequence numbers)".into(),
        }
    }
}

impl<E: DeserializeOwned> Iterator for JournalIter<E> {
    type Item = Result<EventEnvelope<E>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let step = self.step();
        if !matches!(step, Ok(Some(_))) {
            self.finished = true;
        }
        step.transpose()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Error, MemoryManager, PersistentActor, Result, Store};

    #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
    struct Count(u64);

    impl PersistentActor for Count {
        type Event = u64;
        fn apply(&mut self, n: &u64) {
            self.0 += n;
        }
    }

    fn store(events: u64) -> Result<Store<Count>> {
        let mut store = Store::new("counts", "a", MemoryManager::default(), None, false)?;
        let events: Vec<u64> = (1..=events).collect();
        for batch in events.chunks(100) {
            store.persist_batch(batch)?;
        }
        Ok(store)
    }

    #[test]
    fn ranges_across_pages_match_the_collected_reads() -> Result<()> {
        let store = store(1300)?;
        for (from, to) in [
            (0, u64::MAX),
            (1, 512),
            (500, 1030),
            (1024, 1025),
            (1300, 9),
        ] {
            let streamed: Vec<_> = store.iter_events(from, to).collect::<Result<_>>()?;
            assert_eq!(
                streamed,
                store.events_with_metadata(from, to)?,
                "{from}..={to}"
            );
        }
        Ok(())
    }

    #[test]
    fn deleted_history_is_skipped_and_a_gap_is_damage() -> Result<()> {
        let mut store = store(600)?;
        store.snapshot(&Count(0))?;
        store.delete_events_to(10)?;
        let first = store.iter_events(0, u64::MAX).next().transpose()?;
        assert_eq!(first.map(|e| e.sequence_number), Some(11));

        let hole = crate::WriteBatch {
            ops: vec![crate::WriteOp::Delete {
                key: store.entity().event_key(520),
            }],
            ..Default::default()
        };
        store
            .database()
            .engine()?
            .commit(&hole)?
            .map_err(|e| Error::storage("test", format!("{e:?}")))?;
        let read: Vec<_> = store.iter_events(0, u64::MAX).collect();
        assert_eq!(read.len(), 510, "509 events, then the error");
        assert!(
            matches!(read.last(), Some(Err(Error::Corrupted { record, .. })) if record.contains("520")),
            "{:?}",
            read.last()
        );
        Ok(())
    }
}
