//! Queries across the entities of a collection (Akka's persistence-query): every event has
//! a global offset in its collection's log, gap-free and in commit order, so reading from
//! an offset never skips an event that commits later under a lower offset. Filters by
//! entity, type, tags and time; entity ids; the highest offset; live subscriptions.

mod filter;
mod iter;
mod load;
mod shared_pages;
mod subscription;

pub(crate) use shared_pages::Registry as SharedPagesRegistry;
use shared_pages::SharedPages;

pub use filter::EventFilter;
pub use iter::QueryIter;
pub use subscription::Subscription;

use crate::backend::Backend;
use crate::codec::Codec;
use crate::collection_log::{self, LogEntry};
use crate::crypto::{EncryptionKey, Keyring};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::keys::{RecordKind, name_prefix, prefix_end, read_id};
use crate::metadata::EventMetadata;
use crate::persistent_actor::PersistentActor;
use crate::store::event_schema;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

/// Pages of at least this many entries are loaded by two reader threads (a page of a
/// catch-up has 1,024; a live subscriber's pages are usually a commit's few entries).
const PARALLEL_LOAD_MIN: usize = 256;
/// Log entries examined per backend call when a query reads everything.
const PAGE: usize = 512;

/// An event with its place in its collection's log and in its entity's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent<E> {
    /// Position in the collection's log: from 1, gap-free, in commit order.
    pub offset: u64,
    /// The entity that persisted it.
    pub entity_id: String,
    /// Position in the entity's journal.
    pub sequence_number: u64,
    /// When it was persisted (microsecond precision).
    pub timestamp: SystemTime,
    /// The event's type name (empty for events written before format v2).
    pub event_type: String,
    /// Tags the actor attached.
    pub tags: Vec<String>,
    /// Correlation, causation, user and tenant.
    pub metadata: EventMetadata,
    /// The event, upcast to the current schema version.
    pub event: E,
}

/// One page of a query: the matching events, and where to read next.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage<E> {
    /// Matching events, in offset order.
    pub events: Vec<StoredEvent<E>>,
    /// The offset after the last log entry examined (matching or not): read from it next.
    pub next_offset: u64,
}

/// Reads the events of one collection whose events are `A::Event`.
///
/// ```
/// use rush_store::{EventFilter, EventQuery, MemoryManager, PersistentActor, Store};
/// use serde::{Deserialize, Serialize};
/// use std::sync::Arc;
///
/// #[derive(Default, Clone, Serialize, Deserialize)]
/// struct Counter { value: u64 }
/// impl PersistentActor for Counter {
///     type Event = u64;
///     fn apply(&mut self, n: &u64) { self.value += n; }
/// }
///
/// let backend = Arc::new(MemoryManager::default());
/// Store::<Counter>::new("counters", "a", backend.as_ref().clone(), None, false)?.persist(&1)?;
/// Store::<Counter>::new("counters", "b", backend.as_ref().clone(), None, false)?.persist(&2)?;
/// let query = EventQuery::<Counter>::new(backend, "counters", None)?;
/// assert_eq!(query.highest_offset()?, 2);
/// let b: Vec<_> = query.iter(1, EventFilter::all().entity("b")).collect::<Result<_, _>>()?;
/// assert_eq!((b[0].offset, b[0].event), (2, 2));
/// assert_eq!(query.entity_ids()?, vec!["a".to_owned(), "b".to_owned()]);
/// # Ok::<_, rush_store::Error>(())
/// ```
pub struct EventQuery<A: PersistentActor> {
    collection: String,
    log: Vec<u8>,
    db: Database,
    codec: Codec,
    /// Decoded pages shared with the other subscriptions of this collection (`None`: off).
    shared: Option<Arc<SharedPages<A::Event>>>,
    _actor: PhantomData<fn() -> A>,
}

impl<A: PersistentActor> Clone for EventQuery<A> {
    fn clone(&self) -> Self {
        Self {
            collection: self.collection.clone(),
            log: self.log.clone(),
            db: self.db.clone(),
            codec: self.codec.clone(),
            shared: self.shared.clone(),
            _actor: PhantomData,
        }
    }
}

impl<A: PersistentActor> std::fmt::Debug for EventQuery<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQuery")
            .field("collection", &self.collection)
            .finish_non_exhaustive()
    }
}

impl<A: PersistentActor> EventQuery<A> {
    /// Queries `collection` on `backend` (joining the [`Database`] open on it);
    /// `encryption_key` opens its records.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a key that is not 32 bytes; [`Error::InvalidArgument`] for
    /// a collection name that is empty or longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN)
    /// bytes; [`Error::Io`] when the database's threads cannot start.
    pub fn new(
        backend: Arc<dyn Backend>,
        collection: &str,
        encryption_key: Option<&[u8]>,
    ) -> Result<Self> {
        Self::open_in(
            Database::shortcut(backend, encryption_key, None)?,
            collection,
        )
    }

    /// Queries `collection` on `backend` (joining the [`Database`] open on it); the keys
    /// of `keyring` open its records.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a collection name that is empty or longer than
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes; [`Error::Io`] when the database's threads
    /// cannot start.
    pub fn with_keyring(
        backend: Arc<dyn Backend>,
        collection: &str,
        keyring: &Keyring,
    ) -> Result<Self> {
        Self::open_in(
            Database::with_keyring(backend, keyring.clone(), None)?,
            collection,
        )
    }

    /// Queries `collection` of `db`, opening records with the database's keys.
    pub(crate) fn open_in(db: Database, collection: &str) -> Result<Self> {
        db.check_open()?;
        Ok(Self {
            collection: collection.to_owned(),
            log: collection_log::log_of(collection)?,
            codec: Codec {
                keyring: db.settings.keyring.clone(),
                compression: None,
                schema: event_schema::<A>(),
            },
            shared: db
                .settings
                .shared_pages
                .pages(collection, std::any::TypeId::of::<A>()),
            db,
            _actor: PhantomData,
        })
    }

    /// Adds a key that opens records sealed before a key rotation.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when `key` is not 32 bytes.
    pub fn add_decryption_key(&mut self, key: &[u8]) -> Result<()> {
        self.codec
            .keyring
            .add_decryption_key(EncryptionKey::new(key)?);
        // Its pages may now decode what the handle's cannot: no longer shared.
        self.shared = self.db.settings.shared_pages.private();
        Ok(())
    }

    /// The collection queried.
    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The database queried.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The highest offset of the collection's log (0: no event yet).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a malformed log block; other engine failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn highest_offset(&self) -> Result<u64> {
        let highest = collection_log::highest_offset(self.db.engine()?.as_ref(), &self.log)?;
        // Asked after reading: an entry past a hold is not durable yet.
        Ok(match self.db.core.durable_end(&self.log) {
            Some(durable) => highest.min(durable),
            None => highest,
        })
    }

    /// Examines at most `limit` log entries from `from_offset` (inclusive) and returns
    /// those that match `filter`, with the offset to read from next.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a damaged record, a malformed log entry, or a log entry
    /// whose event is missing; [`Error::Decryption`] for a record sealed with a key this
    /// query does not hold; [`Error::Serialization`] for an event that does not decode as
    /// `A::Event`; other engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Storage`]).
    pub fn read(
        &self,
        from_offset: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventPage<A::Event>> {
        let engine = self.db.engine()?;
        let (matching, next_offset) = self.walk(engine.as_ref(), from_offset, filter, limit)?;
        // Events are loaded after the walk: the walk may hold the engine's iterator.
        let events = self.load_all(engine.as_ref(), matching, filter)?;
        Ok(EventPage {
            events,
            next_offset,
        })
    }

    /// The durable log entries from `from_offset` that `filter` lets through (at most
    /// `limit` examined), and the offset after the last one examined.
    fn walk(
        &self,
        engine: &dyn Backend,
        from_offset: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<(Vec<LogEntry>, u64)> {
        let from_offset = from_offset.max(1);
        let mut next_offset = from_offset;
        let mut examined = 0usize;
        let mut matching = Vec::new();
        collection_log::for_each_entry(engine, &self.log, from_offset, &mut |entry| {
            next_offset = entry.offset.saturating_add(1);
            examined += 1;
            if filter.matches_entry(&entry.entity_id, entry.timestamp_micros) {
                matching.push(entry);
            }
            Ok(examined < limit.max(1))
        })?;
        // Only durable entries count: asked after the walk, so an entry committed but not
        // yet flushed when it was read is left for the next read.
        if let Some(durable) = self.db.core.durable_end(&self.log) {
            if next_offset > durable.saturating_add(1) {
                // Entries past the durable end are left for later: ask for their flush.
                self.db.core.reader_waits_for_flush();
            }
            matching.retain(|entry| entry.offset <= durable);
            next_offset = next_offset.min(durable.saturating_add(1)).max(from_offset);
        }
        Ok((matching, next_offset))
    }

    /// [`EventQuery::read`] on the database's threads, for async callers.
    ///
    /// # Errors
    ///
    /// As [`EventQuery::read`]; a panic while decoding is [`Error::Panicked`].
    pub async fn read_async(
        &self,
        from_offset: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<EventPage<A::Event>> {
        let query = self.clone();
        let filter = filter.clone();
        self.db
            .core
            .compute("read collection log", move || {
                query.read(from_offset, &filter, limit)
            })
            .await
    }

    /// [`EventQuery::read_async`], also returning the backlog: how many durable log entries
    /// come after the page (0 when the page reached the log's durable end). The log's end
    /// is read only when the page was full, so a caught-up reader pays nothing extra.
    /// Subscriptions and projections report it as their lag.
    ///
    /// # Errors
    ///
    /// As [`EventQuery::read`].
    pub async fn read_with_backlog_async(
        &self,
        from_offset: u64,
        filter: &EventFilter,
        limit: usize,
    ) -> Result<(EventPage<A::Event>, u64)> {
        let from_offset = from_offset.max(1);
        let (query, walk_filter) = (self.clone(), filter.clone());
        let (mut entries, next_offset, backlog) = self
            .db
            .core
            .read("read collection log", move |engine| {
                let (entries, next_offset) =
                    query.walk(engine, from_offset, &walk_filter, limit)?;
                let examined = next_offset.saturating_sub(from_offset);
                let backlog = if examined >= limit.max(1) as u64 {
                    query
                        .highest_offset()?
                        .saturating_sub(next_offset.saturating_sub(1))
                } else {
                    0
                };
                Ok((entries, next_offset, backlog))
            })
            .await?;
        // A long page is decrypted and decoded by two reader threads, one half each: on a
        // catch-up that work is most of the cost, and one thread leaves the other core idle.
        // (A run of one entity's events cut in two is two runs, each read with one visit.)
        let second =
            (entries.len() >= PARALLEL_LOAD_MIN).then(|| entries.split_off(entries.len() / 2));
        let load = |entries: Vec<LogEntry>| {
            let (query, filter) = (self.clone(), filter.clone());
            self.db.core.read("load events", move |engine| {
                query.load_all(engine, entries, &filter)
            })
        };
        let events = match second {
            None => load(entries).await?,
            Some(second) => {
                let (mut first, second) = tokio::try_join!(load(entries), load(second))?;
                first.extend(second);
                first
            }
        };
        Ok((
            EventPage {
                events,
                next_offset,
            },
            backlog,
        ))
    }

    /// The matching events from `from_offset` (inclusive), in offset order, read one page
    /// of the collection's log at a time: memory stays bounded by a page whatever the
    /// size of the collection. The iterator owns a clone of this query.
    pub fn iter(&self, from_offset: u64, filter: EventFilter) -> QueryIter<A::Event> {
        QueryIter::start(self.clone(), from_offset, filter)
    }

    /// Every matching event from `from_offset` (inclusive), in offset order, collected in
    /// one `Vec`: memory grows with the collection. [`EventQuery::iter`] streams them
    /// instead, and [`EventQuery::read`] reads one page.
    ///
    /// # Errors
    ///
    /// As [`EventQuery::read`], for each page.
    pub fn events(
        &self,
        from_offset: u64,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent<A::Event>>> {
        self.iter(from_offset, filter.clone()).collect()
    }

    /// The ids of the entities that have events (or a deletion mark) in the collection,
    /// sorted. Costs one seek per entity and kind, not a walk over the events.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`](crate::Database::shutdown);
    /// [`Error::Corrupted`] for a malformed entity id in a key; other engine failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Storage`]).
    pub fn entity_ids(&self) -> Result<Vec<String>> {
        let mut ids = self.ids_with(RecordKind::Event)?;
        // An entity whose whole history was deleted keeps only its deletion mark.
        ids.extend(self.ids_with(RecordKind::DeletedTo)?);
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// The entity ids that have a key of `kind` in the collection, one seek each.
    fn ids_with(&self, kind: RecordKind) -> Result<Vec<String>> {
        let collection_start = name_prefix(kind, "collection", &self.collection)?;
        let collection_end = prefix_end(&collection_start);
        let mut ids = Vec::new();
        let mut from = collection_start.clone();
        let engine = self.db.engine()?;
        while let Some((key, _)) = engine.scan(&from, &collection_end, 1, false)?.first() {
            let (id, after) =
                read_id(key, collection_start.len()).ok_or_else(|| Error::Corrupted {
                    record: format!("a {} key of collection {:?}", kind.name(), self.collection),
                    reason: "malformed entity id".into(),
                })?;
            ids.push(id.to_owned());
            from = prefix_end(key.get(..after).unwrap_or_default());
        }
        Ok(ids)
    }

    /// A stream of the matching events from `from_offset` (inclusive): it catches up from
    /// the journal, then follows new commits, with no gap and no duplicate in between.
    pub fn subscribe(&self, from_offset: u64, filter: EventFilter) -> Subscription<A::Event> {
        Subscription::start(self.clone(), from_offset, filter)
    }
}

#[cfg(test)]
mod tests;
