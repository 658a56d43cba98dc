//! `Database`: one storage engine opened once, with the one group-commit writer that every
//! durable write goes through, the keys and codec settings, and the threads that do
//! blocking reads. [`Store`], [`Table`] and [`EventQuery`] are cheap views of it.
//!
//! ```
//! use rush_store::{Database, DatabaseConfig, MemoryManager, PersistentActor};
//! # #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
//! # struct Counter { value: u64 }
//! # impl PersistentActor for Counter {
//! #     type Event = u64;
//! #     fn apply(&mut self, n: &u64) { self.value += n; }
//! # }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), rush_store::Error> {
//! let db = Database::open(MemoryManager::default(), DatabaseConfig::default())?;
//! let mut counter = db.store::<Counter>("counters", "c-1")?;
//! counter.persist_async(&[2, 3], &Default::default()).await?;
//! assert_eq!(counter.recover_async().await?.map(|c| c.value), Some(5));
//! db.shutdown().await?; // finishes accepted writes, flushes, stops the writer
//! assert!(matches!(db.store::<Counter>("counters", "c-1"), Err(rush_store::Error::Shutdown)));
//! # Ok(())
//! # }
//! ```

mod backup;
mod confirmer;
mod core;
mod pool;
mod registry;
mod reply;
mod rotation;
mod visibility;
mod writer;

pub(crate) use self::core::Core;
pub use backup::BackupReport;
pub use rotation::ResealReport;
pub(crate) use rotation::reseal_batch;
pub(crate) use writer::CommitOutcome;

use crate::backend::Backend;
use crate::compression::CompressionConfig;
use crate::crypto::{EncryptionKey, Keyring};
use crate::error::{Error, Result};
use crate::health::HealthReport;
use crate::persistent_actor::PersistentActor;
use crate::query::EventQuery;
use crate::store::{Durability, Store};
use crate::table::Table;
use serde::{Serialize, de::DeserializeOwned};
use std::sync::Arc;
use std::time::Duration;

/// How a [`Database`] is opened.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// When a write is acknowledged (default [`Durability::Immediate`]: after the flush
    /// that makes it durable). Readers see a write only once it is durable, in every mode.
    pub durability: Durability,
    /// Under [`Durability::Periodic`], the writer flushes at least this often (default
    /// 500 ms): the longest a reader waits for an acknowledged write, and what a crash can
    /// take back.
    pub flush_interval: Duration,
    /// Under [`Durability::Periodic`], how long a commit waits for its flush once a reader
    /// waits for it (default 20 ms). A read that meets entries not flushed yet asks the
    /// writer for a flush this long after the oldest of them, so a live subscriber lags by
    /// about this much rather than by `flush_interval`, and the writer flushes no more
    /// often than this while readers keep asking.
    pub reader_flush_delay: Duration,
    /// Threads for blocking reads and encodes of the async API (default 4, at most 64).
    pub read_threads: usize,
    /// The key new records are sealed with (`None`: records carry a CRC32 only).
    pub encryption_key: Option<EncryptionKey>,
    /// Older keys that still open records sealed before a rotation.
    pub decryption_keys: Vec<EncryptionKey>,
    /// Adaptive gzip of records (`None`: off).
    pub compression: Option<CompressionConfig>,
    /// Pages of decoded events that the subscriptions of one collection share (default 8;
    /// 0: each subscription reads alone). Subscribers at the same place in the log then
    /// read, decrypt and decode each event once between them. Each page holds at most
    /// 1,024 events, so the memory is bounded by this times 1,024 events per collection
    /// that subscriptions follow.
    pub shared_read_pages: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            flush_interval: Duration::from_millis(500),
            reader_flush_delay: Duration::from_millis(20),
            read_threads: 4,
            encryption_key: None,
            decryption_keys: Vec::new(),
            compression: Some(CompressionConfig::default()),
            shared_read_pages: 8,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("durability", &self.durability)
            .field("flush_interval", &self.flush_interval)
            .field("reader_flush_delay", &self.reader_flush_delay)
            .field("read_threads", &self.read_threads)
            .field("shared_read_pages", &self.shared_read_pages)
            .field("encrypted", &self.encryption_key.is_some())
            .field("decryption_keys", &self.decryption_keys.len())
            .field("compression", &self.compression)
            .finish()
    }
}

/// What views of a database seal and open records with.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) keyring: Keyring,
    pub(crate) compression: Option<CompressionConfig>,
    pub(crate) durability: Durability,
    /// Decoded pages the subscriptions of this handle share.
    pub(crate) shared_pages: crate::query::SharedPagesRegistry,
}

/// A storage engine opened once, shared by every view of it. Cheap to clone.
///
/// Every durable write of every view (events, snapshots, deletions, table rows,
/// checkpoints, maintenance pages) goes through its one writer thread, with one
/// durability discipline. The async methods of the views run engine calls on the
/// database's own threads, never on a tokio worker; the synchronous ones run them on the
/// caller's thread and are meant for code without a runtime.
#[derive(Clone)]
pub struct Database {
    pub(crate) core: Arc<Core>,
    pub(crate) settings: Arc<Settings>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("core", &self.core)
            .field("durability", &self.settings.durability)
            .finish_non_exhaustive()
    }
}

/// Counters of the group-commit writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Groups committed (one flush each under [`Durability::Immediate`]).
    pub groups: u64,
    /// Writes committed in them.
    pub writes: u64,
}

impl WriterStats {
    /// Average writes per group.
    pub fn average_group(&self) -> f64 {
        if self.groups == 0 {
            0.0
        } else {
            self.writes as f64 / self.groups as f64
        }
    }
}

impl Database {
    /// Opens a database on `engine` ([`SledManager`](crate::SledManager) for durable
    /// data, [`MemoryManager`](crate::MemoryManager) for tests). A database already open
    /// on the same engine in this process shares its writer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_ratio_threshold` of the compression config is
    /// outside `[0, 1)`; [`Error::Io`] when the database's threads cannot start.
    pub fn open(engine: impl Backend, config: DatabaseConfig) -> Result<Self> {
        Self::open_shared(Arc::new(engine), config)
    }

    /// [`Database::open`] on a shared engine handle.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `min_ratio_threshold` of the compression config is
    /// outside `[0, 1)`; [`Error::Io`] when the database's threads cannot start.
    pub fn open_shared(engine: Arc<dyn Backend>, config: DatabaseConfig) -> Result<Self> {
        config.compression.map(|c| c.validate()).transpose()?;
        let core = registry::core_for(engine, &config)?;
        let keyring =
            Keyring::from(config.encryption_key).with_decryption_keys(config.decryption_keys);
        Ok(Self {
            core,
            settings: Arc::new(Settings {
                keyring,
                compression: config.compression,
                durability: config.durability,
                shared_pages: crate::query::SharedPagesRegistry::new(config.shared_read_pages),
            }),
        })
    }

    /// The database on `engine` with the keys of `keyring` and `compression`, sharing the
    /// writer of any database already open on it.
    pub(crate) fn with_keyring(
        engine: Arc<dyn Backend>,
        keyring: Keyring,
        compression: Option<CompressionConfig>,
    ) -> Result<Self> {
        Self::open_shared(
            engine,
            DatabaseConfig {
                encryption_key: keyring.current().cloned(),
                decryption_keys: keyring.decryption_keys().to_vec(),
                compression,
                ..DatabaseConfig::default()
            },
        )
    }

    /// The database on `engine` with the given key and compression, sharing the writer of
    /// any database already open on it.
    pub(crate) fn shortcut(
        engine: Arc<dyn Backend>,
        key: Option<&[u8]>,
        compression: Option<CompressionConfig>,
    ) -> Result<Self> {
        let key = key.map(EncryptionKey::new).transpose()?;
        Self::with_keyring(engine, Keyring::from(key), compression)
    }

    /// The journal and snapshots of entity `entity_id` of `collection`.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`]; [`Error::InvalidArgument`] for an
    /// empty or too long collection or entity id; engine failures ([`Error::Io`],
    /// [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]) reading the journal's
    /// end.
    pub fn store<A: PersistentActor>(&self, collection: &str, entity_id: &str) -> Result<Store<A>> {
        Store::open_in(self.clone(), collection, entity_id)
    }

    /// The store of entity `entity_id` of `collection` together with its current state, in
    /// one pass over the engine ([`Store::recover_to_end`] on a store opened without
    /// reading its end first): what an actor does when it starts. Runs on the caller's
    /// thread (an actor runs it on the database's threads through
    /// [`Database::run_blocking`]).
    ///
    /// # Errors
    ///
    /// As [`Database::store`] and [`Store::recover`].
    pub fn recover_store<A: PersistentActor>(
        &self,
        collection: &str,
        entity_id: &str,
    ) -> Result<(Store<A>, crate::Recovered<A>)> {
        let mut store = Store::unloaded(self.clone(), collection, entity_id)?;
        let recovered = store.recover_to_end()?;
        Ok((store, recovered))
    }

    /// Table `name`: sealed rows of type `V` under string keys.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`]; [`Error::InvalidArgument`] for a
    /// name that is empty or longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes.
    pub fn table<V: Serialize + DeserializeOwned>(&self, name: &str) -> Result<Table<V>> {
        Table::open_in(self.clone(), name)
    }

    /// Queries and subscriptions over `collection`, whose events are `A::Event`.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`]; [`Error::InvalidArgument`] for a
    /// collection name that is empty or longer than [`MAX_ID_LEN`](crate::MAX_ID_LEN)
    /// bytes.
    pub fn query<A: PersistentActor>(&self, collection: &str) -> Result<EventQuery<A>> {
        EventQuery::open_in(self.clone(), collection)
    }

    /// Whether `other` reaches the same database (the same writer), so that writes of
    /// both can be committed in one atomic batch.
    pub fn same_database(&self, other: &Database) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    /// Runs `work` (code calling the synchronous API of this database's views) on the
    /// database's reader threads, so that an async caller blocks no tokio worker.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`]; [`Error::Panicked`] when `work`
    /// panics; otherwise what `work` returns.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.core.compute(operation, work).await
    }

    /// A receiver whose value changes whenever new collection-log entries became durable:
    /// what subscriptions and projections wait on.
    pub fn log_appended(&self) -> tokio::sync::watch::Receiver<u64> {
        self.core.log_appended()
    }

    /// The keys this handle's views seal and open records with, parsed once.
    pub fn keyring(&self) -> &Keyring {
        &self.settings.keyring
    }

    /// When writes of this handle's views are acknowledged.
    pub fn durability(&self) -> Durability {
        self.settings.durability
    }

    /// The engine, for reads.
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`].
    pub fn engine(&self) -> Result<Arc<dyn Backend>> {
        self.core.engine()
    }

    /// Groups and writes committed so far by the writer.
    pub fn writer_stats(&self) -> WriterStats {
        self.core.stats()
    }

    /// Makes every write acknowledged so far durable (under `Periodic`, sooner than the
    /// flush interval would).
    ///
    /// # Errors
    ///
    /// [`Error::Shutdown`] after [`Database::shutdown`]; the engine's flush failures
    /// ([`Error::Io`], [`Error::DiskFull`], [`Error::Corrupted`], [`Error::Storage`]), or
    /// [`Error::Panicked`] when it panicked: the writes it covers may then not be durable.
    pub async fn flush(&self) -> Result<()> {
        self.core.flush_async().await
    }

    /// [`Database::flush`] for code without a tokio runtime: blocks the calling thread
    /// until the flush is done. Inside a runtime it is refused with
    /// [`Error::InvalidArgument`] (it would block a worker): use `flush().await`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] inside a tokio runtime; otherwise as [`Database::flush`].
    pub fn flush_blocking(&self) -> Result<()> {
        self.core.flush_blocking()
    }

    /// Probes the database with a durable write through the writer, a read back and a
    /// removal, on the database's threads.
    ///
    /// # Errors
    ///
    /// None today: every problem, a failed probe included, is in the [`HealthReport`].
    pub async fn health_check(&self) -> Result<HealthReport> {
        Ok(crate::health::probe_async(&self.core, None).await)
    }

    /// Stops accepting work, finishes what was accepted, flushes, joins the writer and
    /// releases the engine. Afterwards every call on this database and its views returns
    /// [`Error::Shutdown`] at once, and the same folder can be opened again at once.
    /// Calling it again is harmless.
    ///
    /// # Errors
    ///
    /// The final flush's failures as [`Database::flush`]'s; [`Error::Panicked`] when the
    /// writer thread panicked. The database is shut down all the same.
    pub async fn shutdown(&self) -> Result<()> {
        self.core.shutdown().await
    }

    /// [`Database::shutdown`] for code without a tokio runtime: blocks the calling thread
    /// until the writer is joined and the engine released. Inside a runtime it is refused
    /// with [`Error::InvalidArgument`]: use `shutdown().await`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] inside a tokio runtime; otherwise as
    /// [`Database::shutdown`].
    pub fn shutdown_blocking(&self) -> Result<()> {
        self.core.shutdown_blocking()
    }

    /// Whether [`Database::shutdown`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.core.is_shut_down()
    }

    /// Fails with [`Error::Shutdown`] after shutdown.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.core.is_shut_down() {
            Err(Error::Shutdown)
        } else {
            Ok(())
        }
    }
}
