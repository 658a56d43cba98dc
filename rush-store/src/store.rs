//! `Store<A>`: the facade over one entity's journal and snapshots. It orchestrates the
//! parts (keys, codec, journal, snapshot, backend) and owns no byte format.

mod async_api;
mod events;
mod key_rotation;
mod recovery;

pub use recovery::Recovered;
mod write;

pub use events::JournalIter;

use crate::backend::Backend;
use crate::codec::Codec;
use crate::codec::EventSchema;
use crate::compression::{CompressionConfig, CompressionStats};
use crate::crypto::EncryptionKey;
use crate::crypto::Keyring;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::health::HealthReport;
use crate::integrity::{self, IntegrityReport};
use crate::journal::{self, EventEnvelope};
use crate::keys::EntityKey;
use crate::metrics::{MetricsState, StoreMetrics};
use crate::persistent_actor::PersistentActor;
use crate::snapshot;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;
use tracing::warn;

/// When a persist call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After the record is flushed to disk (and fsynced, with the default
    /// [`SledConfig`](crate::SledConfig)): an acknowledged event survives a crash. The
    /// writer flushes once for every write waiting at that moment (group commit).
    #[default]
    Immediate,
    /// After the record is committed to the engine; the database's writer flushes at
    /// least every [`DatabaseConfig::flush_interval`](crate::DatabaseConfig::flush_interval)
    /// (500 ms by default). A crash may lose the writes of that last window, never reorder
    /// them or leave a gap. Readers (queries, subscriptions, projections) see a write only
    /// after that flush, so they never act on an event a crash can take back; a reader
    /// waiting for such writes has them flushed within
    /// [`DatabaseConfig::reader_flush_delay`](crate::DatabaseConfig::reader_flush_delay).
    Periodic,
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

/// The journal and snapshots of one entity (`collection`, `entity_id`) of type `A`: a
/// view of a [`Database`], whose writer makes every write durable.
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
///
/// The commit protocol is internal: a store's highest sequence number moves only when one
/// of its own writes committed.
///
/// ```compile_fail,E0624
/// # use rush_store::{MemoryManager, PersistentActor, Store};
/// # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
/// # struct Counter(i64);
/// # impl PersistentActor for Counter { type Event = i64; fn apply(&mut self, e: &i64) { self.0 += e; } }
/// let mut store = Store::<Counter>::new("c", "e", MemoryManager::default(), None, false).unwrap();
/// // Preparing a batch to commit elsewhere (and then advancing the journal's end without
/// // a commit) is not possible from outside.
/// let prepared = store.prepare_append(0, &[1], &Default::default());
/// ```
pub struct Store<A: PersistentActor> {
    key: EntityKey,
    db: Database,
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
    poisoned: Option<Error>,
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
    /// [`MemoryManager`](crate::MemoryManager)): the shortcut of spec 000, which opens (or
    /// joins) the [`Database`] on that engine.
    ///
    /// `encryption_key` must be exactly 32 bytes ([`Error::InvalidKey`] otherwise); with a
    /// key every record is sealed with XChaCha20-Poly1305. `compression` turns adaptive gzip on.
    /// Stores that share keys, or need older ones, open with [`Store::with_keyring`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a key that is not 32 bytes; [`Error::InvalidArgument`] for
    /// an empty or too long collection or entity id
    /// ([`EntityKey::new`](crate::EntityKey::new)); [`Error::Io`] when the database's
    /// threads cannot start; engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`]) reading the journal's end.
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
    ///
    /// # Errors
    ///
    /// As [`Store::new`].
    pub fn with_backend(
        collection: &str,
        entity_id: &str,
        backend: Arc<dyn Backend>,
        encryption_key: Option<&[u8]>,
        compression: bool,
    ) -> Result<Self> {
        let db = Database::shortcut(
            backend,
            encryption_key,
            compression.then(CompressionConfig::default),
        )?;
        Self::open_in(db, collection, entity_id)
    }

    /// Opens the store of one entity on `backend` (joining the [`Database`] open on it)
    /// with the keys of `keyring`, parsed once for every store that shares it: new records
    /// are sealed with its current key, and records sealed with any of its keys open.
    /// Compression is off until [`Store::set_compression_config`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an empty or too long collection or entity id
    /// ([`EntityKey::new`](crate::EntityKey::new)); [`Error::Io`] when the database's
    /// threads cannot start; engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`]) reading the journal's end.
    pub fn with_keyring(
        collection: &str,
        entity_id: &str,
        backend: Arc<dyn Backend>,
        keyring: &Keyring,
    ) -> Result<Self> {
        let db = Database::with_keyring(backend, keyring.clone(), None)?;
        Self::open_in(db, collection, entity_id)
    }

    /// The store of one entity in `db`, with the database's keys, compression and
    /// durability. Reads the journal's end on this thread.
    pub(crate) fn open_in(db: Database, collection: &str, entity_id: &str) -> Result<Self> {
        let mut store = Self::unloaded(db, collection, entity_id)?;
        let engine = store.db.engine()?;
        (store.highest, store.deleted_to) = journal::read_end(engine.as_ref(), &store.key)?;
        Ok(store)
    }

    /// A store whose journal end is not read yet (0, 0).
    pub(crate) fn unloaded(db: Database, collection: &str, entity_id: &str) -> Result<Self> {
        db.check_open()?;
        let key = EntityKey::new(collection, entity_id)?;
        let codec = Codec {
            keyring: db.settings.keyring.clone(),
            compression: db.settings.compression,
            schema: event_schema::<A>(),
        };
        Ok(Self {
            key,
            durability: db.settings.durability,
            db,
            codec,
            snapshots_to_keep: DEFAULT_SNAPSHOTS_TO_KEEP,
            highest: 0,
            deleted_to: 0,
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

    /// Chooses when persist calls return (default: the database's).
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// Keeps the newest `keep` snapshots (default 2, at least 1).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `keep` is 0.
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
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `config.min_ratio_threshold` is outside `[0, 1)`.
    pub fn set_compression_config(&mut self, config: CompressionConfig) -> Result<()> {
        config.validate()?;
        self.codec.compression = Some(config);
        Ok(())
    }

    /// Adds a key that opens records but never seals new ones: an older key, while a
    /// rotation is unfinished.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when `key` is not 32 bytes.
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

    /// The database this store is a view of.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn engine(&self) -> Result<Arc<dyn Backend>> {
        self.db.engine()
    }

    /// Sequence numbers of the stored snapshots, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown); engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`]).
    pub fn snapshot_sequence_numbers(&self) -> Result<Vec<u64>> {
        snapshot::list(self.engine()?.as_ref(), &self.key)
    }

    /// Events with sequence numbers `from..=to` (inclusive); `events(0, u64::MAX)` is all.
    /// An empty or out-of-range range is an empty `Vec`; deleted history is skipped.
    /// Collects the whole range in memory: [`Store::iter_events`] streams it instead.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged record (checksum, tag, torn write) or a gap in
    /// the journal; [`Error::Decryption`] for a record sealed with a key this handle does
    /// not hold; [`Error::Serialization`] for an event that does not decode as `A::Event`;
    /// other engine failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn events(&self, from: u64, to: u64) -> Result<Vec<A::Event>> {
        let mut out = Vec::new();
        self.visit_events(from, to, |_, decoded| {
            out.push(decoded.value);
            Ok(())
        })?;
        Ok(out)
    }

    /// The last `n` events, oldest first.
    ///
    /// # Errors
    ///
    /// As [`Store::events`].
    pub fn last_events_from(&self, n: u64) -> Result<Vec<A::Event>> {
        let head = journal::read_head(self.engine()?.as_ref(), &self.key)?;
        if n == 0 || head == 0 {
            return Ok(Vec::new());
        }
        self.events(head.saturating_sub(n - 1).max(1), head)
    }

    /// Events `from..=to` with their sequence numbers and timestamps, collected in one
    /// `Vec`: [`Store::iter_events`] streams them a page at a time instead.
    ///
    /// # Errors
    ///
    /// As [`Store::events`].
    pub fn events_with_metadata(&self, from: u64, to: u64) -> Result<Vec<EventEnvelope<A::Event>>> {
        let mut out = Vec::new();
        self.visit_events(from, to, |sequence_number, decoded| {
            out.push(EventEnvelope::from_decoded(sequence_number, decoded));
            Ok(())
        })?;
        Ok(out)
    }

    /// Events persisted between `start` and `end` (inclusive), oldest first. The journal
    /// is streamed and only the events in the window are kept. Events are stamped in whole
    /// microseconds, and the window is compared at that precision.
    ///
    /// # Errors
    ///
    /// As [`Store::events`].
    pub fn events_between(
        &self,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<EventEnvelope<A::Event>>> {
        let mut within = Vec::new();
        // Events are stamped in whole microseconds: compared at that precision, an event
        // stamped in the microsecond `start` falls in is inside the window.
        let (start, end) = (journal::time_to_micros(start), journal::time_to_micros(end));
        self.visit_events(0, u64::MAX, |sequence_number, decoded| {
            let timestamp = decoded.timestamp_micros;
            if timestamp >= start && timestamp <= end {
                within.push(EventEnvelope::from_decoded(sequence_number, decoded));
            }
            Ok(())
        })?;
        Ok(within)
    }

    /// Streams the stored events `from..=to` (clamped to what exists) to `visit`.
    pub(crate) fn visit_events(
        &self,
        from: u64,
        to: u64,
        visit: impl FnMut(u64, crate::codec::Decoded<A::Event>) -> Result<()>,
    ) -> Result<()> {
        let engine = self.engine()?;
        let backend = engine.as_ref();
        let head = journal::read_head(backend, &self.key)?;
        let deleted_to = journal::read_deleted_to(backend, &self.key)?;
        let from = from.max(deleted_to + 1).max(1);
        let to = to.min(head);
        journal::for_each_event(backend, &self.codec, &self.key, from, to, visit)
    }

    /// Events up to this sequence number were deleted (0: none).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a malformed deletion mark; other engine failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn deleted_to(&self) -> Result<u64> {
        journal::read_deleted_to(self.engine()?.as_ref(), &self.key)
    }

    /// Checks every record of the entity: checksum or tag, decoding, contiguity, and that
    /// each event has exactly one offset in its collection's log and each of the entity's
    /// log entries points at a stored event (this reads the collection's whole log).
    ///
    /// # Errors
    ///
    /// Damage is reported in the [`IntegrityReport`], not as an error. Errors are
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown) and
    /// engine failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`]) that stop the check.
    pub fn verify_integrity(&self) -> Result<IntegrityReport> {
        integrity::verify::<A>(self.engine()?.as_ref(), &self.codec, &self.key)
    }

    /// What compression did to the records written through this handle.
    pub fn compression_stats(&self) -> CompressionStats {
        self.stats
    }

    /// Counters of this handle.
    pub fn metrics(&self) -> StoreMetrics {
        self.metrics.snapshot()
    }

    /// Probes the database with a durable write through its writer, a read back and a
    /// removal, on the database's threads. A poisoned handle is reported as degraded.
    ///
    /// # Errors
    ///
    /// None today: every problem, a failed probe included, is in the [`HealthReport`].
    pub async fn health_check(&self) -> Result<HealthReport> {
        Ok(crate::health::probe_async(&self.db.core, self.poisoned.as_ref()).await)
    }

    fn check_writable(&self) -> Result<()> {
        self.db.check_open()?;
        match &self.poisoned {
            Some(why) => Err(Error::Poisoned(Box::new(why.clone()))),
            None => Ok(()),
        }
    }

    fn poison(&mut self, error: &Error) {
        warn!(%error, collection = self.key.collection(), entity = self.key.entity_id(), "store poisoned");
        self.poisoned = Some(error.clone());
    }
}
