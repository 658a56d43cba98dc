//! Untyped inspection and maintenance of a whole database, for operators and the `rush`
//! command-line tool: list entities, read event envelopes, verify every record, count what
//! is stored, rotate the key of every record, delete covered history, compact, and give
//! events written before format v2 their collection-log entries (reindex).
//!
//! An [`Inspector`] knows no event type. It walks the key space by kind (events,
//! snapshots, deletion marks, collection-log blocks, table rows) and opens records with
//! the same envelope, crypto and compression code the stores use, so it checks exactly
//! what a store would check, short of decoding payloads. An application that knows its
//! types decodes a [`RawEvent`] with [`RawEvent::decode`].
//!
//! ```
//! use rush_store::inspect::{Inspector, Scope};
//! use rush_store::{Backend, MemoryManager, PersistentActor, Store};
//! use std::sync::Arc;
//! # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
//! # struct Counter(u64);
//! # impl PersistentActor for Counter { type Event = u64; fn apply(&mut self, e: &u64) { self.0 += e; } }
//!
//! let backend: Arc<dyn Backend> = Arc::new(MemoryManager::default());
//! let mut store = Store::<Counter>::with_backend("counters", "c-1", backend.clone(), Some(&[7; 32]), true)?;
//! store.persist_batch(&[1, 2, 3])?;
//!
//! let inspector = Inspector::new(backend).with_key(&[7; 32])?;
//! let entities = inspector.entities(&Scope::All, &mut |_| true)?;
//! assert_eq!((entities[0].events, entities[0].highest_sequence_number()), (3, 3));
//! assert!(inspector.verify(&Scope::All, &mut |_| true)?.is_ok());
//! # Ok::<_, rush_store::Error>(())
//! ```

mod maintenance;
mod record;
mod reindex;
mod scan;
mod stats;
pub mod transfer;
mod verify;

pub use maintenance::{CompactReport, RotateReport};
pub use record::{Envelope, EventMeta, RawEvent};
pub use reindex::{CollectionReindex, ReindexReport};
pub use stats::{KindStats, Stats};
pub use verify::VerifyReport;

use crate::backend::Backend;
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::keys::{EntityKey, RecordKind, name_prefix};
use scan::Parsed;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Called after each page of records with how many it held; returning `false` stops the
/// walk at that page boundary. Every page a write makes is one atomic batch, so a stopped
/// maintenance run leaves the database consistent and is finished by running it again.
pub type Progress<'a> = dyn FnMut(u64) -> bool + 'a;

/// Which part of the database an operation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every record, including table rows and collection logs.
    All,
    /// The entities and the log of one collection.
    Collection(String),
    /// One entity's events, snapshots and deletion mark.
    Entity(EntityKey),
}

impl Scope {
    /// `[start, end)` key ranges of the record kinds `kinds` within this scope, in key order.
    fn ranges(&self, kinds: &[RecordKind]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut ranges = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let prefix = match self {
                Scope::All => vec![kind as u8],
                Scope::Collection(name) => name_prefix(kind, "collection", name)?,
                Scope::Entity(key) => match kind {
                    RecordKind::Event | RecordKind::Snapshot | RecordKind::DeletedTo => {
                        key.prefix(kind)
                    }
                    // A collection's log and tables are not one entity's.
                    _ => continue,
                },
            };
            let end = crate::keys::prefix_end(&prefix);
            ranges.push((prefix, end));
        }
        Ok(ranges)
    }
}

/// What the journal of one entity holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntitySummary {
    /// The collection.
    pub collection: String,
    /// The entity id.
    pub entity_id: String,
    /// Event records stored.
    pub events: u64,
    /// Sequence number of the oldest stored event (0: none).
    pub first_event: u64,
    /// Sequence number of the newest stored event (0: none).
    pub last_event: u64,
    /// Events up to this sequence number were deleted on purpose (0: none).
    pub deleted_to: u64,
    /// Sequence numbers of the stored snapshots, oldest first.
    pub snapshots: Vec<u64>,
}

impl EntitySummary {
    /// The journal's end: the newest event, or the deletion mark when every event up to
    /// it was deleted.
    pub fn highest_sequence_number(&self) -> u64 {
        self.last_event.max(self.deleted_to)
    }
}

/// Reads (and maintains) a database without knowing its types. See the module docs.
#[derive(Debug, Clone)]
pub struct Inspector {
    backend: Arc<dyn Backend>,
    keyring: Keyring,
}

impl Inspector {
    /// An inspector without a key: it checks the envelopes of encrypted records, and opens
    /// records that are not encrypted.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            keyring: Keyring::default(),
        }
    }

    /// An inspector that opens records with the keys of `keyring`. Its current key is the
    /// one [`Inspector::check_key`] checks and [`Inspector::rotate_key`] rotates from.
    pub fn with_keyring(backend: Arc<dyn Backend>, keyring: &Keyring) -> Self {
        Self {
            backend,
            keyring: keyring.clone(),
        }
    }

    /// Opens encrypted records with `key` (32 bytes), and seals with it in
    /// [`Inspector::rotate_key`] until the new key takes over.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when `key` is not 32 bytes.
    pub fn with_key(mut self, key: &[u8]) -> Result<Self> {
        self.keyring.promote(EncryptionKey::new(key)?);
        Ok(self)
    }

    /// Adds a key that opens records (an older key, while a rotation is unfinished).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when `key` is not 32 bytes.
    pub fn add_decryption_key(&mut self, key: &[u8]) -> Result<()> {
        self.keyring.add_decryption_key(EncryptionKey::new(key)?);
        Ok(())
    }

    /// The id of the key given with [`Inspector::with_key`], as stored in record headers.
    pub fn key_id(&self) -> Option<u32> {
        self.keyring.current().map(EncryptionKey::id)
    }

    /// The database.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The database whose writer commits this inspector's maintenance pages (shared with
    /// any database open on the same engine in this process).
    pub(crate) fn database(&self) -> Result<crate::database::Database> {
        crate::database::Database::shortcut(Arc::clone(&self.backend), None, None)
    }

    /// The entities in `scope`, sorted by collection and entity id, with their event
    /// counts, ends, snapshots and deletion marks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a [`Scope::Collection`] name that is empty or longer
    /// than [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes; engine failures ([`Error::Io`],
    /// [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]).
    pub fn entities(
        &self,
        scope: &Scope,
        progress: &mut Progress<'_>,
    ) -> Result<Vec<EntitySummary>> {
        let mut entities: BTreeMap<(String, String), EntitySummary> = BTreeMap::new();
        let ranges = scope.ranges(&[
            RecordKind::Event,
            RecordKind::Snapshot,
            RecordKind::DeletedTo,
        ])?;
        fn summary<'m>(
            entities: &'m mut BTreeMap<(String, String), EntitySummary>,
            key: &EntityKey,
        ) -> &'m mut EntitySummary {
            entities
                .entry((key.collection().to_owned(), key.entity_id().to_owned()))
                .or_insert_with(|| EntitySummary {
                    collection: key.collection().to_owned(),
                    entity_id: key.entity_id().to_owned(),
                    ..EntitySummary::default()
                })
        }
        scan::walk(
            self.backend.as_ref(),
            &ranges,
            progress,
            &mut |_, value, parsed| {
                let entities = &mut entities;
                match parsed {
                    Parsed::Event(key, seq) => {
                        let entity = summary(entities, &key);
                        entity.events += 1;
                        if entity.first_event == 0 {
                            entity.first_event = seq;
                        }
                        entity.last_event = seq;
                    }
                    Parsed::Snapshot(key, seq) => summary(entities, &key).snapshots.push(seq),
                    Parsed::DeletionMark(key) => {
                        summary(entities, &key).deleted_to =
                            crate::journal::decode_u64(value).unwrap_or(0);
                    }
                    _ => {}
                }
                Ok(true)
            },
        )?;
        Ok(entities.into_values().collect())
    }

    /// The highest offset of `collection`'s log (0: empty).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a collection name that is empty or longer than
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes; [`Error::Corrupted`] for a malformed log
    /// block; other engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`]).
    pub fn collection_log_end(&self, collection: &str) -> Result<u64> {
        let log = crate::collection_log::log_of(collection)?;
        crate::collection_log::highest_offset(self.backend.as_ref(), &log)
    }

    /// Calls `visit` with the events of `entity` from sequence number `from` on, in order,
    /// until it returns `Ok(false)`. A record that fails its checks is still visited, with
    /// [`RawEvent::problem`] set.
    ///
    /// # Errors
    ///
    /// [`Error::Decryption`] for a record sealed with a key this inspector does not hold (a
    /// wrong key is not corruption); the first error `visit` returns, as it is; engine
    /// failures ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`],
    /// [`Error::Storage`]).
    pub fn events(
        &self,
        entity: &EntityKey,
        from: u64,
        visit: &mut dyn FnMut(RawEvent) -> Result<bool>,
    ) -> Result<()> {
        let (start, end) = entity.seq_range(RecordKind::Event, from, u64::MAX);
        let mut scratch = crate::codec::Scratch::default();
        self.backend.visit_range(&start, &end, &mut |key, value| {
            let seq = entity.seq_of(RecordKind::Event, key).unwrap_or(0);
            let event = record::raw_event(&self.keyring, entity, seq, key, value, &mut scratch)?;
            visit(event)
        })
    }

    /// Checks that the given key opens this database: the first encrypted record among
    /// the first few thousand must be sealed with a key this inspector holds. Without a
    /// key, or without encrypted records, there is nothing to check.
    ///
    /// # Errors
    ///
    /// [`Error::Decryption`], naming the key ids, when the record found is sealed with a key
    /// this inspector does not hold; engine failures ([`Error::Io`], [`Error::DiskFull`],
    /// [`Error::Corrupted`], [`Error::Storage`]).
    pub fn check_key(&self) -> Result<()> {
        let Some(current) = self.keyring.current() else {
            return Ok(());
        };
        let ranges = Scope::All.ranges(&[
            RecordKind::Event,
            RecordKind::Snapshot,
            RecordKind::TableRow,
        ])?;
        // Looking further than the first records would make every command on a large
        // plain database walk all of it before starting.
        let mut budget = 4096u32;
        let mut found = None;
        scan::walk(
            self.backend.as_ref(),
            &ranges,
            &mut |_| true,
            &mut |key, value, parsed| {
                if let Ok(header) = crate::codec::envelope::Header::parse(value)
                    && header.encrypted()
                {
                    found = Some((scan::describe(key, &parsed), header.key_id));
                    return Ok(false);
                }
                budget = budget.saturating_sub(1);
                Ok(budget > 0)
            },
        )?;
        match found {
            Some((record, key_id)) if self.keyring.find(key_id).is_none() => {
                Err(Error::Decryption {
                    record,
                    reason: format!(
                        "it is sealed with key id {key_id:08x} and the given key has id {:08x} (wrong key?)",
                        current.id()
                    ),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
