//! `Store<A>`: the facade over one entity's journal and snapshots. It orchestrates the
//! parts (keys, codec, journal, snapshot, backend) and owns no byte format.

mod key_rotation;
mod recovery;

use crate::backend::{Backend, GuardFailed};
use crate::codec::Codec;
use crate::codec::EventSchema;
use crate::compression::{CompressionConfig, CompressionStats};
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::health::{self, HealthReport};
use crate::integrity::{self, IntegrityReport};
use crate::journal::{self, EventEnvelope, PreparedAppend};
use crate::keys::EntityKey;
use crate::metadata::{EventMetadata, RecordMeta};
use crate::metrics::{MetricsState, StoreMetrics};
use crate::persistent_actor::PersistentActor;
use crate::snapshot;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tracing::{debug, debug_span, warn};

/// When a persist call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the record is flushed to disk (and fsynced, with the default
    /// [`SledConfig`](crate::SledConfig)): an acknowledged event survives a crash.
    #[default]
    Immediate,
    /// After the record is written to the engine; the engine flushes in the background
    /// (sled: every `flush_every_ms`, 500 ms by default). A process crash may lose the
    /// writes of that last window, never reorder them or leave a gap.
    Periodic,
}

/// A snapshot encoded by [`Store::prepare_snapshot`], ready to commit.
#[derive(Debug)]
pub struct PreparedSnapshot {
    batch: crate::backend::WriteBatch,
    sequence_number: u64,
    stats: CompressionStats,
    bytes: usize,
}

impl PreparedSnapshot {
    /// The sequence number the snapshot covers (the journal's end it is guarded on).
    pub fn sequence_number(&self) -> u64 {
        self.sequence_number
    }

    /// Takes the batch out (to merge it into a group commit).
    pub fn take_batch(&mut self) -> crate::backend::WriteBatch {
        std::mem::take(&mut self.batch)
    }
}

/// The event schema of `A`: its version and upcasters.
pub(crate) fn event_schema<A: PersistentActor>() -> EventSchema {
    let mut upcasters = crate::upcast::Upcasters::default();
    A::upcasters(&mut upcasters);
    EventSchema {
        version: A::EVENT_SCHEMA_VERSION,
        upcasters: Arc::new(upcasters),
    }
}

/// How many snapshots a store keeps by default.
pub const DEFAULT_SNAPSHOTS_TO_KEEP: usize = 2;

/// The journal and snapshots of one entity (`collection`, `entity_id`) of type `A`.
///
/// ```
/// use rush_store::{MemoryManager, PersistentActor, Store};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// struct Counter { value: i64 }
///
/// impl PersistentActor for Counter {
///     type Event = i64;
///     fn apply(&mut self, delta: &i64) { self.value += delta; }
/// }
///
/// let manager = MemoryManager::default();
/// let mut store = Store::<Counter>::new("counters", "c-1", manager.clone(), Some(&[7u8; 32]), true)?;
/// assert_eq!(store.persist(&5)?, 1);
/// assert_eq!(store.persist_batch(&[1, 2])?, 3);
/// store.snapshot(&Counter { value: 8 })?;
/// store.persist(&-3)?;
///
/// // Another handle (or the same process after a restart) recovers the state.
/// let reopened = Store::<Counter>::new("counters", "c-1", manager, Some(&[7u8; 32]), true)?;
/// assert_eq!(reopened.recover()?.map(|c| c.value), Some(5));
/// assert_eq!(reopened.events(2, 3)?, vec![1, 2]);
/// # Ok::<_, rush_store::Error>(())
/// ```
pub struct Store<A: PersistentActor> {
    key: EntityKey,
    backend: Arc<dyn Backend>,
    codec: Codec,
    durability: Durability,
    snapshots_to_keep: usize,
    /// The highest sequence number this handle has seen committed.
    highest: u64,
    /// The deletion mark this handle last saw: writes are guarded on it.
    deleted_to: u64,
    stats: CompressionStats,
    metrics: MetricsState,
    /// Set after a write failed in a way that leaves its outcome unknown.
    poisoned: Option<String>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: PersistentActor> std::fmt::Debug for Store<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("collection", &self.key.collection())
            .field("entity_id", &self.key.entity_id())
            .field("highest", &self.highest)
            .field("encrypted", &self.codec.keyring.current().is_some())
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl<A: PersistentActor> Store<A> {
    /// Opens the store of one entity on `manager` ([`SledManager`](crate::SledManager) or
    /// [`MemoryManager`](crate::MemoryManager)).
    ///
    /// `encryption_key` must be exactly 32 bytes ([`Error::InvalidKey`] otherwise); with a
    /// key every record is sealed with XChaCha20-Poly1305. `compression` turns adaptive gzip on.
    /// Stores that share keys, or need older ones, open with [`Store::with_keyring`].
    pub fn new<B: Backend>(
        collection: &str,
        entity_id: &str,
        manager: B,
        encryption_key: Option<&[u8]>,
        compression: bool,
    ) -> Result<Self> {
        Self::with_backend(
            collection,
            entity_id,
            Arc::new(manager),
            encryption_key,
            compression,
        )
    }

    /// [`Store::new`] on a shared backend handle.
    pub fn with_backend(
        collection: &str,
        entity_id: &str,
        backend: Arc<dyn Backend>,
        encryption_key: Option<&[u8]>,
        compression: bool,
    ) -> Result<Self> {
        let encryption_key = encryption_key.map(EncryptionKey::new).transpose()?;
        let keyring = Keyring::from(encryption_key);
        let compression = compression.then(CompressionConfig::default);
        Self::open(collection, entity_id, backend, keyring, compression)
    }

    /// Opens the store of one entity on `backend` with the keys of `keyring`, parsed once
    /// for every store that shares it: new records are sealed with its current key, and
    /// records sealed with any of its keys open. Compression is off until
    /// [`Store::set_compression_config`].
    pub fn with_keyring(
        collection: &str,
        entity_id: &str,
        backend: Arc<dyn Backend>,
        keyring: &Keyring,
    ) -> Result<Self> {
        Self::open(collection, entity_id, backend, keyring.clone(), None)
    }

    fn open(
        collection: &str,
        entity_id: &str,
        backend: Arc<dyn Backend>,
        keyring: Keyring,
        compression: Option<CompressionConfig>,
    ) -> Result<Self> {
        let key = EntityKey::new(collection, entity_id)?;
        let highest = journal::read_head(backend.as_ref(), &key)?;
        let deleted_to = journal::read_deleted_to(backend.as_ref(), &key)?;
        Ok(Self {
            key,
            backend,
            codec: Codec {
                keyring,
                compression,
                schema: event_schema::<A>(),
            },
            durability: Durability::default(),
            snapshots_to_keep: DEFAULT_SNAPSHOTS_TO_KEEP,
            highest,
            deleted_to,
            stats: CompressionStats::default(),
            metrics: MetricsState::default(),
            poisoned: None,
            _actor: PhantomData,
        })
    }

    /// When persist calls return.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// Chooses when persist calls return (default [`Durability::Immediate`]).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// Keeps the newest `keep` snapshots (default 2, at least 1).
    pub fn set_snapshots_to_keep(&mut self, keep: usize) -> Result<()> {
        if keep == 0 {
            return Err(Error::InvalidArgument(
                "at least one snapshot must be kept".into(),
            ));
        }
        self.snapshots_to_keep = keep;
        Ok(())
    }

    /// Changes when records are compressed (and turns compression on).
    pub fn set_compression_config(&mut self, config: CompressionConfig) -> Result<()> {
        config.validate()?;
        self.codec.compression = Some(config);
        Ok(())
    }

    /// Adds a key that opens records but never seals new ones: an older key, while a
    /// rotation is unfinished.
    pub fn add_decryption_key(&mut self, key: &[u8]) -> Result<()> {
        self.codec
            .keyring
            .add_decryption_key(EncryptionKey::new(key)?);
        Ok(())
    }

    /// The collection and entity id of this store.
    pub fn entity(&self) -> &EntityKey {
        &self.key
    }

    /// The highest sequence number this handle has seen persisted (0: none).
    pub fn highest_sequence_number(&self) -> u64 {
        self.highest
    }

    /// The shared backend handle.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Persists one event and returns its sequence number.
    pub fn persist(&mut self, event: &A::Event) -> Result<u64> {
        self.persist_batch(std::slice::from_ref(event))
    }

    /// Persists `events` atomically (all or none) and returns the highest sequence number.
    pub fn persist_batch(&mut self, events: &[A::Event]) -> Result<u64> {
        self.persist_expected(self.highest, events)
    }

    /// Persists `events` atomically with `metadata` (correlation, causation, user, tenant)
    /// recorded on each; returns the highest sequence number.
    pub fn persist_with_metadata(
        &mut self,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<u64> {
        self.persist_expected_with(self.highest, events, metadata)
    }

    /// Persists `events` only if the journal's highest sequence number is `expected_seq`;
    /// otherwise [`Error::Conflict`] and nothing is written.
    pub fn persist_expected(&mut self, expected_seq: u64, events: &[A::Event]) -> Result<u64> {
        self.persist_expected_with(expected_seq, events, &EventMetadata::default())
    }

    /// [`Store::persist_expected`] with `metadata` recorded on each event.
    pub fn persist_expected_with(
        &mut self,
        expected_seq: u64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<u64> {
        let _span = debug_span!(
            "persist",
            collection = self.key.collection(),
            entity = self.key.entity_id(),
            count = events.len()
        )
        .entered();
        self.check_writable()?;
        if events.is_empty() {
            return Ok(self.highest);
        }
        if expected_seq != self.highest {
            // The caller read the state elsewhere: compare with the journal itself, since a
            // larger expectation than the journal's end would leave a gap.
            let actual = journal::read_head(self.backend.as_ref(), &self.key)?;
            if expected_seq != actual {
                return Err(Error::Conflict {
                    expected: expected_seq,
                    actual,
                });
            }
            self.deleted_to = journal::read_deleted_to(self.backend.as_ref(), &self.key)?;
        }
        let started = Instant::now();
        let mut prepared = self.prepare_append_with(expected_seq, events, metadata)?;
        let batch = prepared.take_batch();
        let bytes = batch.payload_bytes();
        let outcome = self.backend.commit(&batch);
        self.settle_commit(expected_seq, outcome)?;
        self.durable()?;
        self.complete_append(&prepared, bytes, started.elapsed());
        debug!(last_seq = prepared.last_seq, "persisted");
        Ok(prepared.last_seq)
    }

    /// Encodes `events` to follow `expected_seq`, without writing: for a writer that commits
    /// the appends of many entities as one batch. After that batch is committed (and
    /// flushed), call [`Store::complete_append`].
    pub fn prepare_append(&self, expected_seq: u64, events: &[A::Event]) -> Result<PreparedAppend> {
        self.prepare_append_with(expected_seq, events, &EventMetadata::default())
    }

    /// [`Store::prepare_append`] with `metadata` recorded on each event.
    pub fn prepare_append_with(
        &self,
        expected_seq: u64,
        events: &[A::Event],
        metadata: &EventMetadata,
    ) -> Result<PreparedAppend> {
        journal::prepare_append(
            &self.codec,
            &self.key,
            expected_seq,
            self.deleted_to,
            events,
            &|event| RecordMeta {
                event_type: A::event_type(event),
                schema_version: A::EVENT_SCHEMA_VERSION,
                tags: A::event_tags(event),
                metadata: metadata.clone(),
            },
        )
    }

    /// Records that a [`PreparedAppend`] was committed by someone else's batch.
    pub fn complete_append(
        &mut self,
        prepared: &PreparedAppend,
        bytes_written: usize,
        took: std::time::Duration,
    ) {
        self.highest = prepared.last_seq;
        for (serialized, stored, compressed) in &prepared.encoded {
            self.stats.record(*serialized, *stored, *compressed);
        }
        let m = &mut self.metrics;
        m.events_persisted += prepared.last_seq - prepared.expected;
        m.persist_calls = m.persist_calls.saturating_add(1);
        m.persist_time += took;
        m.bytes_written += bytes_written as u64;
        m.last_event_timestamp = Some(journal::micros_to_time(prepared.timestamp_micros));
    }

    /// Stores `state` as the snapshot at the current highest sequence number, and removes
    /// snapshots beyond the newest [`set_snapshots_to_keep`](Store::set_snapshots_to_keep).
    pub fn snapshot(&mut self, state: &A) -> Result<()> {
        let _span = debug_span!(
            "snapshot",
            collection = self.key.collection(),
            entity = self.key.entity_id(),
            seq = self.highest
        )
        .entered();
        self.check_writable()?;
        let mut prepared = self.prepare_snapshot(state)?;
        let outcome = self.backend.commit(&prepared.take_batch());
        self.settle_commit(prepared.sequence_number, outcome)?;
        self.durable()?;
        self.complete_snapshot(&prepared);
        debug!("snapshot written");
        Ok(())
    }

    /// Encodes `state` as the snapshot at the current highest sequence number, with the
    /// retention deletes, without writing (for a group-commit writer). After the batch is
    /// committed, call [`Store::complete_snapshot`].
    pub fn prepare_snapshot(&self, state: &A) -> Result<PreparedSnapshot> {
        let (batch, stats) = snapshot::prepare(
            self.backend.as_ref(),
            &self.codec,
            &self.key,
            self.highest,
            self.deleted_to,
            state,
            self.snapshots_to_keep,
        )?;
        Ok(PreparedSnapshot {
            bytes: batch.payload_bytes(),
            batch,
            sequence_number: self.highest,
            stats,
        })
    }

    /// Records that a [`PreparedSnapshot`] was committed.
    pub fn complete_snapshot(&mut self, prepared: &PreparedSnapshot) {
        self.stats.original_bytes += prepared.stats.original_bytes;
        self.stats.compressed_bytes += prepared.stats.compressed_bytes;
        self.stats.compressed_events += prepared.stats.compressed_events;
        self.stats.uncompressed_events += prepared.stats.uncompressed_events;
        self.metrics.snapshots_created += 1;
        self.metrics.bytes_written += prepared.bytes as u64;
    }

    /// Sequence numbers of the stored snapshots, oldest first.
    pub fn snapshot_sequence_numbers(&self) -> Result<Vec<u64>> {
        snapshot::list(self.backend.as_ref(), &self.key)
    }

    /// Events with sequence numbers `from..=to` (inclusive); `events(0, u64::MAX)` is all.
    /// An empty or out-of-range range is an empty `Vec`; deleted history is skipped.
    pub fn events(&self, from: u64, to: u64) -> Result<Vec<A::Event>> {
        let mut out = Vec::new();
        self.visit_events(from, to, |_, decoded| {
            out.push(decoded.value);
            Ok(())
        })?;
        Ok(out)
    }

    /// The last `n` events, oldest first.
    pub fn last_events_from(&self, n: u64) -> Result<Vec<A::Event>> {
        let head = journal::read_head(self.backend.as_ref(), &self.key)?;
        if n == 0 || head == 0 {
            return Ok(Vec::new());
        }
        self.events(head.saturating_sub(n - 1).max(1), head)
    }

    /// Events `from..=to` with their sequence numbers and timestamps.
    pub fn events_with_metadata(&self, from: u64, to: u64) -> Result<Vec<EventEnvelope<A::Event>>> {
        let mut out = Vec::new();
        self.visit_events(from, to, |sequence_number, decoded| {
            out.push(EventEnvelope::from_decoded(sequence_number, decoded));
            Ok(())
        })?;
        Ok(out)
    }

    /// Events persisted between `start` and `end` (inclusive), oldest first.
    pub fn events_between(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<EventEnvelope<A::Event>>> {
        let mut all = self.events_with_metadata(0, u64::MAX)?;
        all.retain(|e| e.timestamp >= start && e.timestamp <= end);
        Ok(all)
    }

    /// Streams the stored events `from..=to` (clamped to what exists) to `visit`.
    pub(crate) fn visit_events(
        &self,
        from: u64,
        to: u64,
        visit: impl FnMut(u64, crate::codec::Decoded<A::Event>) -> Result<()>,
    ) -> Result<()> {
        let backend = self.backend.as_ref();
        let head = journal::read_head(backend, &self.key)?;
        let deleted_to = journal::read_deleted_to(backend, &self.key)?;
        let from = from.max(deleted_to + 1).max(1);
        let to = to.min(head);
        journal::for_each_event(backend, &self.codec, &self.key, from, to, visit)
    }

    /// Removes events `1..=seq`, which must be covered by a stored snapshot. The highest
    /// sequence number does not change and recovery still works. Returns how many were removed.
    pub fn delete_events_to(&mut self, seq: u64) -> Result<u64> {
        self.check_writable()?;
        journal::check_deletable(self.backend.as_ref(), &self.key, seq)?;
        let removed = journal::delete_events_to(self.backend.as_ref(), &self.key, seq)
            .inspect_err(|e| self.poison(e))?;
        self.deleted_to = self.deleted_to.max(seq);
        self.durable()?;
        Ok(removed)
    }

    /// Re-reads the deletion mark, after history was deleted through another handle (writes
    /// are guarded on the mark this handle saw).
    pub fn refresh_deletion_mark(&mut self) -> Result<()> {
        self.deleted_to = journal::read_deleted_to(self.backend.as_ref(), &self.key)?;
        Ok(())
    }

    /// Events up to this sequence number were deleted (0: none).
    pub fn deleted_to(&self) -> Result<u64> {
        journal::read_deleted_to(self.backend.as_ref(), &self.key)
    }

    /// Checks every record of the entity: checksum or tag, decoding, contiguity, and that
    /// each event has exactly one offset in its collection's log and each of the entity's
    /// log entries points at a stored event (this reads the collection's whole log).
    pub fn verify_integrity(&self) -> Result<IntegrityReport> {
        integrity::verify::<A>(self.backend.as_ref(), &self.codec, &self.key)
    }

    /// What compression did to the records written through this handle.
    pub fn compression_stats(&self) -> CompressionStats {
        self.stats
    }

    /// Counters of this handle.
    pub fn metrics(&self) -> StoreMetrics {
        self.metrics.snapshot()
    }

    /// Probes the database with a durable write, read back and removal.
    pub async fn health_check(&self) -> Result<HealthReport> {
        let backend = Arc::clone(&self.backend);
        let key = self.key.probe_key();
        let poisoned = self.poisoned.clone();
        let run = move || health::probe(backend.as_ref(), &key, poisoned.as_deref());
        // A flush blocks: keep it off the async worker when a tokio runtime is there.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(run)
                .await
                .map_err(|e| Error::storage("health check", e)),
            Err(_) => Ok(run()),
        }
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    fn poison(&mut self, error: &Error) {
        warn!(%error, collection = self.key.collection(), entity = self.key.entity_id(), "store poisoned");
        self.poisoned = Some(error.to_string());
    }

    /// Interprets the outcome of committing a prepared batch that expected the journal to
    /// end at `expected`: a failed guard is [`Error::Conflict`] (with the journal's actual
    /// highest sequence number), and an engine error poisons this handle.
    pub fn settle_commit(
        &mut self,
        expected: u64,
        outcome: Result<Result<(), GuardFailed>>,
    ) -> Result<()> {
        match outcome {
            Ok(Ok(())) => Ok(()),
            // The slot after `expected` is taken, or history was deleted meanwhile: another
            // writer moved this entity on. Nothing of this batch was written.
            Ok(Err(GuardFailed { .. })) => {
                let actual = journal::read_head(self.backend.as_ref(), &self.key)?;
                Err(Error::Conflict { expected, actual })
            }
            Err(e) => {
                self.poison(&e);
                Err(e)
            }
        }
    }

    /// Marks this handle unusable for writes after a failure outside it (a group commit
    /// whose flush failed).
    pub fn poison_with(&mut self, error: &Error) {
        self.poison(error);
    }

    /// Flushes when the durability mode asks for it; a failed flush poisons.
    fn durable(&mut self) -> Result<()> {
        if self.durability == Durability::Immediate
            && let Err(e) = self.backend.flush()
        {
            self.poison(&e);
            return Err(e);
        }
        Ok(())
    }
}
