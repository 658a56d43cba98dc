//! Rebuilding state: the newest snapshot, then the events after it, streamed one page at
//! a time so memory does not grow with the length of the history.

use super::Store;
use crate::backend::Backend;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::journal;
use crate::keys::{EntityKey, RecordKind};
use crate::persistent_actor::PersistentActor;
use crate::snapshot;
use std::time::Instant;
use tracing::{info, info_span};

impl<A: PersistentActor> Store<A> {
    /// The current state: the newest snapshot plus the events after it; `None` when
    /// nothing was ever persisted. A snapshot that cannot be read is an error, never a
    /// silent replay from zero; a damaged or missing event is [`Error::Corrupted`].
    ///
    /// # Errors
    ///
    /// [`Error::Corrupted`] for a damaged snapshot or event, a missing event, or deleted
    /// history no snapshot covers; [`Error::Decryption`] for a record sealed with a key
    /// this handle does not hold; [`Error::Serialization`] for a snapshot or event that
    /// does not decode as `A` or `A::Event`; [`Error::Shutdown`] after
    /// [`Database::shutdown`](crate::Database::shutdown); other engine failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn recover(&self) -> Result<Option<A>> {
        self.rebuild_current().map(|(rebuilt, _)| rebuilt.state)
    }

    /// The current state, and the journal's end and deletion mark it was rebuilt at.
    fn rebuild_current(&self) -> Result<(Recovered<A>, (u64, u64))> {
        let engine = self.engine()?;
        rebuild_to_end(engine.as_ref(), &self.codec, &self.key)
    }

    /// Recovers the current state (as [`Store::recover`]) and moves this handle to the
    /// journal's end, in one pass over the engine: what an actor does when it starts. The
    /// journal's end and deletion mark are read once, for both. Runs on the caller's thread.
    ///
    /// ```
    /// # use rush_store::{Database, DatabaseConfig, MemoryManager, PersistentActor};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Default, Clone, Serialize, Deserialize)]
    /// # struct Counter { value: u64 }
    /// # impl PersistentActor for Counter {
    /// #     type Event = u64;
    /// #     fn apply(&mut self, n: &u64) { self.value += n; }
    /// # }
    /// # fn main() -> Result<(), rush_store::Error> {
    /// let db = Database::open(MemoryManager::default(), DatabaseConfig::default())?;
    /// let mut writer = db.store::<Counter>("counters", "a")?;
    /// writer.persist(&2)?;
    /// writer.snapshot(&Counter { value: 2 })?;
    /// writer.persist(&3)?;
    ///
    /// let mut store = db.store::<Counter>("counters", "a")?;
    /// let recovered = store.recover_to_end()?;
    /// assert_eq!(recovered.state.map(|c| c.value), Some(5));
    /// assert_eq!(recovered.snapshot_sequence_number, 1);
    /// assert_eq!(store.highest_sequence_number(), 2);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Store::recover`].
    pub fn recover_to_end(&mut self) -> Result<Recovered<A>> {
        let (rebuilt, (head, deleted_to)) = self.rebuild_current()?;
        self.highest = head;
        self.deleted_to = deleted_to;
        Ok(rebuilt)
    }

    /// The state as of sequence number `seq` (time travel): the newest snapshot at or
    /// before `seq` plus the events up to `seq`. `None` when nothing (no event, no snapshot)
    /// exists up to `seq`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `seq` is past the highest sequence number, or when
    /// the events up to `seq` were deleted and no snapshot at or before it covers them;
    /// otherwise as [`Store::recover`].
    pub fn recover_at(&self, seq: u64) -> Result<Option<A>> {
        let engine = self.engine()?;
        let (head, deleted_to) = journal::read_end(engine.as_ref(), &self.key)?;
        if seq > head {
            return Err(Error::InvalidArgument(format!(
                "cannot recover at {seq}: the highest sequence number is {head}"
            )));
        }
        rebuild(
            engine.as_ref(),
            &self.codec,
            &self.key,
            seq,
            head,
            deleted_to,
        )
        .map(|rebuilt| rebuilt.state)
    }
}

/// What [`Store::recover_to_end`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered<A> {
    /// The current state (`None`: nothing was ever persisted).
    pub state: Option<A>,
    /// The snapshot recovery started from: the newest one (0: none, replayed from the
    /// first event).
    pub snapshot_sequence_number: u64,
}

/// The current state of entity `key`, and the journal's end and deletion mark: the
/// deletion mark, the newest snapshot, then one scan of the events after it to wherever
/// the journal ends (no read of the end first: three engine reads, where
/// [`rebuild`] needs four). The end is the newest of the last event, the snapshot and the
/// deletion mark. A snapshot with no event after it must have its own event (or the
/// deletion mark at or past it); a journal that ends below its newest snapshot lost events
/// and is [`Error::Corrupted`], never a state silently rolled back or forward.
pub(super) fn rebuild_to_end<A: PersistentActor>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
) -> Result<(Recovered<A>, (u64, u64))> {
    let _span = info_span!(
        "recovery",
        collection = key.collection(),
        entity = key.entity_id()
    )
    .entered();
    let started = Instant::now();
    let deleted_to = journal::read_deleted_to(backend, key)?;
    let loaded = snapshot::latest::<A>(backend, codec, key, u64::MAX)?;
    let snapshot_seq = loaded.as_ref().map_or(0, |found| found.sequence_number);
    let from = snapshot_seq.saturating_add(1);
    if from <= deleted_to {
        return Err(Error::Corrupted {
            record: key.describe(RecordKind::Event, from),
            reason: format!("events up to {deleted_to} were deleted and no snapshot covers them"),
        });
    }
    let mut state = loaded.map(|found| found.state);
    let mut replayed = 0u64;
    let last = journal::for_each_event_to_end(backend, codec, key, from, |_, event| {
        state.get_or_insert_with(A::default).apply(&event);
        replayed += 1;
        Ok(())
    })?;
    if replayed == 0
        && snapshot_seq > deleted_to
        && backend.get(&key.event_key(snapshot_seq))?.is_none()
    {
        return Err(Error::Corrupted {
            record: key.describe(RecordKind::Event, snapshot_seq),
            reason: format!(
                "the journal ends below its newest snapshot (at {snapshot_seq}): events were lost"
            ),
        });
    }
    let head = last.max(deleted_to);
    info!(snapshot_seq, replayed, took = ?started.elapsed(), "recovered");
    Ok((
        Recovered {
            state,
            snapshot_sequence_number: snapshot_seq,
        },
        (head, deleted_to),
    ))
}

/// The state of entity `key` at `target` (the journal ends at `head`, deleted up to
/// `deleted_to`): the newest snapshot at or before `target`, then the events after it,
/// streamed.
pub(super) fn rebuild<A: PersistentActor>(
    backend: &dyn Backend,
    codec: &Codec,
    key: &EntityKey,
    target: u64,
    head: u64,
    deleted_to: u64,
) -> Result<Recovered<A>> {
    {
        let _span = info_span!(
            "recovery",
            collection = key.collection(),
            entity = key.entity_id(),
            target
        )
        .entered();
        let started = Instant::now();
        let loaded = snapshot::latest::<A>(backend, codec, key, target)?;
        if (head == 0 || target == 0) && loaded.is_none() {
            return Ok(Recovered {
                state: None,
                snapshot_sequence_number: 0,
            });
        }
        let (mut state, from) = match loaded {
            Some(found) => (found.state, found.sequence_number.saturating_add(1)),
            None => (A::default(), 1),
        };
        if from <= deleted_to && from <= target {
            let reason = format!(
                "events up to {deleted_to} were deleted and no snapshot at or before {target} covers them"
            );
            // The current state must always be rebuildable: deletion needs a covering
            // snapshot, so its absence is damage. A past state may simply be gone.
            return Err(if target == head {
                Error::Corrupted {
                    record: key.describe(RecordKind::Event, from),
                    reason,
                }
            } else {
                Error::InvalidArgument(format!("cannot recover at {target}: {reason}"))
            });
        }
        let mut replayed = 0u64;
        journal::for_each_event(backend, codec, key, from, target, |_, decoded| {
            state.apply(&decoded.value);
            replayed += 1;
            Ok(())
        })?;
        let snapshot_sequence_number = from.saturating_sub(1);
        info!(snapshot_seq = snapshot_sequence_number, replayed, took = ?started.elapsed(), "recovered");
        Ok(Recovered {
            state: Some(state),
            snapshot_sequence_number,
        })
    }
}
