//! A crash between the read-model writes and the checkpoint: in exactly-once mode the
//! writes and the checkpoint commit together, so after the restart every event has changed
//! the read model exactly once (though the handler saw some twice); in at-least-once mode
//! the events since the last checkpoint are delivered, and counted, again.
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

use account::{Account, deposit};
use projections::{FailingProjectionCommit, Faults, Handled, MemoryLedger, TableLedger, repeated};
use rush_actor::{
    Persistence, PersistenceConfig, ProjectionHandle, ProjectionSettings, RestartPolicy,
};
use rush_store::Backend;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Pages of 5 entries; restarts after 10-50 ms.
fn settings() -> ProjectionSettings {
    ProjectionSettings {
        batch_size: 5,
        restart: RestartPolicy {
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            ..RestartPolicy::default()
        },
        ..ProjectionSettings::default()
    }
}

/// 20 deposits of 1..=20 alternating between two accounts, persisted before the projection
/// starts, so its pages (and commits) are exactly offsets 1-5, 6-10, ...
async fn open_with_events(backend: Arc<dyn Backend>) -> Persistence {
    let persistence = Persistence::open_shared(backend, PersistenceConfig::default())
        .await
        .unwrap();
    for n in 1..=20u64 {
        let id = if n % 2 == 0 { "even" } else { "odd" };
        persistence
            .entity::<Account>(id)
            .ask(deposit(n, n))
            .await
            .unwrap();
    }
    persistence
}

async fn caught_up(handle: &ProjectionHandle) {
    let lag = handle
        .wait_until_caught_up(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((lag.checkpoint, lag.offsets_behind), (20, 0));
}

fn table_ledger(persistence: &Persistence, handled: &Handled, faults: &Arc<Faults>) -> TableLedger {
    TableLedger {
        name: "ledger".into(),
        balances: persistence.table("ledger.balances").unwrap(),
        counts: persistence.table("ledger.counts").unwrap(),
        handled: Arc::clone(handled),
        faults: Arc::clone(faults),
    }
}

fn assert_counted_once(ledger: &TableLedger) {
    // odd: 1+3+...+19 = 100; even: 2+4+...+20 = 110; ten events each.
    assert_eq!(ledger.balances.get("odd").unwrap(), Some(100));
    assert_eq!(ledger.balances.get("even").unwrap(), Some(110));
    assert_eq!(ledger.counts.get("odd").unwrap(), Some(10));
    assert_eq!(ledger.counts.get("even").unwrap(), Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_a_failed_checkpoint_commit_loses_the_page_writes_too() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FailingProjectionCommit::new(Arc::new(engine_under_test::at(dir.path())), 2);
    let persistence = open_with_events(backend.clone()).await;
    let (handled, faults) = (Handled::default(), Arc::new(Faults::default()));
    let ledger = persistence
        .spawn_projection_with(table_ledger(&persistence, &handled, &faults), settings())
        .await
        .unwrap();
    caught_up(&ledger).await;

    // The second page's commit failed: the runner restarted from checkpoint 5 and handled
    // 6..=10 again, but their first writes were lost with the checkpoint.
    assert_eq!(ledger.restarts(), 1);
    assert_eq!(repeated(&handled), vec![6, 7, 8, 9, 10]);
    assert!(backend.projection_commits.load(Ordering::SeqCst) >= 5);
    assert_counted_once(&table_ledger(&persistence, &handled, &faults));
    ledger.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_a_panic_after_the_handler_wrote_leaves_no_trace_of_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(engine_under_test::at(dir.path()));
    let persistence = open_with_events(backend).await;
    let (handled, faults) = (Handled::default(), Arc::new(Faults::default()));
    // Offset 13 is the third event of page 11..=15: 11 and 12 were written to the
    // transaction, and 13 too, when the handler panics.
    faults.panic_at.store(13, Ordering::SeqCst);
    let ledger = persistence
        .spawn_projection_with(table_ledger(&persistence, &handled, &faults), settings())
        .await
        .unwrap();
    caught_up(&ledger).await;

    assert_eq!(ledger.restarts(), 1);
    assert_eq!(repeated(&handled), vec![11, 12, 13]);
    assert_counted_once(&table_ledger(&persistence, &handled, &faults));
    ledger.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_the_events_since_the_checkpoint_are_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let backend = FailingProjectionCommit::new(Arc::new(engine_under_test::at(dir.path())), 2);
    let persistence = open_with_events(backend).await;
    let handled = Handled::default();
    let counts = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let memory = MemoryLedger {
        name: "memory-ledger".into(),
        checkpoint_every: 5,
        counts: Arc::clone(&counts),
        balances: Arc::default(),
        handled: Arc::clone(&handled),
        faults: Arc::default(),
    };
    let ledger = persistence
        .spawn_projection_with(memory, settings())
        .await
        .unwrap();
    caught_up(&ledger).await;

    // Checkpoint 5 was saved, the one at 10 failed: 6..=10 were handled and counted twice.
    assert_eq!(ledger.restarts(), 1);
    assert_eq!(repeated(&handled), vec![6, 7, 8, 9, 10]);
    let total: u64 = counts.lock().unwrap().values().sum();
    assert_eq!(total, 25, "{counts:?}");
    ledger.stop().await.unwrap();
    persistence.shutdown().await.unwrap();
}
