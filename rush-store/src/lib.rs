//! # rush-store
//!
//! A durable, encrypted, compressed event journal and snapshot store for event-sourced
//! entities ("persistent actors"), on [sled] by default.
//!
//! - A [`Store<A>`] holds the journal and snapshots of one entity of type `A:`
//!   [`PersistentActor`]: `persist` events (sequence numbers from 1, contiguous),
//!   `snapshot` states, `recover` = newest snapshot + later events, streamed.
//! - Records are serialized with bincode, gzip-compressed when it pays
//!   ([`CompressionConfig`]), and sealed: a CRC32, or XChaCha20-Poly1305 with the record's
//!   identity as associated data when a key is given. The byte format is in `FORMAT.md`.
//! - Writers never overwrite each other: a stale handle gets [`Error::Conflict`].
//! - Engines: [`SledManager`] (default, durable), `RedbManager` (feature `redb`, on by
//!   default) and [`MemoryManager`] (tests), behind the open [`Backend`] trait; an engine in
//!   another crate builds on [`engine_kit`] and proves itself with `conformance::check`
//!   (feature `conformance`).
//!
//! ```
//! use rush_store::{PersistentActor, SledManager, Store};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! enum BankEvent { Deposited(u64), Withdrawn(u64) }
//!
//! #[derive(Default, Clone, Serialize, Deserialize)]
//! struct Account { balance: u64 }
//!
//! impl PersistentActor for Account {
//!     type Event = BankEvent;
//!     fn apply(&mut self, event: &BankEvent) {
//!         match event {
//!             BankEvent::Deposited(n) => self.balance += n,
//!             BankEvent::Withdrawn(n) => self.balance -= n,
//!         }
//!     }
//! }
//!
//! # let dir = tempfile::tempdir().map_err(|e| rush_store::Error::InvalidArgument(e.to_string()))?;
//! let manager = SledManager::new(dir.path())?;
//! let key = [42u8; 32];
//! let mut store = Store::<Account>::new("accounts", "alice", manager, Some(&key), true)?;
//! store.persist(&BankEvent::Deposited(100))?;
//! store.persist(&BankEvent::Withdrawn(30))?;
//! assert_eq!(store.recover()?.map(|a| a.balance), Some(70));
//! assert!(store.verify_integrity()?.is_ok());
//! # Ok::<_, rush_store::Error>(())
//! ```
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![deny(missing_docs)]
// Every fallible public function says which `Error` variants it returns and when (issue 12).
#![warn(clippy::missing_errors_doc)]

mod backend;
mod codec;
mod collection_log;
mod compression;
#[cfg(feature = "conformance")]
pub mod conformance;
mod crypto;
mod database;
pub mod engine_kit;
mod error;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod health;
pub mod inspect;
mod integrity;
mod journal;
mod keys;
mod metadata;
pub mod metric_names;
mod metrics;
mod persistent_actor;
mod query;
mod snapshot;
mod store;
mod table;
mod upcast;
mod varint;

pub use backend::engine_kind::{self, EngineKind};
pub use backend::{
    Backend, Confirmation, Durable, Guard, GuardFailed, LogAppend, MemoryManager, Settle, Visitor,
    WriteBatch, WriteOp,
};
#[cfg(feature = "postgres")]
pub use backend::{PostgresConfig, PostgresManager, PostgresTls};
#[cfg(feature = "redb")]
pub use backend::{RedbConfig, RedbManager};
#[cfg(feature = "sled")]
pub use backend::{SledConfig, SledManager};
pub use codec::{MAX_EVENT_SIZE, MAX_SNAPSHOT_SIZE};
pub use compression::{CompressionConfig, CompressionLevel, CompressionStats};
pub use crypto::{EncryptionKey, KEY_LEN, KeyProblem, Keyring};
pub use database::{BackupReport, Database, DatabaseConfig, ResealReport, WriterStats};
pub use error::{Error, Result};
pub use health::{HealthReport, HealthStatus};
pub use integrity::{IntegrityError, IntegrityReport};
pub use journal::EventEnvelope;
pub use keys::{EntityKey, MAX_ID_LEN};
pub use metadata::EventMetadata;
pub use metrics::StoreMetrics;
pub use persistent_actor::{PersistentActor, default_event_type};
pub use query::{EventFilter, EventPage, EventQuery, QueryIter, StoredEvent, Subscription};
pub use store::{DEFAULT_SNAPSHOTS_TO_KEEP, Durability, JournalIter, Recovered, Store};
pub use table::{Table, TableRow};
pub use upcast::{ANY_EVENT_TYPE, Upcasters};
