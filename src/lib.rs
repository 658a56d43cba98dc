//! # Rush
//!
//! Event-sourced persistent actors for Rust: supervised [ractor] actors whose events are
//! journaled to an encrypted, compressed, integrity-checked store on sled.
//!
//! This facade re-exports the two crates: [`store`] (`rush-store`: journal, snapshots,
//! codec, backends) and [`actor`] (`rush-actor`: persistent actors, supervision,
//! group commit). The most used names are also at the top level.
//!
//! Start with `cargo run --release --example bank`, then read `README.md`.

#[cfg(feature = "cli")]
pub mod cli;

pub use rush_actor as actor;
pub use rush_store as store;

pub use rush_actor::{
    CommandError, DeadLetter, Effect, EntityRef, EventSourced, IdempotencyKeys, Persistence,
    PersistenceConfig, RecoveryInfo, RestartPolicy, RetryPolicy, SagaDefinition, SagaOutcome,
    SagaStep, Sagas, SnapshotPolicy, StepContext, StepError,
};
pub use rush_store::{
    CompressionConfig, CompressionLevel, Durability, EncryptionKey, Keyring, MemoryManager,
    PersistentActor, PostgresConfig, PostgresManager, PostgresTls, RedbConfig, RedbManager,
    SledConfig, SledManager, Store, WriterStats,
};

/// The README's examples, compiled and run as doc tests so the tour stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
