//! The database core: readers see only durable writes, a panic in the engine fails one
//! write and not the writer, shutdown finishes and flushes what was accepted, then
//! refuses everything at once and lets the folder go.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/engines.rs"]
mod engines;

use engines::{Gated, Panicky, Volatile};
use rush_store::{
    Backend, Database, DatabaseConfig, Durability, Error, EventFilter, EventQuery, MemoryManager,
    PersistentActor, SledManager, Store,
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

/// Waits (bounded) until `condition` holds.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn plain() -> DatabaseConfig {
    DatabaseConfig {
        compression: None,
        ..DatabaseConfig::default()
    }
}

#[test]
fn a_reader_sees_an_event_only_after_the_flush_that_makes_it_durable() {
    let gated = Gated::closed();
    let engine: Arc<dyn Backend> = gated.clone();
    let mut store = Store::<Counter>::with_backend("c", "a", engine.clone(), None, false).unwrap();
    let query = EventQuery::<Counter>::new(engine.clone(), "c", None).unwrap();
    let writer = std::thread::spawn(move || store.persist(&7));

    // The event is committed to the engine and its flush is under way, not finished.
    eventually("the flush to start", || {
        gated.flushing.load(Ordering::SeqCst)
    });
    assert_eq!(
        engine.scan(&[1], &[2], 10, false).unwrap().len(),
        1,
        "committed"
    );
    assert!(
        query
            .read(1, &EventFilter::all(), 10)
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(query.highest_offset().unwrap(), 0);

    gated.open();
    assert_eq!(writer.join().unwrap().unwrap(), 1);
    let page = query.read(1, &EventFilter::all(), 10).unwrap();
    assert_eq!(page.events.iter().map(|e| e.event).collect::<Vec<_>>(), [7]);
    assert_eq!(query.highest_offset().unwrap(), 1);
}

#[tokio::test]
async fn a_subscriber_is_woken_after_the_flush() {
    let gated = Gated::closed();
    let db = Database::open_shared(gated.clone(), plain()).unwrap();
    let mut live = db
        .query::<Counter>("c")
        .unwrap()
        .subscribe(1, EventFilter::all());
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    let writing = tokio::spawn(async move { store.persist_async(&[5], &Default::default()).await });
    let opener = gated.clone();
    tokio::task::spawn_blocking(move || {
        eventually("the flush to start", || {
            opener.flushing.load(Ordering::SeqCst)
        });
        opener.open();
    });
    let event = tokio::time::timeout(Duration::from_secs(10), live.next())
        .await
        .expect("woken after the flush")
        .unwrap()
        .unwrap();
    assert_eq!((event.offset, event.event), (1, 5));
    assert_eq!(writing.await.unwrap().unwrap(), 1);
}

/// Under `Periodic`, a reader waiting for a write does not wait the whole flush interval:
/// its read asks the writer for a flush, due `reader_flush_delay` after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_subscriber_gets_a_periodic_write_without_waiting_the_interval() {
    let engine = Volatile::new();
    let config = DatabaseConfig {
        durability: Durability::Periodic,
        flush_interval: Duration::from_secs(3600),
        reader_flush_delay: Duration::from_millis(5),
        ..plain()
    };
    let db = Database::open_shared(engine.clone(), config).unwrap();
    let mut live = db
        .query::<Counter>("c")
        .unwrap()
        .subscribe(1, EventFilter::all());
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    for n in 1..=3u64 {
        store
            .persist_async(&[n], &Default::default())
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("delivered long before the flush interval")
            .unwrap()
            .unwrap();
        assert_eq!((event.offset, event.event), (n, n));
        // Delivered means durable: the flush happened.
        assert_eq!(on_disk(&engine), n);
    }
    db.shutdown().await.unwrap();
}

/// A flush interval too long to add to a clock (`Duration::MAX`: "never on a timer") is
/// no panic on the writer: writes are acknowledged, and the close still flushes them.
#[tokio::test]
async fn an_endless_flush_interval_is_no_panic() {
    let engine = Volatile::new();
    let config = DatabaseConfig {
        durability: Durability::Periodic,
        flush_interval: Duration::MAX,
        reader_flush_delay: Duration::MAX,
        ..plain()
    };
    let db = Database::open_shared(engine.clone(), config).unwrap();
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    for n in 1..=3u64 {
        store
            .persist_async(&[n], &Default::default())
            .await
            .unwrap();
    }
    // A read that meets the hold asks for a flush; with an endless delay it is not due.
    assert_eq!(
        db.query::<Counter>("c")
            .unwrap()
            .events(1, &EventFilter::all())
            .unwrap()
            .len(),
        0
    );
    db.flush().await.unwrap();
    store
        .persist_async(&[4], &Default::default())
        .await
        .unwrap();
    db.shutdown().await.unwrap();
    assert_eq!(on_disk(&engine), 4);
}

#[test]
fn an_engine_panic_fails_that_write_and_the_writer_goes_on() {
    let engine = Arc::new(Panicky::default());
    let shared: Arc<dyn Backend> = engine.clone();
    let mut store = Store::<Counter>::with_backend("c", "a", shared.clone(), None, false).unwrap();
    store.persist(&1).unwrap();
    engine.panic_on_commit.store(true, Ordering::SeqCst);
    let failed = store.persist(&2).unwrap_err();
    assert!(
        matches!(&failed, Error::Panicked { operation: "commit", message } if message.contains("injected")),
        "{failed:?}"
    );
    engine.panic_on_commit.store(false, Ordering::SeqCst);
    // The handle no longer knows where the journal ends; a fresh one writes through the
    // same writer, which is still there.
    assert!(matches!(store.persist(&3), Err(Error::Poisoned(_))));
    let mut fresh = Store::<Counter>::with_backend("c", "a", shared, None, false).unwrap();
    assert_eq!(fresh.persist(&3).unwrap(), 2);
    assert_eq!(fresh.recover().unwrap().unwrap().total, 4);
}

/// What a crash would leave of entity ("c", "a"): its highest sequence number in the
/// flushed state of a [`Volatile`] engine.
fn on_disk(engine: &Volatile) -> u64 {
    Store::<Counter>::new("c", "a", engine.flushed.clone(), None, false)
        .unwrap()
        .highest_sequence_number()
}

/// A blocking caller outside any runtime commits in the writer's place when it is idle;
/// the writer thread still flushes that write within the interval (and at the close).
#[test]
fn a_blocking_callers_periodic_write_is_flushed_within_the_interval() {
    let engine = Volatile::new();
    let config = |flush_interval| DatabaseConfig {
        durability: Durability::Periodic,
        flush_interval,
        ..plain()
    };
    let db = Database::open_shared(engine.clone(), config(Duration::from_millis(20))).unwrap();
    let mut store = db.store::<Counter>("c", "a").unwrap();
    store.persist(&1).unwrap();
    eventually("the periodic flush", || on_disk(&engine) == 1);
    // Idle since: the next write starts a new interval, flushed as well.
    store.persist(&2).unwrap();
    eventually("the second periodic flush", || on_disk(&engine) == 2);
    drop((store, db));

    // With a long interval, closing the database is what flushes it.
    let engine = Volatile::new();
    let db = Database::open_shared(engine.clone(), config(Duration::from_secs(3600))).unwrap();
    let mut store = db.store::<Counter>("c", "a").unwrap();
    store.persist(&1).unwrap();
    assert_eq!(on_disk(&engine), 0, "acknowledged, not flushed yet");
    drop((store, db));
    assert_eq!(on_disk(&engine), 1);
}

#[tokio::test]
async fn shutdown_flushes_what_periodic_writes_acknowledged() {
    let engine = Volatile::new();
    let config = DatabaseConfig {
        durability: Durability::Periodic,
        flush_interval: Duration::from_secs(3600),
        ..plain()
    };
    let db = Database::open_shared(engine.clone(), config).unwrap();
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    for n in 1..=50 {
        store
            .persist_async(&[n], &Default::default())
            .await
            .unwrap();
    }
    // Acknowledged, not flushed: a crash now loses them, and no reader has seen them.
    assert_eq!(on_disk(&engine), 0);
    let query = db.query::<Counter>("c").unwrap();
    assert_eq!(query.highest_offset().unwrap(), 0);
    db.flush().await.unwrap();
    assert_eq!(
        (on_disk(&engine), query.highest_offset().unwrap()),
        (50, 50)
    );
    store
        .persist_async(&[51], &Default::default())
        .await
        .unwrap();
    db.shutdown().await.unwrap();
    assert_eq!(on_disk(&engine), 51);
}

#[tokio::test]
async fn after_shutdown_every_call_is_refused_at_once() {
    let db = Database::open(MemoryManager::default(), plain()).unwrap();
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    store
        .persist_async(&[1], &Default::default())
        .await
        .unwrap();
    let table = db.table::<u64>("t").unwrap();
    let query = db.query::<Counter>("c").unwrap();
    db.shutdown().await.unwrap();

    let started = Instant::now();
    let shut = |r: Result<(), Error>| matches!(r, Err(Error::Shutdown));
    assert!(shut(
        store
            .persist_async(&[2], &Default::default())
            .await
            .map(drop)
    ));
    assert!(shut(store.persist(&2).map(drop)));
    assert!(shut(store.recover().map(drop)));
    assert!(shut(store.recover_async().await.map(drop)));
    assert!(shut(store.snapshot_async(&Counter::default()).await));
    assert!(shut(table.put("k", &1)));
    assert!(shut(table.get("k").map(drop)));
    assert!(shut(query.read(1, &EventFilter::all(), 10).map(drop)));
    assert!(shut(db.store::<Counter>("c", "b").map(drop)));
    assert!(shut(db.flush().await));
    assert!(db.is_shut_down());
    // A second shutdown has nothing left to do.
    db.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusals are immediate"
    );
}

#[tokio::test]
async fn a_folder_is_free_as_soon_as_shutdown_returns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(SledManager::new(dir.path()).unwrap(), plain()).unwrap();
    let mut store = db.store_async::<Counter>("c", "a").await.unwrap();
    store
        .persist_async(&[3], &Default::default())
        .await
        .unwrap();
    db.shutdown().await.unwrap();
    // No retry: the lock another process would take is free now, though views remain.
    let file = std::fs::File::open(dir.path().join("db")).unwrap();
    file.try_lock().expect("the database folder is unlocked");
    drop(file);
    let again = Database::open(SledManager::new(dir.path()).unwrap(), plain()).unwrap();
    let mut reopened = again.store_async::<Counter>("c", "a").await.unwrap();
    assert_eq!(reopened.recover_async().await.unwrap().unwrap().total, 3);
    drop(store);
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_closed_by_a_drop_on_a_runtime_opens_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // Dropped on a runtime thread: the close (final flush, sled's own close) runs on a
    // thread of the database's, so the next open must wait for that close, not fail.
    tokio::task::spawn_blocking(move || {
        let mut store =
            Store::<Counter>::new("c", "a", SledManager::new(&path).unwrap(), None, false).unwrap();
        store.persist(&4).unwrap();
    })
    .await
    .unwrap();
    let again = Store::<Counter>::new("c", "a", SledManager::new(dir.path()).unwrap(), None, false)
        .expect("the folder opens again at once");
    assert_eq!(again.recover().unwrap().unwrap().total, 4);
}

/// The same, many times over: the close's own probes of sled's lock (it waits until the
/// lock is free before it forgets the folder) must never make the next open see the
/// folder as in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_closed_by_a_drop_on_a_runtime_opens_again_at_once_every_time() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..200u64 {
        let path = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut store =
                Store::<Counter>::new("c", "a", SledManager::new(&path).unwrap(), None, false)
                    .unwrap();
            store.persist(&1).unwrap();
        })
        .await
        .unwrap();
        let again =
            Store::<Counter>::new("c", "a", SledManager::new(dir.path()).unwrap(), None, false)
                .unwrap_or_else(|e| panic!("round {round}: the folder does not open again: {e}"));
        assert_eq!(again.recover().unwrap().unwrap().total, round + 1);
    }
}

/// Code without a runtime flushes and shuts down with the blocking calls: the same
/// promises as `flush().await` and `shutdown().await`.
#[test]
fn code_without_a_runtime_flushes_and_shuts_down_blocking() {
    let engine = Volatile::new();
    let config = DatabaseConfig {
        durability: Durability::Periodic,
        flush_interval: Duration::from_secs(3600),
        ..plain()
    };
    let db = Database::open_shared(engine.clone(), config).unwrap();
    let mut store = db.store::<Counter>("c", "a").unwrap();
    store.persist_batch(&[1, 2]).unwrap();
    assert_eq!(on_disk(&engine), 0, "acknowledged, not flushed yet");
    db.flush_blocking().unwrap();
    assert_eq!(on_disk(&engine), 2);
    store.persist(&3).unwrap();
    db.shutdown_blocking().unwrap();
    assert_eq!(on_disk(&engine), 3, "the shutdown flushed it");
    assert!(matches!(store.persist(&4), Err(Error::Shutdown)));
    assert!(matches!(db.flush_blocking(), Err(Error::Shutdown)));
    db.shutdown_blocking().unwrap();

    // On sled the folder is free when it returns.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(SledManager::new(dir.path()).unwrap(), plain()).unwrap();
    db.store::<Counter>("c", "a").unwrap().persist(&1).unwrap();
    db.shutdown_blocking().unwrap();
    let reopened = SledManager::new(dir.path()).unwrap();
    let store = Store::<Counter>::new("c", "a", reopened, None, false).unwrap();
    assert_eq!(store.highest_sequence_number(), 1);
}

/// Inside a runtime the blocking calls would block a worker: refused with a typed error
/// that names the async call, and the database goes on.
#[tokio::test]
async fn blocking_calls_inside_a_runtime_are_refused() {
    let db = Database::open(MemoryManager::default(), plain()).unwrap();
    for refused in [db.flush_blocking(), db.shutdown_blocking()] {
        assert!(
            matches!(&refused, Err(Error::InvalidArgument(m)) if m.contains(".await")),
            "{refused:?}"
        );
    }
    assert!(!db.is_shut_down());
    db.flush().await.unwrap();
    db.shutdown().await.unwrap();
}
