//! The part of a flush an engine hands back (sled: the whole flush; the commit mark's
//! write) runs on the confirmer: a write is answered, and seen by readers, only after the
//! step that covers it succeeded, and the durable writes of a few clients sent meanwhile
//! wait for it, to be committed together; a failed step fails the writes it covers with
//! its own error, and the writer flushes them again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engines.rs"]
mod engines;

use engines::Confirming;
use rush_store::{
    Backend, Database, DatabaseConfig, Error, EventFilter, EventMetadata, PersistentActor,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counter {
    total: u64,
}

impl PersistentActor for Counter {
    type Event = u64;
    fn apply(&mut self, n: &u64) {
        self.total += n;
    }
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn open(engine: &Arc<Confirming>) -> Database {
    let config = DatabaseConfig {
        compression: None,
        ..DatabaseConfig::default()
    };
    Database::open_shared(engine.clone() as Arc<dyn Backend>, config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_answered_and_seen_only_after_its_step_and_later_writes_wait_for_it() {
    let engine = Arc::new(Confirming::default());
    let db = open(&engine);
    let query = db.query::<Counter>("c").unwrap();
    let mut first = db.store::<Counter>("c", "a").unwrap();
    let mut second = db.store::<Counter>("c", "b").unwrap();
    let first =
        tokio::spawn(async move { first.persist_async(&[1], &EventMetadata::default()).await });
    eventually("the first step to start", || {
        engine.state.started.load(Ordering::SeqCst) == 1
    })
    .await;
    // Committed and flushed by the engine, its step waiting: not answered, not visible.
    assert!(!first.is_finished());
    assert!(
        query
            .read(1, &EventFilter::all(), 10)
            .unwrap()
            .events
            .is_empty()
    );

    // A durable write sent while the step waits is held, not committed: a few clients
    // make one engine commit per flush (writer/gather.rs).
    let commits = engine.commits.load(Ordering::SeqCst);
    let second =
        tokio::spawn(async move { second.persist_async(&[2], &EventMetadata::default()).await });
    // A negative check, so a bounded wait: the writer takes a job in microseconds, and
    // had it committed the write, the count would have moved long before.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(engine.commits.load(Ordering::SeqCst), commits);
    assert!(!first.is_finished() && !second.is_finished());
    assert!(
        query
            .read(1, &EventFilter::all(), 10)
            .unwrap()
            .events
            .is_empty()
    );

    engine.state.open();
    assert_eq!(first.await.unwrap().unwrap(), 1);
    assert_eq!(second.await.unwrap().unwrap(), 1);
    let seen: Vec<u64> = query
        .read(1, &EventFilter::all(), 10)
        .unwrap()
        .events
        .iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(seen, [1, 2]);
    // Committed once the first step's flush was done, and flushed by a step of its own.
    assert_eq!(engine.commits.load(Ordering::SeqCst), commits + 1);
    assert_eq!(engine.state.started.load(Ordering::SeqCst), 2);
    db.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_step_fails_the_writes_it_covers_with_its_error() {
    let engine = Arc::new(Confirming::default());
    *engine.state.fail_with.lock().unwrap() = Some(Error::DiskFull {
        operation: "write the commit mark",
        message: "No space left on device (injected)".into(),
    });
    engine.state.open();
    let db = open(&engine);
    let mut store = db.store::<Counter>("c", "a").unwrap();
    let failed = store.persist_async(&[1], &EventMetadata::default()).await;
    assert!(matches!(failed, Err(Error::DiskFull { .. })), "{failed:?}");
    let flushed = db.flush().await;
    assert!(
        matches!(flushed, Err(Error::DiskFull { .. })),
        "{flushed:?}"
    );
    *engine.state.fail_with.lock().unwrap() = None;
    db.flush().await.unwrap();
    db.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_hides_its_writes_from_readers_and_the_writer_flushes_them_again() {
    let engine = Arc::new(Confirming::default());
    *engine.state.fail_with.lock().unwrap() = Some(Error::DiskFull {
        operation: "fsync",
        message: "No space left on device (injected)".into(),
    });
    engine.state.open();
    let config = DatabaseConfig {
        compression: None,
        flush_interval: Duration::from_millis(20),
        ..DatabaseConfig::default()
    };
    let db = Database::open_shared(engine.clone() as Arc<dyn Backend>, config).unwrap();
    let query = db.query::<Counter>("c").unwrap();
    let mut store = db.store::<Counter>("c", "a").unwrap();
    store.set_durability(rush_store::Durability::Periodic);
    // Acknowledged without a flush; the flush a flush interval later fails in its step.
    store
        .persist_async(&[1], &EventMetadata::default())
        .await
        .unwrap();
    eventually("the failing step", || {
        engine.state.started.load(Ordering::SeqCst) >= 1
    })
    .await;
    let read = || query.read(1, &EventFilter::all(), 10).unwrap().events.len();
    assert_eq!(
        read(),
        0,
        "a write whose step failed is not durable: no reader sees it"
    );

    // The writer flushes again by itself, with no new job, until a step succeeds.
    eventually("a retry", || {
        engine.state.started.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(read(), 0);
    *engine.state.fail_with.lock().unwrap() = None;
    eventually("the write to become visible", || read() == 1).await;
    db.shutdown().await.unwrap();
}
