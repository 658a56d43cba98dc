//! The async entry points of a store, for callers on a tokio runtime (the actors, sagas):
//! every engine call and every snapshot encode runs on the database's own threads, and
//! writes wait for the writer without blocking a thread.

use super::write::snapshot_batch;
use super::{Store, recovery};
use crate::database::Database;
use crate::error::Result;
use crate::journal;
use crate::metadata::EventMetadata;
use crate::persistent_actor::PersistentActor;
use std::sync::Arc;
use std::time::Instant;

impl Database {
    /// [`Database::store`] for async callers: the journal's end is read on the database's
    /// threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an empty or too long
    /// collection or entity id ([`EntityKey::new`](crate::EntityKey::new)); engine failures
    /// ([`Error::Io`](crate::Error::Io), [`Error::DiskFull`](crate::Error::DiskFull),
    /// [`Error::Corrupted`](crate::Error::Corrupted),
    /// [`Error::Storage`](crate::Error::Storage)) reading the journal's end;
    /// [`Error::Shutdown`](crate::Error::Shutdown) after
    /// [`Database::shutdown`](crate::Database::shutdown).
    pub async fn store_async<A: PersistentActor>(
        &self,
        collection: &str,
        entity_id: &str,
    ) -> Result<Store<A>> {
        let mut store = Store::<A>::unloaded(self.clone(), collection, entity_id)?;
        let key = store.key.clone();
        let (highest, deleted_to) = self
            .core
            .read("open store", move |engine| journal::read_end(engine, &key))
            .await?;
        store.highest = highest;
        store.deleted_to = deleted_to;
        Ok(store)
    }
}

impl<A: PersistentActor> Store<A> {
    /// [`Store::persist_expected_with`] at this handle's highest sequence number, for async
    /// callers. Resolves once the writer acknowledged the events (durable under
    /// `Immediate`); a stale handle gets [`Error::Conflict`](crate::Error::Conflict) and
    /// nothing is written.
    ///
    /// # Errors
    ///
    /// As [`Store::persist`].
    pub async fn persist_async(
        &mut self,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<u64> {
        self.check_writable()?;
        if events.is_empty() {
            return Ok(self.highest);
        }
        let expected = self.highest;
        let started = Instant::now();
        // Events are small (at most 1 MiB each): encoding them here costs less than a hop.
        let mut prepared = self.prepare_append(expected, events, metadata)?;
        let batch = std::mem::take(&mut prepared.batch);
        let bytes = batch.payload_bytes();
        let outcome = self.db.core.write_async(batch, self.durability).await;
        if let Some(expected) = self.settle(expected, outcome)? {
            // Rare: boxed, so that every persist's future stays small.
            return Err(Box::pin(self.conflict_async(expected)).await);
        }
        self.finish_append(None, &prepared, bytes, started.elapsed())
    }

    /// [`Store::snapshot`] for async callers: the state is encoded (bincode, gzip, seal:
    /// up to 256 MiB) on the database's threads.
    ///
    /// # Errors
    ///
    /// As [`Store::snapshot`]; a panic while encoding the state is
    /// [`Error::Panicked`](crate::Error::Panicked).
    pub async fn snapshot_async(&mut self, state: &A) -> Result<()> {
        self.check_writable()?;
        let codec = self.codec.clone();
        let key = self.key.clone();
        let at = (self.highest, self.deleted_to, self.snapshots_to_keep);
        let state = state.clone();
        let mut prepared = self
            .db
            .core
            .read("encode snapshot", move |engine| {
                snapshot_batch(engine, &codec, &key, at, &state)
            })
            .await?;
        let batch = std::mem::take(&mut prepared.batch);
        let bytes = batch.payload_bytes();
        let outcome = self.db.core.write_async(batch, self.durability).await;
        if let Some(expected) = self.settle(prepared.sequence_number, outcome)? {
            return Err(self.conflict_async(expected).await);
        }
        self.finish_snapshot(None, &prepared, bytes)
    }

    /// [`Store::delete_events_to`] for async callers: pages are read on the database's
    /// threads and each is committed by its writer.
    ///
    /// # Errors
    ///
    /// As [`Store::delete_events_to`].
    pub async fn delete_events_to_async(&mut self, seq: u64) -> Result<u64> {
        self.check_writable()?;
        let core = Arc::clone(&self.db.core);
        let key = self.key.clone();
        let removed = self
            .db
            .core
            .read("delete events", move |_| {
                journal::delete_events_to(&core, &key, seq)
            })
            .await
            .inspect_err(|e| {
                if !e.nothing_written() {
                    self.poison(e);
                }
            })?;
        self.deleted_to = self.deleted_to.max(seq);
        Ok(removed)
    }

    /// [`Store::recover`] on the database's threads; also refreshes this handle's view of
    /// the journal's end.
    ///
    /// # Errors
    ///
    /// As [`Store::recover`]; a panic in `apply` is
    /// [`Error::Panicked`](crate::Error::Panicked).
    pub async fn recover_async(&mut self) -> Result<Option<A>> {
        let codec = self.codec.clone();
        let key = self.key.clone();
        let (state, highest, deleted_to) = self
            .db
            .core
            .read("recover", move |engine| {
                let (rebuilt, (head, deleted_to)) =
                    recovery::rebuild_to_end::<A>(engine, &codec, &key)?;
                Ok((rebuilt.state, head, deleted_to))
            })
            .await?;
        self.highest = highest;
        self.deleted_to = deleted_to;
        Ok(state)
    }

    /// [`Store::snapshot_sequence_numbers`] on the database's threads.
    ///
    /// # Errors
    ///
    /// As [`Store::snapshot_sequence_numbers`].
    pub async fn snapshot_sequence_numbers_async(&self) -> Result<Vec<u64>> {
        let key = self.key.clone();
        self.db
            .core
            .read("list snapshots", move |engine| {
                crate::snapshot::list(engine, &key)
            })
            .await
    }

    /// The conflict error for a write that expected the journal to end at `expected`.
    async fn conflict_async(&self, expected: u64) -> crate::Error {
        let key = self.key.clone();
        match self
            .db
            .core
            .read("read journal end", move |engine| {
                journal::read_head(engine, &key)
            })
            .await
        {
            Ok(actual) => crate::Error::Conflict { expected, actual },
            Err(error) => error,
        }
    }
}
