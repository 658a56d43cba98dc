//! The extension on its database: shutdown flushes what was acknowledged and lets the
//! folder go, a stale writer's failure reaches the caller as a typed `Conflict`, and no
//! engine call of actors, snapshots, projections or subscriptions runs on a tokio worker.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../rush-store/tests/support/engine_under_test.rs"]
mod engine_under_test;

#[path = "support/account.rs"]
mod account;
#[path = "../../rush-store/tests/support/engines.rs"]
mod engines;
#[path = "support/projections.rs"]
mod projections;

use account::{Account, Cmd, deposit};
use engines::{ThreadCheck, Volatile};
use projections::{Faults, Handled, TableLedger};
use rush_actor::{CommandError, Error, Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::{Durability, EventFilter, Store};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn shutdown_flushes_the_events_periodic_durability_acknowledged() {
    let engine = Volatile::new();
    let config = PersistenceConfig {
        durability: Durability::Periodic,
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(engine.clone(), config)
        .await
        .unwrap();
    let alice = persistence.entity::<Account>("alice");
    for tag in 1..=20 {
        alice.ask(deposit(1, tag)).await.unwrap();
    }
    persistence.shutdown().await.unwrap();
    // What a crash right after the clean exit would leave: all twenty.
    let on_disk = Store::<Account>::new("accounts", "alice", engine.flushed.clone(), None, true)
        .unwrap()
        .recover()
        .unwrap()
        .unwrap();
    assert_eq!(on_disk.balance, 20);
}

#[tokio::test]
async fn shutdown_lets_the_folder_go_while_handles_remain() {
    let dir = tempfile::tempdir().unwrap();
    let persistence = Persistence::open(
        engine_under_test::at(dir.path()),
        PersistenceConfig::default(),
    )
    .await
    .unwrap();
    let bob = persistence.entity::<Account>("bob");
    bob.ask(deposit(3, 1)).await.unwrap();
    persistence.shutdown().await.unwrap();
    // `persistence` and `bob` are still in scope: the folder is free all the same, for
    // another process (the lock) and for this one.
    if engine_under_test::is_file_engine() {
        let file = std::fs::File::open(engine_under_test::locked_file(dir.path())).unwrap();
        file.try_lock().expect("the folder is unlocked");
        drop(file);
    }
    let again = Persistence::open(
        engine_under_test::at(dir.path()),
        PersistenceConfig::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        again
            .entity::<Account>("bob")
            .ask(Cmd::Balance)
            .await
            .unwrap(),
        3
    );
    again.shutdown().await.unwrap();
    drop((persistence, bob));
}

#[tokio::test]
async fn a_stale_writer_gets_a_typed_conflict_and_nothing_is_written() {
    let memory = engine_under_test::fresh();
    let first = Persistence::open(memory.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let second = Persistence::open(memory.clone(), PersistenceConfig::default())
        .await
        .unwrap();
    let stale = first.get_or_spawn::<Account>("carol").await.unwrap();
    assert_eq!(stale.ask(deposit(1, 1)).await.unwrap(), 1);
    let fresh = second.get_or_spawn::<Account>("carol").await.unwrap();
    assert_eq!(fresh.ask(deposit(10, 2)).await.unwrap(), 11);

    let refused = stale.ask(deposit(100, 3)).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            CommandError::Failed(Error::Journal {
                source: rush_store::Error::Conflict {
                    expected: 1,
                    actual: 2
                },
                ..
            })
        ),
        "a conflict, not a string: {refused:?}"
    );
    let journal = Store::<Account>::new("accounts", "carol", memory, None, true).unwrap();
    assert_eq!(journal.recover().unwrap().unwrap().balance, 11);
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
}

/// Snapshots every 2 events and deletes what they cover, so that every kind of write runs.
fn busy_config() -> PersistenceConfig {
    PersistenceConfig {
        snapshots: SnapshotPolicy {
            every: Some(2),
            keep: 1,
            delete_covered_events: true,
        },
        ..PersistenceConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_call_runs_on_a_tokio_worker() {
    let engine = Arc::new(ThreadCheck::default());
    let persistence = Persistence::open_shared(engine.clone(), busy_config())
        .await
        .unwrap();
    let handled: Handled = Arc::default();
    let projection = persistence
        .spawn_projection(TableLedger {
            name: "ledger".into(),
            balances: persistence.table("ledger.balances").unwrap(),
            counts: persistence.table("ledger.counts").unwrap(),
            handled: Arc::clone(&handled),
            faults: Arc::new(Faults::default()),
        })
        .await
        .unwrap();
    let mut live = persistence
        .query::<Account>()
        .unwrap()
        .subscribe(1, EventFilter::all());
    for id in ["a", "b", "c"] {
        let account = persistence.entity::<Account>(id);
        for tag in 1..=5 {
            account.ask(deposit(1, tag)).await.unwrap();
        }
    }
    // Until the last offset: events deleted under a snapshot before it read them are
    // skipped, as a subscription skips deleted history.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if event.offset == 15 {
            break;
        }
    }
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    persistence.shutdown().await.unwrap();

    // A restart: recovery (snapshot + later events) runs on the database's threads too.
    let again = Persistence::open_shared(engine.clone(), busy_config())
        .await
        .unwrap();
    assert_eq!(
        again
            .entity::<Account>("b")
            .ask(Cmd::Balance)
            .await
            .unwrap(),
        5
    );
    again.shutdown().await.unwrap();

    assert_eq!(engine.offenders(), Vec::<String>::new());
}

#[tokio::test]
async fn a_failed_recovery_keeps_the_stores_error_with_its_kind() {
    let memory = engine_under_test::fresh();
    let keyed = |key: [u8; 32]| PersistenceConfig {
        encryption_key: Some(rush_store::EncryptionKey::from(key)),
        ..PersistenceConfig::default()
    };
    let writer = Persistence::open(memory.clone(), keyed([1; 32]))
        .await
        .unwrap();
    writer
        .entity::<Account>("dave")
        .ask(deposit(1, 1))
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
    let wrong_key = Persistence::open(memory, keyed([2; 32])).await.unwrap();
    let failed = wrong_key.get_or_spawn::<Account>("dave").await.unwrap_err();
    assert!(
        matches!(
            &failed,
            Error::RecoveryFailed {
                source: Some(rush_store::Error::Decryption { .. }),
                ..
            }
        ),
        "{failed:?}"
    );
    wrong_key.shutdown().await.unwrap();
}
