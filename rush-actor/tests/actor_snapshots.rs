//! Automatic snapshots every N events, recovery from the newest, retention, deletion of
//! covered events, and passivation with transparent respawn.
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

use account::{Account, Cmd, deposit};
use rush_actor::{Persistence, PersistenceConfig, SnapshotPolicy};
use rush_store::{Backend, Store};
use std::sync::Arc;
use std::time::Duration;

fn store(backend: &Arc<dyn Backend>, id: &str) -> Store<Account> {
    Store::with_backend("accounts", id, backend.clone(), None, true).unwrap()
}

#[tokio::test]
async fn snapshots_are_taken_at_n_2n_and_recovery_starts_from_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
    let config = PersistenceConfig {
        snapshots: SnapshotPolicy {
            every: Some(10),
            keep: 3,
            delete_covered_events: false,
        },
        ..PersistenceConfig::default()
    };
    {
        let persistence = Persistence::open_shared(backend.clone(), config.clone())
            .await
            .unwrap();
        let acc = persistence.get_or_spawn::<Account>("s1").await.unwrap();
        for i in 1..=45 {
            acc.ask(deposit(1, i)).await.unwrap();
        }
        assert_eq!(
            store(&backend, "s1").snapshot_sequence_numbers().unwrap(),
            vec![20, 30, 40],
            "keep 3"
        );
        assert_eq!(acc.metrics().unwrap().snapshots_taken, 4);
        persistence.shutdown().await.unwrap();
    }
    // Proof that recovery starts at the snapshot: remove the history it covers.
    store(&backend, "s1").delete_events_to(40).unwrap();
    let persistence = Persistence::open_shared(backend.clone(), config)
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("s1").await.unwrap();
    assert_eq!(acc.ask(Cmd::Balance).await.unwrap(), 45);
    assert_eq!(acc.ask(deposit(1, 46)).await.unwrap(), 46);
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn covered_events_are_deleted_when_the_policy_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
    let config = PersistenceConfig {
        snapshots: SnapshotPolicy {
            every: Some(10),
            keep: 2,
            delete_covered_events: true,
        },
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open_shared(backend.clone(), config.clone())
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("s2").await.unwrap();
    for i in 1..=35 {
        acc.ask(deposit(1, i)).await.unwrap();
    }
    let s = store(&backend, "s2");
    assert_eq!(s.snapshot_sequence_numbers().unwrap(), vec![20, 30]);
    assert_eq!(
        s.deleted_to().unwrap(),
        20,
        "events up to the oldest kept snapshot are gone"
    );
    assert_eq!(s.events(0, u64::MAX).unwrap().len(), 15);
    assert_eq!(s.recover().unwrap().unwrap().balance, 35);
    persistence.shutdown().await.unwrap();
    let again = Persistence::open_shared(backend, config).await.unwrap();
    assert_eq!(
        again
            .get_or_spawn::<Account>("s2")
            .await
            .unwrap()
            .ask(Cmd::Balance)
            .await
            .unwrap(),
        35
    );
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_actor_is_passivated_and_respawned_with_the_same_state() {
    let config = PersistenceConfig {
        passivate_after: Some(Duration::from_millis(60)),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("idle").await.unwrap();
    acc.ask(deposit(42, 1)).await.unwrap();
    assert_eq!(persistence.running_entities(), 1);
    assert_eq!(acc.metrics().unwrap().incarnations, 1);
    let mut waited = Duration::ZERO;
    // Passivated once the entity's slot is released (its counters go with it).
    while acc.metrics().is_some() && waited < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert!(acc.metrics().is_none(), "gone from the entity table");
    assert_eq!(persistence.running_entities(), 0, "passivated");
    assert_eq!(
        acc.ask(Cmd::Balance).await.unwrap(),
        42,
        "respawned from the journal"
    );
    assert_eq!(
        persistence.running_entities(),
        1,
        "a new actor recovered the state"
    );
    persistence.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_busy_actor_is_not_passivated() {
    let config = PersistenceConfig {
        passivate_after: Some(Duration::from_millis(80)),
        ..PersistenceConfig::default()
    };
    let persistence = Persistence::open(engine_under_test::fresh(), config)
        .await
        .unwrap();
    let acc = persistence.get_or_spawn::<Account>("busy").await.unwrap();
    for i in 1..=20 {
        acc.ask(deposit(1, i)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(acc.metrics().unwrap().incarnations, 1);
    persistence.shutdown().await.unwrap();
}
