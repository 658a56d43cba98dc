//! Rebuilding a projection from zero clears its read model (tables in the database, or a
//! read model in memory through `reset`) and handles every event again, to the same result.
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
#[path = "support/projections.rs"]
mod projections;

use account::{Account, Cmd, deposit};
use projections::{Faults, Handled, MemoryLedger, TableLedger};
use rush_actor::{Persistence, PersistenceConfig, ProjectionSettings};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn commands(persistence: &Persistence) {
    for n in 1..=24u64 {
        let id = ["a", "b", "c"][(n % 3) as usize];
        let account = persistence.entity::<Account>(id);
        if n % 4 == 0 {
            account
                .ask(Cmd::Withdraw { amount: 1, tag: n })
                .await
                .unwrap();
        } else {
            account.ask(deposit(n, n)).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_from_zero_gives_the_same_tables() {
    let dir = tempfile::tempdir().unwrap();
    let persistence = Persistence::open(
        engine_under_test::at(dir.path()),
        PersistenceConfig::default(),
    )
    .await
    .unwrap();
    let handled = Handled::default();
    let ledger = TableLedger {
        name: "ledger".into(),
        balances: persistence.table("ledger.balances").unwrap(),
        counts: persistence.table("ledger.counts").unwrap(),
        handled: Arc::clone(&handled),
        faults: Arc::new(Faults::default()),
    };
    let (balances, counts) = (ledger.balances.clone(), ledger.counts.clone());
    let settings = ProjectionSettings {
        batch_size: 5,
        ..ProjectionSettings::default()
    };
    let projection = persistence
        .spawn_projection_with(ledger, settings)
        .await
        .unwrap();
    commands(&persistence).await;
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let before = (balances.rows("").unwrap(), counts.rows("").unwrap());
    assert_eq!(before.0.len(), 3);
    // A row the events do not produce: a rebuild must clear it.
    balances.put("stale", &999).unwrap();

    projection.rebuild().await.unwrap();
    let lag = projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((lag.checkpoint, lag.head), (24, 24));
    let after = (balances.rows("").unwrap(), counts.rows("").unwrap());
    assert_eq!(after, before);
    // Every event was handled once per build.
    let handled = handled.lock().unwrap().clone();
    assert_eq!(handled.len(), 48);
    assert_eq!(&handled[24..], (1..=24).collect::<Vec<_>>().as_slice());
    projection.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_resets_a_read_model_kept_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let persistence = Persistence::open(
        engine_under_test::at(dir.path()),
        PersistenceConfig::default(),
    )
    .await
    .unwrap();
    let balances: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let memory = MemoryLedger {
        name: "memory".into(),
        checkpoint_every: 3,
        counts: Arc::default(),
        balances: Arc::clone(&balances),
        handled: Handled::default(),
        faults: Arc::default(),
    };
    let projection = persistence.spawn_projection(memory).await.unwrap();
    commands(&persistence).await;
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    let before = balances.lock().unwrap().clone();
    projection.rebuild().await.unwrap();
    projection
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    // Without the reset every balance would be doubled.
    assert_eq!(*balances.lock().unwrap(), before);
    projection.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_extension_down_stops_its_projections() {
    let persistence = Persistence::open(engine_under_test::fresh(), PersistenceConfig::default())
        .await
        .unwrap();
    commands(&persistence).await;
    let memory = MemoryLedger {
        name: "memory".into(),
        checkpoint_every: 3,
        counts: Arc::default(),
        balances: Arc::default(),
        handled: Handled::default(),
        faults: Arc::default(),
    };
    let projection = persistence.spawn_projection(memory).await.unwrap();
    projection
        .wait_until_caught_up(Duration::from_secs(5))
        .await
        .unwrap();
    persistence.shutdown().await.unwrap();
    assert_eq!(projection.state(), rush_actor::ProjectionState::Stopped);
    // Stopping again is harmless.
    projection.stop().await.unwrap();
}
